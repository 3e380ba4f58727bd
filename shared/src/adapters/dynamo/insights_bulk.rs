//! Bulk counting for the `insights` table (`InsightsStore::count_bulk`): an import of thousands
//! of orders, an upload run's outcomes. The per-subject path writes every subject's marker in
//! a transaction (one transactional write per order); here a batch costs one small transaction
//! and batched plain writes:
//!
//! 1. the markers of the batch's subjects are read (BatchGetItem), facts already counted are
//!    left out;
//! 2. one TransactWriteItems: the batch's journal (pk `bulk-open`, sk the batch id, conditional
//!    on being new) and one `ADD` per day item the new facts touch (merged per scope and day);
//! 3. each subject's bulk marker (pk `counted#<subject>`, sk `bulk#<kind>`: the facts counted in
//!    bulk of that kind, its earlier ones included) in BatchWriteItem calls of 25;
//! 4. the journal is deleted.
//!
//! The counters and the journal land together or not at all. A crash after (2) leaves the
//! journal open: the next bulk count or backfill finishes it (3, 4) before reading markers, so
//! nothing is counted twice; writing a journal's markers again writes the same items. A
//! journal younger than `RESUME_AFTER_SECS` is left to the run that opened it, and its facts
//! are taken as counted by a bulk count meanwhile.

use super::super::transactions::batch_write;
use super::{day_adds, key, marker_pk, DynamoInsightsStore, ATTEMPTS};
use crate::clock::{Clock, SystemClock};
use crate::ports::insights_store::{is_gauge_counter, Counted, Fact, Subject, BULK_KINDS};
use crate::ports::order_outbox::iso;
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// The partition of open bulk journals (a closed one is deleted).
const OPEN_BATCHES: &str = "bulk-open";
/// A journal younger than this is left to the run that opened it.
const RESUME_AFTER_SECS: i64 = 60;
/// Open journals finished per call.
const RESUME_LIMIT: i32 = 100;
/// Subjects per batch (a journal of orders stays near 100 KB, below DynamoDB's 400 KB).
const BULK_SUBJECTS: usize = 1000;
/// Facts per batch: with the subjects' keys, a journal stays near 150 KB at most.
const BULK_FACTS: usize = 3000;
/// Day and month items per batch: the transaction's 100 actions, less the journal.
const BULK_DAY_ITEMS: usize = 98;

/// The marker item of a subject's facts counted in bulk of one kind.
pub(super) fn bulk_marker_sk(kind: &str) -> String {
    format!("bulk#{kind}")
}

/// A bulk batch's journal: the bulk marker each subject has once the batch is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BulkJournal {
    kind: String,
    /// Subject → every fact of its bulk marker of `kind` (known before plus counted now).
    markers: BTreeMap<String, BTreeSet<String>>,
    /// ISO 8601 UTC.
    opened_at: String,
}

/// Subjects with new facts, grouped into batches under the journal's and the transaction's
/// limits (pure).
fn batches<'a>(pending: Vec<(&'a str, Vec<&'a Fact>)>) -> Vec<Vec<(&'a str, Vec<&'a Fact>)>> {
    let mut groups: Vec<Vec<(&str, Vec<&Fact>)>> = Vec::new();
    let mut days: BTreeSet<(&str, &str)> = BTreeSet::new();
    // (organisation, month) of the facts with gauge counters: a month item each.
    let mut months: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut facts = 0;
    for entry in pending {
        let mine: BTreeSet<(&str, &str)> = entry
            .1
            .iter()
            .map(|f| (f.organisation_id.as_str(), f.day.as_str()))
            .collect();
        let my_months: BTreeSet<(&str, &str)> = entry
            .1
            .iter()
            .filter(|f| f.add.keys().any(|c| is_gauge_counter(c)))
            .map(|f| (f.organisation_id.as_str(), f.day.get(..7).unwrap_or(&f.day)))
            .collect();
        // Each (organisation, day) is two day items: the organisation's and ALL's.
        let all_days: BTreeSet<&str> = days.iter().chain(&mine).map(|(_, d)| *d).collect();
        let orgs_days = days.union(&mine).count();
        let month_items = months.union(&my_months).count();
        let full = groups.last().is_none_or(|g| {
            g.len() >= BULK_SUBJECTS
                || facts + entry.1.len() > BULK_FACTS
                || orgs_days + all_days.len() + month_items > BULK_DAY_ITEMS
        });
        if full {
            groups.push(Vec::new());
            days.clear();
            months.clear();
            facts = 0;
        }
        facts += entry.1.len();
        days.extend(mine);
        months.extend(my_months);
        groups.last_mut().expect("just pushed").push(entry);
    }
    groups
}

