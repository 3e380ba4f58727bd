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
//! The journal entry is read BEFORE the re-fetched record is stored, and the bookkeeping goes
//! on the record in that same first write: a record's later writes (the match, a notice)
//! replace its journal entry, so a rebuild cut off between storing and restoring would
//! otherwise lose the entry for good. A record still in the table gets the entry's bookkeeping
//! only when the entry is newer than the record (a table restored from an older backup, or a
//! record created again since it was lost: a record's first write leaves the entry of its
//! previous life); what the record gained meanwhile is kept (`merged_with`). Records the
//! reconciliation pass adds get theirs after the pass. A record the journal has no entry for
//! (stored before the journal existed, expired, or never stored before) is reported in
//! `bookkeeping_not_journaled`. What still differs from the table before: `fetched_at` (the
//! re-fetch's time), `revision` (the item's write counter restarts with the item) and the
//! match's `matched_at` (matched again).

use crate::clock::Clock;
use crate::domain::alert_record::{
    merge_fetched, store_fetched_alert_notifying, update_alert_record, Merge,
};
use crate::domain::deadline_sweep::RunBudget;
use crate::domain::enrolment_lifecycle::{self, store_fetched_enrolment, EnrolmentMerge};
use crate::domain::matching::record_match;
use crate::domain::reconcile::{ReconcileCursor, ReconcileListing, ReconcileReport, Reconciler};
use crate::event::EventCategory;
use crate::event::WebhookEvent;
use crate::models::alert::Alert;
use crate::models::enrolment::Enrolment;
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
use crate::records::alert::AlertRecord;
use crate::records::bookkeeping::{AlertBookkeeping, EnrolmentBookkeeping, Journaled};
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

/// What came of a record's journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restoration {
    /// The entry's bookkeeping written onto the record.
    Restored,
    /// The entry is no newer than the record: nothing to restore.
    Current,
    /// No entry.
    NotJournaled,
}

impl RebuildReport {
    fn count(&mut self, id: &str, restoration: Restoration) {
        match restoration {
            Restoration::Restored => self.bookkeeping_restored += 1,
            Restoration::Current => self.bookkeeping_current += 1,
            Restoration::NotJournaled => self.bookkeeping_not_journaled.push(id.to_string()),
        }
    }
}

/// Whether a journal entry is to be restored onto a record stored at `stored_revision` (none:
/// not stored): always onto a record not stored; onto a stored one only when the entry is newer
/// (then `restored_onto` tells whether it changes anything).
fn restoration_of<T>(
    journaled: Option<&Journaled<T>>,
    stored_revision: Option<u64>,
) -> Restoration {
    match (journaled, stored_revision) {
        (None, _) => Restoration::NotJournaled,
        (Some(j), Some(stored)) if j.revision <= stored => Restoration::Current,
        (Some(_), _) => Restoration::Restored,
    }
}

/// The entry's bookkeeping merged onto a stored alert (what it gained since kept); `false` when
/// that changes nothing.
fn alert_restored_onto(j: &Journaled<AlertBookkeeping>, record: &mut AlertRecord) -> bool {
    let merged = j.bookkeeping.merged_with(record);
    if merged == AlertBookkeeping::of(record) {
        return false;
    }
    merged.put_on(record);
    true
}

/// The entry's status history merged onto a stored enrolment; `false` when that changes nothing.
fn enrolment_restored_onto(
    j: &Journaled<EnrolmentBookkeeping>,
    record: &mut crate::records::enrolment::EnrolmentRecord,
) -> bool {
    let merged = j.bookkeeping.merged_with(record);
    if merged == EnrolmentBookkeeping::of(record) {
        return false;
    }
    merged.put_on(record);
    true
}

/// Stores the re-fetched `alert` with its journaled bookkeeping in the same write (see the
/// module's doc for why not after), through the versioned write, retrying lost races.
async fn store_alert_with_bookkeeping(
    sources: &StateSources,
    alert: &Alert,
    journaled: Option<&Journaled<AlertBookkeeping>>,
) -> Result<(AlertRecord, Restoration), StoreError> {
    let now = sources.clock.now();
    let mut restoration = Restoration::NotJournaled;
    let stored = update_alert_record(&*sources.alerts, &alert.id, |mut existing| {
        let stored_revision = existing.as_ref().map(|r| r.revision);
        restoration = restoration_of(journaled, stored_revision);
        let mut restore = journaled.filter(|_| restoration == Restoration::Restored);
        // Onto a stored record before the view is merged (so the merge sees the decisions).
        if let (Some(j), Some(old)) = (restore, existing.as_mut()) {
            if !alert_restored_onto(j, old) {
                restoration = Restoration::Current;
                restore = None;
            }
        }
        let unchanged = existing.as_ref().is_some_and(|old| old.alert == *alert);
        let mut record = match merge_fetched(existing, alert.clone(), now) {
            Merge::Stale(mut old) => {
                restore?;
                old.revision += 1;
                old
            }
            Merge::Updated(_) if unchanged && restore.is_none() => return None,
            Merge::Updated(record) => record,
        };
        if let (Some(j), None) = (restore, stored_revision) {
            j.bookkeeping.put_on(&mut record);
        }
        // A final decision restored keeps the alert off the action queue, whatever the view.
        if restore.is_some() && record.has_final_decision() {
            record.action_queue = None;
        }
        Some(record)
    })
    .await?;
    let stored = stored.ok_or_else(|| StoreError::Permanent {
        operation: "rebuild alert",
        table: "alerts".into(),
        detail: format!("{} not stored", alert.id),
    })?;
    Ok((stored, restoration))
}

