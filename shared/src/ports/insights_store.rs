//! The insights aggregates (`<prefix>-insights`, README "State in DynamoDB"): counters per
//! organisation per day (and the same across all organisations), kept current as alerts and
//! orders are recorded, so a 90-day view reads one item per day instead of scanning tables.
//!
//! Counting is idempotent per *fact*: every counted thing has a subject (`alert#<id>`,
//! `order#<org>#<ref>`) and a fact name (`received`, `outcome`, ...). The store counts a fact of
//! a subject at most once, ever: the marker of the subject and the counter items change in one
//! write (a DynamoDB transaction whose marker update is conditional on the fact not being in the
//! marker yet). So recording the same alert again, a redelivered event, a retried write that
//! landed the first time, or a backfill over records already counted add nothing.

use super::store_error::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The scope of the counters that sum every organisation.
pub const ALL_ORGANISATIONS: &str = "ALL";

/// The kinds of bulk counting, each with its own marker item per subject (so two kinds never
/// overwrite each other's marker): orders taken in, and upload outcomes.
pub const BULK_KINDS: [&str; 2] = ["intake", "upload"];

/// The counters the card-scheme gauges read (`scheme_*`, `settled:*`): besides the day items,
/// each organisation keeps them per month (month items, [`InsightsStore::months`]), so the
/// all-customers view reads a few items per customer instead of two months of days.
pub fn is_gauge_counter(name: &str) -> bool {
    name.starts_with("scheme_") || name.starts_with("settled:")
}

/// One thing to count once: counter increments on one day of one organisation (and of
/// [`ALL_ORGANISATIONS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Unique within its subject (`received`, `outcome`, `settled@2026-11-03`...).
    pub name: String,
    pub organisation_id: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Counter name → increment.
    pub add: BTreeMap<String, i64>,
    /// Alert ids to add to the day's `missed_alert_ids`.
    pub missed_alert_ids: BTreeSet<String>,
}

impl Fact {
    pub fn new(name: impl Into<String>, organisation_id: &str, day: &str) -> Self {
        Self {
            name: name.into(),
            organisation_id: organisation_id.to_string(),
            day: day.to_string(),
            add: BTreeMap::new(),
            missed_alert_ids: BTreeSet::new(),
        }
    }

    pub fn inc(mut self, counter: impl Into<String>, by: i64) -> Self {
        *self.add.entry(counter.into()).or_default() += by;
        self
    }
}

/// A subject and the facts it has now. Facts already counted are skipped by the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// `alert#<alert_id>`, `order#<organisation_id>#<reference_id>`.
    pub key: String,
    pub facts: Vec<Fact>,
}

/// The counters of one scope on one day, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayCounters {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub counters: BTreeMap<String, i64>,
    pub missed_alert_ids: BTreeSet<String>,
}

/// What one `count` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Facts counted now.
    pub new_facts: usize,
    /// Facts found already counted (skipped).
    pub already_counted: usize,
}

/// Where a backfill over one table stands (saved after every page, so a killed run resumes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackfillProgress {
    /// The opaque position after the last page done; `None` before the first page.
    pub after: Option<String>,
    pub records_seen: u64,
    pub facts_counted: u64,
    pub done: bool,
    /// ISO 8601 UTC of the last save.
    pub updated_at: String,
}

#[async_trait::async_trait]
pub trait InsightsStore: Send + Sync {
    /// Counts each fact of each subject that was never counted before, once, together with its
    /// subject's marker. Safe to call again with the same subjects (nothing is added twice).
    async fn count(&self, subjects: &[Subject]) -> Result<Counted, StoreError>;

    /// Bulk counting (an import, an upload run's outcomes): the same exactly-once counting of
    /// facts as [`InsightsStore::count`], for many subjects in few requests. The day counters of
    /// a whole batch are added in one idempotent write together with a journal of the batch;
    /// the subjects' markers (`kind`: which bulk marker of a subject, [`BULK_KINDS`]) follow by
    /// plain batched writes, and the journal is closed. A journal left open (a crash between the
    /// two) is finished by the next bulk count or backfill ([`InsightsStore::finish_open_batches`]).
    async fn count_bulk(&self, kind: &str, subjects: &[Subject]) -> Result<Counted, StoreError>;

    /// Finishes the batches a bulk count left open (writes their markers, closes them):
    /// returns how many. The backfill calls it before reading markers.
    async fn finish_open_batches(&self) -> Result<usize, StoreError>;

    /// The day items of one scope (an organisation id or [`ALL_ORGANISATIONS`]) from `from` to
    /// `to` inclusive (`YYYY-MM-DD`), oldest first; days with nothing counted are absent. One
    /// query: O(days) items.
    async fn days(&self, scope: &str, from: &str, to: &str)
        -> Result<Vec<DayCounters>, StoreError>;

    /// The month items of `organisation_ids` for `months` (`YYYY-MM`): (organisation, month) →
    /// its gauge counters ([`is_gauge_counter`]), added in the same writes as the day items;
    /// absent when nothing was counted. Complete only for months that began after
    /// [`InsightsStore::month_items_since`]. Batched reads: O(organisations x months) small items.
    async fn months(
        &self,
        organisation_ids: &[String],
        months: &[String],
    ) -> Result<BTreeMap<(String, String), BTreeMap<String, i64>>, StoreError>;

    /// The day from which every count also went into the month items, once recorded.
    async fn month_items_since(&self) -> Result<Option<String>, StoreError>;

    /// Records `day` as that day unless one is recorded already; answers the recorded one.
    async fn mark_month_items_since(&self, day: &str) -> Result<String, StoreError>;

    async fn backfill_progress(&self, name: &str) -> Result<Option<BackfillProgress>, StoreError>;

    async fn save_backfill_progress(
        &self,
        name: &str,
        progress: &BackfillProgress,
    ) -> Result<(), StoreError>;
}

/// One page of stored records for the backfill, and where the next page starts.
#[derive(Debug, Clone)]
pub struct RecordPage<T> {
    pub records: Vec<T>,
    /// Items that do not decode: skipped (named in the backfill's report), never the end of it.
    pub skipped: Vec<super::store_error::UndecodableItem>,
    /// `None` at the end of the table.
    pub next: Option<String>,
}

/// The stored alerts and orders, page by page (a Scan: the backfill only, never a view).
#[async_trait::async_trait]
pub trait StoredRecords: Send + Sync {
    async fn alerts_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<crate::records::alert::AlertRecord>, StoreError>;

    async fn orders_page(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> Result<RecordPage<super::order_outbox::OutboxOrder>, StoreError>;
}
