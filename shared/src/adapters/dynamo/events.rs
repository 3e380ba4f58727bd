//! The `events` table: one idempotency record per webhook event (see `ports::event_log`).

use super::table::{is_condition_failed, Table};
use crate::ports::event_log::{
    iso, new_claim_token, Claim, EventArrival, EventLog, EventRecord, EventStatus,
};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct DynamoEventLog {
    table: Table,
}

impl DynamoEventLog {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn key(event_id: &str) -> (String, AttributeValue) {
        (
            "event_id".to_string(),
            AttributeValue::S(event_id.to_string()),
        )
    }

    /// Move our IN_PROGRESS record to a final status, only while it holds our claim token.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        operation: &'static str,
        event_id: &str,
        token: &str,
        update: &str,
        status: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (k, v) = Self::key(event_id);
        self.table.counters.write();
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(k, v)
            .update_expression(update)
            .condition_expression("#status = :in_progress AND claim_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":final", AttributeValue::S(status.into()))
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_string()))
            .expression_attribute_values(":outcome", AttributeValue::S(outcome.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(iso(now)))
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

    fn claim_from_existing(record: Option<EventRecord>) -> Claim {
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
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            // The same rule as `EventRecord::can_be_claimed_at`: expiry is checked here rather
            // than trusting TTL deletion, which can lag up to 48 hours.
            .condition_expression(
                "attribute_not_exists(event_id) OR expires_at < :now_epoch \
                 OR #status = :dead_lettered \
                 OR (#status = :in_progress AND in_progress_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":now_epoch",
                AttributeValue::N(now.timestamp().to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::S(iso(now)))
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(
                ":dead_lettered",
                AttributeValue::S("DEAD_LETTERED".into()),
            )
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
        self.finish(
            "complete",
            event_id,
            token,
            "SET #status = :final, outcome = :outcome, completed_at = :now \
             REMOVE in_progress_until",
            "COMPLETED",
            outcome,
            now,
        )
        .await
    }

    async fn dead_letter(
        &self,
        event_id: &str,
        token: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(
            "dead_letter",
            event_id,
            token,
            "SET #status = :final, outcome = :outcome, dead_lettered_at = :now \
             REMOVE in_progress_until",
            "DEAD_LETTERED",
            reason,
            now,
        )
        .await
    }

    async fn release(&self, event_id: &str, token: &str) -> Result<(), StoreError> {
        let (k, v) = Self::key(event_id);
        self.table.counters.write();
        let result = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key(k, v)
            // Never delete a COMPLETED record (a duplicate would apply twice), nor a claim that
            // another run took over from us.
            .condition_expression("#status = :in_progress AND claim_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_string()))
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
