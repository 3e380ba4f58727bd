//! Reconciliation: the fallback for webhooks that never arrived (an ingress outage longer than
//! ChargebackStop's retry window, or retries our Worker refused). For each organisation, a
//! pass reads
//! 1. every alert received within the lookback window, of every status
//!    (`GET /v1/alerts?organisation_id=&sort=alert_received_at&alert_received_at_gte=`), and
//! 2. every enrolment (`GET /v2/enrolments?organisation_id=`), of every status,
//!
//! storing each through the event processor's own versioned writes, which ignore a view that
//! is older than or equal to what we hold. The API has no "changed since" filter, so a change
//! to an alert (resolved in the dashboard, expired) is picked up by the next pass over the
//! window.
//!
//! Paging never trusts `limit`: the API may cap it, so a short page does not mean the end. A
//! walk ends on an empty page or when `count` (the total the API reports) has been read.
//! Alerts are walked by keyset (`alert_received_at_gte` = the last time read, `offset` = how
//! many alerts received at exactly that time were read), so alerts arriving meanwhile land at
//! the end instead of shifting the pages.
//!
//! The place reached is saved per organisation after every page ([`CursorStore`]); a run that
//! runs out of time stops, and the next run resumes there. Organisations in the middle of a
//! pass go first, then those whose last pass is oldest.

use super::alert_record::store_fetched_alert_notifying;
use super::deadline_sweep::RunBudget;
use super::decision::DecisionError;
use super::enrolment_lifecycle::{store_fetched_enrolment, EnrolmentStored, StoreEnrolmentError};
use crate::clock::Clock;
use crate::models::alert::Alert;
use crate::models::enrolment::Enrolment;
use crate::models::page::Page;
use crate::ports::alert_api::ApiCallError;
use crate::ports::alert_store::AlertStore;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::reconcile_cursors::CursorStore;
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The cursor lives in `records` (below both this and the store port); re-exported here for the
/// code that always found it here.
pub use crate::records::reconcile::{Phase, ReconcileCursor};

