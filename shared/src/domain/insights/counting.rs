//! Keeping the counters current where records are written: the alert store and the order
//! outbox are wrapped once in each function's wiring, so every write that succeeds (an event
//! processed, a decision recorded by the policy, an operator or the sweep, an order taken in, an
//! upload outcome) counts the facts of what was written. The store counts each fact once, so
//! counting on every write is safe.
//!
//! A counting failure never fails the write it follows (the alert or order is stored; the
//! caller must not retry a write that landed): it is logged and counted in the EMF metric
//! `InsightsCountFailed`. The next write of the same record counts what was missed, and
//! `cbs insights backfill` rebuilds from the stored records.

use super::facts::{
    alert_facts_with_match, match_fact, order_outcome_fact, order_taken_in_facts, MatchOutcome,
};
use crate::clock::Clock;
use crate::models::order::{Order, PatchOrder};
use crate::ports::alert_store::AlertStore;
use crate::ports::insights_store::{Counted, InsightsStore, Subject};
use crate::ports::order_outbox::{
    Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
};
use crate::ports::store_error::{StoreError, UndecodableItem};
use crate::records::alert::AlertRecord;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;

/// Count, logging (never returning) a failure; `clock` stamps the metric line.
pub async fn count_logged(insights: &dyn InsightsStore, clock: &dyn Clock, subjects: &[Subject]) {
    if subjects.iter().all(|s| s.facts.is_empty()) {
        return;
    }
    if let Err(e) = insights.count(subjects).await {
        let first = subjects.first().map(|s| s.key.as_str()).unwrap_or("");
        tracing::error!(subject = first, subjects = subjects.len(), error = %e,
            "insights not counted (the next write of the record or a backfill counts it)");
        println!(
            "{}",
            crate::telemetry::emf_counts_line(
                &[("InsightsCountFailed", 1)],
                clock.now().timestamp_millis()
            )
        );
    }
}

/// Count in bulk (`kind`: `ports::insights_store::BULK_KINDS`), logging (never returning) a
/// failure like [`count_logged`].
pub async fn count_bulk_logged(
    insights: &dyn InsightsStore,
    clock: &dyn Clock,
    kind: &str,
    subjects: &[Subject],
) {
    if subjects.iter().all(|s| s.facts.is_empty()) {
        return;
    }
    if let Err(e) = insights.count_bulk(kind, subjects).await {
        let first = subjects.first().map(|s| s.key.as_str()).unwrap_or("");
        tracing::error!(kind, subject = first, subjects = subjects.len(), error = %e,
            "insights not counted (the next write of the record or a backfill counts it)");
        println!(
            "{}",
            crate::telemetry::emf_counts_line(
                &[("InsightsCountFailed", 1)],
                clock.now().timestamp_millis()
            )
        );
    }
}

/// The matching work's verdict for an alert: counted once per alert (the first verdict), on the
/// alert's received day, under `match:<matched|unmatched|ambiguous>`. The match rate on the
/// insights page comes from these counters.
pub async fn count_match_outcome(
    insights: &dyn InsightsStore,
    record: &AlertRecord,
    outcome: MatchOutcome,
) -> Result<Counted, StoreError> {
    insights.count(&[match_fact(record, outcome)]).await
}

/// An alert store that counts the facts of every record it writes.
pub struct CountingAlertStore {
    inner: Arc<dyn AlertStore>,
    insights: Arc<dyn InsightsStore>,
    clock: Arc<dyn Clock>,
}

impl CountingAlertStore {
    pub fn new(
        inner: Arc<dyn AlertStore>,
        insights: Arc<dyn InsightsStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            insights,
            clock,
        }
    }
}

#[async_trait::async_trait]
impl AlertStore for CountingAlertStore {
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.inner.get(alert_id).await
    }

    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        self.inner.put(record).await?;
        count_logged(
            &*self.insights,
            &*self.clock,
            &[alert_facts_with_match(record)],
        )
        .await;
        Ok(())
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner
            .awaiting_action_until(deadline_at_or_before, limit)
            .await
    }

    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        self.inner
            .awaiting_action_each(deadline_at_or_before, limit)
            .await
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner.by_organisation(organisation_id, limit).await
    }
}

/// An order outbox that counts orders taken in and upload outcomes.
pub struct CountingOrderOutbox {
    inner: Arc<dyn OrderOutbox>,
    insights: Arc<dyn InsightsStore>,
    clock: Arc<dyn Clock>,
    /// Deferring (an import): orders taken in are kept here and counted by [`Self::flush`].
    deferred: Option<std::sync::Mutex<Vec<Subject>>>,
}

