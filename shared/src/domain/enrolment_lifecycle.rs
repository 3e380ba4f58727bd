//! Whether a customer's enrolment is live, blocked or inactive, from the enrolment as
//! `GET /v2/enrolments/{id}` returns it (the partner guide's "recommended handling"):
//! - ENABLED: live; start expecting alerts.
//! - ACTION_REQUIRED, FAILED: not live; keep the customer-facing `note` and tell operations.
//! - CANCELLED, PAUSED, UNENROLLED: inactive.
//! - PENDING, IN_PROGRESS (and unknown statuses): stored, not live.
//!
//! Enrolment statuses move both ways (ENABLED → PAUSED → ENABLED), so order comes from
//! `updated_at` alone: `version_key` is its ISO form, and an older view never replaces a newer.

use crate::models::enrolment::{Enrolment, EnrolmentStatus};
use crate::ports::event_log::iso;
use crate::ports::notifier::OpsNotification;
use chrono::{DateTime, Utc};

/// The record and its history entry live in `records` (below both this and the store port);
/// re-exported here for the code that always found them here.
pub use crate::records::enrolment::{EnrolmentRecord, StatusChange};

/// What the partner should make of the enrolment now (also the event's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentState {
    Live,
    NeedsAttention,
    Inactive,
    Pending,
}

impl EnrolmentState {
    pub fn of(status: &EnrolmentStatus) -> Self {
        if status.is_live() {
            EnrolmentState::Live
        } else if status.needs_attention() {
            EnrolmentState::NeedsAttention
        } else if status.is_inactive() {
            EnrolmentState::Inactive
        } else {
            EnrolmentState::Pending
        }
    }

