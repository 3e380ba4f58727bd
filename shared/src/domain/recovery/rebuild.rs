//! Rebuilding the alerts and enrolments tables (after a restore from a backup, a bad write, a
//! dropped table) and reconciling one organisation on demand.
//!
//! Rebuild reads every archived delivery within the retention, re-fetches each alert and
//! enrolment it names from ChargebackStop, and stores it through the normal versioned writes;
//! then a full reconciliation pass of every organisation seen (all statuses, every page, the
//! whole retention) adds what never had a webhook. No action is ever sent: only the stores are
//! written. An archived alert gets back the match (and the rule that would decide) that
//! process-events recorded, by the same code (`domain::matching::record_match`). What
//! ChargebackStop holds comes back exactly; our own bookkeeping on a record (the decision audit
//! trail, warnings sent, enrolment status history with event ids) is not in the archive nor at
//! ChargebackStop and starts again empty.

use crate::clock::Clock;
use crate::domain::alert_record::store_fetched_alert_notifying;
use crate::domain::deadline_sweep::RunBudget;
use crate::domain::enrolment_lifecycle::store_fetched_enrolment;
use crate::domain::matching::record_match;
use crate::domain::reconcile::{ReconcileCursor, ReconcileListing, ReconcileReport, Reconciler};
use crate::event::EventCategory;
use crate::event::WebhookEvent;
use crate::models::alert::Alert;
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::{PartnerRecords, PolicySource};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_archive::EventArchive;
use crate::ports::notifier::Notifier;
use crate::ports::reconcile_cursors::CursorStore;
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Cursors for one on-demand pass, kept in memory: an operator's run starts from the beginning
/// of its window and never moves the scheduled sweep's place.
#[derive(Default)]
pub struct OneOffCursors(Mutex<HashMap<String, ReconcileCursor>>);

#[async_trait::async_trait]
impl CursorStore for OneOffCursors {
    async fn reconcile_cursors(&self) -> Result<Vec<ReconcileCursor>, StoreError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(cursor.cursor_id.clone(), cursor.clone());
        Ok(())
    }
}

/// What the stores and the API are, for rebuild and on-demand reconciliation.
#[derive(Clone)]
pub struct StateSources {
    pub archive: Arc<dyn EventArchive>,
    pub listing: Arc<dyn ReconcileListing>,
    pub alert_api: Arc<dyn AlertApi>,
    pub enrolment_api: Arc<dyn EnrolmentApi>,
    pub alerts: Arc<dyn AlertStore>,
    pub enrolments: Arc<dyn EnrolmentStore>,
    pub notifier: Arc<dyn Notifier>,
    /// The policy and the partner's records, for the match a rebuilt alert carries.
    pub policies: Arc<dyn PolicySource>,
    pub partner_records: Arc<dyn PartnerRecords>,
    pub clock: Arc<dyn Clock>,
    pub page_size: u32,
}

/// `cbs reconcile --organisation X [--since T]`: one full pass (alerts received since `since`,
/// every status and page; every enrolment) through the normal versioned writes.
pub async fn reconcile_organisations(
    sources: &StateSources,
    organisations: &[String],
    since: DateTime<Utc>,
    budget: &RunBudget,
) -> ReconcileReport {
    let now = sources.clock.now();
    let reconciler = Reconciler {
        api: sources.listing.clone(),
        alerts: sources.alerts.clone(),
        enrolments: sources.enrolments.clone(),
        cursors: Arc::new(OneOffCursors::default()),
        notifier: sources.notifier.clone(),
        clock: sources.clock.clone(),
        page_size: sources.page_size,
        lookback: (now - since).max(Duration::zero()),
    };
    reconciler.run(organisations, budget).await
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    pub archived_deliveries: usize,
    pub alerts_refetched: usize,
    pub enrolments_refetched: usize,
    /// Objects the archive names that ChargebackStop no longer knows (404).
    pub not_found: Vec<String>,
    /// Objects that could not be fetched or stored, with the reason.
    pub errors: Vec<(String, String)>,
    pub organisations: Vec<String>,
    pub reconcile: ReconcileReport,
    /// Stopped before the end (out of time): run it again; every write is idempotent.
    pub incomplete: bool,
}

