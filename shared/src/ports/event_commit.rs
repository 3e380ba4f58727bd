//! Writing what one webhook event changes in as few DynamoDB requests as possible: the raw
//! delivery for the archive, the event's idempotency record and the alert or enrolment record,
//! all or nothing in one `TransactWriteItems` (one write request; DynamoDB charges each item of
//! a transaction twice the WCU of a plain write).
//!
//! Every item keeps the condition its own single write has (`EventLog::claim`'s rule, the
//! stores' revision and `version_key` checks); if any fails, the whole commit is refused and
//! nothing is written. The archive item is written "if absent" without a condition, so archiving
//! a delivery a second time never refuses a commit and never overwrites what was kept.

use super::event_archive::ArchivedDelivery;
use super::event_log::{EventRecord, EventStatus};
use super::store_error::StoreError;
use super::transaction_index::IndexWrite;
use crate::records::alert::AlertRecord;
use crate::records::enrolment::EnrolmentRecord;

/// What a commit does to the event's idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub enum EventWrite {
    /// Put `record` (IN_PROGRESS under its claim token, or already COMPLETED / DEAD_LETTERED
    /// when nothing irreversible happens in between) on the claim condition: no record, an
    /// expired or dead-lettered one, or an IN_PROGRESS one past its `in_progress_until`
    /// (`EventRecord::can_be_claimed_at`).
    Claim(Box<EventRecord>),
    /// Move our IN_PROGRESS record under `token` to `status` (COMPLETED or DEAD_LETTERED) with
    /// `outcome`; refused when the record no longer holds our token.
    Finish {
        event_id: String,
        token: String,
        status: EventStatus,
        outcome: String,
        at: String,
    },
    /// Delete our IN_PROGRESS record under `token` (after a failure, so the redelivery can
    /// claim at once); refused when it no longer holds our token.
    Release { event_id: String, token: String },
}

impl EventWrite {
    pub fn event_id(&self) -> &str {
        match self {
            EventWrite::Claim(r) => &r.event_id,
            EventWrite::Finish { event_id, .. } | EventWrite::Release { event_id, .. } => event_id,
        }
    }
}

/// The writes of one commit; each part optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCommit {
    pub archive: Option<ArchivedDelivery>,
    pub event: Option<EventWrite>,
    /// Revision-checked like `AlertStore::put`.
    pub alert: Option<AlertRecord>,
    /// Revision-checked like `EnrolmentStore::put`.
    pub enrolment: Option<EnrolmentRecord>,
    /// Transactions-index entries the matching wrote for the event (`transaction_index::held`):
    /// unconditional, idempotent.
    pub index: Vec<IndexWrite>,
}

impl EventCommit {
    pub fn is_empty(&self) -> bool {
        self.archive.is_none()
            && self.event.is_none()
            && self.alert.is_none()
            && self.enrolment.is_none()
            && self.index.is_empty()
    }

    pub fn archive_only(archive: Option<ArchivedDelivery>) -> Self {
        Self {
            archive,
            ..Self::default()
        }
    }
}

/// Why a commit wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The event record's condition failed (the same as a refused `EventLog::claim`, or a
    /// `complete` whose claim was taken over): `stored` is the record as it stands when the
    /// store returned it. Takes precedence over a conflict of the other items.
    #[error("event {event_id}: {conflict}")]
    EventRefused {
        event_id: String,
        stored: Option<Box<EventRecord>>,
        conflict: StoreError,
    },
    /// Another item's condition failed (an alert or enrolment revision race): the
    /// `StoreError::Conflict` its own `put` answers.
    #[error(transparent)]
    Conflict(StoreError),
    /// The commit failed as a whole (throttling, a transaction conflict, the table unreachable):
    /// nothing was written, or, after a timeout, we cannot know.
    #[error(transparent)]
    Store(StoreError),
}

impl CommitError {
    /// The store error this is, for callers that do not look closer.
    pub fn into_store_error(self) -> StoreError {
        match self {
            CommitError::EventRefused { conflict, .. } => conflict,
            CommitError::Conflict(e) | CommitError::Store(e) => e,
        }
    }
}

#[async_trait::async_trait]
pub trait EventCommitter: Send + Sync {
    /// Writes every part of `commit` or none. An empty commit writes nothing and costs nothing.
    async fn commit(&self, commit: &EventCommit) -> Result<(), CommitError>;
}