    pub fn as_outcome(&self) -> &'static str {
        match self {
            EnrolmentState::Live => "enrolment_live",
            EnrolmentState::NeedsAttention => "enrolment_needs_attention",
            EnrolmentState::Inactive => "enrolment_inactive",
            EnrolmentState::Pending => "enrolment_pending",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentMerge {
    /// Older than what is stored: nothing to write, nobody to tell.
    Stale(EnrolmentRecord),
    Updated {
        record: EnrolmentRecord,
        /// Set when the enrolment has just entered ACTION_REQUIRED or FAILED.
        notify: Option<OpsNotification>,
    },
}

pub fn version_key(enrolment: &Enrolment) -> String {
    enrolment.updated_at.map(iso).unwrap_or_default()
}

/// Merge a fetched enrolment into the stored record (pure).
pub fn merge_fetched(
    existing: Option<EnrolmentRecord>,
    mut fetched: Enrolment,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> EnrolmentMerge {
    let key = version_key(&fetched);
    let previous_status = existing.as_ref().map(|r| r.enrolment.status.clone());
    let mut record = match existing {
        Some(old) if key < old.version_key => return EnrolmentMerge::Stale(old),
        Some(old) => old,
        None => EnrolmentRecord {
            enrolment_id: fetched.id.clone(),
            enrolment: fetched.clone(),
            version_key: String::new(),
            fetched_at: String::new(),
            live: false,
            status_history: Vec::new(),
            revision: 0,
        },
    };
    let status_changed = previous_status.as_ref() != Some(&fetched.status);
    if fetched.status.needs_attention() && fetched.note.is_none() && !status_changed {
        fetched.note = record.enrolment.note.clone();
    }
    let notify = (status_changed && fetched.status.needs_attention()).then(|| OpsNotification {
        kind: format!("enrolment.{}", fetched.status.as_str().to_ascii_lowercase()),
        subject: format!(
            "Enrolment {} ({}) is {}: go-live blocked",
            fetched.id, fetched.enrolment_type, fetched.status
        ),
        organisation_id: Some(fetched.organisation_id.clone()),
        object_id: fetched.id.clone(),
        status: Some(fetched.status.to_string()),
        note: fetched.note.clone(),
        at: iso(now),
    });
    if status_changed {
        record.status_history.push(StatusChange {
            status: fetched.status.clone(),
            at: fetched.updated_at.map(iso).unwrap_or_else(|| iso(now)),
            note: fetched.note.clone(),
            event_id: event_id.map(str::to_string),
        });
    }
    record.live = fetched.status.is_live();
    record.version_key = key;
    record.fetched_at = iso(now);
    record.enrolment = fetched;
    record.revision += 1;
    EnrolmentMerge::Updated { record, notify }
}

/// How many times a lost optimistic-write race is retried before giving up (the caller retries
/// later: a redelivery, or the next reconciliation pass).
const WRITE_ATTEMPTS: usize = 5;

/// What [`store_fetched_enrolment`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentStored {
    /// Nothing written: the stored view is newer, or (for a poll) exactly this one.
    Kept(Option<EnrolmentRecord>),
    /// Written; `was_known` tells a refresh from an enrolment we did not hold.
    Written {
        record: EnrolmentRecord,
        was_known: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreEnrolmentError {
    #[error(transparent)]
    Store(#[from] crate::ports::store_error::StoreError),
    #[error(transparent)]
    Notify(#[from] crate::ports::notifier::NotifyError),
}

/// Store an enrolment as `GET /v2/enrolments...` returned it, through the versioned merge,
/// retrying lost races; operations are told before the write when it has just become
/// ACTION_REQUIRED or FAILED (if the write then fails, the retry tells again: at least once,
/// never not at all). `event_id` is the webhook event that led here; a poll (`None`) that sees
/// exactly what is stored writes nothing. The one way event processing and reconciliation
/// store enrolments.
pub async fn store_fetched_enrolment(
    store: &dyn crate::ports::enrolment_store::EnrolmentStore,
    notifier: &dyn crate::ports::notifier::Notifier,
    fetched: &Enrolment,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<EnrolmentStored, StoreEnrolmentError> {
    use crate::ports::store_error::StoreError;
    let mut last_conflict = None;
    for _ in 0..WRITE_ATTEMPTS {
        let existing = store.get(&fetched.id).await?;
        let was_known = existing.is_some();
        if event_id.is_none() && existing.as_ref().is_some_and(|r| r.enrolment == *fetched) {
            return Ok(EnrolmentStored::Kept(existing));
        }
        match merge_fetched(existing, fetched.clone(), event_id, now) {
            EnrolmentMerge::Stale(stored) => return Ok(EnrolmentStored::Kept(Some(stored))),
            EnrolmentMerge::Updated { record, notify } => {
                if let Some(n) = &notify {
                    notifier.notify(n).await?;
                }
                match store.put(&record).await {
                    Ok(()) => return Ok(EnrolmentStored::Written { record, was_known }),
                    Err(c @ StoreError::Conflict { .. }) => last_conflict = Some(c),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(last_conflict.expect("at least one attempt").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{enrolment, ts};

    fn apply(
        existing: Option<EnrolmentRecord>,
        e: Enrolment,
    ) -> (EnrolmentRecord, Option<OpsNotification>) {
        match merge_fetched(existing, e, Some("evt"), ts("2026-11-24T10:00:00Z")) {
            EnrolmentMerge::Updated { record, notify } => (record, notify),
            EnrolmentMerge::Stale(r) => panic!("stale: {r:?}"),
        }
    }

    #[test]
    fn pending_to_enabled_goes_live_with_history() {
        let (r, n) = apply(
            None,
            enrolment("enrl_1", "PENDING", "2026-11-24T09:00:00Z", None),
        );
        assert!(!r.live && n.is_none());
        let (r, n) = apply(
            Some(r),
            enrolment("enrl_1", "ENABLED", "2026-11-24T09:10:00Z", None),
        );
        assert!(r.live);
        assert!(n.is_none());
        let statuses: Vec<_> = r
            .status_history
            .iter()
            .map(|c| c.status.to_string())
            .collect();
        assert_eq!(statuses, ["PENDING", "ENABLED"]);
        assert_eq!(r.revision, 2);
    }

    #[test]
    fn action_required_and_failed_keep_the_note_and_notify_once() {
        let (r, n) = apply(
            None,
            enrolment(
                "enrl_1",
                "ACTION_REQUIRED",
                "2026-11-24T09:00:00Z",
                Some("Upload a logo"),
            ),
        );
        let n = n.expect("operations told");
        assert_eq!(n.kind, "enrolment.action_required");
        assert_eq!(n.note.as_deref(), Some("Upload a logo"));
        assert!(!r.live);
        // The same status again (a duplicate or a note-less update): no second notification,
        // and the note is kept.
        let (r, n) = apply(
            Some(r),
            enrolment("enrl_1", "ACTION_REQUIRED", "2026-11-24T09:05:00Z", None),
        );
        assert!(n.is_none());
        assert_eq!(r.enrolment.note.as_deref(), Some("Upload a logo"));
        let (r, n) = apply(
            Some(r),
            enrolment("enrl_1", "FAILED", "2026-11-24T09:10:00Z", Some("Rejected")),
        );
        assert_eq!(n.unwrap().kind, "enrolment.failed");
        assert_eq!(r.status_history.len(), 2);
    }

    #[test]
    fn cancelled_paused_unenrolled_are_inactive() {
        let (live, _) = apply(
            None,
            enrolment("enrl_1", "ENABLED", "2026-11-24T09:00:00Z", None),
        );
        for (i, status) in ["PAUSED", "CANCELLED", "UNENROLLED"].iter().enumerate() {
            let at = format!("2026-11-24T09:0{}:00Z", i + 1);
            let (r, n) = apply(Some(live.clone()), enrolment("enrl_1", status, &at, None));
            assert!(!r.live, "{status}");
            assert!(n.is_none());
            assert_eq!(
                EnrolmentState::of(&r.enrolment.status),
                EnrolmentState::Inactive
            );
        }
    }

    #[test]
    fn an_older_view_never_replaces_a_newer_one() {
        let (r, _) = apply(
            None,
            enrolment("enrl_1", "ENABLED", "2026-11-24T09:10:00Z", None),
        );
        let older = enrolment("enrl_1", "PENDING", "2026-11-24T09:00:00Z", None);
        assert!(matches!(
            merge_fetched(Some(r), older, None, ts("2026-11-24T10:00:00Z")),
            EnrolmentMerge::Stale(_)
        ));
    }
}
