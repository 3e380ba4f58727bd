//! How an alert is kept in the `alerts` table, and the rule that keeps it right when events
//! arrive late, twice or out of order: we always store what `GET /v1/alerts/{id}` returned, and
//! an older view never replaces a newer one.
//!
//! "Older" is decided by `version_key = "<rank>#<updated_at>"`. Alerts in the API carry no
//! `updated_at` in the documented samples, so the status rank comes first: ACTION_REQUIRED (1)
//! < RESOLVED or INVALID (2). An alert's status only moves forward (a resolved alert "cannot be
//! changed anymore"), so a higher rank is always newer; `updated_at`, when present, orders views
//! of the same rank (e.g. a note change). Unknown statuses rank 1.
//!
//! An Ethoca alert ACTION_REQUIRED without `action_required_deadline` (the docs always give one,
//! but a missing field must not hide an alert): `store_fetched_alert_notifying` tells a person
//! once, and the alert stays in the action queue with a `deadline-index` sort key that sorts
//! before every real deadline, so the ops queue shows it (urgency `no_deadline`) and the sweep
//! reads it first but never acts on it by itself (no deadline, no cutoff).

use super::decision::DecisionError;
use crate::models::alert::{Alert, AlertStatus};
use crate::models::enrolment::EnrolmentType;
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::store_error::StoreError;
use crate::records::alert::{Decision, DecisionResult, DecisionSource};
use chrono::{DateTime, Utc};

/// The record and the queue name live in `records` (below both this and the store port);
/// re-exported here for the code that always found them here.
pub use crate::records::alert::{AlertRecord, PendingWarning, ACTION_QUEUE};

/// How many times a lost optimistic-write race is retried before giving the event back to SQS.
const WRITE_ATTEMPTS: usize = 5;

pub fn status_rank(status: &AlertStatus) -> u8 {
    match status {
        AlertStatus::Resolved | AlertStatus::Invalid => 2,
        AlertStatus::ActionRequired | AlertStatus::Other(_) => 1,
    }
}

pub fn version_key(alert: &Alert) -> String {
    format!(
        "{}#{}",
        status_rank(&alert.status),
        alert.updated_at.map(iso).unwrap_or_default()
    )
}

/// The result of merging a freshly fetched alert into what is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// The fetched view is older than the stored one: nothing to write.
    Stale(AlertRecord),
    Updated(AlertRecord),
}

/// Merge a fetched alert into the stored record (pure). Keeps decisions and warnings, replaces
/// the API fields, sets or clears `action_queue`, and notes in the audit trail when an alert we
/// held as ACTION_REQUIRED was resolved without an action of ours being recorded (by the
/// customer in the dashboard, a ChargebackStop ruleset, or an attempt whose write was lost).
pub fn merge_fetched(existing: Option<AlertRecord>, fetched: Alert, now: DateTime<Utc>) -> Merge {
    merge_view(existing, fetched, now, true)
}

/// `merge_fetched`, with the "resolved elsewhere" note optional: when the caller is recording
/// the decision that explains the resolution (our PATCH was accepted, or answered 422), the
/// note would wrongly say nobody here acted, and it would precede the real decision.
fn merge_view(
    existing: Option<AlertRecord>,
    fetched: Alert,
    now: DateTime<Utc>,
    note_unexplained_resolution: bool,
) -> Merge {
    let key = version_key(&fetched);
    let mut record = match existing {
        Some(old) if key < old.version_key => return Merge::Stale(old),
        Some(old) => old,
        None => AlertRecord {
            alert_id: fetched.id.clone(),
            alert: fetched.clone(),
            version_key: String::new(),
            fetched_at: String::new(),
            action_queue: None,
            decisions: Vec::new(),
            warned_thresholds: Vec::new(),
            pending_warning: None,
            informational: false,
            action_claim: None,
            no_deadline_notified_at: None,
            alert_match: None,
            refund_hook: None,
            revision: 0,
        },
    };
    let was_waiting = record.revision > 0 && record.alert.is_actionable();
    if note_unexplained_resolution
        && was_waiting
        && status_rank(&fetched.status) == 2
        && !record.has_final_decision()
    {
        record.decisions.push(Decision {
            at: iso(now),
            source: DecisionSource::Observed,
            actor: "chargebackstop".into(),
            action: None,
            reason: format!(
                "alert became {} without an action recorded here",
                fetched.status
            ),
            note: fetched.note.clone(),
            result: DecisionResult::ResolvedElsewhere,
            detail: fetched
                .transaction_refund_outcome
                .as_ref()
                .map(|o| o.to_string()),
        });
    }
    record.informational = fetched.enrolment_type == EnrolmentType::VerifiRdr;
    record.action_queue = fetched.is_actionable().then(|| ACTION_QUEUE.to_string());
    record.version_key = key;
    record.fetched_at = iso(now);
    record.alert = fetched;
    record.revision += 1;
    Merge::Updated(record)
}