/// The list endpoints reconciliation reads.
#[async_trait::async_trait]
pub trait ReconcileListing: Send + Sync {
    /// One page of `GET /v1/alerts?organisation_id=&sort=alert_received_at
    /// &alert_received_at_gte=&limit=&offset=`, every status, oldest received first.
    async fn alerts_page(
        &self,
        organisation_id: &str,
        received_from: DateTime<Utc>,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Alert>, ApiCallError>;

    /// One page of `GET /v2/enrolments?organisation_id=&limit=&offset=`, every status.
    async fn enrolments_page(
        &self,
        organisation_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Enrolment>, ApiCallError>;
}

/// The listing over the typed client.
pub struct ClientListing(pub crate::client::ChargebackStop);

#[async_trait::async_trait]
impl ReconcileListing for ClientListing {
    async fn alerts_page(
        &self,
        organisation_id: &str,
        received_from: DateTime<Utc>,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Alert>, ApiCallError> {
        let query = crate::models::alert::AlertQuery {
            sort: Some(crate::models::alert::AlertSort::ReceivedOldestFirst),
            alert_received_at_gte: Some(received_from),
            ..Default::default()
        }
        .for_organisation(organisation_id)
        .page(limit, offset);
        self.0
            .list_alerts(&query)
            .await
            .map_err(|e| crate::client::call_error("list alerts", organisation_id, e))
    }

    async fn enrolments_page(
        &self,
        organisation_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Enrolment>, ApiCallError> {
        let query = crate::client::ListQuery::page(limit, offset).for_organisation(organisation_id);
        self.0
            .list_enrolments(&query)
            .await
            .map_err(|e| crate::client::call_error("list enrolments", organisation_id, e))
    }
}

impl ReconcileCursor {
    fn fresh(organisation_id: &str) -> Self {
        Self {
            cursor_id: Self::id_of(organisation_id),
            organisation_id: organisation_id.to_string(),
            phase: Phase::Done,
            received_from: None,
            received_skip: 0,
            enrolment_offset: 0,
            pass_started_at: None,
            last_pass_completed_at: None,
            passes_completed: 0,
            updated_at: String::new(),
        }
    }

    /// The keyset position after reading `alerts` (oldest received first) from this one.
    fn advance_over(&mut self, alerts: &[Alert]) {
        for alert in alerts {
            let at = alert.alert_received_at.map(iso);
            if at.is_some() && at != self.received_from {
                self.received_from = at;
                self.received_skip = 1;
            } else {
                self.received_skip += 1;
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub organisations: usize,
    /// Organisations resumed from a pass an earlier run left unfinished.
    pub resumed: usize,
    /// Passes finished this run.
    pub passes_completed: usize,
    /// Organisations not reached (out of time): first in line next run.
    pub not_reached: usize,
    pub pages: usize,
    pub seen: usize,
    /// Alerts we had never stored: their webhook never reached us.
    pub recovered: Vec<String>,
    /// Alerts we held in an older version.
    pub refreshed: usize,
    pub enrolments_seen: usize,
    /// Enrolments we had never stored.
    pub enrolments_recovered: Vec<String>,
    pub enrolments_refreshed: usize,
    pub errors: usize,
}

pub struct Reconciler {
    pub api: Arc<dyn ReconcileListing>,
    pub alerts: Arc<dyn AlertStore>,
    pub enrolments: Arc<dyn EnrolmentStore>,
    pub cursors: Arc<dyn CursorStore>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub page_size: u32,
    /// Alerts received this long ago or less are read each pass.
    pub lookback: Duration,
}

/// Why one organisation's pass stopped early (its cursor keeps the place).
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("notification failed: {0}")]
    Notify(String),
    #[error("out of time")]
    OutOfTime,
}

impl From<DecisionError> for PassError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::Api(e) => PassError::Api(e),
            DecisionError::Store(e) => PassError::Store(e),
            other => PassError::Notify(other.to_string()),
        }
    }
}

impl Reconciler {
    /// Reconciles `organisations` within `budget`, resuming from the stored cursors.
    pub async fn run(&self, organisations: &[String], budget: &RunBudget) -> ReconcileReport {
        let mut report = ReconcileReport {
            organisations: organisations.len(),
            ..Default::default()
        };
        let mut stored: HashMap<String, ReconcileCursor> = match self
            .cursors
            .reconcile_cursors()
            .await
        {
            Ok(list) => list
                .into_iter()
                .map(|c| (c.organisation_id.clone(), c))
                .collect(),
            Err(e) => {
                report.errors += 1;
                tracing::error!(error = %e, "could not read reconcile cursors; every organisation starts a fresh pass");
                HashMap::new()
            }
        };
        let mut queue: Vec<ReconcileCursor> = organisations
            .iter()
            .map(|org| {
                stored
                    .remove(org)
                    .unwrap_or_else(|| ReconcileCursor::fresh(org))
            })
            .collect();
        // Unfinished passes first, then the least recently reconciled (never = first).
        queue.sort_by(|a, b| {
            (a.phase == Phase::Done, &a.last_pass_completed_at)
                .cmp(&(b.phase == Phase::Done, &b.last_pass_completed_at))
        });
        let total = queue.len();
        for (i, mut cursor) in queue.into_iter().enumerate() {
            if !budget.has_time() {
                report.not_reached = total - i;
                break;
            }
            if cursor.phase != Phase::Done {
                report.resumed += 1;
            }
            let org = cursor.organisation_id.clone();
            match self.organisation(&mut cursor, budget, &mut report).await {
                Ok(()) => {}
                Err(PassError::OutOfTime) => {
                    report.not_reached = total - i - 1;
                    break;
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::error!(organisation_id = %org, error = %e, "reconciliation stopped for an organisation; its cursor keeps the place");
                }
            }
        }
        tracing::info!(
            organisations = report.organisations,
            resumed = report.resumed,
            passes_completed = report.passes_completed,
            not_reached = report.not_reached,
            pages = report.pages,
            seen = report.seen,
            recovered = report.recovered.len(),
            refreshed = report.refreshed,
            enrolments_seen = report.enrolments_seen,
            enrolments_recovered = report.enrolments_recovered.len(),
            errors = report.errors,
            "reconciliation finished"
        );
        report
    }

    async fn save(&self, cursor: &mut ReconcileCursor) -> Result<(), StoreError> {
        cursor.updated_at = iso(self.clock.now());
        self.cursors.save_reconcile_cursor(cursor).await
    }

    /// Finishes `f` (work already paid for: storing a page read, saving the place reached)
    /// unless the run is cut.
    async fn finish<T, E>(
        &self,
        budget: &RunBudget,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, PassError>
    where
        PassError: From<E>,
    {
        match tokio::time::timeout_at(budget.cut_at, f).await {
            Ok(r) => r.map_err(PassError::from),
            Err(_) => Err(PassError::OutOfTime),
        }
    }

    /// Starts `f` (a new call) unless the run is out of time, and cuts it at the budget's end.
    async fn timed<T, E>(
        &self,
        budget: &RunBudget,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, PassError>
    where
        PassError: From<E>,
    {
        if !budget.has_time() {
            return Err(PassError::OutOfTime);
        }
        match tokio::time::timeout_at(budget.cut_at, f).await {
            Ok(r) => r.map_err(PassError::from),
            Err(_) => Err(PassError::OutOfTime),
        }
    }

    async fn organisation(
        &self,
        cursor: &mut ReconcileCursor,
        budget: &RunBudget,
        report: &mut ReconcileReport,
    ) -> Result<(), PassError> {
        let org = cursor.organisation_id.clone();
        let page_size = self.page_size.clamp(1, 1000);
        if cursor.phase == Phase::Done {
            let now = self.clock.now();
            cursor.phase = Phase::Alerts;
            cursor.received_from = Some(iso(now.checked_sub_signed(self.lookback).unwrap_or(now)));
            cursor.received_skip = 0;
            cursor.enrolment_offset = 0;
            cursor.pass_started_at = Some(iso(now));
        }
        while cursor.phase == Phase::Alerts {
            let from = cursor
                .received_from
                .as_deref()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                .unwrap_or_else(|| self.clock.now() - self.lookback);
            let offset = cursor.received_skip;
            let page = self
                .timed(budget, self.api.alerts_page(&org, from, page_size, offset))
                .await?;
            report.pages += 1;
            report.seen += page.items.len();
            for alert in &page.items {
                self.finish(budget, self.store_alert(&org, alert, report))
                    .await?;
            }
            let read_all = page.items.is_empty()
                || page
                    .count
                    .is_some_and(|total| u64::from(offset) + page.items.len() as u64 >= total);
            cursor.advance_over(&page.items);
            if read_all {
                cursor.phase = Phase::Enrolments;
                cursor.enrolment_offset = 0;
            }
            self.finish(budget, self.save(cursor)).await?;
        }
        while cursor.phase == Phase::Enrolments {
            let offset = cursor.enrolment_offset;
            let page = self
                .timed(budget, self.api.enrolments_page(&org, page_size, offset))
                .await?;
            report.pages += 1;
            report.enrolments_seen += page.items.len();
            for enrolment in &page.items {
                self.finish(budget, self.store_enrolment(enrolment, report))
                    .await?;
            }
            cursor.enrolment_offset += page.items.len() as u32;
            let read_all = page.items.is_empty()
                || page
                    .count
                    .is_some_and(|total| u64::from(cursor.enrolment_offset) >= total);
            if read_all {
                cursor.phase = Phase::Done;
                cursor.passes_completed += 1;
                cursor.last_pass_completed_at = Some(iso(self.clock.now()));
                report.passes_completed += 1;
            }
            self.finish(budget, self.save(cursor)).await?;
        }
        Ok(())
    }

    async fn store_alert(
        &self,
        org: &str,
        alert: &Alert,
        report: &mut ReconcileReport,
    ) -> Result<(), PassError> {
        let now = self.clock.now();
        let known = self.alerts.get(&alert.id).await?;
        let (stored, stale) =
            store_fetched_alert_notifying(&*self.alerts, &*self.notifier, alert, now).await?;
        let written = !stale && known.as_ref().map(|k| k.revision) != Some(stored.revision);
        if known.is_none() {
            report.recovered.push(alert.id.clone());
            tracing::warn!(alert_id = %alert.id, organisation_id = %org, "alert found by reconciliation: its webhook never arrived");
            let sent = self
                .notifier
                .notify(&OpsNotification {
                    kind: "alert.recovered_by_reconciliation".into(),
                    subject: format!(
                        "Alert {} found by polling: its webhook never arrived",
                        alert.id
                    ),
                    organisation_id: Some(org.to_string()),
                    object_id: alert.id.clone(),
                    status: Some(alert.status.to_string()),
                    note: alert
                        .action_required_deadline
                        .map(|d| format!("deadline {}", iso(d))),
                    at: iso(now),
                })
                .await;
            if let Err(e) = sent {
                tracing::error!(alert_id = %alert.id, error = %e, "recovered alert not notified");
            }
        } else if written {
            report.refreshed += 1;
        }
        Ok(())
    }

    /// The enrolment as `GET /v2/enrolments` listed it, stored with the lifecycle's versioned
    /// merge (operations told first when it has just become ACTION_REQUIRED or FAILED).
    async fn store_enrolment(
        &self,
        fetched: &Enrolment,
        report: &mut ReconcileReport,
    ) -> Result<(), PassError> {
        let stored = store_fetched_enrolment(
            &*self.enrolments,
            &*self.notifier,
            fetched,
            None,
            self.clock.now(),
        )
        .await
        .map_err(|e| match e {
            StoreEnrolmentError::Store(e) => PassError::Store(e),
            StoreEnrolmentError::Notify(e) => PassError::Notify(e.to_string()),
        })?;
        match stored {
            EnrolmentStored::Written {
                was_known: true, ..
            } => report.enrolments_refreshed += 1,
            EnrolmentStored::Written { .. } => {
                report.enrolments_recovered.push(fetched.id.clone());
                tracing::warn!(enrolment_id = %fetched.id, "enrolment found by reconciliation");
            }
            EnrolmentStored::Kept(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
