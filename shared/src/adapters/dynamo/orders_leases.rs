//! Leasing an order for a run and recording what became of it: conditional UpdateItems that
//! hold only while the run owns the lease (`super::DynamoOrderOutbox`).

use super::{s, DynamoOrderOutbox};
use crate::adapters::dynamo::table::is_condition_failed;
use crate::ports::order_outbox::{iso, OutboxOrder, UploadOutcome, UploadState};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

impl DynamoOrderOutbox {
    pub(super) async fn lease_one(
        &self,
        order: &OutboxOrder,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<OutboxOrder>, StoreError> {
        let uploaded = order.state.is_uploaded();
        let lookup = order.state == UploadState::Reconcile;
        let mut request = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(&order.organisation_id, &order.reference_id)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":until", s(iso(until)))
            .expression_attribute_values(":owner", s(owner))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        request = if uploaded {
            // A patch lease: the order stays CREATED/DUPLICATE, only the lease is taken.
            request
                .update_expression("SET lease_until = :until, lease_owner = :owner")
                .condition_expression(
                    "(#state = :created OR #state = :duplicate) AND attribute_exists(pending_organisation_id) \
                     AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :owner)",
                )
                .expression_attribute_values(":created", s("CREATED"))
                .expression_attribute_values(":duplicate", s("DUPLICATE"))
        } else if lookup {
            // A lookup lease: the order stays RECONCILE (it is never POSTed again).
            request
                .update_expression("SET lease_until = :until, lease_owner = :owner")
                .condition_expression(
                    "#state = :reconcile AND queued_at <= :now \
                     AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :owner)",
                )
                .expression_attribute_values(":reconcile", s("RECONCILE"))
        } else {
            request
                .update_expression(
                    "SET #state = :leased, lease_until = :until, lease_owner = :owner, updated_at = :now \
                     ADD attempts :one",
                )
                .condition_expression(
                    "(#state = :pending AND queued_at <= :now) \
                     OR (#state = :leased AND (lease_until < :now OR lease_owner = :owner))",
                )
                .expression_attribute_values(":pending", s("PENDING"))
                .expression_attribute_values(":leased", s("LEASED"))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
        };
        self.table.counters.write();
        match request.send().await {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Some(self.parse("lease", item)?)),
                None => Ok(None),
            },
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(self.table.error("lease", e)),
        }
    }

    /// Records one create outcome, only while this run holds the lease.
    pub(super) async fn record_one(
        &self,
        org: &str,
        reference: &str,
        owner: &str,
        outcome: &UploadOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let base = || {
            self.table
                .client
                .update_item()
                .table_name(&self.table.name)
                .set_key(Some(Self::key(org, reference)))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":leased", s("LEASED"))
                .expression_attribute_values(":reconcile", s("RECONCILE"))
                .expression_attribute_values(":owner", s(owner))
                .expression_attribute_values(":now", s(iso(now)))
        };
        let held = "(#state = :leased OR #state = :reconcile) AND lease_owner = :owner";
        let attempt = match outcome {
            UploadOutcome::Created { order_id } | UploadOutcome::Duplicate { order_id } => {
                let state = if matches!(outcome, UploadOutcome::Created { .. }) { "CREATED" } else { "DUPLICATE" };
                // Leave the pending-index only when no PATCH update waits for this order.
                let done = base()
                    .update_expression(
                        "SET #state = :state, order_id = :order_id, updated_at = :now \
                         REMOVE lease_until, lease_owner, pending_organisation_id",
                    )
                    .condition_expression(format!(
                        "{held} AND (attribute_not_exists(pending_updates) OR size(pending_updates) = :zero)"
                    ))
                    .expression_attribute_values(":state", s(state))
                    .expression_attribute_values(":order_id", s(order_id.clone()))
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()));
                self.table.counters.write();
                match done.send().await {
                    Ok(_) => return Ok(true),
                    Err(e) if is_condition_failed(&e) => {}
                    Err(e) => return Err(self.table.error("record", e)),
                }
                // Either the lease is gone, or updates wait: keep it in the index for them.
                base()
                    .update_expression(
                        "SET #state = :state, order_id = :order_id, updated_at = :now REMOVE lease_until, lease_owner",
                    )
                    .condition_expression(held)
                    .expression_attribute_values(":state", s(state))
                    .expression_attribute_values(":order_id", s(order_id.clone()))
            }
            UploadOutcome::Failed { code, field, message } => {
                let mut r = base()
                    .update_expression(
                        "SET #state = :failed, error_code = :code, error_field = :field, error_message = :message, \
                         updated_at = :now REMOVE lease_until, lease_owner, pending_organisation_id",
                    )
                    .condition_expression(held)
                    .expression_attribute_values(":failed", s("FAILED"))
                    .expression_attribute_values(":code", s(code.clone()));
                r = r.expression_attribute_values(
                    ":field",
                    field.clone().map(s).unwrap_or(AttributeValue::Null(true)),
                );
                r.expression_attribute_values(
                    ":message",
                    message.clone().map(s).unwrap_or(AttributeValue::Null(true)),
                )
            }
            // Due again at `retry_at`: its place in the pending-index moves behind what is due.
            UploadOutcome::Retry { reason, retry_at } => base()
                .update_expression(
                    "SET #state = :pending, last_error = :reason, queued_at = :retry_at, updated_at = :now \
                     REMOVE lease_until, lease_owner",
                )
                .condition_expression(held)
                .expression_attribute_values(":pending", s("PENDING"))
                .expression_attribute_values(":reason", s(reason.clone()))
                .expression_attribute_values(":retry_at", s(iso(*retry_at))),
            // Never sent: the lease's attempt does not count.
            UploadOutcome::Unsent { reason } => base()
                .update_expression(
                    "SET #state = :pending, last_error = :reason, updated_at = :now \
                     REMOVE lease_until, lease_owner ADD attempts :minus_one",
                )
                .condition_expression(held)
                .expression_attribute_values(":pending", s("PENDING"))
                .expression_attribute_values(":reason", s(reason.clone()))
                .expression_attribute_values(":minus_one", AttributeValue::N("-1".into())),
            UploadOutcome::Lookup { reason, keep_lease: true } => base()
                .update_expression("SET #state = :reconcile_state, last_error = :reason, updated_at = :now")
                .condition_expression(held)
                .expression_attribute_values(":reconcile_state", s("RECONCILE"))
                .expression_attribute_values(":reason", s(reason.clone())),
            UploadOutcome::Lookup { reason, keep_lease: false } => base()
                .update_expression(
                    "SET #state = :reconcile_state, last_error = :reason, updated_at = :now \
                     REMOVE lease_until, lease_owner",
                )
                .condition_expression(held)
                .expression_attribute_values(":reconcile_state", s("RECONCILE"))
                .expression_attribute_values(":reason", s(reason.clone())),
        };
        self.table.counters.write();
        match attempt.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.table.error("record", e)),
        }
    }
}