impl CountingOrderOutbox {
    pub fn new(
        inner: Arc<dyn OrderOutbox>,
        insights: Arc<dyn InsightsStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            insights,
            clock,
            deferred: None,
        }
    }

    /// For an import: orders taken in are counted when the caller calls [`Self::flush`] (in
    /// bulk, a few requests per thousand orders), not per call of `enqueue`. Orders found
    /// already queued are counted too, so re-running an import that was killed before its
    /// flush counts what it missed (facts already counted are skipped by the store).
    pub fn deferring(
        inner: Arc<dyn OrderOutbox>,
        insights: Arc<dyn InsightsStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            deferred: Some(std::sync::Mutex::new(Vec::new())),
            ..Self::new(inner, insights, clock)
        }
    }

    /// Orders taken in and not counted yet (deferring only).
    pub fn deferred_len(&self) -> usize {
        self.deferred
            .as_ref()
            .map(|d| d.lock().expect("not poisoned").len())
            .unwrap_or(0)
    }

    /// Counts the orders deferred so far (a failure is logged and counted, never returned:
    /// `cbs insights backfill` or a re-run of the import counts them).
    pub async fn flush(&self) {
        let Some(deferred) = &self.deferred else {
            return;
        };
        let subjects = std::mem::take(&mut *deferred.lock().expect("not poisoned"));
        count_bulk_logged(&*self.insights, &*self.clock, "intake", &subjects).await;
    }
}

#[async_trait::async_trait]
impl OrderOutbox for CountingOrderOutbox {
    async fn enqueue(
        &self,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let results = self.inner.enqueue(orders, now).await?;
        let subjects: Vec<Subject> = orders
            .iter()
            .zip(&results)
            .filter(|(_, r)| **r == Enqueued::Stored || self.deferred.is_some())
            .filter_map(|(o, _)| {
                Some(order_taken_in_facts(
                    o.organisation_id.as_deref()?,
                    o.reference_id.as_deref()?,
                    o,
                    now,
                ))
            })
            .collect();
        if let Some(deferred) = &self.deferred {
            deferred.lock().expect("not poisoned").extend(subjects);
            return Ok(results);
        }
        // Orders come in batches (the ops API: up to hundreds at a time): counted in bulk, a
        // few requests per batch rather than a transactional write per order.
        count_bulk_logged(&*self.insights, &*self.clock, "intake", &subjects).await;
        Ok(results)
    }

    async fn existing(
        &self,
        organisation_id: &str,
        reference_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        self.inner.existing(organisation_id, reference_ids).await
    }

    async fn queue_update(
        &self,
        organisation_id: &str,
        reference_id: &str,
        update_id: &str,
        patch: &PatchOrder,
        now: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError> {
        self.inner
            .queue_update(organisation_id, reference_id, update_id, patch, now)
            .await
    }

    async fn organisations(&self) -> Result<Vec<String>, StoreError> {
        self.inner.organisations().await
    }

    async fn pending(
        &self,
        organisation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        self.inner.pending(organisation_id, after, limit).await
    }

    async fn lease(
        &self,
        orders: &[OutboxOrder],
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        self.inner.lease(orders, owner, now, until).await
    }

    async fn record(
        &self,
        organisation_id: &str,
        owner: &str,
        outcomes: &[(String, UploadOutcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let recorded = self
            .inner
            .record(organisation_id, owner, outcomes, now)
            .await?;
        let mut subjects = Vec::new();
        for (reference, outcome) in outcomes {
            let Some(subject) = order_outcome_fact(organisation_id, reference, outcome, owner, now)
            else {
                continue;
            };
            // Some outcomes were not recorded (another run took the order over, and records
            // its own): count only what the stored order shows.
            if recorded < outcomes.len() && outcome.is_final() {
                let stored = self.inner.get(organisation_id, reference).await;
                let shows = matches!(
                    (&stored, outcome),
                    (Ok(Some(o)), UploadOutcome::Created { .. }) if o.state == crate::ports::order_outbox::UploadState::Created
                ) || matches!(
                    (&stored, outcome),
                    (Ok(Some(o)), UploadOutcome::Duplicate { .. }) if o.state == crate::ports::order_outbox::UploadState::Duplicate
                ) || matches!(
                    (&stored, outcome),
                    (Ok(Some(o)), UploadOutcome::Failed { .. }) if o.state == crate::ports::order_outbox::UploadState::Failed
                );
                if !shows {
                    continue;
                }
            }
            subjects.push(subject);
        }
        count_bulk_logged(&*self.insights, &*self.clock, "upload", &subjects).await;
        Ok(recorded)
    }

    async fn record_patch(
        &self,
        organisation_id: &str,
        reference_id: &str,
        owner: &str,
        update_ids: &[String],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .record_patch(organisation_id, reference_id, owner, update_ids, error, now)
            .await
    }

    async fn get(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<OutboxOrder>, StoreError> {
        self.inner.get(organisation_id, reference_id).await
    }

    async fn requeue(
        &self,
        organisation_id: &str,
        reference_id: &str,
        order: Option<&Order>,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        self.inner
            .requeue(organisation_id, reference_id, order, now)
            .await
    }
}
