//! The `insights` table (pk `pk`, sk `sk`):
//! - day items: pk `day#<organisation id | ALL>#<shard>`, sk `YYYY-MM-DD`; one number attribute
//!   per counter (`n_<counter>`) and the string set `missed_alert_ids`. Each transaction adds to
//!   one of [`DAY_SHARDS`] items per scope and day, chosen at random, and a read sums the shards
//!   (and the unsharded `day#<scope>` items of earlier versions): every counting transaction of
//!   every organisation touches the `ALL` day item, and one item takes at most 1,000 WCU/s and
//!   makes concurrent transactions conflict (`docs/capacity.md`);
//! - markers: pk `counted#<subject>` (`alert#<id>`, `order#<org>#<ref>`), sk `-`; the string
//!   set `facts` names the facts of the subject already counted; an order's facts counted in
//!   bulk are in sk `bulk#intake` / `bulk#upload` (`insights_bulk.rs`);
//! - open bulk journals: pk `bulk-open`, sk the batch id (`insights_bulk.rs`);
//! - backfill progress: pk `backfill`, sk the source table.
//!
//! `count` reads the markers (BatchGetItem, consistent), then writes each group of subjects in
//! one TransactWriteItems: every marker `ADD facts :new` conditional on none of the new facts
//! being there yet, and each day item touched `ADD n_<counter> :inc` (merged per day and
//! scope). A lost race (another writer counted a fact meanwhile, or a transaction conflict on a
//! busy day item) cancels the whole transaction, nothing is added, and the group is read and
//! tried again.

use super::table::{Item, Table};
use crate::ports::insights_store::{
    BackfillProgress, Counted, DayCounters, Fact, InsightsStore, Subject, ALL_ORGANISATIONS,
    BULK_KINDS,
};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

#[path = "insights_bulk.rs"]
mod bulk;
#[path = "insights_months.rs"]
mod months;
#[path = "insights_records.rs"]
mod records;
pub use months::MONTH_SHARDS;
pub use records::DynamoStoredRecords;

/// TransactWriteItems takes at most 100 actions; stay below.
const MAX_ACTIONS: usize = 90;
const ATTEMPTS: u32 = 8;
const COUNTER_PREFIX: &str = "n_";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn marker_pk(subject: &str) -> String {
    format!("counted#{subject}")
}

/// How many items one scope's day is spread over: at 1000x of the design load's peak the
/// hottest `ALL` shard takes about 900 of its 1,000 WCU/s (`cbs-bench capacity`). A 90-day read
/// is 17 queries of at most 90 items each. Only ever raise it: a read sums shards
/// `0..DAY_SHARDS`, so lowering it would hide what the dropped shards counted.
pub const DAY_SHARDS: u32 = 16;

/// The unsharded day item's pk (written before sharding; still read).
fn day_pk(scope: &str) -> String {
    format!("day#{scope}")
}

fn day_shard_pk(scope: &str, shard: u32) -> String {
    format!("day#{scope}#{shard}")
}

/// Every pk one scope's days may be under: the shards and the unsharded one.
fn day_pks(scope: &str) -> Vec<String> {
    (0..DAY_SHARDS)
        .map(|n| day_shard_pk(scope, n))
        .chain(std::iter::once(day_pk(scope)))
        .collect()
}

/// The day items of several shards as one list, a day each, counters summed.
fn sum_shards(items: impl IntoIterator<Item = DayCounters>) -> Vec<DayCounters> {
    let mut days: BTreeMap<String, DayCounters> = BTreeMap::new();
    for item in items {
        let day = days.entry(item.day.clone()).or_insert_with(|| DayCounters {
            day: item.day.clone(),
            ..DayCounters::default()
        });
        for (name, n) in item.counters {
            *day.counters.entry(name).or_default() += n;
        }
        day.missed_alert_ids.extend(item.missed_alert_ids);
    }
    days.into_values().collect()
}

#[derive(Debug, Clone)]
pub struct DynamoInsightsStore {
    table: Table,
}

#[derive(Default)]
struct DayAdd {
    add: BTreeMap<String, i64>,
    ids: BTreeSet<String>,
}

