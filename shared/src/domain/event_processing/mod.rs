//! Applying one webhook event from the edge queue, exactly once in effect, in at most two
//! DynamoDB write requests (`ports::event_commit`: one `TransactWriteItems` each).
//!
//! 1. Parse the envelope. Unusable (not JSON, no id, an alert/enrolment without an object id)
//!    is a *poison* message: it is archived, and the function sends it to the dead-letter queue
//!    at once, with the reason, and tells operations.
//! 2. Read the event's record in the `events` table (strongly consistent). COMPLETED → a
//!    duplicate: acknowledge, do nothing (the delivery is archived: one write). IN_PROGRESS
//!    and not expired → busy: let SQS redeliver later.
//! 3. Apply: fetch the object from the API and store *that* (never the payload, which may be
//!    late or out of order); alerts then go through the decision policy, enrolments through
//!    the lifecycle; other types are only recorded (raw payload kept in the event record).
//!    Whatever changes is written in ONE commit with the raw delivery (archive) and the event's
//!    record, already COMPLETED with its outcome, on the claim condition: if another run took or
//!    finished the event meanwhile, the commit is refused as a whole and nothing is written.
//!    Only an alert the policy actions takes two: before the irreversible PATCH, the alert's
//!    action claim with the event's IN_PROGRESS claim (and the archive); after it, the decision
//!    with the event's completion (`alerts`).
//!    A 404 on the re-fetch is retried (the failure is retryable) until `not_found_retry_for`
//!    has passed since the event was created; then the event is recorded DEAD_LETTERED with the
//!    reason and handed to the function to dead-letter and notify (`ProcessError::DeadLetter`).
//! 4. On failure nothing is half-written: a refused commit wrote nothing; a claim taken before
//!    the PATCH is released (or expires at the invocation's deadline). A crash between the two
//!    commits leaves IN_PROGRESS, which expires; the redelivery re-applies, which is safe because
//!    applying re-fetches and writes conditionally. Every delivery is archived with the event's
//!    first commit, or on its own when nothing else is written.

mod alerts;
#[cfg(test)]
mod already_current_tests;
#[cfg(test)]
mod commit_tests;
mod enrolments;
pub mod redelivery;
mod refund_first;
#[cfg(test)]
mod tests;

use super::decision::DecisionError;
use crate::clock::Clock;
use crate::event::{EventCategory, WebhookEvent};
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::{PartnerRecords, PolicySource};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_archive::ArchivedDelivery;
use crate::ports::event_commit::{CommitError, EventCommit, EventCommitter, EventWrite};
use crate::ports::event_log::{
    iso, new_claim_token, EventArrival, EventLog, EventRecord, EventStatus,
};
use crate::ports::notifier::{Notifier, NotifyError};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use redelivery::{dead_letter_notification, event_origin};
use std::sync::Arc;

/// One message from the edge queue, as the function hands it over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncomingEvent {
    pub message_id: String,
    pub body: String,
    /// `X-Idempotency-Key` (SQS message attribute `idempotency_key`).
    pub idempotency_key: Option<String>,
    /// The `t=` of `X-Signature` (attribute `signature_timestamp`).
    pub signature_timestamp: Option<i64>,
    /// When the edge received it (attribute `received_at`).
    pub received_at: Option<String>,
    /// SQS ApproximateReceiveCount.
    pub receive_count: u32,
    /// SQS SentTimestamp: when the message was queued.
    pub sent_at: Option<DateTime<Utc>>,
}

/// A successfully handled event (applied now, or a duplicate of one applied before).
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub event_id: String,
    pub event_type: String,
    pub outcome: String,
    pub duplicate: bool,
    /// Alert actions sent to ChargebackStop (0 or 1).
    pub actions_taken: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Unusable message: it would fail on every delivery; it goes to the dead-letter queue now.
    #[error("poison message: {reason}")]
    Poison { reason: String },
    /// A usable event given up on (recorded DEAD_LETTERED): it goes to the dead-letter queue.
    #[error("event {event_id} ({event_type}) dead-lettered: {reason}")]
    DeadLetter {
        event_id: String,
        event_type: String,
        reason: String,
    },
    /// Another invocation holds the event right now.
    #[error("event {event_id} is being applied elsewhere")]
    Busy { event_id: String },
    #[error("event {event_id} ({event_type}) failed: {source}")]
    Failed {
        event_id: String,
        event_type: String,
        #[source]
        source: ApplyError,
    },
}

