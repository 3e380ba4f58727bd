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
//! trail, warnings sent and pending, the no-deadline notice, the action claim, the refund hook's
//! state, the enrolment status history with event ids; `records::bookkeeping`) is in neither,
//! so it comes back from the bookkeeping journal (`ports::bookkeeping_journal`), which every
//! write of a record keeps in the same request.
//!
//! Rebuild writes through stores that put a record's journaled bookkeeping on its first write
//! of the run, in that same write, when the entry is newer than what the table holds
//! (`journal_restore`): a record the table lost, or one an older backup set back. A record the
//! journal has no entry for (stored before the journal existed, past its retention, or never
//! stored before) is reported in `bookkeeping_not_journaled`. What still differs from the
//! table before: `fetched_at` (the re-fetch's time), `revision` (the item's write counter
//! restarts with the item; the journal's revision only tells which write an entry mirrors) and
//! the match's `matched_at` (matched again, now).
//!
//! Every write of a record replaces its entry, so run the rebuild before anything else writes
//! the lost records again: a webhook's processing or the scheduled reconciliation that
//! re-creates a lost record bare also journals it bare (its earlier bookkeeping is then lost).

use super::journal_restore::{EntryState, RestoringAlerts, RestoringEnrolments};
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
use crate::ports::bookkeeping_journal::BookkeepingJournal;
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
    /// Our bookkeeping on each alert and enrolment, as of its last write (rebuild restores it).
    pub journal: Arc<dyn BookkeepingJournal>,
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
    /// Records whose bookkeeping was put back from the journal (written).
    pub bookkeeping_restored: usize,
    /// Records whose journal entry was no newer than the record (the table still held it).
    pub bookkeeping_current: usize,
    /// Records the journal has no entry for: stored before the journal existed or past its
    /// retention (their bookkeeping, if they had any, is lost), or never stored before.
    pub bookkeeping_not_journaled: Vec<String>,
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

impl RebuildReport {
    fn count(&mut self, id: &str, state: EntryState) {
        match state {
            EntryState::Restored => self.bookkeeping_restored += 1,
            EntryState::Current => self.bookkeeping_current += 1,
            EntryState::Missing => self.bookkeeping_not_journaled.push(id.to_string()),
            EntryState::Unread => {}
        }
    }
}

/// Stores an alert an archived delivery names, with the match process-events put on it
/// (`domain::matching::record_match`, the same code; no action is sent) where it did: an alert
/// of an enrolment that takes decisions (not informational) whose journal entry says it had a
/// match (process-events matches an alert when its policy looks at it, not one already
/// resolved or decided), that has no entry, or that the table still holds with a match. Fails
/// with the reason, for the report.
async fn store_archived_alert(
    sources: &StateSources,
    restoring: &RestoringAlerts,
    alert: &Alert,
) -> Result<(), String> {
    let (record, _stale) = store_fetched_alert_notifying(
        &*sources.alerts,
        &*sources.notifier,
        alert,
        sources.clock.now(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let matched = restoring
        .was_matched(&alert.id)
        .unwrap_or(record.alert_match.is_some());
    if record.informational || !matched {
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

/// After the stores and the pass: what came of every record's journal entry, in the report. A
/// record the run did not write (its view and match unchanged) whose entry is newer than it (a
/// table restored from an older backup) gets the entry's bookkeeping now.
async fn count_bookkeeping(
    alerts: &RestoringAlerts,
    enrolments: &RestoringEnrolments,
    report: &mut RebuildReport,
    budget: &RunBudget,
) {
    for org in report.organisations.clone() {
        let stored = match alerts.by_organisation(&org, i32::MAX).await {
            Ok(stored) => stored,
            Err(e) => {
                report.errors.push((org.clone(), e.to_string()));
                continue;
            }
        };
        for record in stored {
            if !budget.has_time() {
                report.incomplete = true;
                return;
            }
            let id = record.alert_id.clone();
            if alerts.state(&id) == EntryState::Unread {
                if let Err(e) = alerts.restore_if_newer(record).await {
                    report.errors.push((id.clone(), e.to_string()));
                    continue;
                }
            }
            report.count(&id, alerts.state(&id));
        }
        let stored = match enrolments.by_organisation(&org).await {
            Ok(stored) => stored,
            Err(e) => {
                report.errors.push((org.clone(), e.to_string()));
                continue;
            }
        };
        for record in stored {
            if !budget.has_time() {
                report.incomplete = true;
                return;
            }
            let id = record.enrolment_id.clone();
            if enrolments.state(&id) == EntryState::Unread {
                if let Err(e) = enrolments.restore_if_newer(record).await {
                    report.errors.push((id.clone(), e.to_string()));
                    continue;
                }
            }
            report.count(&id, enrolments.state(&id));
        }
    }
}

/// `cbs rebuild`: the alerts and enrolments tables from the archive (received since `since`)
/// plus re-fetches, then a reconciliation pass of every organisation (those seen in the
/// archive and `organisations`); every record written with its journaled bookkeeping
/// (`journal_restore`).
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
    let alerts = Arc::new(RestoringAlerts::new(
        sources.alerts.clone(),
        sources.journal.clone(),
    ));
    let enrolments = Arc::new(RestoringEnrolments::new(
        sources.enrolments.clone(),
        sources.journal.clone(),
    ));
    let restoring = StateSources {
        alerts: alerts.clone(),
        enrolments: enrolments.clone(),
        ..sources.clone()
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
                match store_archived_alert(&restoring, &alerts, &alert).await {
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
                    &*restoring.enrolments,
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
    report.reconcile =
        reconcile_organisations(&restoring, &report.organisations, since, budget).await;
    report.incomplete |= report.reconcile.not_reached > 0;
    count_bookkeeping(&alerts, &enrolments, &mut report, budget).await;
    Ok(report)
}
