//! Applying one webhook event from the edge queue, exactly once in effect.
//!
//! 1. Parse the envelope. Unusable (not JSON, no id, an alert/enrolment without an object id)
//!    is a *poison* message: the function sends it to the dead-letter queue at once, with the
//!    reason, and tells operations.
//! 2. Claim the event id in the `events` table (IN_PROGRESS until the invocation's deadline,
//!    under a claim token that completing and releasing must present).
//!    Already COMPLETED → a duplicate: acknowledge, do nothing. IN_PROGRESS elsewhere → busy:
//!    let SQS redeliver later.
//! 3. Apply: fetch the object from the API and store *that* (never the payload, which may be
//!    late or out of order); alerts then go through the decision policy, enrolments through
//!    the lifecycle; other types are only recorded (raw payload kept in the event record).
//!    A 404 on the re-fetch is retried (the failure is retryable) until `not_found_retry_for`
//!    has passed since the event was created; then the event is marked DEAD_LETTERED with the
//!    reason and handed to the function to dead-letter and notify (`ProcessError::DeadLetter`).
//! 4. Mark the event COMPLETED with its outcome. On failure, drop the claim so the redelivery
//!    can claim it at once. A crash between 2 and 4 leaves IN_PROGRESS, which expires; the
//!    redelivery re-applies, which is safe because applying re-fetches and writes conditionally.

mod alerts;
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
use crate::ports::event_log::{Claim, EventArrival, EventLog};
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
}

impl ApplyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Api(e) => e.is_retryable(),
            ApplyError::Store(e) => e.is_retryable(),
            ApplyError::Notify(e) => e.is_retryable(),
            ApplyError::NotFound { .. } => true,
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
    /// Process one message. `in_progress_until` is when this invocation times out (the claim
    /// expires then, so a crashed invocation's event is taken over by the redelivery).
    pub async fn process(
        &self,
        incoming: &IncomingEvent,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Processed, ProcessError> {
        let event = parse_event(&incoming.body)?;
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

        let now = self.clock.now();
        let token = match self
            .events
            .claim(&arrival, now, in_progress_until)
            .await
            .map_err(|e| failed(e.into()))?
        {
            Claim::Acquired { token } => token,
            Claim::AlreadyCompleted { outcome } => {
                return Ok(Processed {
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    outcome: outcome.unwrap_or_default(),
                    duplicate: true,
                    actions_taken: 0,
                })
            }
            Claim::InProgressElsewhere { .. } => {
                return Err(ProcessError::Busy {
                    event_id: event.id.clone(),
                })
            }
        };

        let applied = match self.apply(&event, in_progress_until).await {
            Ok(applied) => applied,
            Err(e @ ApplyError::NotFound { .. }) if self.gave_up_on_not_found(&event, incoming) => {
                let reason = format!(
                    "{e} for more than {} s after the event was created",
                    self.not_found_retry_for.num_seconds()
                );
                self.events
                    .dead_letter(&event.id, &token, &reason, self.clock.now())
                    .await
                    .map_err(|e| failed(e.into()))?;
                return Err(ProcessError::DeadLetter {
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    reason,
                });
            }
            Err(e) => {
                if let Err(release) = self.events.release(&event.id, &token).await {
                    // Not fatal: the claim expires at `in_progress_until` anyway.
                    tracing::warn!(event_id = %event.id, error = %release, "could not release the claim");
                }
                return Err(failed(e));
            }
        };
        self.events
            .complete(&event.id, &token, &applied.outcome, self.clock.now())
            .await
            .map_err(|e| failed(e.into()))?;
        Ok(Processed {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            outcome: applied.outcome,
            duplicate: false,
            actions_taken: applied.actions_taken,
        })
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
        until: DateTime<Utc>,
    ) -> Result<Applied, ApplyError> {
        match (event.category(), event.object_id()) {
            (EventCategory::Alert, Some(id)) => self.apply_alert(id, until).await,
            (EventCategory::Enrolment, Some(id)) => self.apply_enrolment(id, &event.id).await,
            _ => Ok(Applied::new("stored")),
        }
    }
}