/// The increments of `facts` per (scope, day): each fact's organisation and [`ALL_ORGANISATIONS`].
fn day_adds<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> BTreeMap<(String, String), DayAdd> {
    let mut days: BTreeMap<(String, String), DayAdd> = BTreeMap::new();
    for fact in facts {
        for scope in [fact.organisation_id.as_str(), ALL_ORGANISATIONS] {
            let d = days
                .entry((scope.to_string(), fact.day.clone()))
                .or_default();
            for (k, v) in &fact.add {
                *d.add.entry(k.clone()).or_default() += v;
            }
            d.ids.extend(fact.missed_alert_ids.iter().cloned());
        }
    }
    days
}

impl DynamoInsightsStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The facts already counted for each subject (consistent reads): its marker item and, for
    /// an order, its bulk marker items, merged.
    async fn markers(
        &self,
        subjects: &[&str],
    ) -> Result<HashMap<String, BTreeSet<String>>, StoreError> {
        let items = self.marker_items(subjects).await?;
        let mut merged: HashMap<String, BTreeSet<String>> = HashMap::new();
        for ((subject, _), facts) in items {
            merged.entry(subject).or_default().extend(facts);
        }
        Ok(merged)
    }

    /// Every marker item of `subjects`, by (subject, sort key).
    async fn marker_items(
        &self,
        subjects: &[&str],
    ) -> Result<HashMap<(String, String), BTreeSet<String>>, StoreError> {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for subject in subjects {
            wanted.push((marker_pk(subject), "-".to_string()));
            if subject.starts_with("order#") {
                for kind in BULK_KINDS {
                    wanted.push((marker_pk(subject), bulk::bulk_marker_sk(kind)));
                }
            }
        }
        let mut found = HashMap::new();
        for item in self
            .batch_get("read insights markers", &wanted, true)
            .await?
        {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                (item.get("pk"), item.get("sk"))
            else {
                continue;
            };
            let subject = pk.trim_start_matches("counted#").to_string();
            let facts = match item.get("facts") {
                Some(AttributeValue::Ss(f)) => f.iter().cloned().collect(),
                _ => BTreeSet::new(),
            };
            found.insert((subject, sk.clone()), facts);
        }
        Ok(found)
    }

    /// The items of `keys` (pk, sk) that exist: BatchGetItem, 100 keys a call, unprocessed
    /// keys asked again.
    async fn batch_get(
        &self,
        operation: &'static str,
        keys: &[(String, String)],
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let keys: Vec<_> = chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| self.table.bad_item(operation, e))?,
            );
            let mut round = 0;
            while let Some(req) = request.take() {
                self.table.counters.read();
                let out = self
                    .table
                    .client
                    .batch_get_item()
                    .request_items(&self.table.name, req)
                    .send()
                    .await
                    .map_err(|e| self.table.error(operation, e))?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table.name)
                        .unwrap_or_default(),
                );
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table.name))
                    .filter(|k| !k.keys.is_empty());
                if request.is_some() {
                    round += 1;
                    tokio::time::sleep(Duration::from_millis(20 * round)).await;
                }
            }
        }
        Ok(found)
    }

    fn marker_action(&self, subject: &str, new: &[&Fact]) -> Result<TransactWriteItem, StoreError> {
        let mut condition = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(marker_pk(subject), "-")))
            .update_expression("ADD #f :new")
            .expression_attribute_names("#f", "facts")
            .expression_attribute_values(
                ":new",
                AttributeValue::Ss(new.iter().map(|f| f.name.clone()).collect()),
            );
        for (i, fact) in new.iter().enumerate() {
            condition.push(format!("NOT contains(#f, :c{i})"));
            update = update.expression_attribute_values(format!(":c{i}"), s(fact.name.clone()));
        }
        let update = update
            .condition_expression(format!(
                "attribute_not_exists(#f) OR ({})",
                condition.join(" AND ")
            ))
            .build()
            .map_err(|e| self.table.bad_item("count insights", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn day_action(
        &self,
        scope: &str,
        day: &str,
        add: &DayAdd,
        shard: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut parts = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(day_shard_pk(scope, shard), day)));
        for (i, (counter, by)) in add.add.iter().enumerate() {
            parts.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), format!("{COUNTER_PREFIX}{counter}"))
                .expression_attribute_values(format!(":a{i}"), AttributeValue::N(by.to_string()));
        }
        if !add.ids.is_empty() {
            parts.push("#m :m".into());
            update = update
                .expression_attribute_names("#m", "missed_alert_ids")
                .expression_attribute_values(
                    ":m",
                    AttributeValue::Ss(add.ids.iter().cloned().collect()),
                );
        }
        let update = update
            .update_expression(format!("ADD {}", parts.join(", ")))
            .build()
            .map_err(|e| self.table.bad_item("count insights", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The updates of the day items `days` (those with something to add), each in one shard
    /// chosen at random for this transaction, and of the month items their gauge counters
    /// add to (`insights_months.rs`).
    fn day_actions(&self, days: &BTreeMap<(String, String), DayAdd>) -> Vec<TransactWriteItem> {
        let shard = rand::random_range(0..DAY_SHARDS);
        let mut actions: Vec<TransactWriteItem> = days
            .iter()
            .filter(|(_, add)| !add.add.is_empty() || !add.ids.is_empty())
            // Built from our own values: cannot fail to build.
            .filter_map(|((scope, day), add)| self.day_action(scope, day, add, shard).ok())
            .collect();
        actions.extend(self.month_actions(&months::month_adds(days), shard));
        actions
    }

    /// One transaction: the markers of `group` and the day items their new facts touch.
    async fn write_group(
        &self,
        group: &[(&str, Vec<&Fact>)],
    ) -> Result<
        (),
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        >,
    > {
        let mut actions = Vec::new();
        for (subject, facts) in group {
            // Built from our own values: cannot fail to build.
            if let Ok(a) = self.marker_action(subject, facts) {
                actions.push(a);
            }
        }
        actions.extend(self.day_actions(&day_adds(
            group.iter().flat_map(|(_, facts)| facts.iter().copied()),
        )));
        self.table.counters.write();
        self.table
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map(|_| ())
    }

    /// The day items under one pk from `from` to `to`.
    async fn days_under(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let items = self
            .table
            .query_all("read insights days", |q| {
                q.key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to))
            })
            .await?;
        Ok(items
            .into_iter()
            .map(|item| {
                let mut day = DayCounters::default();
                for (name, value) in item {
                    match (name.as_str(), value) {
                        ("sk", AttributeValue::S(d)) => day.day = d,
                        ("missed_alert_ids", AttributeValue::Ss(ids)) => {
                            day.missed_alert_ids = ids.into_iter().collect()
                        }
                        (n, AttributeValue::N(v)) if n.starts_with(COUNTER_PREFIX) => {
                            day.counters.insert(
                                n[COUNTER_PREFIX.len()..].to_string(),
                                v.parse().unwrap_or(0),
                            );
                        }
                        _ => {}
                    }
                }
                day
            })
            .collect())
    }

    /// The actions that count `subject`'s facts not counted yet (one consistent read of its
    /// markers), for a caller that puts them into its own transaction (the event's last
    /// commit); empty when there is nothing new. Refused as a whole with the caller's items when
    /// another writer counted a fact or a day item is busy meanwhile: the caller then writes
    /// without them and counts on its own (`count`).
    pub(crate) async fn actions_for(
        &self,
        subject: &Subject,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let known = self
            .markers(&[subject.key.as_str()])
            .await?
            .remove(&subject.key)
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        let new: Vec<&Fact> = subject
            .facts
            .iter()
            .filter(|f| !known.contains(&f.name) && seen.insert(f.name.as_str()))
            .collect();
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut actions = vec![self.marker_action(&subject.key, &new)?];
        actions.extend(self.day_actions(&day_adds(new.iter().copied())));
        Ok(actions)
    }

    /// Actions a subject's new facts need: its marker, up to two day items per fact and a
    /// month item per organisation and month with gauge counters.
    fn actions_of(facts: &[&Fact]) -> usize {
        let days: BTreeSet<(&str, &str)> = facts
            .iter()
            .map(|f| (f.organisation_id.as_str(), f.day.as_str()))
            .collect();
        1 + days.len() * 2 + months::months_touched(facts.iter().copied())
    }
}

