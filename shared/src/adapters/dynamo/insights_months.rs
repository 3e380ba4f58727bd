//! Month items of the `insights` table: the card-scheme gauges' counters (`scheme_*`,
//! `settled:*`, [`is_gauge_counter`]) of one organisation in one month, so the all-customers
//! view reads a few small items per customer (BatchGetItem) instead of two months of day items
//! (17 queries) per customer.
//!
//! - pk `month#<organisation id>#<shard>` (one of [`MONTH_SHARDS`], the transaction's day shard
//!   modulo 4), sk `YYYY-MM`, one number attribute `n_<counter>` per gauge counter: added in
//!   the same transaction as the day items, so they agree (`day_actions`);
//! - pk `month-items`, sk `since`, attribute `day`: the first day every count also went into
//!   month items (recorded once by the first view that needs it); a month that began before it
//!   is read from the day items.

use super::{key, s, DayAdd, DynamoInsightsStore, COUNTER_PREFIX};
use crate::ports::insights_store::{is_gauge_counter, Fact, ALL_ORGANISATIONS};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use std::collections::{BTreeMap, BTreeSet};

/// An organisation's month item is spread over this many items: the largest organisation's
/// writes (5 % of all at 1000x the design load) stay far from one item's 1,000 WCU/s, and a
/// read is 4 keys per organisation and month.
pub const MONTH_SHARDS: u32 = 4;

const SINCE_PK: &str = "month-items";
const SINCE_SK: &str = "since";

fn month_pk(organisation_id: &str, shard: u32) -> String {
    format!("month#{organisation_id}#{shard}")
}

fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

/// The gauge counters of `days` (as `day_adds` merges them) per (organisation, month).
pub(super) fn month_adds(
    days: &BTreeMap<(String, String), DayAdd>,
) -> BTreeMap<(String, String), BTreeMap<String, i64>> {
    let mut months: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    for ((scope, day), add) in days {
        if scope == ALL_ORGANISATIONS {
            continue;
        }
        for (counter, n) in add.add.iter().filter(|(c, _)| is_gauge_counter(c)) {
            *months
                .entry((scope.clone(), month_of(day).to_string()))
                .or_default()
                .entry(counter.clone())
                .or_default() += n;
        }
    }
    months
}

/// How many month items `facts` touch (for the transaction's action count).
pub(super) fn months_touched<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> usize {
    facts
        .into_iter()
        .filter(|f| f.add.keys().any(|c| is_gauge_counter(c)))
        .map(|f| (f.organisation_id.as_str(), month_of(&f.day)))
        .collect::<BTreeSet<_>>()
        .len()
}

impl DynamoInsightsStore {
    /// One `ADD` per month item of `months`, in shard `day_shard % MONTH_SHARDS`.
    pub(super) fn month_actions(
        &self,
        months: &BTreeMap<(String, String), BTreeMap<String, i64>>,
        day_shard: u32,
    ) -> Vec<TransactWriteItem> {
        let shard = day_shard % MONTH_SHARDS;
        months
            .iter()
            .filter_map(|((org, month), add)| {
                let mut update = Update::builder()
                    .table_name(&self.table.name)
                    .set_key(Some(key(month_pk(org, shard), month)));
                let mut parts = Vec::new();
                for (i, (counter, by)) in add.iter().enumerate() {
                    parts.push(format!("#a{i} :a{i}"));
                    update = update
                        .expression_attribute_names(
                            format!("#a{i}"),
                            format!("{COUNTER_PREFIX}{counter}"),
                        )
                        .expression_attribute_values(
                            format!(":a{i}"),
                            AttributeValue::N(by.to_string()),
                        );
                }
                // Built from our own values: cannot fail to build.
                let update = update
                    .update_expression(format!("ADD {}", parts.join(", ")))
                    .build()
                    .ok()?;
                Some(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// The month items of every organisation and month asked, their shards summed (one
    /// BatchGetItem per 25 organisation-months).
    pub(super) async fn read_months(
        &self,
        organisation_ids: &[String],
        months: &[String],
    ) -> Result<BTreeMap<(String, String), BTreeMap<String, i64>>, StoreError> {
        let mut keys = Vec::new();
        for org in organisation_ids {
            for month in months {
                for shard in 0..MONTH_SHARDS {
                    keys.push((month_pk(org, shard), month.clone()));
                }
            }
        }
        let mut found: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
        for item in self.batch_get("read insights months", &keys, false).await? {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(month))) =
                (item.get("pk"), item.get("sk"))
            else {
                continue;
            };
            let Some(org) = pk
                .strip_prefix("month#")
                .and_then(|rest| rest.rsplit_once('#'))
                .map(|(org, _)| org.to_string())
            else {
                continue;
            };
            let counters = found.entry((org, month.clone())).or_default();
            for (name, value) in &item {
                if let (Some(counter), AttributeValue::N(n)) =
                    (name.strip_prefix(COUNTER_PREFIX), value)
                {
                    *counters.entry(counter.to_string()).or_default() += n.parse().unwrap_or(0);
                }
            }
        }
        Ok(found)
    }

    pub(super) async fn read_month_items_since(&self) -> Result<Option<String>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key(SINCE_PK, SINCE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error("read month items since", e))?;
        Ok(match out.item.as_ref().and_then(|i| i.get("day")) {
            Some(AttributeValue::S(day)) => Some(day.clone()),
            _ => None,
        })
    }

    /// Writes `day` unless a day is recorded (conditional put); answers the recorded one.
    pub(super) async fn write_month_items_since(&self, day: &str) -> Result<String, StoreError> {
        let mut item = key(SINCE_PK, SINCE_SK);
        item.insert("day".into(), s(day));
        self.table.counters.write();
        let put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(day.to_string()),
            Err(e) if super::super::table::is_condition_failed(&e) => self
                .read_month_items_since()
                .await?
                .ok_or_else(|| StoreError::Conflict {
                    operation: "record month items since",
                    table: self.table.name.clone(),
                    key: format!("{SINCE_PK}/{SINCE_SK}"),
                }),
            Err(e) => Err(self.table.error("record month items since", e)),
        }
    }
}
