//! In-memory insights store and stored-record pages for unit tests. Like DynamoDB it counts a
//! subject's new facts and its marker in one step; it can also refuse a count without writing
//! (`refuse_next`) and lose the answer of a count that did land (`lose_next_answers`), as the
//! real service can.

use crate::ports::insights_store::{
    is_gauge_counter, BackfillProgress, Counted, DayCounters, InsightsStore, RecordPage,
    StoredRecords, Subject, ALL_ORGANISATIONS,
};
use crate::ports::order_outbox::OutboxOrder;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    markers: HashMap<String, BTreeSet<String>>,
    days: BTreeMap<(String, String), DayCounters>,
    /// (organisation, `YYYY-MM`) → gauge counters.
    months: BTreeMap<(String, String), BTreeMap<String, i64>>,
    month_items_since: Option<String>,
    /// Calls of `days` and `months` (what a view costs).
    day_reads: u32,
    month_reads: u32,
    progress: HashMap<String, BackfillProgress>,
    refuse: u32,
    lose_answers: u32,
    count_calls: u32,
    bulk_calls: u32,
}

#[derive(Default)]
pub struct MemoryInsightsStore {
    state: Mutex<State>,
}

fn transient(detail: &str) -> StoreError {
    StoreError::Transient {
        operation: "count insights",
        table: "memory-insights".into(),
        detail: detail.into(),
    }
}

impl MemoryInsightsStore {
    /// The next `n` counts fail without writing anything.
    pub fn refuse_next(&self, n: u32) {
        self.state.lock().unwrap().refuse = n;
    }

    /// The next `n` counts write, then answer with an error (a lost answer).
    pub fn lose_next_answers(&self, n: u32) {
        self.state.lock().unwrap().lose_answers = n;
    }

    pub fn count_calls(&self) -> u32 {
        self.state.lock().unwrap().count_calls
    }

    /// Calls of `count_bulk`.
    pub fn bulk_calls(&self) -> u32 {
        self.state.lock().unwrap().bulk_calls
    }

    /// One counter of a scope summed over every day.
    pub fn total(&self, scope: &str, counter: &str) -> i64 {
        let s = self.state.lock().unwrap();
        s.days
            .iter()
            .filter(|((sc, _), _)| sc == scope)
            .map(|(_, d)| d.counters.get(counter).copied().unwrap_or(0))
            .sum()
    }

    /// Calls of `days` and of `months` so far.
    pub fn reads(&self) -> (u32, u32) {
        let s = self.state.lock().unwrap();
        (s.day_reads, s.month_reads)
    }

    /// Drops the month items, as if everything so far had been counted by a version that kept
    /// only day items.
    pub fn forget_month_items(&self) {
        self.state.lock().unwrap().months.clear();
    }

