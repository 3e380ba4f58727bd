//! The webhook archive: every delivery the edge accepted, kept raw (the body bytes exactly as
//! verified, the headers we used, the signature timestamp, the delivery id, when it arrived),
//! whatever its type, for a configurable retention (default 400 days, past any dispute window).
//! It is what `cbs events replay` and `cbs rebuild` read.
//!
//! One item per event id and delivery id: archiving the same delivery twice (a redelivery of the
//! SQS message, a redrive from the DLQ) stores it once.
//!
//! The archive also keeps the dead-letter counters (how many messages reached the DLQ since it
//! was last drained, per kind of reason), which decide when operations are notified.

use super::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Default retention: past any card scheme's dispute window (120 days from the transaction plus
/// representment rounds), with room.
pub const DEFAULT_ARCHIVE_RETENTION_DAYS: u32 = 400;

/// Counters whose kind starts with this count the deliveries the edge refused, one counter per
/// day (`refused:2026-12-01`, `domain::recovery::refused`). Nothing drains refused deliveries,
/// so a DLQ drain (`reset_dead_letter_counts`) leaves them alone.
pub const REFUSED_COUNTER_PREFIX: &str = "refused:";

/// One accepted webhook delivery, as the edge verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedDelivery {
    /// The envelope's `id` (or, for a body that is not an envelope, what the Worker used).
    pub event_id: String,
    /// `X-Idempotency-Key`, the same on every retry of one delivery; `none` when absent.
    pub delivery_id: String,
    /// The envelope's `type` (`unparseable` when it could not be read).
    pub event_type: String,
    /// `data.object.id` when there is one.
    pub object_id: Option<String>,
    /// `data.object.organisation_id` when there is one (for `--organisation`).
    pub organisation_id: Option<String>,
    /// When the edge received it (ISO 8601, the one format of the tables).
    pub received_at: String,
    /// The `t=` of `X-Signature` the edge verified.
    pub signature_timestamp: Option<i64>,
    /// The request headers the edge used, as it forwarded them.
    pub headers: BTreeMap<String, String>,
    /// The body bytes exactly as verified.
    pub body: Vec<u8>,
    /// When it was archived (ISO 8601).
    pub archived_at: String,
    /// Retention end, epoch seconds (the table's TTL attribute).
    pub expires_at: i64,
}

impl ArchivedDelivery {
    /// The body as text (every body the processor can read is UTF-8).
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// What to read back from the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
}

#[async_trait::async_trait]
pub trait EventArchive: Send + Sync {
    /// Conditional put: `true` when stored now, `false` when this event id and delivery id were
    /// already archived (nothing is overwritten).
    async fn put(&self, delivery: &ArchivedDelivery) -> Result<bool, StoreError>;

    /// Every archived delivery of one event, oldest first.
    async fn deliveries_of(&self, event_id: &str) -> Result<Vec<ArchivedDelivery>, StoreError>;

    /// Every delivery received in `[since, until)`, oldest first (by received day, then time).
    async fn received_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ArchivedDelivery>, StoreError>;

    /// Adds one to the dead-letter counter of `kind` and returns the new count.
    async fn count_dead_letter(&self, kind: &str) -> Result<u64, StoreError>;

    /// The counter of `kind` as it stands (0 when never counted), without changing it.
    async fn dead_letter_count(&self, kind: &str) -> Result<u64, StoreError>;

    /// Sets every dead-letter counter back to zero (the DLQ was drained), except the refused
    /// deliveries' per-day counters (`REFUSED_COUNTER_PREFIX`).
    async fn reset_dead_letter_counts(&self) -> Result<(), StoreError>;
}