#[async_trait::async_trait]
impl InsightsStore for DynamoInsightsStore {
    async fn count(&self, subjects: &[Subject]) -> Result<Counted, StoreError> {
        // One entry per subject, facts merged (a transaction may not touch an item twice).
        let mut merged: BTreeMap<&str, BTreeMap<&str, &Fact>> = BTreeMap::new();
        for subject in subjects {
            for fact in &subject.facts {
                merged
                    .entry(subject.key.as_str())
                    .or_default()
                    .entry(fact.name.as_str())
                    .or_insert(fact);
            }
        }
        let mut counted = Counted::default();
        let mut todo: Vec<&str> = merged.keys().copied().collect();
        for attempt in 0..ATTEMPTS {
            if todo.is_empty() {
                return Ok(counted);
            }
            let markers = self.markers(&todo).await?;
            let mut pending: Vec<(&str, Vec<&Fact>)> = Vec::new();
            for subject in &todo {
                let known = markers.get(*subject);
                let mut new = Vec::new();
                for (name, fact) in &merged[subject] {
                    if known.is_some_and(|k| k.contains(*name)) {
                        counted.already_counted += 1;
                    } else {
                        new.push(*fact);
                    }
                }
                if !new.is_empty() {
                    pending.push((subject, new));
                }
            }
            // Greedy groups under the action limit.
            let mut groups: Vec<Vec<(&str, Vec<&Fact>)>> = Vec::new();
            let mut size = 0;
            for entry in pending {
                let n = Self::actions_of(&entry.1);
                if groups.is_empty() || size + n > MAX_ACTIONS {
                    groups.push(Vec::new());
                    size = 0;
                }
                size += n;
                groups.last_mut().expect("just pushed").push(entry);
            }
            let mut retry: Vec<&str> = Vec::new();
            let mut last_error = None;
            for group in groups {
                match self.write_group(&group).await {
                    Ok(()) => {
                        counted.new_facts += group.iter().map(|(_, f)| f.len()).sum::<usize>()
                    }
                    Err(e) => {
                        let code = e.code().unwrap_or_default().to_string();
                        let mapped = self.table.error("count insights", e);
                        if code == "TransactionCanceledException" || mapped.is_retryable() {
                            // Someone counted one of these meanwhile, or a busy day item: read
                            // again and retry (facts found counted are then skipped).
                            retry.extend(group.iter().map(|(k, _)| *k));
                            last_error = Some(mapped);
                        } else {
                            return Err(mapped);
                        }
                    }
                }
            }
            if retry.is_empty() {
                return Ok(counted);
            }
            // Subjects retried are read again: their facts count as "already" or "new" then.
            counted.already_counted -= retry
                .iter()
                .map(|k| {
                    let known = markers.get(*k);
                    merged[k]
                        .keys()
                        .filter(|n| known.is_some_and(|m| m.contains(**n)))
                        .count()
                })
                .sum::<usize>();
            todo = retry;
            let jitter = rand::random::<u64>() % 50;
            tokio::time::sleep(Duration::from_millis((25 << attempt.min(6)) + jitter)).await;
            if attempt + 1 == ATTEMPTS {
                return Err(last_error.unwrap_or(StoreError::Conflict {
                    operation: "count insights",
                    table: self.table.name.clone(),
                    key: todo.join(","),
                }));
            }
        }
        Ok(counted)
    }