/// The objects an archive names, per kind, and the organisations seen.
#[derive(Debug, Default)]
struct Named {
    alerts: BTreeSet<String>,
    enrolments: BTreeSet<String>,
    organisations: BTreeSet<String>,
}

/// Stores an alert an archived delivery names, with the match process-events put on it
/// (`domain::matching::record_match`, the same code; no action is sent): every alert of an
/// enrolment that takes decisions (not informational) was matched when its event was processed.
/// Fails with the reason, for the report.
async fn store_archived_alert(sources: &StateSources, alert: &Alert) -> Result<(), String> {
    let (record, _stale) = store_fetched_alert_notifying(
        &*sources.alerts,
        &*sources.notifier,
        alert,
        sources.clock.now(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if record.informational {
        return Ok(());
    }
    let policy = sources
        .policies
        .policy_for(&alert.organisation_id)
        .await
        .map_err(|e| e.to_string())?;
    record_match(
        &*sources.alerts,
        &*sources.partner_records,
        &policy,
        &record.alert,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// `cbs rebuild`: the alerts and enrolments tables from the archive (received since `since`)
/// plus re-fetches, then a reconciliation pass of every organisation (those seen in the
/// archive and `organisations`).
pub async fn rebuild(
    sources: &StateSources,
    since: DateTime<Utc>,
    organisations: &[String],
    budget: &RunBudget,
    mut progress: impl FnMut(&str),
) -> Result<RebuildReport, StoreError> {
    let now = sources.clock.now();
    let deliveries = sources
        .archive
        .received_between(since, now + Duration::minutes(1))
        .await?;
    let mut report = RebuildReport {
        archived_deliveries: deliveries.len(),
        ..Default::default()
    };
    let mut named = Named::default();
    named.organisations.extend(organisations.iter().cloned());
    for d in &deliveries {
        // A delivery the edge refused was never processed (nor verified): its object was not
        // matched then, so it is not named here; the reconciliation pass below brings it back
        // as `cbs reconcile` did.
        if super::refused::refused_reason(d).is_some() {
            continue;
        }
        let Ok(event) = WebhookEvent::parse(&d.body) else {
            continue;
        };
        if let Some(org) = &d.organisation_id {
            named.organisations.insert(org.clone());
        }
        match (event.category(), event.object_id()) {
            (EventCategory::Alert, Some(id)) => {
                named.alerts.insert(id.to_string());
            }
            (EventCategory::Enrolment, Some(id)) => {
                named.enrolments.insert(id.to_string());
            }
            _ => {}
        }
    }
    for id in &named.alerts {
        if !budget.has_time() {
            report.incomplete = true;
            break;
        }
        match sources.alert_api.get_alert(id).await {
            Ok(alert) => {
                named.organisations.insert(alert.organisation_id.clone());
                match store_archived_alert(sources, &alert).await {
                    Ok(()) => report.alerts_refetched += 1,
                    Err(e) => report.errors.push((id.clone(), e)),
                }
            }
            Err(ApiCallError::NotFound { .. }) => report.not_found.push(id.clone()),
            Err(e) => report.errors.push((id.clone(), e.to_string())),
        }
        progress(id);
    }
    for id in &named.enrolments {
        if !budget.has_time() {
            report.incomplete = true;
            break;
        }
        match sources.enrolment_api.get_enrolment(id).await {
            Ok(enrolment) => {
                named
                    .organisations
                    .insert(enrolment.organisation_id.clone());
                match store_fetched_enrolment(
                    &*sources.enrolments,
                    &*sources.notifier,
                    &enrolment,
                    None,
                    sources.clock.now(),
                )
                .await
                {
                    Ok(_) => report.enrolments_refetched += 1,
                    Err(e) => report.errors.push((id.clone(), e.to_string())),
                }
            }
            Err(ApiCallError::NotFound { .. }) => report.not_found.push(id.clone()),
            Err(e) => report.errors.push((id.clone(), e.to_string())),
        }
        progress(id);
    }
    report.organisations = named.organisations.iter().cloned().collect();
    report.reconcile = reconcile_organisations(sources, &report.organisations, since, budget).await;
    report.incomplete |= report.reconcile.not_reached > 0;
    Ok(report)
}