impl DynamoInsightsStore {
    pub(super) async fn count_in_bulk(
        &self,
        kind: &str,
        subjects: &[Subject],
    ) -> Result<Counted, StoreError> {
        if !BULK_KINDS.contains(&kind) {
            return Err(self.table.bad_item(
                "count insights in bulk",
                format!("unknown bulk kind {kind:?}"),
            ));
        }
        // An open journal's markers are not written yet: finish the stale ones before reading
        // markers, and take a young one's (its run is writing them) as counted.
        let (_, in_flight) = self.finish_open().await?;
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
        if merged.is_empty() {
            return Ok(Counted::default());
        }
        let keys: Vec<&str> = merged.keys().copied().collect();
        let items = self.marker_items(&keys).await?;
        let sk = bulk_marker_sk(kind);
        let mut counted = Counted::default();
        let mut pending: Vec<(&str, Vec<&Fact>)> = Vec::new();
        for (subject, facts) in &merged {
            let known: BTreeSet<&String> = items
                .iter()
                .filter(|((s, _), _)| s == subject)
                .flat_map(|(_, f)| f)
                .chain(in_flight.get(*subject).into_iter().flatten())
                .collect();
            let mut new = Vec::new();
            for (name, fact) in facts {
                if known.iter().any(|k| k.as_str() == *name) {
                    counted.already_counted += 1;
                } else {
                    new.push(*fact);
                }
            }
            if !new.is_empty() {
                pending.push((subject, new));
            }
        }
        for group in batches(pending) {
            let journal = BulkJournal {
                kind: kind.to_string(),
                markers: group
                    .iter()
                    .map(|(subject, new)| {
                        let mut facts = items
                            .get(&(subject.to_string(), sk.clone()))
                            .cloned()
                            .unwrap_or_default();
                        facts.extend(new.iter().map(|f| f.name.clone()));
                        (subject.to_string(), facts)
                    })
                    .collect(),
                opened_at: iso(SystemClock.now()),
            };
            let batch = uuid::Uuid::new_v4().simple().to_string();
            let facts: Vec<&Fact> = group.iter().flat_map(|(_, f)| f.iter().copied()).collect();
            self.open_batch(&batch, &journal, &facts).await?;
            counted.new_facts += facts.len();
            if let Err(e) = self.close_batch(&batch, &journal).await {
                // Counted (the counters and the journal landed); the markers are written by the
                // next bulk count or backfill, which finish open journals first.
                tracing::warn!(batch, error = %e, "insights bulk markers not written yet; the journal stays open");
            }
        }
        Ok(counted)
    }