/// Overlay a partial alert (the PATCH response) on a full one: fields the partial view carries
/// win, the rest are kept.
pub fn overlay(full: &Alert, partial: &Alert) -> Alert {
    let (Ok(mut base), Ok(top)) = (serde_json::to_value(full), serde_json::to_value(partial))
    else {
        return partial.clone();
    };
    if let (Some(base), Some(top)) = (base.as_object_mut(), top.as_object()) {
        for (k, v) in top {
            if !v.is_null() {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(base).unwrap_or_else(|_| partial.clone())
}

/// Read-modify-write with retries on lost races. `change` gets the current record and returns
/// the record to write, or `None` for "nothing to change". Returns what is stored afterwards.
pub async fn update_alert_record<F>(
    store: &dyn AlertStore,
    alert_id: &str,
    change: F,
) -> Result<Option<AlertRecord>, StoreError>
where
    F: FnMut(Option<AlertRecord>) -> Option<AlertRecord> + Send,
{
    update_alert_record_from(store, alert_id, None, change).await
}

/// `update_alert_record`, with the first attempt starting from `known` (a record the caller just
/// read or wrote) instead of a fresh read. Safe because `put` is optimistic: if the record moved
/// on meanwhile, the write is a `Conflict` and the next attempt re-reads.
async fn update_alert_record_from<F>(
    store: &dyn AlertStore,
    alert_id: &str,
    mut known: Option<AlertRecord>,
    mut change: F,
) -> Result<Option<AlertRecord>, StoreError>
where
    F: FnMut(Option<AlertRecord>) -> Option<AlertRecord> + Send,
{
    let mut last_conflict = None;
    for _ in 0..WRITE_ATTEMPTS {
        let current = match known.take() {
            Some(record) => Some(record),
            None => store.get(alert_id).await?,
        };
        let Some(next) = change(current.clone()) else {
            return Ok(current);
        };
        match store.put(&next).await {
            Ok(()) => return Ok(Some(next)),
            Err(conflict @ StoreError::Conflict { .. }) => last_conflict = Some(conflict),
            Err(other) => return Err(other),
        }
    }
    Err(last_conflict.expect("at least one attempt"))
}

/// Store a freshly fetched alert (out-of-order safe). Returns the stored record and whether the
/// fetched view was stale.
pub async fn store_fetched_alert(
    store: &dyn AlertStore,
    fetched: &Alert,
    now: DateTime<Utc>,
) -> Result<(AlertRecord, bool), StoreError> {
    let mut stale = false;
    let stored = update_alert_record(store, &fetched.id, |existing| {
        // The very view already stored (e.g. the re-fetch just before an action): nothing to
        // write. Everything else on the record derives from the view, so nothing else changes.
        let unchanged = existing.as_ref().is_some_and(|old| old.alert == *fetched);
        match merge_fetched(existing, fetched.clone(), now) {
            Merge::Stale(_) => {
                stale = true;
                None
            }
            Merge::Updated(_) if unchanged => {
                stale = false;
                None
            }
            Merge::Updated(record) => {
                stale = false;
                Some(record)
            }
        }
    })
    .await?;
    Ok((
        stored.expect("a stale merge implies a stored record"),
        stale,
    ))
}

/// Append one decision to the audit trail (and optionally replace the API view), retrying lost
/// races. Used by the policy's "left for a person"; `decision::apply_action` uses
/// `record_decision`. `stored`: the record as the caller just read or wrote it, if it has it, to
/// save the first read.
pub async fn append_decision(
    store: &dyn AlertStore,
    alert_id: &str,
    decision: Decision,
    fresher_view: Option<&Alert>,
    stored: Option<AlertRecord>,
    now: DateTime<Utc>,
) -> Result<Option<AlertRecord>, StoreError> {
    record_decision(store, alert_id, decision, fresher_view, stored, None, now).await
}

/// `append_decision` by the holder of the action claim `claim_owner`: the same write releases
/// the claim (it "becomes" the decision), so no moment exists where neither is on the record.
pub async fn record_decision(
    store: &dyn AlertStore,
    alert_id: &str,
    decision: Decision,
    fresher_view: Option<&Alert>,
    stored: Option<AlertRecord>,
    claim_owner: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<AlertRecord>, StoreError> {
    update_alert_record_from(store, alert_id, stored, |existing| {
        with_decision(existing, &decision, fresher_view, claim_owner, now)
    })
    .await
}

/// The record `record_decision` writes (pure): `decision` appended to `existing` (once), the
/// fresher view merged in, the claim of `claim_owner` cleared; `None` when there is no record.
pub fn with_decision(
    existing: Option<AlertRecord>,
    decision: &Decision,
    fresher_view: Option<&Alert>,
    claim_owner: Option<&str>,
    now: DateTime<Utc>,
) -> Option<AlertRecord> {
    let mut record = match (existing, fresher_view) {
        (existing, Some(view)) => {
            match merge_view(existing, view.clone(), now, !decision.result.is_final()) {
                Merge::Stale(mut old) => {
                    old.revision += 1;
                    old
                }
                Merge::Updated(record) => record,
            }
        }
        (Some(mut old), None) => {
            old.revision += 1;
            old
        }
        (None, None) => return None,
    };
    // A final decision takes the alert off the action queue even before the next fetch.
    if decision.result.is_final() {
        record.action_queue = None;
    }
    if claim_owner.is_some()
        && record.action_claim.as_ref().map(|c| c.owner.as_str()) == claim_owner
    {
        record.action_claim = None;
    }
    // The same decision twice (a retried write whose first attempt landed) is kept once.
    if !record.decisions.contains(decision) {
        record.decisions.push(decision.clone());
    }
    Some(record)
}

/// `store_fetched_alert`, then: an Ethoca alert waiting for an action without an
/// `action_required_deadline` is one the sweep cannot act on in time, so a person is told,
/// once (`no_deadline_notified_at`, set with a conditional write before notifying and cleared
/// again if the notification fails, so the next store tells again). It stays visible: it keeps
/// its `action_queue`, and the DynamoDB store gives it a `deadline-index` sort key that sorts
/// before every real deadline (see `adapters::dynamo::alerts`), so the ops queue lists it and
/// the sweep reads it first (and leaves it alone: no deadline, no cutoff).
pub async fn store_fetched_alert_notifying(
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    fetched: &Alert,
    now: DateTime<Utc>,
) -> Result<(AlertRecord, bool), DecisionError> {
    let (record, stale) = store_fetched_alert(store, fetched, now).await?;
    let needs_notice =
        |r: &AlertRecord| r.waits_without_deadline() && r.no_deadline_notified_at.is_none();
    if !needs_notice(&record) {
        return Ok((record, stale));
    }
    let mut marked = false;
    let alert_id = record.alert_id.clone();
    let after = update_alert_record_from(store, &alert_id, Some(record.clone()), |current| {
        marked = false;
        let mut r = current?;
        if !needs_notice(&r) {
            return None;
        }
        r.no_deadline_notified_at = Some(iso(now));
        r.revision += 1;
        marked = true;
        Some(r)
    })
    .await?
    .unwrap_or(record);
    if !marked {
        return Ok((after, stale));
    }
    let sent = notifier
        .notify(&OpsNotification {
            kind: "alert.no_deadline".into(),
            subject: format!(
                "Alert {} waits for an action but has no deadline: decide it by hand",
                after.alert_id
            ),
            organisation_id: Some(after.alert.organisation_id.clone()),
            object_id: after.alert_id.clone(),
            status: Some(after.alert.status.to_string()),
            note: Some(
                "ChargebackStop gave no action_required_deadline; the deadline sweep cannot act on it"
                    .into(),
            ),
            at: iso(now),
        })
        .await;
    if let Err(e) = sent {
        let unmark = update_alert_record(store, &after.alert_id, |current| {
            let mut r = current?;
            r.no_deadline_notified_at.take()?;
            r.revision += 1;
            Some(r)
        })
        .await;
        if let Err(unmark) = unmark {
            tracing::error!(alert_id = %after.alert_id, error = %unmark,
                "no-deadline notice failed and could not be unmarked: it will not be sent again");
        }
        return Err(e.into());
    }
    tracing::warn!(alert_id = %after.alert_id, "actionable alert without a deadline: operations told");
    Ok((after, stale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{alert, ts};

    #[test]
    fn resolved_outranks_action_required_without_updated_at() {
        let waiting = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
        let resolved = alert("a1", "ETHOCA_ALERT", "RESOLVED", 4900);
        assert!(version_key(&waiting) < version_key(&resolved));
        let stored = match merge_fetched(None, resolved, ts("2026-11-24T10:00:00Z")) {
            Merge::Updated(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(stored.action_queue, None);
        // The late ACTION_REQUIRED view must not win.
        assert!(matches!(
            merge_fetched(Some(stored), waiting, ts("2026-11-24T10:01:00Z")),
            Merge::Stale(_)
        ));
    }

    #[test]
    fn updated_at_orders_views_of_the_same_status() {
        let mut older = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
        older.updated_at = Some(ts("2026-11-24T09:00:00Z"));
        let mut newer = older.clone();
        newer.updated_at = Some(ts("2026-11-24T09:05:00Z"));
        newer.note = Some("newer".into());
        let Merge::Updated(stored) = merge_fetched(None, newer, ts("2026-11-24T10:00:00Z")) else {
            panic!()
        };
        assert!(matches!(
            merge_fetched(Some(stored.clone()), older, ts("2026-11-24T10:00:00Z")),
            Merge::Stale(_)
        ));
        // The same view again is not stale (idempotent re-store).
        assert!(matches!(
            merge_fetched(
                Some(stored.clone()),
                stored.alert.clone(),
                ts("2026-11-24T10:00:00Z")
            ),
            Merge::Updated(_)
        ));
    }

    #[test]
    fn action_queue_is_set_only_for_waiting_ethoca_alerts() {
        let now = ts("2026-11-24T10:00:00Z");
        let cases = [
            ("ETHOCA_ALERT", "ACTION_REQUIRED", true),
            ("ETHOCA_ALERT", "RESOLVED", false),
            ("VERIFI_RDR", "RESOLVED", false),
            ("VERIFI_RDR", "INVALID", false),
        ];
        for (kind, status, queued) in cases {
            let Merge::Updated(r) = merge_fetched(None, alert("a", kind, status, 100), now) else {
                panic!()
            };
            assert_eq!(r.action_queue.is_some(), queued, "{kind} {status}");
            assert_eq!(r.informational, kind == "VERIFI_RDR");
        }
    }

    #[test]
    fn a_resolution_we_did_not_record_is_noted_in_the_audit_trail() {
        let now = ts("2026-11-24T10:00:00Z");
        let Merge::Updated(waiting) = merge_fetched(
            None,
            alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 100),
            now,
        ) else {
            panic!()
        };
        let Merge::Updated(resolved) = merge_fetched(
            Some(waiting),
            alert("a", "ETHOCA_ALERT", "RESOLVED", 100),
            now,
        ) else {
            panic!()
        };
        assert_eq!(resolved.decisions.len(), 1);
        assert_eq!(
            resolved.decisions[0].result,
            DecisionResult::ResolvedElsewhere
        );
        assert_eq!(resolved.decisions[0].source, DecisionSource::Observed);
        assert_eq!(resolved.revision, 2);
    }

    #[tokio::test]
    async fn storing_the_same_view_again_writes_nothing() {
        use crate::adapters::memory::MemoryAlertStore;
        let store = MemoryAlertStore::default();
        let waiting = alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
        let now = ts("2026-11-24T10:00:00Z");
        let (first, _) = store_fetched_alert(&store, &waiting, now).await.unwrap();
        let (again, stale) = store_fetched_alert(&store, &waiting, now).await.unwrap();
        assert!(!stale);
        assert_eq!(again.revision, first.revision, "no second write");
        let resolved = alert("a", "ETHOCA_ALERT", "RESOLVED", 100);
        let (changed, _) = store_fetched_alert(&store, &resolved, now).await.unwrap();
        assert_eq!(changed.revision, first.revision + 1);
        assert_eq!(changed.action_queue, None);
    }

    #[test]
    fn overlay_keeps_fields_the_patch_response_lacks() {
        let full = alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
        let mut partial = alert("a", "ETHOCA_ALERT", "RESOLVED", 0);
        partial.transaction_amount_in_cents = None;
        partial.action_required_deadline = None;
        let merged = overlay(&full, &partial);
        assert_eq!(merged.status, AlertStatus::Resolved);
        assert_eq!(merged.transaction_amount_in_cents, Some(4900));
        assert_eq!(
            merged.action_required_deadline,
            full.action_required_deadline
        );
    }

    #[tokio::test]
    async fn a_waiting_alert_without_deadline_is_notified_once_and_stays_queued_first() {
        use crate::adapters::memory::{MemoryAlertStore, RecordingNotifier};
        let store = MemoryAlertStore::default();
        let notifier = RecordingNotifier::default();
        let now = ts("2026-11-24T10:00:00Z");
        let dated = alert("dated", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
        store_fetched_alert_notifying(&store, &notifier, &dated, now)
            .await
            .unwrap();
        assert!(notifier.sent().is_empty(), "a deadline: nothing to tell");

        let mut undated = alert("undated", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
        undated.action_required_deadline = None;
        let (stored, _) = store_fetched_alert_notifying(&store, &notifier, &undated, now)
            .await
            .unwrap();
        assert!(stored.action_queue.is_some());
        assert!(stored.no_deadline_notified_at.is_some());
        // Stored again (a second event, reconciliation): told once.
        undated.note = Some("changed".into());
        store_fetched_alert_notifying(&store, &notifier, &undated, now)
            .await
            .unwrap();
        let sent = notifier.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].kind, "alert.no_deadline");
        assert_eq!(sent[0].object_id, "undated");
        // In the action queue, before every alert with a deadline.
        let queue = store
            .awaiting_action_until("9999-12-31T23:59:59Z", 10)
            .await
            .unwrap();
        let ids: Vec<&str> = queue.iter().map(|r| r.alert_id.as_str()).collect();
        assert_eq!(ids, vec!["undated", "dated"]);

        let rdr = alert("rdr", "VERIFI_RDR", "ACTION_REQUIRED", 100);
        let mut rdr = rdr;
        rdr.action_required_deadline = None;
        store_fetched_alert_notifying(&store, &notifier, &rdr, now)
            .await
            .unwrap();
        assert_eq!(notifier.sent().len(), 1, "RDR alerts are never actioned");
    }
}
