//! The `archive` table: every accepted webhook delivery, raw (see `ports::event_archive`).
//!
//! Key: `event_id` + `delivery_id`; `received-index` (pk `received_day` = `YYYY-MM-DD`, sk
//! `received_at`) for time windows, one query per day; TTL `expires_at` (the retention). The
//! body is a binary attribute: the bytes exactly as verified. Every message SQS accepts (at
//! most 256 KiB) fits in one item (at most 400 KB). The dead-letter counters live here too,
//! under the partition `#dead-letters` (no `received_day`, so never in the index).

use super::table::{is_condition_failed, Table};
use crate::ports::event_archive::{ArchivedDelivery, EventArchive};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

const COUNTERS_PK: &str = "#dead-letters";
const RECEIVED_INDEX: &str = "received-index";

#[derive(Debug, Clone)]
pub struct DynamoEventArchive {
    table: Table,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoEventArchive {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    pub(crate) fn to_item(d: &ArchivedDelivery) -> Item {
        let mut item = Item::new();
        let s = |v: &str| AttributeValue::S(v.to_string());
        item.insert("event_id".into(), s(&d.event_id));
        item.insert("delivery_id".into(), s(&d.delivery_id));
        item.insert("event_type".into(), s(&d.event_type));
        if let Some(v) = &d.object_id {
            item.insert("object_id".into(), s(v));
        }
        if let Some(v) = &d.organisation_id {
            item.insert("organisation_id".into(), s(v));
        }
        item.insert("received_at".into(), s(&d.received_at));
        item.insert(
            "received_day".into(),
            s(d.received_at.get(..10).unwrap_or(&d.received_at)),
        );
        if let Some(t) = d.signature_timestamp {
            item.insert(
                "signature_timestamp".into(),
                AttributeValue::N(t.to_string()),
            );
        }
        if !d.headers.is_empty() {
            item.insert(
                "headers".into(),
                AttributeValue::M(d.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            );
        }
        item.insert("body".into(), AttributeValue::B(Blob::new(d.body.clone())));
        item.insert("archived_at".into(), s(&d.archived_at));
        item.insert(
            "expires_at".into(),
            AttributeValue::N(d.expires_at.to_string()),
        );
        item
    }

    fn from_item(&self, item: &Item) -> Result<ArchivedDelivery, StoreError> {
        let s = |k: &str| match item.get(k) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let n = |k: &str| match item.get(k) {
            Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
            _ => None,
        };
        let required =
            |k: &str| s(k).ok_or_else(|| self.table.bad_item("read archive", format!("no {k}")));
        let headers: BTreeMap<String, String> = match item.get("headers") {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(k, v)| match v {
                    AttributeValue::S(s) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let body = match item.get("body") {
            Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
            _ => return Err(self.table.bad_item("read archive", "no body")),
        };
        Ok(ArchivedDelivery {
            event_id: required("event_id")?,
            delivery_id: required("delivery_id")?,
            event_type: required("event_type")?,
            object_id: s("object_id"),
            organisation_id: s("organisation_id"),
            received_at: required("received_at")?,
            signature_timestamp: n("signature_timestamp"),
            headers,
            body,
            archived_at: s("archived_at").unwrap_or_default(),
            expires_at: n("expires_at").unwrap_or_default(),
        })
    }

    /// Every item of one partition (`event_id`), all pages.
    async fn partition(&self, operation: &'static str, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.table
            .query_all(operation, |q| {
                q.key_condition_expression("event_id = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                    .consistent_read(true)
            })
            .await
    }
}

#[async_trait::async_trait]
impl EventArchive for DynamoEventArchive {
    async fn put(&self, delivery: &ArchivedDelivery) -> Result<bool, StoreError> {
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(Self::to_item(delivery)))
            .condition_expression("attribute_not_exists(event_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.table.error("archive delivery", e)),
        }
    }

    async fn deliveries_of(&self, event_id: &str) -> Result<Vec<ArchivedDelivery>, StoreError> {
        let mut out: Vec<ArchivedDelivery> = self
            .partition("read archive", event_id)
            .await?
            .iter()
            .map(|i| self.from_item(i))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        Ok(out)
    }

    async fn received_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ArchivedDelivery>, StoreError> {
        let from = crate::ports::event_log::iso(since);
        let to = crate::ports::event_log::iso(until);
        let mut out = Vec::new();
        let mut day = since.date_naive();
        while day <= until.date_naive() {
            let mut start = None;
            loop {
                self.table.counters.read();
                let page = self
                    .table
                    .client
                    .query()
                    .table_name(&self.table.name)
                    .index_name(RECEIVED_INDEX)
                    .key_condition_expression(
                        "received_day = :day AND received_at BETWEEN :from AND :to",
                    )
                    .expression_attribute_values(":day", AttributeValue::S(day.to_string()))
                    .expression_attribute_values(":from", AttributeValue::S(from.clone()))
                    .expression_attribute_values(":to", AttributeValue::S(to.clone()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| self.table.error("read archive window", e))?;
                for item in page.items.unwrap_or_default() {
                    let d = self.from_item(&item)?;
                    if d.received_at < to {
                        out.push(d);
                    }
                }
                match page.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        Ok(out)
    }

    async fn count_dead_letter(&self, kind: &str) -> Result<u64, StoreError> {
        self.table.counters.write();
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("event_id", AttributeValue::S(COUNTERS_PK.into()))
            .key("delivery_id", AttributeValue::S(kind.to_string()))
            .update_expression("ADD dead_letters :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| self.table.error("count dead letter", e))?;
        Ok(out
            .attributes
            .and_then(|a| match a.get("dead_letters") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(1))
    }

    async fn dead_letter_count(&self, kind: &str) -> Result<u64, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("event_id", AttributeValue::S(COUNTERS_PK.into()))
            .key("delivery_id", AttributeValue::S(kind.to_string()))
            .send()
            .await
            .map_err(|e| self.table.error("read dead-letter counter", e))?;
        Ok(out
            .item
            .and_then(|a| match a.get("dead_letters") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(0))
    }

    async fn reset_dead_letter_counts(&self) -> Result<(), StoreError> {
        for item in self
            .partition("read dead-letter counters", COUNTERS_PK)
            .await?
        {
            let Some(kind) = item.get("delivery_id").cloned() else {
                continue;
            };
            // The refused deliveries' per-day counters are not the DLQ's.
            if kind
                .as_s()
                .is_ok_and(|k| k.starts_with(crate::ports::event_archive::REFUSED_COUNTER_PREFIX))
            {
                continue;
            }
            self.table.counters.write();
            self.table
                .client
                .delete_item()
                .table_name(&self.table.name)
                .key("event_id", AttributeValue::S(COUNTERS_PK.into()))
                .key("delivery_id", kind)
                .send()
                .await
                .map_err(|e| self.table.error("reset dead-letter counters", e))?;
        }
        Ok(())
    }
}
