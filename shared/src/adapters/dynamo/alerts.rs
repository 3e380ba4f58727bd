//! The `alerts` table (pk `alert_id`; `deadline-index`: `action_queue` + `action_required_deadline`,
//! sparse; `organisation-index`: `organisation_id` + `alert_received_at`).
//!
//! An Ethoca alert waiting for an action without an `action_required_deadline` would be left
//! out of the sparse `deadline-index` (an item without the sort key is not indexed), and with
//! it out of the sweep and the ops queue. Such an item is written with the sort key
//! `NO_DEADLINE_SORT_KEY`, which sorts before every real deadline, and read back as "no
//! deadline" (never as a date: the sentinel is not a valid one, so nothing can mistake it for
//! an overdue alert).

use super::table::{normalise_timestamps, Table};
use crate::ports::alert_store::AlertStore;
use crate::ports::store_error::{StoreError, UndecodableItem};
use crate::records::alert::{AlertRecord, ACTION_QUEUE};
use serde_json::Value;

/// Index sort keys, stored in the tables' one ISO format.
const SORT_KEY_TIMESTAMPS: &[&str] = &["action_required_deadline", "alert_received_at"];

/// The `deadline-index` sort key of a waiting alert that has no deadline: before every ISO
/// timestamp, and not a date (month 00).
pub const NO_DEADLINE_SORT_KEY: &str = "0000-00-00T00:00:00.000Z";

#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    table: Table,
}

impl DynamoAlertStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    pub(crate) fn to_item(&self, record: &AlertRecord) -> Result<Value, StoreError> {
        let mut item =
            serde_json::to_value(record).map_err(|e| self.table.bad_item("put alert", e))?;
        normalise_timestamps(&mut item, SORT_KEY_TIMESTAMPS);
        if record.waits_without_deadline() {
            if let Some(map) = item.as_object_mut() {
                map.insert(
                    "action_required_deadline".into(),
                    Value::String(NO_DEADLINE_SORT_KEY.into()),
                );
            }
        }
        Ok(item)
    }

    pub(crate) fn from_item(
        &self,
        operation: &'static str,
        mut item: Value,
    ) -> Result<AlertRecord, StoreError> {
        if let Some(map) = item.as_object_mut() {
            if map.get("action_required_deadline").and_then(Value::as_str)
                == Some(NO_DEADLINE_SORT_KEY)
            {
                map.remove("action_required_deadline");
            }
        }
        serde_json::from_value(item).map_err(|e| self.table.bad_item(operation, e))
    }

    fn from_items(
        &self,
        operation: &'static str,
        items: Vec<Value>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        items
            .into_iter()
            .map(|item| self.from_item(operation, item))
            .collect()
    }
}

#[async_trait::async_trait]
impl AlertStore for DynamoAlertStore {
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError> {
        // Strongly consistent (ConsistentRead): the action claim is decided on it.
        self.table
            .get_by_key::<Value>("get alert", "alert_id", alert_id)
            .await?
            .map(|item| self.from_item("get alert", item))
            .transpose()
    }

    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        let item = self.to_item(record)?;
        self.table
            .put_versioned(
                "put alert",
                "alert_id",
                &record.alert_id,
                item,
                record.revision,
                &record.version_key,
            )
            .await
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let items = self
            .table
            .query_index(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", ACTION_QUEUE),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
            )
            .await?;
        self.from_items("alerts awaiting action", items)
    }

    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        let (items, mut skipped) = self
            .table
            .query_index_each::<Value>(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", ACTION_QUEUE),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
                "alert_id",
            )
            .await?;
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            let key = item
                .get("alert_id")
                .and_then(Value::as_str)
                .unwrap_or("(no key)")
                .to_string();
            match self.from_item("alerts awaiting action", item) {
                Ok(record) => found.push(record),
                Err(e) => skipped.push(UndecodableItem {
                    table: self.table.name().to_string(),
                    key,
                    reason: e.to_string(),
                }),
            }
        }
        Ok((found, skipped))
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let items = self
            .table
            .query_index(
                "alerts of organisation",
                "organisation-index",
                ("organisation_id", organisation_id),
                None,
                true,
                Some(limit),
            )
            .await?;
        self.from_items("alerts of organisation", items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamo::table::DynamoCounters;
    use crate::domain::alert_record::{merge_fetched, Merge};
    use crate::domain::test_support::{alert, ts};
    use std::sync::Arc;

    fn store() -> DynamoAlertStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        DynamoAlertStore::new(Table::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "t-alerts",
            Arc::new(DynamoCounters::default()),
        ))
    }

    fn record(deadline: Option<&str>, status: &str) -> AlertRecord {
        let mut a = alert("a1", "ETHOCA_ALERT", status, 100);
        a.action_required_deadline = deadline.map(ts);
        let Merge::Updated(r) = merge_fetched(None, a, ts("2026-11-24T10:00:00Z")) else {
            panic!()
        };
        r
    }

    #[test]
    fn a_waiting_alert_without_deadline_gets_the_first_sort_key_and_reads_back_without_one() {
        let s = store();
        let r = record(None, "ACTION_REQUIRED");
        let item = s.to_item(&r).unwrap();
        assert_eq!(item["action_required_deadline"], NO_DEADLINE_SORT_KEY);
        assert!(NO_DEADLINE_SORT_KEY < "2000-01-01T00:00:00.000Z");
        // Through DynamoDB's item form and back.
        let dynamo: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(item).unwrap();
        let back: Value = serde_dynamo::from_item(dynamo).unwrap();
        assert_eq!(s.from_item("get alert", back).unwrap(), r);
    }

    #[test]
    fn real_deadlines_and_resolved_alerts_are_written_as_they_are() {
        let s = store();
        let waiting = record(Some("2026-11-26T10:00:00Z"), "ACTION_REQUIRED");
        assert_eq!(
            s.to_item(&waiting).unwrap()["action_required_deadline"],
            "2026-11-26T10:00:00.000Z"
        );
        let resolved = record(None, "RESOLVED");
        assert!(s.to_item(&resolved).unwrap()["action_required_deadline"].is_null());
    }
}
