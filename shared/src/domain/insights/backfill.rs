//! `cbs insights backfill`: build the counters of an existing deployment from its stored alerts
//! and orders (an alert's facts with its match verdict and, for an automatic decision, the rule
//! its match record names). Counting is idempotent per fact, so the backfill may overlap with live counting,
//! be killed and run again: it saves its place after every page (`BackfillProgress` in the
//! insights table, one per source table) and resumes there; a page done twice adds nothing.

use super::facts::{alert_facts_with_match, stored_order_facts};
use crate::clock::Clock;
use crate::ports::insights_store::{BackfillProgress, InsightsStore, StoredRecords, Subject};
use crate::ports::order_outbox::iso;
use crate::ports::store_error::{StoreError, UndecodableItem};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub const SOURCES: [&str; 2] = ["alerts", "orders"];

pub struct Backfill {
    pub insights: Arc<dyn InsightsStore>,
    pub records: Arc<dyn StoredRecords>,
    pub clock: Arc<dyn Clock>,
    pub page_size: i32,
    /// Start again from the first page even where an earlier run finished.
    pub restart: bool,
    /// Take no new page after this (the run is resumable).
    pub stop_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    /// Per source: its progress after this run.
    pub sources: Vec<(String, BackfillProgress)>,
    pub skipped: Vec<UndecodableItem>,
    /// Stopped at `stop_at` with pages left.
    pub stopped_early: bool,
}

impl Backfill {
    /// Runs every source to its end (or to `stop_at`); `progress` is told after each page.
    pub async fn run(
        &self,
        mut progress: impl FnMut(&str, &BackfillProgress) + Send,
    ) -> Result<BackfillReport, StoreError> {
        let mut report = BackfillReport::default();
        // A bulk count's journal left open has counted facts whose markers are not written:
        // finish those first, so this run does not count them again.
        self.insights.finish_open_batches().await?;
        for source in SOURCES {
            let mut state = match self.insights.backfill_progress(source).await? {
                Some(p) if !self.restart => p,
                _ => BackfillProgress::default(),
            };
            while !state.done {
                if self.stop_at.is_some_and(|at| self.clock.now() >= at) {
                    report.stopped_early = true;
                    break;
                }
                let after = state.after.clone();
                let (subjects, skipped, next, seen) = match source {
                    "alerts" => {
                        let page = self
                            .records
                            .alerts_page(after.as_deref(), self.page_size)
                            .await?;
                        let n = page.records.len();
                        let s: Vec<Subject> =
                            page.records.iter().map(alert_facts_with_match).collect();
                        (s, page.skipped, page.next, n)
                    }
                    _ => {
                        let page = self
                            .records
                            .orders_page(after.as_deref(), self.page_size)
                            .await?;
                        let n = page.records.len();
                        let s: Vec<Subject> = page.records.iter().map(stored_order_facts).collect();
                        (s, page.skipped, page.next, n)
                    }
                };
                // The store packs a call into transactions of at most 100 actions itself.
                for chunk in subjects.chunks(80) {
                    let counted = self.insights.count(chunk).await?;
                    state.facts_counted += counted.new_facts as u64;
                }
                report.skipped.extend(skipped);
                state.records_seen += seen as u64;
                state.done = next.is_none();
                state.after = next;
                state.updated_at = iso(self.clock.now());
                self.insights.save_backfill_progress(source, &state).await?;
                progress(source, &state);
            }
            report.sources.push((source.to_string(), state));
            if report.stopped_early {
                break;
            }
        }
        Ok(report)
    }
}