/// Stores an alert an archived delivery names, with its journaled bookkeeping, the no-deadline
/// notice where one is due (`store_fetched_alert_notifying`: told once; a restored notice is
/// not told again) and the match process-events put on it (`domain::matching::record_match`,
/// the same code; no action is sent): every alert of an enrolment that takes decisions (not
/// informational) was matched when its event was processed. Fails with the reason, for the
/// report.
async fn store_archived_alert(
    sources: &StateSources,
    alert: &Alert,
    journaled: Option<&Journaled<AlertBookkeeping>>,
) -> Result<Restoration, String> {
    let (record, restoration) = store_alert_with_bookkeeping(sources, alert, journaled)
        .await
        .map_err(|e| e.to_string())?;
    store_fetched_alert_notifying(
        &*sources.alerts,
        &*sources.notifier,
        alert,
        sources.clock.now(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if record.informational {
        return Ok(restoration);
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
    Ok(restoration)
}

/// How many times a lost race is retried (as `enrolment_lifecycle` does).
const WRITE_ATTEMPTS: usize = 5;

/// Stores a re-fetched enrolment with its journaled status history in the same write. Without
/// an entry, or with one no newer than the stored record, it is the normal store
/// (`store_fetched_enrolment`). Operations are told of a status needing attention only when the
/// journaled history does not already end in it (they were told then).
async fn store_archived_enrolment(
    sources: &StateSources,
    fetched: &Enrolment,
    journaled: Option<&Journaled<EnrolmentBookkeeping>>,
) -> Result<Restoration, String> {
    let now = sources.clock.now();
    let store = &*sources.enrolments;
    let mut last_conflict = None;
    for _ in 0..WRITE_ATTEMPTS {
        let existing = store.get(&fetched.id).await.map_err(|e| e.to_string())?;
        let stored_revision = existing.as_ref().map(|r| r.revision);
        let restoration = restoration_of(journaled, stored_revision);
        let mut existing = existing;
        let restore = journaled.filter(|j| {
            restoration == Restoration::Restored
                && existing
                    .as_mut()
                    .is_none_or(|old| enrolment_restored_onto(j, old))
        });
        let Some(j) = restore else {
            store_fetched_enrolment(store, &*sources.notifier, fetched, None, now)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(match restoration {
                Restoration::Restored => Restoration::Current,
                other => other,
            });
        };
        let mut record =
            match enrolment_lifecycle::merge_fetched(existing, fetched.clone(), None, now) {
                EnrolmentMerge::Stale(mut old) => {
                    old.revision += 1;
                    old
                }
                EnrolmentMerge::Updated { record, notify } => {
                    let told = j
                        .bookkeeping
                        .status_history
                        .last()
                        .is_some_and(|c| c.status == fetched.status);
                    if let Some(n) = notify.filter(|_| stored_revision.is_some() || !told) {
                        sources
                            .notifier
                            .notify(&n)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    record
                }
            };
        if stored_revision.is_none() {
            // The journaled history, and this view's change if the status moved since.
            j.bookkeeping.merged_with(&record).put_on(&mut record);
        }
        match store.put(&record).await {
            Ok(()) => return Ok(Restoration::Restored),
            Err(c @ StoreError::Conflict { .. }) => last_conflict = Some(c.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last_conflict.unwrap_or_default())
}

/// After the reconciliation pass: the journaled bookkeeping of every record of `organisations`
/// not rebuilt from the archive (those the pass added, and any the table still held), where the
/// entry is newer than the record.
async fn restore_after_pass(
    sources: &StateSources,
    report: &mut RebuildReport,
    done: &BTreeSet<String>,
    budget: &RunBudget,
) {
    for org in report.organisations.clone() {
        let alerts = match sources.alerts.by_organisation(&org, i32::MAX).await {
            Ok(alerts) => alerts,
            Err(e) => {
                report.errors.push((org.clone(), e.to_string()));
                continue;
            }
        };
        for record in alerts.iter().filter(|r| !done.contains(&r.alert_id)) {
            if !budget.has_time() {
                report.incomplete = true;
                return;
            }
            let id = &record.alert_id;
            let outcome = match sources.journal.alert_bookkeeping(id).await {
                Ok(j) => restore_alert(sources, id, j.as_ref(), record.revision).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(r) => report.count(id, r),
                Err(e) => report.errors.push((id.clone(), e.to_string())),
            }
        }
        let enrolments = match sources.enrolments.by_organisation(&org).await {
            Ok(enrolments) => enrolments,
            Err(e) => {
                report.errors.push((org.clone(), e.to_string()));
                continue;
            }
        };
        for record in enrolments
            .iter()
            .filter(|r| !done.contains(&r.enrolment_id))
        {
            if !budget.has_time() {
                report.incomplete = true;
                return;
            }
            let id = &record.enrolment_id;
            let outcome = match sources.journal.enrolment_bookkeeping(id).await {
                Ok(j) => restore_enrolment(sources, id, j.as_ref(), record.revision).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(r) => report.count(id, r),
                Err(e) => report.errors.push((id.clone(), e.to_string())),
            }
        }
    }
}

/// The entry's bookkeeping onto the stored alert, if newer (merged with what it gained).
async fn restore_alert(
    sources: &StateSources,
    id: &str,
    journaled: Option<&Journaled<AlertBookkeeping>>,
    revision: u64,
) -> Result<Restoration, StoreError> {
    let restoration = restoration_of(journaled, Some(revision));
    let Some(j) = journaled.filter(|_| restoration == Restoration::Restored) else {
        return Ok(restoration);
    };
    let mut changed = false;
    update_alert_record(&*sources.alerts, id, |current| {
        let mut record = current?;
        changed = j.revision > record.revision && alert_restored_onto(j, &mut record);
        if !changed {
            return None;
        }
        record.revision += 1;
        Some(record)
    })
    .await?;
    Ok(if changed {
        Restoration::Restored
    } else {
        Restoration::Current
    })
}

/// The entry's status history onto the stored enrolment, if newer (merged with its own).
async fn restore_enrolment(
    sources: &StateSources,
    id: &str,
    journaled: Option<&Journaled<EnrolmentBookkeeping>>,
    revision: u64,
) -> Result<Restoration, StoreError> {
    let restoration = restoration_of(journaled, Some(revision));
    let Some(j) = journaled.filter(|_| restoration == Restoration::Restored) else {
        return Ok(restoration);
    };
    let mut last_conflict = None;
    for _ in 0..WRITE_ATTEMPTS {
        let Some(mut record) = sources.enrolments.get(id).await? else {
            return Ok(Restoration::Current);
        };
        if j.revision <= record.revision || !enrolment_restored_onto(j, &mut record) {
            return Ok(Restoration::Current);
        }
        record.revision += 1;
        match sources.enrolments.put(&record).await {
            Ok(()) => return Ok(restoration),
            Err(c @ StoreError::Conflict { .. }) => last_conflict = Some(c),
            Err(e) => return Err(e),
        }
    }
    Err(last_conflict.expect("at least one attempt"))
}

/// `cbs rebuild`: the alerts and enrolments tables from the archive (received since `since`)
/// plus re-fetches, each record with its journaled bookkeeping, then a reconciliation pass of
/// every organisation (those seen in the archive and `organisations`) and the journaled
/// bookkeeping of what it added.
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
    // Every object rebuilt here (restored or reported); the pass after covers the rest.
    let mut done = BTreeSet::new();
    for id in &named.alerts {
        if !budget.has_time() {
            report.incomplete = true;
            break;
        }
        // The entry first: storing the record may replace it.
        let journaled = match sources.journal.alert_bookkeeping(id).await {
            Ok(j) => j,
            Err(e) => {
                report.errors.push((id.clone(), e.to_string()));
                continue;
            }
        };
        match sources.alert_api.get_alert(id).await {
            Ok(alert) => {
                named.organisations.insert(alert.organisation_id.clone());
                match store_archived_alert(sources, &alert, journaled.as_ref()).await {
                    Ok(restoration) => {
                        report.alerts_refetched += 1;
                        report.count(id, restoration);
                        done.insert(id.clone());
                    }
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
        let journaled = match sources.journal.enrolment_bookkeeping(id).await {
            Ok(j) => j,
            Err(e) => {
                report.errors.push((id.clone(), e.to_string()));
                continue;
            }
        };
        match sources.enrolment_api.get_enrolment(id).await {
            Ok(enrolment) => {
                named
                    .organisations
                    .insert(enrolment.organisation_id.clone());
                match store_archived_enrolment(sources, &enrolment, journaled.as_ref()).await {
                    Ok(restoration) => {
                        report.enrolments_refetched += 1;
                        report.count(id, restoration);
                        done.insert(id.clone());
                    }
                    Err(e) => report.errors.push((id.clone(), e)),
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
    restore_after_pass(sources, &mut report, &done, budget).await;
    Ok(report)
}
