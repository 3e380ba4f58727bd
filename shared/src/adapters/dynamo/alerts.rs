//! The `alerts` table (pk `alert_id`; `deadline-index`: `action_queue` + `action_required_deadline`,
//! sparse; `organisation-index`: `organisation_id` + `alert_received_at`).
//!
//! An Ethoca alert waiting for an action without an `action_required_deadline` would be left
//! out of the sparse `deadline-index` (an item without the sort key is not indexed), and with
//! it out of the sweep and the ops queue. Such an item is written with the sort key
//! `NO_DEADLINE_SORT_KEY`, which sorts before every real deadline, and read back as "no
//! deadline" (never as a date: the sentinel is not a valid one, so nothing can mistake it for
//! an overdue alert).
//!
//! ## `deadline-index` is sharded
//! Every waiting Ethoca alert would otherwise share one partition key value, and with it one
//! index partition's 1,000 WCU/s (about 110 Ethoca alerts a second: it binds at 1000x of the
//! design load, `docs/capacity.md`). The store writes `action_queue` as
//! `ETHOCA_ACTION_REQUIRED#<n>`, `n` a stable hash of the alert id over
//! [`DEADLINE_INDEX_SHARDS`], and reads it back as the domain's one [`ACTION_QUEUE`]. A read
//! queries every shard at once, plus the unsharded value that items written before sharding
//! carry (so nothing written by an earlier version is lost from the sweep), and merges them
//! soonest deadline first.

use super::journal::DynamoBookkeepingJournal;
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

/// How many `deadline-index` partition key values waiting alerts are spread over. Each holds
/// 1,000 WCU/s, so sixteen give 16,000 (about 1,800 Ethoca alerts a second, sustained; the
/// hottest shard at 1000x of the design load's peak is about half full, `cbs-bench capacity`).
/// A read queries every shard at once, so a sweep or an ops queue page costs 17 small
/// queries. Only ever raise it: a read queries shards `0..DEADLINE_INDEX_SHARDS`, so lowering it would hide the
/// alerts in the shards dropped.
pub const DEADLINE_INDEX_SHARDS: u64 = 16;

/// The `action_queue` value an alert's item carries while it waits: its shard of the index.
pub fn deadline_index_shard(alert_id: &str) -> String {
    // FNV-1a: stable across Rust versions and processes (std's hasher is not promised to be),
    // and a few lines, so written here rather than pulled in as a crate.
    let hash = alert_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{ACTION_QUEUE}#{}", hash % DEADLINE_INDEX_SHARDS)
}

/// Every partition key value a waiting alert may carry: the shards, and the unsharded value of
/// items written before sharding.
fn deadline_index_keys() -> Vec<String> {
    (0..DEADLINE_INDEX_SHARDS)
        .map(|n| format!("{ACTION_QUEUE}#{n}"))
        .chain(std::iter::once(ACTION_QUEUE.to_string()))
        .collect()
}

/// Soonest first: waiting without a deadline before every deadline, then by alert id so the
/// merge of the shards is deterministic.
fn by_deadline(a: &AlertRecord, b: &AlertRecord) -> std::cmp::Ordering {
    a.alert
        .action_required_deadline
        .cmp(&b.alert.action_required_deadline)
        .then_with(|| a.alert_id.cmp(&b.alert_id))
}

#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    table: Table,
    journal: DynamoBookkeepingJournal,
}

impl DynamoAlertStore {
    /// On the `alerts` table (`<prefix>-alerts`); every write journals the record's bookkeeping
    /// in the same request, on the `archive` table beside it (`<prefix>-archive`,
    /// `DynamoBookkeepingJournal::beside`): every writer of alerts journals, however built.
    pub fn new(table: Table) -> Self {
        let journal = DynamoBookkeepingJournal::beside(&table, "alerts");
        Self { table, journal }
    }

    /// The journal written with every write (the archive table beside this one unless set).
    pub fn with_journal(mut self, journal: DynamoBookkeepingJournal) -> Self {
        self.journal = journal;
        self
    }

    /// The item as stored: index sort keys in the tables' ISO format, a waiting alert's
    /// `action_queue` as its index shard.
    pub fn to_item(&self, record: &AlertRecord) -> Result<Value, StoreError> {
        let mut item =
            serde_json::to_value(record).map_err(|e| self.table.bad_item("put alert", e))?;
        normalise_timestamps(&mut item, SORT_KEY_TIMESTAMPS);
        if record.action_queue.is_some() {
            if let Some(map) = item.as_object_mut() {
                map.insert(
                    "action_queue".into(),
                    Value::String(deadline_index_shard(&record.alert_id)),
                );
            }
        }
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
            if map.get("action_queue").and_then(Value::as_str).is_some() {
                map.insert("action_queue".into(), Value::String(ACTION_QUEUE.into()));
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
                self.journal.alert_write(record)?,
            )
            .await
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let keys = deadline_index_keys();
        let shards = futures::future::try_join_all(keys.iter().map(|key| {
            self.table.query_index::<Value>(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", key),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
            )
        }))
        .await?;
        let mut found = Vec::new();
        for items in shards {
            found.extend(self.from_items("alerts awaiting action", items)?);
        }
        found.sort_by(by_deadline);
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        let keys = deadline_index_keys();
        let shards = futures::future::try_join_all(keys.iter().map(|key| {
            self.table.query_index_each::<Value>(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", key),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
                "alert_id",
            )
        }))
        .await?;
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for (items, undecodable) in shards {
            skipped.extend(undecodable);
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
        }
        found.sort_by(by_deadline);
        found.truncate(usize::try_from(limit).unwrap_or(0));
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
    fn waiting_alerts_spread_over_every_shard_and_read_back_as_the_one_queue() {
        let s = store();
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..400 {
            let mut r = record(Some("2026-11-26T10:00:00Z"), "ACTION_REQUIRED");
            r.alert_id = format!("alert-{i:04}");
            let item = s.to_item(&r).unwrap();
            let key = item["action_queue"].as_str().unwrap().to_string();
            assert_eq!(key, deadline_index_shard(&r.alert_id), "stable per alert");
            *seen.entry(key).or_insert(0) += 1;
            assert_eq!(
                s.from_item("get alert", item)
                    .unwrap()
                    .action_queue
                    .as_deref(),
                Some(ACTION_QUEUE)
            );
        }
        assert_eq!(seen.len() as u64, DEADLINE_INDEX_SHARDS, "{seen:?}");
        // Roughly even: no shard carries more than twice its share.
        let share = 400 / DEADLINE_INDEX_SHARDS;
        assert!(seen.values().all(|&n| n < 2 * share), "{seen:?}");
        // Reads also ask for the unsharded value of items written before sharding.
        assert!(deadline_index_keys().contains(&ACTION_QUEUE.to_string()));
    }

    #[test]
    fn a_resolved_alert_has_no_shard() {
        let s = store();
        let resolved = record(Some("2026-11-26T10:00:00Z"), "RESOLVED");
        assert!(s.to_item(&resolved).unwrap()["action_queue"].is_null());
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
