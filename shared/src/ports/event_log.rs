//! The processed-events log: the idempotency record of each webhook event (AWS Powertools'
//! design). A worker first *claims* an event with a conditional write (IN_PROGRESS with an
//! expiry), applies it, then marks it COMPLETED with its outcome. A COMPLETED record makes any
//! redelivery a no-op for 30 days, far past ChargebackStop's 2-day retry window.
//!
//! Every claim carries a fresh token, and `complete`, `release` and `dead_letter` only act on
//! the record while it still holds *that* token: a run whose claim expired and was taken over
//! can no longer finish or drop the claim of the run that took it over.

use super::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long a COMPLETED event is remembered (DynamoDB TTL on `expires_at`).
pub const EVENT_RETENTION_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    InProgress,
    Completed,
    /// Given up on (e.g. its object stayed 404 past the retry window) and sent to the
    /// dead-letter queue; `outcome` holds the reason. A redrive from the DLQ may claim it again.
    DeadLettered,
}

/// What we know about a delivered event before applying it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventArrival {
    pub event_id: String,
    pub event_type: String,
    /// `data.object.id` (alert or enrolment id), when there is one.
    pub object_id: Option<String>,
    /// `X-Idempotency-Key`: the delivery id, the same on every retry (for tracing only).
    pub idempotency_key: Option<String>,
    /// The `t=` of `X-Signature` as the edge verified it.
    pub signature_timestamp: Option<i64>,
    /// When the edge received the webhook (ISO 8601), if it said so.
    pub received_at: Option<String>,
    /// The event's own `created_at`.
    pub created_at: String,
    pub api_version: Option<String>,
    /// The raw body, kept only for event types we do not interpret.
    pub raw_payload: Option<String>,
    /// SQS ApproximateReceiveCount of this delivery.
    pub receive_count: u32,
}

/// One item of the `events` table (README "State in DynamoDB").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub status: EventStatus,
    /// While IN_PROGRESS: after this instant another worker may take the event over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_until: Option<String>,
    /// The token of the claim that holds (or last held) the record; see the module docs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
    pub claimed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// COMPLETED: what applying did; DEAD_LETTERED: why it was given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<String>,
    #[serde(default)]
    pub receive_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_payload: Option<String>,
    /// TTL attribute, epoch seconds. Also checked in the claim condition, because TTL deletion
    /// can lag up to 48 hours.
    pub expires_at: i64,
}

impl EventRecord {
    pub fn in_progress(
        arrival: &EventArrival,
        now: DateTime<Utc>,
        in_progress_until: DateTime<Utc>,
        claim_token: &str,
    ) -> Self {
        EventRecord {
            event_id: arrival.event_id.clone(),
            event_type: arrival.event_type.clone(),
            object_id: arrival.object_id.clone(),
            idempotency_key: arrival.idempotency_key.clone(),
            signature_timestamp: arrival.signature_timestamp,
            received_at: arrival.received_at.clone(),
            created_at: arrival.created_at.clone(),
            api_version: arrival.api_version.clone(),
            status: EventStatus::InProgress,
            in_progress_until: Some(iso(in_progress_until)),
            claim_token: Some(claim_token.to_string()),
            claimed_at: iso(now),
            completed_at: None,
            outcome: None,
            dead_lettered_at: None,
            receive_count: arrival.receive_count,
            raw_payload: arrival.raw_payload.clone(),
            expires_at: (now + chrono::Duration::days(EVENT_RETENTION_DAYS)).timestamp(),
        }
    }

    /// Whether a new claim at `now` may replace this record (the same rule the DynamoDB
    /// condition expresses): the record has expired, it was dead-lettered (a redrive), or it is
    /// IN_PROGRESS past its deadline.
    pub fn can_be_claimed_at(&self, now: DateTime<Utc>) -> bool {
        if self.expires_at < now.timestamp() || self.status == EventStatus::DeadLettered {
            return true;
        }
        self.status == EventStatus::InProgress
            && self
                .in_progress_until
                .as_deref()
                .is_some_and(|until| until < iso(now).as_str())
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This worker owns the event until `in_progress_until`: apply it, then complete it with
    /// this token.
    Acquired { token: String },
    /// Already applied (a duplicate or a late retry): acknowledge and do nothing.
    AlreadyCompleted { outcome: Option<String> },
    /// Another worker is applying it right now: let SQS redeliver later.
    InProgressElsewhere { until: Option<String> },
}

#[async_trait::async_trait]
pub trait EventLog: Send + Sync {
    /// Conditional put of an IN_PROGRESS record with a new claim token; succeeds when there is
    /// no record, when the record has expired or was dead-lettered, or when an IN_PROGRESS
    /// record is past `in_progress_until`.
    async fn claim(
        &self,
        arrival: &EventArrival,
        now: DateTime<Utc>,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Mark the event applied with its outcome (e.g. `alert_stored`, `alert_actioned:REFUND`).
    /// Only while the record is IN_PROGRESS under `token`; otherwise `StoreError::Conflict`
    /// (our claim was taken over: the redelivery sorts it out).
    async fn complete(
        &self,
        event_id: &str,
        token: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Drop our IN_PROGRESS record after a failure, so the redelivery can claim the event at
    /// once instead of waiting for `in_progress_until` (Powertools does the same). Leaves the
    /// record alone (and succeeds) when it is no longer IN_PROGRESS under `token`.
    async fn release(&self, event_id: &str, token: &str) -> Result<(), StoreError>;

    /// Mark the event DEAD_LETTERED with the reason, under the same condition as `complete`.
    async fn dead_letter(
        &self,
        event_id: &str,
        token: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn get(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// For a replay with `--reprocess`: lets a COMPLETED event be claimed again by marking its
    /// record expired (its outcome stays until the new claim replaces it). `Ok(false)` when the
    /// record is not COMPLETED (nothing to reopen).
    async fn reopen(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// A fresh claim token (random, unique per claim).
pub fn new_claim_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The one timestamp format of the tables: ISO 8601 UTC with milliseconds and `Z`, so that
/// stored timestamps compare correctly as strings (also inside DynamoDB conditions).
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
