//! The processor over in-memory fakes: duplicates, ordering, failures, policies, enrolments.

use super::*;
use crate::adapters::memory::{
    FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog, RecordingNotifier,
};
use crate::adapters::memory_commit::MemoryCommitter;
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::decision::{DecisionResult, DecisionSource};
use crate::domain::test_support::{alert, enrolment, ts};
use crate::models::alert::{AlertAction, AlertStatus};
use crate::ports::decision_inputs::{NoPartnerRecords, PartnerEvidence};
use crate::ports::event_log::{EventRecord, EventStatus};

pub(super) struct World {
    pub(super) events: Arc<MemoryEventLog>,
    pub(super) alerts: Arc<MemoryAlertStore>,
    pub(super) enrolments: Arc<MemoryEnrolmentStore>,
    pub(super) api: Arc<FakeChargebackStop>,
    pub(super) notifier: Arc<RecordingNotifier>,
    pub(super) clock: Arc<FixedClock>,
    pub(super) commits: Arc<MemoryCommitter>,
    pub(super) processor: EventProcessor,
}

fn world_with(policy: AlertPolicy, records: Arc<dyn PartnerRecords>) -> World {
    let events = Arc::new(MemoryEventLog::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let enrolments = Arc::new(MemoryEnrolmentStore::default());
    let api = Arc::new(FakeChargebackStop::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
    let commits = Arc::new(MemoryCommitter::new(
        events.clone(),
        alerts.clone(),
        enrolments.clone(),
    ));
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
        not_found_retry_for: chrono::Duration::hours(1),
        refund_first: None,
        commits: commits.clone(),
    };
    World {
        events,
        alerts,
        enrolments,
        api,
        notifier,
        clock,
        commits,
        processor,
    }
}

pub(super) fn world() -> World {
    world_with(
        AlertPolicy {
            refund_at_or_below_cents: Some(2500),
            accept_dispute_above_cents: Some(50_000),
            ..AlertPolicy::default()
        },
        Arc::new(NoPartnerRecords),
    )
}

pub(super) fn message(event_id: &str, kind: &str, object: serde_json::Value) -> IncomingEvent {
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
        sent_at: None,
    }
}

pub(super) fn alert_event(
    event_id: &str,
    kind: &str,
    a: &crate::models::alert::Alert,
) -> IncomingEvent {
    message(event_id, kind, serde_json::to_value(a).unwrap())
}

impl World {
    pub(super) async fn run(&self, m: &IncomingEvent) -> Result<Processed, ProcessError> {
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
        "crashed-run",
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
                ..PartnerEvidence::default()
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

#[tokio::test]
async fn a_404_is_retried_and_applied_once_the_object_is_there() {
    let w = world();
    let a = alert("netalrt_late", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    let m = alert_event("evt_1", "alert.created", &a);
    // The API does not show the alert yet (a replica behind the webhook).
    let err = w.run(&m).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            &err,
            ProcessError::Failed {
                source: ApplyError::NotFound { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(w.events.record("evt_1").is_none(), "claim released");
    w.clock.advance(chrono::Duration::minutes(10));
    w.api.put_alert(a.clone());
    let p = w.run(&m).await.unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    assert_eq!(w.api.patches("netalrt_late").len(), 1);
    assert!(w.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_404_past_the_retry_window_is_dead_lettered_with_its_reason() {
    let w = world();
    let obj = serde_json::json!({"id": "enrl_gone", "status": "PENDING"});
    let m = message("evt_1", "enrolment.updated", obj);
    assert!(w.run(&m).await.unwrap_err().is_retryable());
    // created_at 09:59, now 10:00: one hour after the event was created it is given up.
    w.clock.advance(chrono::Duration::minutes(59));
    match w.run(&m).await {
        Err(ProcessError::DeadLetter {
            event_id, reason, ..
        }) => {
            assert_eq!(event_id, "evt_1");
            assert!(reason.contains("enrolment enrl_gone not found"), "{reason}");
            assert!(reason.contains("3600 s"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let record = w.events.record("evt_1").unwrap();
    assert_eq!(record.status, EventStatus::DeadLettered);
    assert!(record.outcome.unwrap().contains("not found"));
    // A redrive from the DLQ may try again (and succeeds once the object exists).
    w.api.put_enrolment(enrolment(
        "enrl_gone",
        "PENDING",
        "2026-11-24T09:00:00Z",
        None,
    ));
    let p = w.run(&m).await.unwrap();
    assert_eq!(p.outcome, "enrolment_pending");
    assert_eq!(
        w.events.record("evt_1").unwrap().status,
        EventStatus::Completed
    );
}

#[tokio::test]
async fn dead_lettering_tells_operations_why() {
    let w = world();
    w.processor
        .notify_dead_lettered(Some("evt_9"), "msg-9", "alert netalrt_9 not found (404)")
        .await
        .unwrap();
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "event.dead_lettered");
    assert_eq!(sent[0].object_id, "evt_9");
    assert!(sent[0]
        .note
        .as_deref()
        .unwrap()
        .contains("netalrt_9 not found"));
}

/// An API whose GET lets "another run" take the event's claim over first (as if ours had
/// expired while the call hung), then answers from the fake, or fails.
struct TakenOverDuringGet {
    inner: Arc<FakeChargebackStop>,
    events: Arc<MemoryEventLog>,
    then_fail: bool,
}

#[async_trait::async_trait]
impl AlertApi for TakenOverDuringGet {
    async fn get_alert(&self, alert_id: &str) -> Result<crate::models::alert::Alert, ApiCallError> {
        // Our claim (if we held one yet) taken over, or the event taken before we claimed it.
        let mut taken = self.events.record("evt_1").unwrap_or_else(|| {
            let arrival = EventArrival {
                event_id: "evt_1".into(),
                event_type: "alert.created".into(),
                ..Default::default()
            };
            let now = ts("2026-11-24T10:00:00Z");
            EventRecord::in_progress(&arrival, now, now + chrono::Duration::seconds(30), "x")
        });
        taken.claim_token = Some("the-other-run".into());
        self.events.insert(taken);
        if self.then_fail {
            return Err(ApiCallError::Transient {
                operation: "get alert",
                id: alert_id.to_string(),
                detail: "503".into(),
            });
        }
        self.inner.get_alert(alert_id).await
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &crate::models::alert::UpdateAlert,
    ) -> Result<crate::models::alert::Alert, ApiCallError> {
        self.inner.update_alert(alert_id, update).await
    }
}

#[tokio::test]
async fn a_run_whose_claim_was_taken_over_neither_completes_nor_releases_it() {
    for then_fail in [false, true] {
        let mut w = world();
        let a = alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 1000);
        w.api.put_alert(a.clone());
        w.processor.alert_api = Arc::new(TakenOverDuringGet {
            inner: w.api.clone(),
            events: w.events.clone(),
            then_fail,
        });
        let err = w
            .run(&alert_event("evt_1", "alert.created", &a))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let record = w
            .events
            .record("evt_1")
            .expect("the other run's claim stays");
        assert_eq!(
            record.status,
            EventStatus::InProgress,
            "then_fail={then_fail}"
        );
        assert_eq!(record.claim_token.as_deref(), Some("the-other-run"));
    }
}