    async fn count_bulk(&self, kind: &str, subjects: &[Subject]) -> Result<Counted, StoreError> {
        self.count_in_bulk(kind, subjects).await
    }

    async fn finish_open_batches(&self) -> Result<usize, StoreError> {
        Ok(self.finish_open().await?.0)
    }

    async fn days(
        &self,
        scope: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let pks = day_pks(scope);
        let shards =
            futures::future::try_join_all(pks.iter().map(|pk| self.days_under(pk, from, to)))
                .await?;
        Ok(sum_shards(shards.into_iter().flatten()))
    }

    async fn months(
        &self,
        organisation_ids: &[String],
        months: &[String],
    ) -> Result<BTreeMap<(String, String), BTreeMap<String, i64>>, StoreError> {
        self.read_months(organisation_ids, months).await
    }

    async fn month_items_since(&self) -> Result<Option<String>, StoreError> {
        self.read_month_items_since().await
    }

    async fn mark_month_items_since(&self, day: &str) -> Result<String, StoreError> {
        self.write_month_items_since(day).await
    }

    async fn backfill_progress(&self, name: &str) -> Result<Option<BackfillProgress>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key("backfill", name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error("read backfill progress", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        match item.get("progress") {
            Some(AttributeValue::S(json)) => serde_json::from_str(json)
                .map(Some)
                .map_err(|e| self.table.bad_item("read backfill progress", e)),
            _ => Ok(None),
        }
    }

    async fn save_backfill_progress(
        &self,
        name: &str,
        progress: &BackfillProgress,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(progress)
            .map_err(|e| self.table.bad_item("save backfill progress", e))?;
        let mut item = key("backfill", name);
        item.insert("progress".into(), s(json));
        self.table.counters.write();
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.table.error("save backfill progress", e))?;
        Ok(())
    }
}
