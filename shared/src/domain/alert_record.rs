//! How an alert is kept in the `alerts` table, and the rule that keeps it right when events
//! arrive late, twice or out of order: we always store what `GET /v1/alerts/{id}` returned, and
//! an older view never replaces a newer one.
//!
//! "Older" is decided by `version_key = "<rank>#<updated_at>"`. Alerts in the API carry no
//! `updated_at` in the documented samples, so the status rank comes first: ACTION_REQUIRED (1)
//! < RESOLVED or INVALID (2). An alert's status only moves forward (a resolved alert "cannot be
//! changed anymore"), so a higher rank is always newer; `updated_at`, when present, orders views
//! of the same rank (e.g. a note change). Unknown statuses rank 1.

use super::decision::{Decision, DecisionResult, DecisionSource};
use crate::models::alert::{Alert, AlertStatus};
use crate::models::enrolment::EnrolmentType;
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The value of the sparse `action_queue` attribute (pk of `deadline-index`) while an Ethoca
/// alert is ACTION_REQUIRED; absent otherwise, so resolved alerts leave the index.
pub const ACTION_QUEUE: &str = "ETHOCA_ACTION_REQUIRED";

/// How many times a lost optimistic-write race is retried before giving the event back to SQS.
const WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Table key (= `alert.id`).
    pub alert_id: String,
    /// Every field as last fetched from the API, stored top-level (GSI keys among them).
    #[serde(flatten)]
    pub alert: Alert,
    pub version_key: String,
    pub fetched_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_queue: Option<String>,
    /// The audit trail: every decision, automatic or not, with its reason and source.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// Deadline warnings already sent (owned by the deadline sweep).
    #[serde(default)]
    pub warned_thresholds: Vec<String>,
    /// A deadline warning claimed by a sweep and not yet confirmed sent (owned by the deadline
    /// sweep): once `until` has passed, a later run sends it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_warning: Option<PendingWarning>,
    /// RDR alerts: stored for information, never actioned.
    #[serde(default)]
    pub informational: bool,
    /// Optimistic-concurrency counter, +1 on every write.
    pub revision: u64,
}

/// A deadline warning being sent: the thresholds it covers, and until when the run that claimed
/// it may still send it (its invocation's deadline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWarning {
    pub labels: Vec<String>,
    pub tightest: String,
    /// ISO 8601 UTC.
    pub until: String,
}

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

impl AlertRecord {
    /// Whether any decision already produced (or found) a final outcome.
    pub fn has_final_decision(&self) -> bool {
        self.decisions.iter().any(|d| d.result.is_final())
    }

    pub fn was_left_for_person(&self) -> bool {
        self.decisions
            .iter()
            .any(|d| d.result == DecisionResult::LeftForPerson)
    }
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
/// races. Used by `decision::apply_action` and the policy's "left for a person". `stored`: the
/// record as the caller just read or wrote it, if it has it, to save the first read.
pub async fn append_decision(
    store: &dyn AlertStore,
    alert_id: &str,
    decision: Decision,
    fresher_view: Option<&Alert>,
    stored: Option<AlertRecord>,
    now: DateTime<Utc>,
) -> Result<Option<AlertRecord>, StoreError> {
    update_alert_record_from(store, alert_id, stored, |existing| {
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
        // The same decision twice (a retried write whose first attempt landed) is kept once.
        if !record.decisions.contains(&decision) {
            record.decisions.push(decision.clone());
        }
        Some(record)
    })
    .await
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
}