impl ProcessError {
    /// Worth another delivery soon (5xx, 429, throttling, a race). Every error is still reported
    /// as a batch item failure; this only separates "transient" from "needs a person" in logs.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProcessError::Poison { .. } | ProcessError::DeadLetter { .. } => false,
            ProcessError::Busy { .. } => true,
            ProcessError::Failed { source, .. } => source.is_retryable(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// The API answered 404 for the event's object (a replica behind, or an object we may
    /// never see): retried until `EventProcessor::not_found_retry_for` has passed.
    #[error("{what} {id} not found (404)")]
    NotFound { what: &'static str, id: String },
    /// A commit was refused because the event's record changed under us (another run holds or
    /// finished it): `stored` is what it is now. Nothing of the commit was written.
    #[error("event {event_id} was taken or finished by another run")]
    Taken {
        event_id: String,
        stored: Option<Box<EventRecord>>,
    },
}

impl From<CommitError> for ApplyError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::EventRefused {
                event_id, stored, ..
            } => ApplyError::Taken { event_id, stored },
            CommitError::Conflict(e) | CommitError::Store(e) => ApplyError::Store(e),
        }
    }
}

impl ApplyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Api(e) => e.is_retryable(),
            ApplyError::Store(e) => e.is_retryable(),
            ApplyError::Notify(e) => e.is_retryable(),
            ApplyError::NotFound { .. } | ApplyError::Taken { .. } => true,
        }
    }
}

impl From<crate::domain::refund_hook::RefundFirstError> for ApplyError {
    fn from(e: crate::domain::refund_hook::RefundFirstError) -> Self {
        use crate::domain::refund_hook::RefundFirstError;
        match e {
            RefundFirstError::Decision(e) => e.into(),
            RefundFirstError::Store(e) => ApplyError::Store(e),
            RefundFirstError::Notify(e) => ApplyError::Notify(e),
        }
    }
}

impl From<DecisionError> for ApplyError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::Api(e) => ApplyError::Api(e),
            DecisionError::Store(e) => ApplyError::Store(e),
            DecisionError::Notify(e) => ApplyError::Notify(e),
            // Another holder is actioning the alert: a lost race, redelivered later (by then
            // its decision is recorded and this event completes as already decided).
            DecisionError::ClaimHeld { alert_id, .. } => ApplyError::Store(StoreError::Conflict {
                operation: "claim alert action",
                table: "alerts".into(),
                key: alert_id,
            }),
            // Handled at the call site (`alert_already_decided`); a race lost the same way.
            DecisionError::AlreadyDecided { alert_id, .. } => {
                ApplyError::Store(StoreError::Conflict {
                    operation: "claim alert action",
                    table: "alerts".into(),
                    key: alert_id,
                })
            }
        }
    }
}

/// Everything processing needs, as ports.
#[derive(Clone)]
pub struct EventProcessor {
    pub events: Arc<dyn EventLog>,
    pub alerts: Arc<dyn AlertStore>,
    pub enrolments: Arc<dyn EnrolmentStore>,
    pub alert_api: Arc<dyn AlertApi>,
    pub enrolment_api: Arc<dyn EnrolmentApi>,
    pub notifier: Arc<dyn Notifier>,
    pub policies: Arc<dyn PolicySource>,
    pub partner_records: Arc<dyn PartnerRecords>,
    pub clock: Arc<dyn Clock>,
    /// How long after the event's `created_at` a 404 on its object is still retried.
    pub not_found_retry_for: chrono::Duration,
    /// Refund first in the partner's billing system when its policy names a `refund_hook`
    /// (`domain::refund_hook`); `None`: refunds are sent as decided.
    pub refund_first: Option<Arc<crate::domain::refund_hook::RefundFirst>>,
    /// Writes what an event changes, all or nothing (archive, event record, alert/enrolment).
    pub commits: Arc<dyn EventCommitter>,
}