    pub fn all_days(&self, scope: &str) -> Vec<DayCounters> {
        let s = self.state.lock().unwrap();
        s.days
            .iter()
            .filter(|((sc, _), _)| sc == scope)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

impl MemoryInsightsStore {
    fn count_now(&self, subjects: &[Subject]) -> Result<Counted, StoreError> {
        let mut s = self.state.lock().unwrap();
        if s.refuse > 0 {
            s.refuse -= 1;
            return Err(transient("refused (fault injected)"));
        }
        let mut counted = Counted::default();
        for subject in subjects {
            for fact in &subject.facts {
                let marker = s.markers.entry(subject.key.clone()).or_default();
                if !marker.insert(fact.name.clone()) {
                    counted.already_counted += 1;
                    continue;
                }
                counted.new_facts += 1;
                for scope in [fact.organisation_id.as_str(), ALL_ORGANISATIONS] {
                    let day = s
                        .days
                        .entry((scope.to_string(), fact.day.clone()))
                        .or_insert_with(|| DayCounters {
                            day: fact.day.clone(),
                            ..Default::default()
                        });
                    for (k, v) in &fact.add {
                        *day.counters.entry(k.clone()).or_default() += v;
                    }
                    day.missed_alert_ids
                        .extend(fact.missed_alert_ids.iter().cloned());
                }
                let month = fact.day.get(..7).unwrap_or(&fact.day).to_string();
                for (k, v) in fact.add.iter().filter(|(k, _)| is_gauge_counter(k)) {
                    *s.months
                        .entry((fact.organisation_id.clone(), month.clone()))
                        .or_default()
                        .entry(k.clone())
                        .or_default() += v;
                }
            }
        }
        if s.lose_answers > 0 {
            s.lose_answers -= 1;
            return Err(transient("answer lost after the write (fault injected)"));
        }
        Ok(counted)
    }
}

#[async_trait::async_trait]
impl InsightsStore for MemoryInsightsStore {
    async fn count(&self, subjects: &[Subject]) -> Result<Counted, StoreError> {
        self.state.lock().unwrap().count_calls += 1;
        self.count_now(subjects)
    }

    async fn count_bulk(&self, _kind: &str, subjects: &[Subject]) -> Result<Counted, StoreError> {
        // Like DynamoDB's bulk path: the counters and the markers of the batch land together or
        // not at all (the journal finishes what a crash cut short).
        self.state.lock().unwrap().bulk_calls += 1;
        self.count_now(subjects)
    }

    async fn finish_open_batches(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn days(
        &self,
        scope: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let mut s = self.state.lock().unwrap();
        s.day_reads += 1;
        Ok(s.days
            .iter()
            .filter(|((sc, day), _)| sc == scope && day.as_str() >= from && day.as_str() <= to)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn months(
        &self,
        organisation_ids: &[String],
        months: &[String],
    ) -> Result<BTreeMap<(String, String), BTreeMap<String, i64>>, StoreError> {
        let mut s = self.state.lock().unwrap();
        s.month_reads += 1;
        let mut found = BTreeMap::new();
        for org in organisation_ids {
            for month in months {
                let k = (org.clone(), month.clone());
                if let Some(c) = s.months.get(&k) {
                    found.insert(k, c.clone());
                }
            }
        }
        Ok(found)
    }

    async fn month_items_since(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state.lock().unwrap().month_items_since.clone())
    }

    async fn mark_month_items_since(&self, day: &str) -> Result<String, StoreError> {
        let mut s = self.state.lock().unwrap();
        Ok(s.month_items_since
            .get_or_insert_with(|| day.to_string())
            .clone())
    }

    async fn backfill_progress(&self, name: &str) -> Result<Option<BackfillProgress>, StoreError> {
        Ok(self.state.lock().unwrap().progress.get(name).cloned())
    }

    async fn save_backfill_progress(
        &self,
        name: &str,
        progress: &BackfillProgress,
    ) -> Result<(), StoreError> {
        self.state
            .lock()
            .unwrap()
            .progress
            .insert(name.to_string(), progress.clone());
        Ok(())
    }
}

/// Stored records for the backfill, paged by position; `fail_alert_page_at` makes the read of
/// the page starting at that position fail (a run killed mid-way).
#[derive(Default)]
pub struct MemoryStoredRecords {
    pub alerts: Vec<AlertRecord>,
    pub orders: Vec<OutboxOrder>,
    pub fail_alert_page_at: Mutex<Option<usize>>,
}

fn page<T: Clone>(all: &[T], after: Option<&str>, limit: i32) -> RecordPage<T> {
    let start: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
    let end = (start + limit.max(1) as usize).min(all.len());
    RecordPage {
        records: all[start.min(end)..end].to_vec(),
        skipped: Vec::new(),
        next: (end < all.len()).then(|| end.to_string()),
    }
}

#[async_trait::async_trait]
impl StoredRecords for MemoryStoredRecords {
    async fn alerts_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<AlertRecord>, StoreError> {
        let start: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        let mut fail = self.fail_alert_page_at.lock().unwrap();
        if *fail == Some(start) {
            *fail = None;
            return Err(transient("scan failed (fault injected)"));
        }
        Ok(page(&self.alerts, after, limit))
    }

    async fn orders_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<OutboxOrder>, StoreError> {
        Ok(page(&self.orders, after, limit))
    }
}
