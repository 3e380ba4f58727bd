//! Applying one webhook event from the edge queue, exactly once in effect.
//!
//! 1. Parse the envelope. Unusable (not JSON, no id, an alert/enrolment without an object id)
//!    is a *poison* message: it fails every time and ends in the dead-letter queue.
//! 2. Claim the event id in the `events` table (IN_PROGRESS until the invocation's deadline).
//!    Already COMPLETED → a duplicate: acknowledge, do nothing. IN_PROGRESS elsewhere → busy:
//!    let SQS redeliver later.
//! 3. Apply: fetch the object from the API and store *that* (never the payload, which may be
//!    late or out of order); alerts then go through the decision policy, enrolments through
//!    the lifecycle; other types are only recorded (raw payload kept in the event record).
//! 4. Mark the event COMPLETED with its outcome. On failure, drop the claim so the redelivery
//!    can claim it at once. A crash between 2 and 4 leaves IN_PROGRESS, which expires; the
//!    redelivery re-applies, which is safe because applying re-fetches and writes conditionally.

use super::alert_policy::{decide, PolicyDecision};
use super::alert_record::{append_decision, store_fetched_alert_notifying};
use super::decision::{
    apply_action, ActionRequest, Decision, DecisionError, DecisionResult, DecisionSource,
};
use super::enrolment_lifecycle::{merge_fetched, EnrolmentMerge, EnrolmentState};
use crate::clock::Clock;
use crate::event::{EventCategory, WebhookEvent};
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::{PartnerRecords, PolicySource};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_log::{iso, Claim, EventArrival, EventLog};
use crate::ports::notifier::{Notifier, NotifyError, OpsNotification};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::sync::Arc;

const ENROLMENT_WRITE_ATTEMPTS: usize = 5;

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
    /// Unusable message: it will fail on every delivery and belongs in the dead-letter queue.
    #[error("poison message: {reason}")]
    Poison { reason: String },
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
            ProcessError::Poison { .. } => false,
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
}