/// One event on its way: what it writes with its next commit, and its claim once taken.
pub(crate) struct Pending {
    arrival: EventArrival,
    /// The raw delivery, written with the event's first commit that lands.
    archive: Option<ArchivedDelivery>,
    /// When this invocation ends: a claim holds until then.
    until: DateTime<Utc>,
    /// Our claim token, once an IN_PROGRESS record under it was committed.
    claimed: Option<String>,
    /// The last commit failed as a whole (the store is struggling): no second write for now.
    store_failed: bool,
}

impl Pending {
    /// The event's record, taken by us at `now`: IN_PROGRESS under `token`.
    fn claim_record(&self, now: DateTime<Utc>, token: &str) -> EventRecord {
        EventRecord::in_progress(&self.arrival, now, self.until, token)
    }

    /// The event's record, finished at `now` in one step (no claim in between).
    fn finished_record(
        &self,
        now: DateTime<Utc>,
        status: EventStatus,
        outcome: &str,
    ) -> EventRecord {
        let mut record = self.claim_record(now, &new_claim_token());
        record.status = status;
        record.outcome = Some(outcome.to_string());
        record.in_progress_until = None;
        match status {
            EventStatus::DeadLettered => record.dead_lettered_at = Some(iso(now)),
            _ => record.completed_at = Some(iso(now)),
        }
        record
    }

    /// The event write that ends it with `status`: finishing our claim, or the whole record.
    fn finish(&self, now: DateTime<Utc>, status: EventStatus, outcome: &str) -> EventWrite {
        match &self.claimed {
            Some(token) => EventWrite::Finish {
                event_id: self.arrival.event_id.clone(),
                token: token.clone(),
                status,
                outcome: outcome.to_string(),
                at: iso(now),
            },
            None => EventWrite::Claim(Box::new(self.finished_record(now, status, outcome))),
        }
    }
}

struct Applied {
    outcome: String,
    actions_taken: u32,
}

impl Applied {
    fn new(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            actions_taken: 0,
        }
    }
}

/// Parse and check the shape of a message; the reason is what gets logged for a poison message.
pub fn parse_event(body: &str) -> Result<WebhookEvent, ProcessError> {
    let event = WebhookEvent::parse(body.as_bytes()).map_err(|e| ProcessError::Poison {
        reason: e.to_string(),
    })?;
    if event.category() != EventCategory::Other && event.object_id().is_none() {
        return Err(ProcessError::Poison {
            reason: format!(
                "{} event {} has no data.object.id",
                event.event_type, event.id
            ),
        });
    }
    Ok(event)
}

