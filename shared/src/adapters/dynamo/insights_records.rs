//! The stored alerts and orders, scanned page by page for `cbs insights backfill`
//! (`StoredRecords`; the only Scan of the insights code, never a view).

use super::super::alerts::DynamoAlertStore;
use super::super::orders::DynamoOrderOutbox;
use super::super::table::Table;
use super::s;
use crate::ports::insights_store::{RecordPage, StoredRecords};
use crate::ports::order_outbox::OutboxOrder;
use crate::ports::store_error::{StoreError, UndecodableItem};
use crate::records::alert::AlertRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

/// The alerts and orders tables, scanned page by page for the backfill.
#[derive(Debug, Clone)]
pub struct DynamoStoredRecords {
    pub alerts: DynamoAlertStore,
    pub alerts_table: Table,
    pub orders: DynamoOrderOutbox,
    pub orders_table: Table,
}

impl DynamoStoredRecords {
    pub fn new(alerts_table: Table, orders_table: Table) -> Self {
        Self {
            alerts: DynamoAlertStore::new(alerts_table.clone()),
            alerts_table,
            orders: DynamoOrderOutbox::new(orders_table.clone()),
            orders_table,
        }
    }

    async fn scan(
        &self,
        table: &Table,
        operation: &'static str,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, Option<String>), StoreError> {
        let start = match after {
            None => None,
            Some(raw) => {
                let k: BTreeMap<String, String> = serde_json::from_str(raw)
                    .map_err(|e| table.bad_item(operation, format!("bad backfill cursor: {e}")))?;
                Some(k.into_iter().map(|(n, v)| (n, s(v))).collect())
            }
        };
        table.counters.read();
        let out = table
            .client
            .scan()
            .table_name(&table.name)
            .limit(limit.max(1))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| table.error(operation, e))?;
        let next = out.last_evaluated_key.map(|k| {
            let plain: BTreeMap<String, String> = k
                .into_iter()
                .filter_map(|(n, v)| match v {
                    AttributeValue::S(v) => Some((n, v)),
                    _ => None,
                })
                .collect();
            serde_json::to_string(&plain).unwrap_or_default()
        });
        Ok((out.items.unwrap_or_default(), next))
    }
}

fn key_of(item: &HashMap<String, AttributeValue>, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| match item.get(*n) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "?".into(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One scanned page decoded: the records that decode, and each item that does not (named by
/// its key, with the reason) for the backfill's report.
fn decoded_page<T>(
    table: &Table,
    items: impl IntoIterator<Item = HashMap<String, AttributeValue>>,
    next: Option<String>,
    key_names: &[&str],
    decode: impl Fn(HashMap<String, AttributeValue>) -> Result<T, String>,
) -> RecordPage<T> {
    let mut page = RecordPage {
        records: Vec::new(),
        skipped: Vec::new(),
        next,
    };
    for item in items {
        let key = key_of(&item, key_names);
        match decode(item) {
            Ok(record) => page.records.push(record),
            Err(reason) => page.skipped.push(UndecodableItem {
                table: table.name.clone(),
                key,
                reason,
            }),
        }
    }
    page
}

#[async_trait::async_trait]
impl StoredRecords for DynamoStoredRecords {
    async fn alerts_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<AlertRecord>, StoreError> {
        let (items, next) = self
            .scan(&self.alerts_table, "backfill alerts", after, limit)
            .await?;
        Ok(decoded_page(
            &self.alerts_table,
            items,
            next,
            &["alert_id"],
            |item| {
                let v = serde_dynamo::from_item::<_, serde_json::Value>(item)
                    .map_err(|e| e.to_string())?;
                self.alerts
                    .from_item("backfill alerts", v)
                    .map_err(|e| e.to_string())
            },
        ))
    }

    async fn orders_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<OutboxOrder>, StoreError> {
        let (items, next) = self
            .scan(&self.orders_table, "backfill orders", after, limit)
            .await?;
        // The organisation directory items (`#organisations`) are not orders.
        let orders = items.into_iter().filter(|item| {
            !matches!(item.get("organisation_id"), Some(AttributeValue::S(o)) if o.starts_with('#'))
        });
        Ok(decoded_page(
            &self.orders_table,
            orders,
            next,
            &["organisation_id", "reference_id"],
            |item| {
                self.orders
                    .parse("backfill orders", item)
                    .map_err(|e| e.to_string())
            },
        ))
    }
}