    /// One transaction: the new journal and the day counters of `facts`. Retried on a conflict;
    /// an answer lost after the write is recognised by the journal being there.
    async fn open_batch(
        &self,
        batch: &str,
        journal: &BulkJournal,
        facts: &[&Fact],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(journal)
            .map_err(|e| self.table.bad_item("count insights in bulk", e))?;
        let mut item = key(OPEN_BATCHES, batch);
        item.insert("journal".into(), AttributeValue::S(json));
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| self.table.bad_item("count insights in bulk", e))?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        actions.extend(self.day_actions(&day_adds(facts.iter().copied())));
        let mut last_error = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let jitter = rand::random::<u64>() % 50;
                tokio::time::sleep(Duration::from_millis((25 << attempt.min(6)) + jitter)).await;
            }
            self.table.counters.write();
            let sent = self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            let Err(e) = sent else {
                return Ok(());
            };
            if self.journal_exists(batch).await? {
                return Ok(());
            }
            let code = e.code().unwrap_or_default().to_string();
            let mapped = self.table.error("count insights in bulk", e);
            if code == "TransactionCanceledException" || mapped.is_retryable() {
                last_error = Some(mapped);
            } else {
                return Err(mapped);
            }
        }
        Err(last_error.unwrap_or(StoreError::Conflict {
            operation: "count insights in bulk",
            table: self.table.name.clone(),
            key: batch.to_string(),
        }))
    }

    async fn journal_exists(&self, batch: &str) -> Result<bool, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key(OPEN_BATCHES, batch)))
            .consistent_read(true)
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| self.table.error("read insights bulk journal", e))?;
        Ok(out.item.is_some())
    }

    /// Writes each subject's bulk marker, then deletes the journal.
    async fn close_batch(&self, batch: &str, journal: &BulkJournal) -> Result<(), StoreError> {
        let sk = bulk_marker_sk(&journal.kind);
        let mut requests = Vec::with_capacity(journal.markers.len());
        for (subject, facts) in &journal.markers {
            let mut item = key(marker_pk(subject), sk.clone());
            item.insert(
                "facts".into(),
                AttributeValue::Ss(facts.iter().cloned().collect()),
            );
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| self.table.bad_item("write insights bulk markers", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        batch_write(&self.table, requests, "write insights bulk markers").await?;
        let delete = DeleteRequest::builder()
            .set_key(Some(key(OPEN_BATCHES, batch)))
            .build()
            .map_err(|e| self.table.bad_item("close insights bulk journal", e))?;
        batch_write(
            &self.table,
            vec![WriteRequest::builder().delete_request(delete).build()],
            "close insights bulk journal",
        )
        .await
    }

    /// Finishes the journals left open longer than `RESUME_AFTER_SECS` (one Query); returns
    /// how many, and the facts of the younger ones (subject → facts), still being written.
    pub(super) async fn finish_open(
        &self,
    ) -> Result<(usize, HashMap<String, BTreeSet<String>>), StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(OPEN_BATCHES.into()))
            .consistent_read(true)
            .limit(RESUME_LIMIT)
            .send()
            .await
            .map_err(|e| self.table.error("read open insights bulk journals", e))?;
        let stale_before = SystemClock.now() - chrono::Duration::seconds(RESUME_AFTER_SECS);
        let mut finished = 0;
        let mut in_flight: HashMap<String, BTreeSet<String>> = HashMap::new();
        for item in out.items.unwrap_or_default() {
            let journal = parse_journal(&item)
                .map_err(|e| self.table.bad_item("read open insights bulk journals", e))?;
            let (Some(AttributeValue::S(batch)), Some(opened)) = (
                item.get("sk"),
                chrono::DateTime::parse_from_rfc3339(&journal.opened_at).ok(),
            ) else {
                continue;
            };
            if opened > stale_before {
                for (subject, facts) in journal.markers {
                    in_flight.entry(subject).or_default().extend(facts);
                }
                continue;
            }
            tracing::info!(
                batch,
                subjects = journal.markers.len(),
                "finishing an open insights bulk journal"
            );
            self.close_batch(batch, &journal).await?;
            finished += 1;
        }
        Ok((finished, in_flight))
    }
}

fn parse_journal(item: &HashMap<String, AttributeValue>) -> Result<BulkJournal, String> {
    match item.get("journal") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json).map_err(|e| e.to_string()),
        _ => Err("journal without its body".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes of the batches for one order per day given, each with one `taken_in` fact.
    fn batch_sizes_one_fact_each(days: impl Iterator<Item = String>) -> Vec<usize> {
        let facts: Vec<Fact> = days
            .map(|day| Fact::new("taken_in", "org_1", &day))
            .collect();
        let keys: Vec<String> = (0..facts.len())
            .map(|i| format!("order#org_1#{i}"))
            .collect();
        let pending = keys
            .iter()
            .zip(&facts)
            .map(|(k, f)| (k.as_str(), vec![f]))
            .collect();
        batches(pending).iter().map(|g| g.len()).collect()
    }

    #[test]
    fn batches_stay_under_the_transaction_and_journal_limits() {
        let days = (0..1200).map(|i| format!("2026-01-{:02}", 1 + i % 3));
        assert_eq!(batch_sizes_one_fact_each(days), vec![1000, 200]);

        // 60 days: two day items each, so a batch holds 49 days at most.
        let days = (0..60).map(|i| format!("2026-{:02}-01", i));
        assert_eq!(batch_sizes_one_fact_each(days), vec![49, 11]);

        // Four facts each: the journal's facts bound the batch first.
        let fact = Fact::new("taken_in", "org_1", "2026-01-01");
        let keys: Vec<String> = (0..1000).map(|i| format!("order#org_1#{i}")).collect();
        let pending = keys
            .iter()
            .map(|k| (k.as_str(), vec![&fact, &fact, &fact, &fact]))
            .collect();
        let groups = batches(pending);
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            vec![750, 250]
        );

        // Settled transactions of 60 months: a month item each besides the two day items.
        let facts: Vec<Fact> = (0..60)
            .map(|i| {
                Fact::new("taken_in", "org_1", &format!("2026-{i:02}-01")).inc("settled:VISA", 1)
            })
            .collect();
        let keys: Vec<String> = (0..60).map(|i| format!("order#org_1#{i}")).collect();
        let pending = keys
            .iter()
            .zip(&facts)
            .map(|(k, f)| (k.as_str(), vec![f]))
            .collect();
        let sizes: Vec<usize> = batches(pending).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![32, 28]);
    }
}