impl EventProcessor {
    /// Process one message. `in_progress_until` is when this invocation times out (a claim
    /// expires then, so a crashed invocation's event is taken over by the redelivery).
    pub async fn process(
        &self,
        incoming: &IncomingEvent,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Processed, ProcessError> {
        self.process_delivery(incoming, None, in_progress_until)
            .await
    }

    /// `process`, archiving `archive` (the raw delivery) with the event's first write: every
    /// delivery handled, applied, duplicate or poison, is archived, or the message comes back.
    /// The transactions-index entries the matching writes go into the same commits.
    pub async fn process_delivery(
        &self,
        incoming: &IncomingEvent,
        archive: Option<ArchivedDelivery>,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Processed, ProcessError> {
        // Boxed: the processing future is large, and a task-local scope holds it inline.
        let processing = Box::pin(self.process_held(incoming, archive, in_progress_until));
        crate::ports::transaction_index::held::hold_during(processing).await
    }

    async fn process_held(
        &self,
        incoming: &IncomingEvent,
        archive: Option<ArchivedDelivery>,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Processed, ProcessError> {
        let event = match parse_event(&incoming.body) {
            Ok(event) => event,
            Err(poison) => {
                if let Some(d) = archive {
                    let (event_id, event_type) = (d.event_id.clone(), d.event_type.clone());
                    self.commits
                        .commit(&EventCommit::archive_only(Some(d)))
                        .await
                        .map_err(|e| ProcessError::Failed {
                            event_id,
                            event_type,
                            source: e.into(),
                        })?;
                }
                return Err(poison);
            }
        };
        let arrival = EventArrival {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            object_id: event.object_id().map(str::to_string),
            idempotency_key: incoming.idempotency_key.clone(),
            signature_timestamp: incoming.signature_timestamp,
            received_at: incoming.received_at.clone(),
            created_at: event.created_at.clone(),
            api_version: event.api_version.clone(),
            raw_payload: (event.category() == EventCategory::Other).then(|| incoming.body.clone()),
            receive_count: incoming.receive_count,
        };
        let failed = |source: ApplyError| ProcessError::Failed {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            source,
        };
        let mut pending = Pending {
            arrival,
            archive,
            until: in_progress_until,
            claimed: None,
            store_failed: false,
        };

        // A duplicate or an event held elsewhere is refused on one consistent read, before
        // anything is fetched from the API.
        let stored = self
            .events
            .get(&event.id)
            .await
            .map_err(|e| failed(e.into()))?;
        let now = self.clock.now();
        if let Some(record) = stored.filter(|r| !r.can_be_claimed_at(now)) {
            return self
                .already_taken(&event, &mut pending, Some(Box::new(record)))
                .await;
        }

        let result = self.apply(&event, &mut pending).await;
        let applied = match result {
            Ok(applied) => applied,
            Err(ApplyError::Taken { stored, .. }) => {
                return self.already_taken(&event, &mut pending, stored).await
            }
            Err(e @ ApplyError::NotFound { .. }) if self.gave_up_on_not_found(&event, incoming) => {
                let reason = format!(
                    "{e} for more than {} s after the event was created",
                    self.not_found_retry_for.num_seconds()
                );
                let write = pending.finish(self.clock.now(), EventStatus::DeadLettered, &reason);
                match self.commit(&mut pending, Some(write), None).await {
                    Ok(()) => {}
                    Err(ApplyError::Taken { stored, .. }) => {
                        return self.already_taken(&event, &mut pending, stored).await
                    }
                    Err(e) => return Err(failed(e)),
                }
                return Err(ProcessError::DeadLetter {
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    reason,
                });
            }
            Err(e) => {
                self.after_failure(&mut pending).await;
                return Err(failed(e));
            }
        };
        Ok(Processed {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            outcome: applied.outcome,
            duplicate: false,
            actions_taken: applied.actions_taken,
        })
    }

    /// One commit: `event` and `alert` with the delivery still to archive. A landed commit
    /// archived it; one refused as a whole is remembered (`Pending::store_failed`).
    pub(crate) async fn commit(
        &self,
        pending: &mut Pending,
        event: Option<EventWrite>,
        alert: Option<crate::records::alert::AlertRecord>,
    ) -> Result<(), ApplyError> {
        self.commit_with(pending, event, alert, None).await
    }

    pub(crate) async fn commit_with(
        &self,
        pending: &mut Pending,
        event: Option<EventWrite>,
        alert: Option<crate::records::alert::AlertRecord>,
        enrolment: Option<crate::domain::enrolment_lifecycle::EnrolmentRecord>,
    ) -> Result<(), ApplyError> {
        let claims = match &event {
            Some(EventWrite::Claim(r)) if r.status == EventStatus::InProgress => {
                r.claim_token.clone()
            }
            _ => None,
        };
        let ends_claim = matches!(
            event,
            Some(EventWrite::Release { .. } | EventWrite::Finish { .. })
        );
        let commit = EventCommit {
            archive: pending.archive.clone(),
            event,
            alert,
            enrolment,
            // What the matching wrote to the index meanwhile: with this write, not on its own.
            index: crate::ports::transaction_index::held::take(),
        };
        match self.commits.commit(&commit).await {
            Ok(()) => {
                pending.archive = None;
                pending.store_failed = false;
                if claims.is_some() {
                    pending.claimed = claims;
                }
                if ends_claim {
                    pending.claimed = None;
                }
                Ok(())
            }
            Err(e) => {
                pending.store_failed = matches!(e, CommitError::Store(_));
                Err(e.into())
            }
        }
    }

    /// The event is finished or held elsewhere: a duplicate, or busy. Its delivery is still
    /// archived (one write), or the message comes back to be archived.
    async fn already_taken(
        &self,
        event: &WebhookEvent,
        pending: &mut Pending,
        stored: Option<Box<EventRecord>>,
    ) -> Result<Processed, ProcessError> {
        if let Err(e) = self.commit(pending, None, None).await {
            return Err(ProcessError::Failed {
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                source: e,
            });
        }
        match stored {
            Some(r) if r.status == EventStatus::Completed => Ok(Processed {
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                outcome: r.outcome.unwrap_or_default(),
                duplicate: true,
                actions_taken: 0,
            }),
            // IN_PROGRESS elsewhere, or changed between the condition and now.
            _ => Err(ProcessError::Busy {
                event_id: event.id.clone(),
            }),
        }
    }

    /// After a failure: a claim of ours still held is released (the alert path releases its
    /// action claim with it); the delivery is archived on its own unless the store just failed
    /// (the redelivery archives it then). Best effort: a claim expires by itself.
    async fn after_failure(&self, pending: &mut Pending) {
        if let Some(token) = pending.claimed.clone() {
            let release = EventWrite::Release {
                event_id: pending.arrival.event_id.clone(),
                token,
            };
            if let Err(e) = self.commit(pending, Some(release), None).await {
                // Not fatal: the claim expires at `in_progress_until` anyway.
                tracing::warn!(event_id = %pending.arrival.event_id, error = %e, "could not release the claim");
            }
            return;
        }
        if pending.archive.is_some() && !pending.store_failed {
            if let Err(e) = self.commit(pending, None, None).await {
                tracing::warn!(event_id = %pending.arrival.event_id, error = %e,
                    "could not archive the delivery; its redelivery archives it");
            }
        }
    }

    /// Whether a 404 has been retried long enough: `not_found_retry_for` since the event's
    /// origin (`redelivery::event_origin`). With no usable time at all, never: the queue's
    /// maxReceiveCount still bounds the retries.
    fn gave_up_on_not_found(&self, event: &WebhookEvent, incoming: &IncomingEvent) -> bool {
        event_origin(
            &event.created_at,
            incoming.received_at.as_deref(),
            incoming.sent_at,
        )
        .is_some_and(|origin| self.clock.now() - origin >= self.not_found_retry_for)
    }

    /// Tell operations a message went to the dead-letter queue, and why.
    pub async fn notify_dead_lettered(
        &self,
        event_id: Option<&str>,
        message_id: &str,
        reason: &str,
    ) -> Result<(), NotifyError> {
        self.notifier
            .notify(&dead_letter_notification(
                event_id,
                message_id,
                reason,
                self.clock.now(),
            ))
            .await
    }

    async fn apply(
        &self,
        event: &WebhookEvent,
        pending: &mut Pending,
    ) -> Result<Applied, ApplyError> {
        match (event.category(), event.object_id()) {
            (EventCategory::Alert, Some(id)) => self.apply_alert(id, event, pending).await,
            (EventCategory::Enrolment, Some(id)) => {
                self.apply_enrolment(id, &event.id, pending).await
            }
            _ => {
                let applied = Applied::new("stored");
                let write =
                    pending.finish(self.clock.now(), EventStatus::Completed, &applied.outcome);
                self.commit(pending, Some(write), None).await?;
                Ok(applied)
            }
        }
    }
}
