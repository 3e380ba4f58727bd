//! The `events` table: one idempotency record per webhook event (see `ports::event_log`).

use super::table::{is_condition_failed, Condition, Item, Table};
use crate::ports::event_log::{
    iso, new_claim_token, Claim, EventArrival, EventLog, EventRecord, EventStatus,
};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

/// The claim condition (the same rule as `EventRecord::can_be_claimed_at`): expiry is checked
/// here rather than trusting TTL deletion, which can lag up to 48 hours.
pub(crate) fn claim_condition(now: DateTime<Utc>) -> Condition {
    Condition {
        expression: "attribute_not_exists(event_id) OR expires_at < :now_epoch \
                     OR #status = :dead_lettered \
                     OR (#status = :in_progress AND in_progress_until < :now)"
            .into(),
        names: Some([("#status".to_string(), "status".to_string())].into()),
        values: Some(
            [
                (
                    ":now_epoch".to_string(),
                    AttributeValue::N(now.timestamp().to_string()),
                ),
                (":now".to_string(), AttributeValue::S(iso(now))),
                (
                    ":in_progress".to_string(),
                    AttributeValue::S("IN_PROGRESS".into()),
                ),
                (
                    ":dead_lettered".to_string(),
                    AttributeValue::S("DEAD_LETTERED".into()),
                ),
            ]
            .into(),
        ),
    }
}

/// Our claim still holds: IN_PROGRESS under `token`.
pub(crate) fn held_condition(token: &str) -> Condition {
    Condition {
        expression: "#status = :in_progress AND claim_token = :token".into(),
        names: Some([("#status".to_string(), "status".to_string())].into()),
        values: Some(
            [
                (
                    ":in_progress".to_string(),
                    AttributeValue::S("IN_PROGRESS".into()),
                ),
                (":token".to_string(), AttributeValue::S(token.to_string())),
            ]
            .into(),
        ),
    }
}

/// The update that finishes a claim: `status` (COMPLETED / DEAD_LETTERED) with its outcome and
/// time, the claim's deadline removed. Its values add to `held_condition`'s.
pub(crate) fn finish_update(status: &str, outcome: &str, at: &str) -> (String, Item) {
    let stamp = if status == "DEAD_LETTERED" {
        "dead_lettered_at"
    } else {
        "completed_at"
    };
    (
        format!(
            "SET #status = :final, outcome = :outcome, {stamp} = :now REMOVE in_progress_until"
        ),
        [
            (":final".to_string(), AttributeValue::S(status.to_string())),
            (
                ":outcome".to_string(),
                AttributeValue::S(outcome.to_string()),
            ),
            (":now".to_string(), AttributeValue::S(at.to_string())),
        ]
        .into(),
    )
}

#[derive(Debug, Clone)]
pub struct DynamoEventLog {
    table: Table,
}

impl DynamoEventLog {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    pub(crate) fn key(event_id: &str) -> (String, AttributeValue) {
        (
            "event_id".to_string(),
            AttributeValue::S(event_id.to_string()),
        )
    }

    /// Move our IN_PROGRESS record to a final status, only while it holds our claim token.
    async fn finish(
        &self,
        operation: &'static str,
        event_id: &str,
        token: &str,
        status: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (k, v) = Self::key(event_id);
        let condition = held_condition(token);
        let (update, mut values) = finish_update(status, outcome, &iso(now));
        values.extend(condition.values.unwrap_or_default());
        self.table.counters.write();
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(k, v)
            .update_expression(update)
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names)
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| {
                if is_condition_failed(&e) {
                    StoreError::Conflict {
                        operation,
                        table: self.table.name.clone(),
                        key: event_id.to_string(),
                    }
                } else {
                    self.table.error(operation, e)
                }
            })?;
        Ok(())
    }

    pub(crate) fn claim_from_existing(record: Option<EventRecord>) -> Claim {
        match record {
            Some(r) if r.status == EventStatus::Completed => {
                Claim::AlreadyCompleted { outcome: r.outcome }
            }
            // In the old image of a failed condition, a DEAD_LETTERED record can only mean it
            // changed between the condition and now: let SQS try again.
            Some(r) => Claim::InProgressElsewhere {
                until: r.in_progress_until,
            },
            // Deleted between our put and our read (a release): let SQS try again.
            None => Claim::InProgressElsewhere { until: None },
        }
    }
}

#[async_trait::async_trait]
impl EventLog for DynamoEventLog {
    async fn claim(
        &self,
        arrival: &EventArrival,
        now: DateTime<Utc>,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let token = new_claim_token();
        let record = EventRecord::in_progress(arrival, now, in_progress_until, &token);
        let item = serde_dynamo::to_item(&record).map_err(|e| self.table.bad_item("claim", e))?;
        let condition = claim_condition(now);
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names)
            .set_expression_attribute_values(condition.values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired { token }),
            Err(err) if is_condition_failed(&err) => {
                let old = err
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item.clone(),
                        _ => None,
                    });
                let existing = match old {
                    Some(item) => Some(
                        serde_dynamo::from_item(item)
                            .map_err(|e| self.table.bad_item("claim", e))?,
                    ),
                    // Emulators may not return the old item: read it.
                    None => self.get(&arrival.event_id).await?,
                };
                Ok(Self::claim_from_existing(existing))
            }
            Err(err) => Err(self.table.error("claim", err)),
        }
    }

    async fn complete(
        &self,
        event_id: &str,
        token: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish("complete", event_id, token, "COMPLETED", outcome, now)
            .await
    }

    async fn dead_letter(
        &self,
        event_id: &str,
        token: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish("dead_letter", event_id, token, "DEAD_LETTERED", reason, now)
            .await
    }

    async fn release(&self, event_id: &str, token: &str) -> Result<(), StoreError> {
        let (k, v) = Self::key(event_id);
        let condition = held_condition(token);
        self.table.counters.write();
        let result = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key(k, v)
            // Never delete a COMPLETED record (a duplicate would apply twice), nor a claim that
            // another run took over from us.
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names)
            .set_expression_attribute_values(condition.values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(self.table.error("release", err)),
        }
    }

    async fn get(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.table
            .get_by_key("get event", "event_id", event_id)
            .await
    }

    async fn reopen(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let (k, v) = Self::key(event_id);
        self.table.counters.write();
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(k, v)
            .update_expression("SET expires_at = :expired, reopened_at = :now")
            .condition_expression("#status = :completed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", AttributeValue::N("0".into()))
            .expression_attribute_values(":now", AttributeValue::S(iso(now)))
            .expression_attribute_values(":completed", AttributeValue::S("COMPLETED".into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.table.error("reopen event", e)),
        }
    }
}