impl ApplyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Api(e) => e.is_retryable(),
            ApplyError::Store(e) => e.is_retryable(),
            ApplyError::Notify(e) => e.is_retryable(),
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
        match self
            .events
            .claim(&arrival, now, in_progress_until)
            .await
            .map_err(|e| failed(e.into()))?
        {
            Claim::Acquired => {}
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
        }

        let applied = match self.apply(&event).await {
            Ok(applied) => applied,
            Err(e) => {
                if let Err(release) = self.events.release(&event.id).await {
                    // Not fatal: the claim expires at `in_progress_until` anyway.
                    tracing::warn!(event_id = %event.id, error = %release, "could not release the claim");
                }
                return Err(failed(e));
            }
        };
        self.events
            .complete(&event.id, &applied.outcome, self.clock.now())
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

    async fn apply(&self, event: &WebhookEvent) -> Result<Applied, ApplyError> {
        match (event.category(), event.object_id()) {
            (EventCategory::Alert, Some(id)) => self.apply_alert(id).await,
            (EventCategory::Enrolment, Some(id)) => self.apply_enrolment(id, &event.id).await,
            _ => Ok(Applied::new("stored")),
        }
    }

    async fn apply_alert(&self, alert_id: &str) -> Result<Applied, ApplyError> {
        let fetched = match self.alert_api.get_alert(alert_id).await {
            Ok(alert) => alert,
            Err(ApiCallError::NotFound { .. }) => return Ok(Applied::new("alert_not_found")),
            Err(e) => return Err(e.into()),
        };
        let (record, _stale) = store_fetched_alert_notifying(
            &*self.alerts,
            &*self.notifier,
            &fetched,
            self.clock.now(),
        )
        .await?;
        if record.informational {
            return Ok(Applied::new("alert_informational"));
        }
        if !record.alert.is_actionable() {
            return Ok(Applied::new("alert_stored"));
        }
        if record.has_final_decision() {
            return Ok(Applied::new("alert_already_decided"));
        }
        if record.was_left_for_person() {
            return Ok(Applied::new("alert_awaiting_person"));
        }

        let alert = &record.alert;
        let policy = self.policies.policy_for(&alert.organisation_id).await?;
        let evidence = self.partner_records.evidence_for(alert).await?;
        match decide(alert, &policy, &evidence) {
            PolicyDecision::Act { action, reason } => {
                let report = match apply_action(
                    &*self.alert_api,
                    &*self.alerts,
                    &*self.notifier,
                    &*self.clock,
                    ActionRequest {
                        alert_id: alert_id.to_string(),
                        action: action.clone(),
                        note: policy.note.clone(),
                        source: DecisionSource::AutoPolicy,
                        actor: policy.name.clone(),
                        reason,
                    },
                )
                .await
                {
                    Ok(report) => report,
                    // An operator or the sweep decided first (their claim, their decision).
                    Err(DecisionError::AlreadyDecided { .. }) => {
                        return Ok(Applied::new("alert_already_decided"))
                    }
                    Err(e) => return Err(e.into()),
                };
                Ok(match report.result {
                    DecisionResult::Applied => Applied {
                        outcome: format!("alert_actioned:{action}"),
                        actions_taken: 1,
                    },
                    DecisionResult::Rejected => Applied::new("alert_action_rejected"),
                    DecisionResult::RefusedStillWaiting => Applied::new("alert_awaiting_person"),
                    _ => Applied::new("alert_stored"),
                })
            }
            PolicyDecision::LeaveToPerson { reason } => {
                self.notifier
                    .notify(&OpsNotification {
                        kind: "alert.awaiting_decision".into(),
                        subject: format!("Alert {alert_id} waits for a decision"),
                        organisation_id: Some(alert.organisation_id.clone()),
                        object_id: alert_id.to_string(),
                        status: Some(alert.status.to_string()),
                        note: alert
                            .action_required_deadline
                            .map(|d| format!("deadline {}", iso(d))),
                        at: iso(self.clock.now()),
                    })
                    .await?;
                let decision = Decision {
                    at: iso(self.clock.now()),
                    source: DecisionSource::AutoPolicy,
                    actor: policy.name.clone(),
                    action: None,
                    reason,
                    note: None,
                    result: DecisionResult::LeftForPerson,
                    detail: None,
                };
                append_decision(
                    &*self.alerts,
                    alert_id,
                    decision,
                    None,
                    None,
                    self.clock.now(),
                )
                .await?;
                Ok(Applied::new("alert_awaiting_person"))
            }
        }
    }

    async fn apply_enrolment(
        &self,
        enrolment_id: &str,
        event_id: &str,
    ) -> Result<Applied, ApplyError> {
        let fetched = match self.enrolment_api.get_enrolment(enrolment_id).await {
            Ok(enrolment) => enrolment,
            Err(ApiCallError::NotFound { .. }) => return Ok(Applied::new("enrolment_not_found")),
            Err(e) => return Err(e.into()),
        };
        let mut last_conflict = None;
        for _ in 0..ENROLMENT_WRITE_ATTEMPTS {
            let existing = self.enrolments.get(enrolment_id).await?;
            match merge_fetched(existing, fetched.clone(), Some(event_id), self.clock.now()) {
                EnrolmentMerge::Stale(stored) => {
                    return Ok(Applied::new(
                        EnrolmentState::of(&stored.enrolment.status).as_outcome(),
                    ))
                }
                EnrolmentMerge::Updated { record, notify } => {
                    // Tell operations before writing: if the write fails, the redelivery tells
                    // them again (at least once) rather than never.
                    if let Some(n) = &notify {
                        self.notifier.notify(n).await?;
                    }
                    match self.enrolments.put(&record).await {
                        Ok(()) => {
                            return Ok(Applied::new(
                                EnrolmentState::of(&record.enrolment.status).as_outcome(),
                            ))
                        }
                        Err(c @ StoreError::Conflict { .. }) => last_conflict = Some(c),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(last_conflict.expect("at least one attempt").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{
        FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog,
        RecordingNotifier,
    };
    use crate::clock::FixedClock;
    use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
    use crate::domain::test_support::{alert, enrolment, ts};
    use crate::models::alert::{AlertAction, AlertStatus};
    use crate::ports::decision_inputs::{NoPartnerRecords, PartnerEvidence};
    use crate::ports::event_log::{EventRecord, EventStatus};

    struct World {
        events: Arc<MemoryEventLog>,
        alerts: Arc<MemoryAlertStore>,
        enrolments: Arc<MemoryEnrolmentStore>,
        api: Arc<FakeChargebackStop>,
        notifier: Arc<RecordingNotifier>,
        clock: Arc<FixedClock>,
        processor: EventProcessor,
    }

    fn world_with(policy: AlertPolicy, records: Arc<dyn PartnerRecords>) -> World {
        let events = Arc::new(MemoryEventLog::default());
        let alerts = Arc::new(MemoryAlertStore::default());
        let enrolments = Arc::new(MemoryEnrolmentStore::default());
        let api = Arc::new(FakeChargebackStop::default());
        let notifier = Arc::new(RecordingNotifier::default());
        let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
        let processor = EventProcessor {
            events: events.clone(),
            alerts: alerts.clone(),
            enrolments: enrolments.clone(),
            alert_api: api.clone(),
            enrolment_api: api.clone(),
            notifier: notifier.clone(),
            policies: Arc::new(FixedPolicy(policy)),
            partner_records: records,
            clock: clock.clone(),
        };
        World {
            events,
            alerts,
            enrolments,
            api,
            notifier,
            clock,
            processor,
        }
    }

    fn world() -> World {
        world_with(
            AlertPolicy {
                refund_at_or_below_cents: Some(2500),
                accept_dispute_above_cents: Some(50_000),
                ..AlertPolicy::default()
            },
            Arc::new(NoPartnerRecords),
        )
    }

    fn message(event_id: &str, kind: &str, object: serde_json::Value) -> IncomingEvent {
        IncomingEvent {
            message_id: format!("msg-{event_id}"),
            body: serde_json::json!({
                "id": event_id, "type": kind, "created_at": "2026-11-24T09:59:00Z",
                "data": {"object": object}
            })
            .to_string(),
            idempotency_key: Some(format!("idem-{event_id}")),
            signature_timestamp: Some(1_795_000_000),
            received_at: Some("2026-11-24T09:59:01Z".into()),
            receive_count: 1,
        }
    }

    fn alert_event(event_id: &str, kind: &str, a: &crate::models::alert::Alert) -> IncomingEvent {
        message(event_id, kind, serde_json::to_value(a).unwrap())
    }

    impl World {
        async fn run(&self, m: &IncomingEvent) -> Result<Processed, ProcessError> {
            self.processor
                .process(m, self.clock.now() + chrono::Duration::seconds(30))
                .await
        }
    }

    #[tokio::test]
    async fn a_duplicate_has_no_second_effect_even_days_later() {
        let w = world();
        let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
        w.api.put_alert(a.clone());
        let m = alert_event("evt_1", "alert.created", &a);
        let first = w.run(&m).await.unwrap();
        assert_eq!(first.outcome, "alert_actioned:REFUND");
        assert_eq!(first.actions_taken, 1);
        w.clock.advance(chrono::Duration::days(2));
        // Even if the API showed the alert waiting again, the event is not re-applied.
        w.api.put_alert(a.clone());
        let again = w.run(&m).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.outcome, "alert_actioned:REFUND");
        assert_eq!(w.api.patches("netalrt_1").len(), 1);
        let record = w.events.record("evt_1").unwrap();
        assert_eq!(record.status, EventStatus::Completed);
        assert_eq!(record.idempotency_key.as_deref(), Some("idem-evt_1"));
        assert_eq!(record.signature_timestamp, Some(1_795_000_000));
        assert_eq!(record.object_id.as_deref(), Some("netalrt_1"));
        assert_eq!(record.raw_payload, None, "alert payloads are not kept");
    }

    #[tokio::test]
    async fn created_and_updated_in_either_order_end_in_the_same_state() {
        for reversed in [false, true] {
            let w = world();
            let waiting = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 10_000);
            let resolved = alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 10_000);
            // The API already shows the latest state, whatever order the events arrive in.
            w.api.put_alert(resolved.clone());
            let created = alert_event("evt_c", "alert.created", &waiting);
            let updated = alert_event("evt_u", "alert.updated", &resolved);
            let order = if reversed {
                [&updated, &created]
            } else {
                [&created, &updated]
            };
            for m in order {
                w.run(m).await.unwrap();
            }
            let stored = w.alerts.get("netalrt_1").await.unwrap().unwrap();
            assert_eq!(
                stored.alert.status,
                AlertStatus::Resolved,
                "reversed={reversed}"
            );
            assert_eq!(stored.action_queue, None);
            assert!(w.api.patches("netalrt_1").is_empty());
        }
    }

    #[tokio::test]
    async fn a_late_created_after_the_api_moved_on_does_not_roll_back() {
        let w = world();
        let waiting = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 10_000);
        let resolved = alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 10_000);
        w.api.put_alert(resolved.clone());
        w.run(&alert_event("evt_u", "alert.updated", &resolved))
            .await
            .unwrap();
        // The API briefly serves an older view (a lagging replica): the stored state holds.
        w.api.put_alert(waiting.clone());
        w.run(&alert_event("evt_c", "alert.created", &waiting))
            .await
            .unwrap();
        let stored = w.alerts.get("netalrt_1").await.unwrap().unwrap();
        assert_eq!(stored.alert.status, AlertStatus::Resolved);
        assert!(w.api.patches("netalrt_1").is_empty());
    }

    #[tokio::test]
    async fn the_re_fetch_wins_over_a_disagreeing_payload() {
        let w = world();
        let payload = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
        let mut truth = alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 1000);
        truth.note = Some("resolved in dashboard".into());
        w.api.put_alert(truth);
        let p = w
            .run(&alert_event("evt_1", "alert.created", &payload))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_stored");
        let stored = w.alerts.get("netalrt_1").await.unwrap().unwrap();
        assert_eq!(stored.alert.status, AlertStatus::Resolved);
        assert_eq!(stored.alert.note.as_deref(), Some("resolved in dashboard"));
        assert!(
            w.api.patches("netalrt_1").is_empty(),
            "never action on the payload's word"
        );
    }

    #[tokio::test]
    async fn a_422_on_the_action_is_final_and_not_retried() {
        let w = world();
        let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
        w.api.put_alert(a.clone());
        w.api.reject_patches_with_422("netalrt_1");
        let p = w
            .run(&alert_event("evt_1", "alert.created", &a))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_action_rejected");
        assert_eq!(
            w.events.record("evt_1").unwrap().status,
            EventStatus::Completed
        );
        let stored = w.alerts.get("netalrt_1").await.unwrap().unwrap();
        assert_eq!(stored.decisions.len(), 1);
        assert_eq!(stored.decisions[0].result, DecisionResult::Rejected);
        assert_eq!(stored.action_queue, None);
        // An alert.updated for it later does not try again.
        w.run(&alert_event("evt_2", "alert.updated", &a))
            .await
            .unwrap();
        assert_eq!(w.api.patches("netalrt_1").len(), 1);
    }

    #[tokio::test]
    async fn a_5xx_fails_the_item_releases_the_claim_and_the_retry_succeeds() {
        let w = world();
        let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
        w.api.put_alert(a.clone());
        w.api.fail_next_calls(0, 1);
        let m = alert_event("evt_1", "alert.created", &a);
        let err = w.run(&m).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(w.events.record("evt_1").is_none(), "claim released");
        let p = w.run(&m).await.unwrap();
        assert_eq!(p.outcome, "alert_actioned:REFUND");
        assert_eq!(w.api.patches("netalrt_1").len(), 1);
    }

    #[tokio::test]
    async fn a_crash_mid_apply_is_taken_over_after_the_claim_expires() {
        let w = world();
        let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
        w.api.put_alert(a.clone());
        let m = alert_event("evt_1", "alert.created", &a);
        // A previous invocation claimed the event and died.
        let arrival = EventArrival {
            event_id: "evt_1".into(),
            event_type: "alert.created".into(),
            ..Default::default()
        };
        let now = w.clock.now();
        w.events.insert(EventRecord::in_progress(
            &arrival,
            now,
            now + chrono::Duration::seconds(30),
        ));
        assert!(matches!(w.run(&m).await, Err(ProcessError::Busy { .. })));
        w.clock.advance(chrono::Duration::seconds(31));
        let p = w.run(&m).await.unwrap();
        assert_eq!(p.outcome, "alert_actioned:REFUND");
    }

    #[tokio::test]
    async fn policy_decisions_are_recorded_with_their_reason() {
        let w = world();
        let big = alert("netalrt_big", "ETHOCA_ALERT", "ACTION_REQUIRED", 90_000);
        let mid = alert("netalrt_mid", "ETHOCA_ALERT", "ACTION_REQUIRED", 10_000);
        w.api.put_alert(big.clone());
        w.api.put_alert(mid.clone());
        let p = w
            .run(&alert_event("evt_big", "alert.created", &big))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_actioned:ACCEPT_DISPUTE");
        let stored = w.alerts.get("netalrt_big").await.unwrap().unwrap();
        assert!(stored.decisions[0]
            .reason
            .contains("above the dispute threshold"));
        assert_eq!(stored.decisions[0].source, DecisionSource::AutoPolicy);

        let p = w
            .run(&alert_event("evt_mid", "alert.created", &mid))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_awaiting_person");
        let stored = w.alerts.get("netalrt_mid").await.unwrap().unwrap();
        assert_eq!(stored.decisions[0].result, DecisionResult::LeftForPerson);
        assert!(stored.action_queue.is_some(), "stays on the sweep's queue");
        assert_eq!(w.notifier.sent()[0].kind, "alert.awaiting_decision");
        // A later update does not decide (or notify) again.
        w.run(&alert_event("evt_mid2", "alert.updated", &mid))
            .await
            .unwrap();
        let stored = w.alerts.get("netalrt_mid").await.unwrap().unwrap();
        assert_eq!(stored.decisions.len(), 1);
        assert_eq!(w.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn partner_refund_records_drive_a_refund() {
        struct Refunded;
        #[async_trait::async_trait]
        impl PartnerRecords for Refunded {
            async fn evidence_for(
                &self,
                _: &crate::models::alert::Alert,
            ) -> Result<PartnerEvidence, StoreError> {
                Ok(PartnerEvidence {
                    refunded: Some(true),
                })
            }
        }
        let w = world_with(
            AlertPolicy {
                refund_action: AlertAction::RefundAndCancel,
                ..AlertPolicy::default()
            },
            Arc::new(Refunded),
        );
        let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 90_000);
        w.api.put_alert(a.clone());
        let p = w
            .run(&alert_event("evt_1", "alert.created", &a))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_actioned:REFUND_AND_CANCEL");
    }

    #[tokio::test]
    async fn rdr_alerts_are_informational_and_never_actioned() {
        let w = world();
        let a = alert("netalrt_rdr", "VERIFI_RDR", "RESOLVED", 100);
        w.api.put_alert(a.clone());
        let p = w
            .run(&alert_event("evt_1", "alert.created", &a))
            .await
            .unwrap();
        assert_eq!(p.outcome, "alert_informational");
        let stored = w.alerts.get("netalrt_rdr").await.unwrap().unwrap();
        assert!(stored.informational);
        assert!(stored.decisions.is_empty());
        assert!(w.api.patches("netalrt_rdr").is_empty());
    }

    #[tokio::test]
    async fn an_enrolment_goes_live_and_a_failure_reaches_operations() {
        let w = world();
        w.api
            .put_enrolment(enrolment("enrl_1", "PENDING", "2026-11-24T09:00:00Z", None));
        let obj = serde_json::json!({"id": "enrl_1", "status": "PENDING"});
        let p = w
            .run(&message("evt_1", "enrolment.created", obj.clone()))
            .await
            .unwrap();
        assert_eq!(p.outcome, "enrolment_pending");
        w.api
            .put_enrolment(enrolment("enrl_1", "ENABLED", "2026-11-24T09:10:00Z", None));
        let p = w
            .run(&message("evt_2", "enrolment.updated", obj.clone()))
            .await
            .unwrap();
        assert_eq!(p.outcome, "enrolment_live");
        let stored = w.enrolments.get("enrl_1").await.unwrap().unwrap();
        assert!(stored.live);
        assert_eq!(stored.status_history.len(), 2);
        assert_eq!(stored.status_history[1].event_id.as_deref(), Some("evt_2"));

        w.api.put_enrolment(enrolment(
            "enrl_1",
            "FAILED",
            "2026-11-24T09:20:00Z",
            Some("Descriptor rejected"),
        ));
        let p = w
            .run(&message("evt_3", "enrolment.updated", obj))
            .await
            .unwrap();
        assert_eq!(p.outcome, "enrolment_needs_attention");
        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].note.as_deref(), Some("Descriptor rejected"));
        assert!(!w.enrolments.get("enrl_1").await.unwrap().unwrap().live);
    }

    #[tokio::test]
    async fn other_types_are_stored_with_their_payload_and_acknowledged() {
        let w = world();
        let m = message(
            "evt_1",
            "representment.created",
            serde_json::json!({"id": "rep_1", "x": 1}),
        );
        let p = w.run(&m).await.unwrap();
        assert_eq!(p.outcome, "stored");
        let record = w.events.record("evt_1").unwrap();
        assert_eq!(record.raw_payload.as_deref(), Some(m.body.as_str()));
        assert_eq!(w.api.gets(), 0);
    }

    #[tokio::test]
    async fn poison_messages_say_why() {
        let w = world();
        let not_json = IncomingEvent {
            body: "{oops".into(),
            ..Default::default()
        };
        assert!(matches!(
            w.run(&not_json).await,
            Err(ProcessError::Poison { .. })
        ));
        let no_id = message(
            "evt_1",
            "alert.created",
            serde_json::json!({"status": "ACTION_REQUIRED"}),
        );
        match w.run(&no_id).await {
            Err(ProcessError::Poison { reason }) => {
                assert!(reason.contains("data.object.id"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            w.events.record("evt_1").is_none(),
            "poison is never claimed"
        );
    }
}
