//! `apply_action` over the in-memory store and the fake ChargebackStop: outcomes, the 422 that
//! leaves the alert waiting, and the one claim under races and crashes.

use super::*;
use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore, RecordingNotifier};
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::deadline_sweep::{DeadlineSweep, SweepConfig, Threshold};
use crate::domain::test_support::{alert, ts};
use crate::models::alert::AlertStatus;
use crate::ports::notifier::NotifyError;
use std::sync::Arc;

const NOW: &str = "2026-11-24T10:00:00Z";

fn request(source: DecisionSource) -> ActionRequest {
    ActionRequest {
        alert_id: "netalrt_1".into(),
        action: AlertAction::Refund,
        note: Some("Refunded by the partner".into()),
        source,
        actor: format!("{source:?}"),
        reason: "customer asked".into(),
    }
}

/// An Ethoca alert waiting at the fake and stored as fetched.
async fn waiting(api: &FakeChargebackStop, store: &MemoryAlertStore) {
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    api.put_alert(a.clone());
    store_fetched_alert(store, &a, ts(NOW)).await.unwrap();
}

/// An earlier holder's claim left on the stored alert (crashed, or cut off mid-call).
async fn leave_claim(
    store: &MemoryAlertStore,
    owner: &str,
    source: DecisionSource,
    actor: &str,
    until: chrono::DateTime<chrono::Utc>,
) {
    let mut left = store.get("netalrt_1").await.unwrap().unwrap();
    left.action_claim = Some(ActionClaim {
        owner: owner.into(),
        source,
        actor: actor.into(),
        until: iso(until),
    });
    left.revision += 1;
    store.insert(left);
}

async fn apply(
    api: &FakeChargebackStop,
    store: &MemoryAlertStore,
    notifier: &dyn Notifier,
    clock: &FixedClock,
    source: DecisionSource,
) -> Result<ActionReport, DecisionError> {
    apply_action(api, store, notifier, clock, request(source)).await
}

#[tokio::test]
async fn applies_and_records_with_reason_and_source() {
    let api = FakeChargebackStop::default();
    api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900));
    let store = MemoryAlertStore::default();
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    // Not stored yet: fetched and stored first, then claimed.
    let report = apply(&api, &store, &notifier, &clock, DecisionSource::Operator)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::Applied);
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.alert.status, AlertStatus::Resolved);
    assert_eq!(stored.action_queue, None);
    assert_eq!(stored.action_claim, None, "the claim became the decision");
    assert_eq!(stored.decisions.len(), 1);
    let d = &stored.decisions[0];
    assert_eq!(
        (d.source, d.result),
        (DecisionSource::Operator, DecisionResult::Applied)
    );
    assert_eq!(d.reason, "customer asked");
    assert_eq!(d.actor, "Operator");
    assert_eq!(api.patches("netalrt_1").len(), 1);
    assert_eq!(
        api.patches("netalrt_1")[0].note.as_deref(),
        Some("Refunded by the partner")
    );
    assert!(notifier.sent().is_empty());
}

#[tokio::test]
async fn a_422_on_an_alert_resolved_meanwhile_is_final_and_recorded() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    api.reject_patches_with_422("netalrt_1");
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    let report = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::Rejected);
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(
        stored.action_queue, None,
        "a 422 on a resolved alert takes it off the queue"
    );
    // One entry: the 422 explains the resolution, so no "resolved elsewhere" note besides it.
    assert_eq!(stored.decisions.len(), 1, "{:?}", stored.decisions);
    assert_eq!(stored.decisions[0].result, DecisionResult::Rejected);
    assert_eq!(
        stored.alert.status,
        AlertStatus::Resolved,
        "the final state is stored"
    );
    assert!(stored.decisions[0]
        .detail
        .as_deref()
        .unwrap()
        .starts_with("422"));
    assert_eq!(stored.action_claim, None);
}

/// Defect 1: a 422 (here one the API gives while the alert stays ACTION_REQUIRED; a request
/// our validation refuses before sending maps to the same `Unprocessable`) must not take the
/// alert out of the queue, and a person is told at once with the code.
#[tokio::test]
async fn a_422_while_the_alert_still_waits_keeps_it_queued_and_notifies_with_the_code() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    api.refuse_patches_without_resolving("netalrt_1", "ACTION_NOT_AVAILABLE");
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    let report = apply(&api, &store, &notifier, &clock, DecisionSource::AutoPolicy)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::RefusedStillWaiting);
    assert_eq!(
        api.alert("netalrt_1").unwrap().status,
        AlertStatus::ActionRequired
    );

    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert!(stored.action_queue.is_some(), "still in the action queue");
    assert!(!stored.has_final_decision());
    assert!(
        stored.was_left_for_person(),
        "the policy does not retry by itself"
    );
    assert_eq!(stored.action_claim, None, "claim released");
    let d = stored.decisions.last().unwrap();
    assert_eq!(d.result, DecisionResult::RefusedStillWaiting);
    assert!(d
        .detail
        .as_deref()
        .unwrap()
        .contains("ACTION_NOT_AVAILABLE"));
    // The sweep and the ops queue still see it.
    let due = store
        .awaiting_action_until("9999-12-31T23:59:59Z", 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);

    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, "alert.action_refused");
    assert_eq!(sent[0].object_id, "netalrt_1");
    assert!(sent[0].subject.contains("ACTION_NOT_AVAILABLE"), "{sent:?}");

    // A person can still act on it (here with ChargebackStop now accepting): the refusal is
    // not a final decision.
    let accepting = FakeChargebackStop::default();
    accepting.put_alert(api.alert("netalrt_1").unwrap());
    let report = apply(
        &accepting,
        &store,
        &notifier,
        &clock,
        DecisionSource::Operator,
    )
    .await
    .unwrap();
    assert_eq!(report.result, DecisionResult::Applied);
}

#[tokio::test]
async fn a_refusal_that_cannot_be_notified_is_not_recorded_and_can_be_retried() {
    struct Down;
    #[async_trait::async_trait]
    impl Notifier for Down {
        async fn notify(&self, _: &OpsNotification) -> Result<(), NotifyError> {
            Err(NotifyError::Transient {
                sink: "test",
                detail: "down".into(),
            })
        }
    }
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    api.refuse_patches_without_resolving("netalrt_1", "ACTION_NOT_AVAILABLE");
    let clock = FixedClock::at(ts(NOW));
    let err = apply(&api, &store, &Down, &clock, DecisionSource::Sweep)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert!(stored.decisions.is_empty());
    assert!(stored.action_queue.is_some());
    assert_eq!(stored.action_claim, None, "claim released");
}

#[tokio::test]
async fn an_alert_resolved_meanwhile_is_not_patched() {
    let api = FakeChargebackStop::default();
    api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 4900));
    let store = MemoryAlertStore::default();
    let clock = FixedClock::at(ts(NOW));
    let report = apply(
        &api,
        &store,
        &RecordingNotifier::default(),
        &clock,
        DecisionSource::AutoPolicy,
    )
    .await
    .unwrap();
    assert_eq!(report.result, DecisionResult::NotActionable);
    assert!(api.patches("netalrt_1").is_empty());
}

#[tokio::test]
async fn a_5xx_on_patch_is_retryable_and_records_nothing() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    api.fail_next_calls(0, 1);
    let clock = FixedClock::at(ts(NOW));
    let err = apply(
        &api,
        &store,
        &RecordingNotifier::default(),
        &clock,
        DecisionSource::Sweep,
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable());
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert!(stored.decisions.is_empty());
    assert!(stored.action_queue.is_some(), "still waiting for an action");
    assert_eq!(stored.action_claim, None, "claim released for the retry");
}

#[tokio::test]
async fn a_patch_that_landed_but_timed_out_is_never_sent_again() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    api.lose_next_patch_answers(1);
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    let err = apply(&api, &store, &notifier, &clock, DecisionSource::AutoPolicy)
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(
        api.alert("netalrt_1").unwrap().status,
        AlertStatus::Resolved
    );
    // The retry (policy redelivery, operator, sweep) claims and re-fetches first.
    let report = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::NotActionable);
    assert_eq!(api.patches("netalrt_1").len(), 1, "one PATCH in all");
}

#[tokio::test]
async fn a_final_decision_recorded_here_refuses_without_calling_the_api() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    apply(&api, &store, &notifier, &clock, DecisionSource::Operator)
        .await
        .unwrap();
    let gets = api.gets();
    let err = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecisionError::AlreadyDecided {
                result: DecisionResult::Applied,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(api.gets(), gets, "no call to ChargebackStop");
    assert_eq!(api.patches("netalrt_1").len(), 1);
}

/// Defect 6: the policy and an operator at the same moment (every call yields, so both read
/// the record before either writes): one PATCH.
#[tokio::test]
async fn two_concurrent_actions_on_one_alert_send_one_patch() {
    let api = FakeChargebackStop::interleaved();
    let store = MemoryAlertStore::interleaved();
    waiting(&api, &store).await;
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    let (a, b) = tokio::join!(
        apply(&api, &store, &notifier, &clock, DecisionSource::AutoPolicy),
        apply(&api, &store, &notifier, &clock, DecisionSource::Operator),
    );
    assert_eq!(api.patches("netalrt_1").len(), 1, "{a:?} {b:?}");
    let applied = [&a, &b]
        .iter()
        .filter(|r| {
            matches!(
                r,
                Ok(ActionReport {
                    result: DecisionResult::Applied,
                    ..
                })
            )
        })
        .count();
    assert_eq!(applied, 1, "{a:?} {b:?}");
    let other = if a.is_ok() { b } else { a };
    assert!(
        matches!(
            other,
            Err(DecisionError::ClaimHeld { .. }) | Err(DecisionError::AlreadyDecided { .. })
        ),
        "{other:?}"
    );
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.decisions.len(), 1, "{:?}", stored.decisions);
    assert_eq!(stored.action_claim, None);
}

/// Defect 6: the sweep (which found the alert through the index) and an operator at the same
/// moment: one PATCH.
#[tokio::test]
async fn the_sweep_and_an_operator_at_the_same_moment_send_one_patch() {
    let api = Arc::new(FakeChargebackStop::interleaved());
    let store = Arc::new(MemoryAlertStore::interleaved());
    // Due in 30 minutes: inside the sweep's 2 h cutoff.
    let mut a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    a.action_required_deadline = Some(ts(NOW) + Duration::minutes(30));
    api.put_alert(a.clone());
    store_fetched_alert(&*store, &a, ts(NOW)).await.unwrap();
    let notifier = Arc::new(RecordingNotifier::default());
    let clock = Arc::new(FixedClock::at(ts(NOW)));
    let sweep = DeadlineSweep {
        alerts: store.clone(),
        api: api.clone(),
        notifier: notifier.clone(),
        policies: Arc::new(FixedPolicy(AlertPolicy::default())),
        clock: clock.clone(),
        refund_first: None,
        config: SweepConfig {
            thresholds: Threshold::parse_list("48h,24h,4h").unwrap(),
            cutoff: Some(Duration::hours(2)),
            default_action: AlertAction::AcceptDispute,
            max_alerts: 100,
            concurrency: 4,
            max_customers: 100,
        },
    };
    let load = sweep.policies.load(100).await;
    let budget = crate::domain::deadline_sweep::RunBudget::new(
        std::time::Duration::from_secs(600),
        std::time::Duration::from_secs(2),
        ts(NOW),
    );
    let (swept, operator) = tokio::join!(
        sweep.run(&load, &budget),
        apply(&api, &store, &*notifier, &clock, DecisionSource::Operator),
    );
    let swept = swept.unwrap();
    assert_eq!(api.patches("netalrt_1").len(), 1, "{swept:?} {operator:?}");
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    let finals: Vec<_> = stored
        .decisions
        .iter()
        .filter(|d| d.result == DecisionResult::Applied)
        .collect();
    assert_eq!(finals.len(), 1, "{:?}", stored.decisions);
}

/// Defect 6: a holder crashed after its PATCH landed, leaving its claim. Before expiry nobody
/// else acts; after, the next holder re-fetches, sees the action landed and sends nothing.
#[tokio::test]
async fn a_crashed_holders_claim_is_taken_over_after_expiry_without_a_second_patch() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    let clock = FixedClock::at(ts(NOW));
    leave_claim(
        &store,
        "crashed-lambda",
        DecisionSource::AutoPolicy,
        "default-policy",
        ts(NOW) + ACTION_CLAIM_TTL,
    )
    .await;
    // Its PATCH landed at ChargebackStop; its answer (and the decision) were lost in the crash.
    api.update_alert("netalrt_1", &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap();
    let notifier = RecordingNotifier::default();

    let err = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DecisionError::ClaimHeld { actor, .. } if actor == "default-policy"),
        "{err}"
    );
    assert!(err.is_retryable());

    clock.advance(ACTION_CLAIM_TTL + Duration::seconds(1));
    let report = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::NotActionable);
    assert_eq!(api.patches("netalrt_1").len(), 1, "the landed PATCH only");
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.action_claim, None);
    assert_eq!(stored.action_queue, None);
}

/// Under realistic faults a sweep run was cut off at its budget between its claim and its
/// PATCH (the PATCH met a 429). The next sweep run, seconds later, must act: the claim is the
/// sweep's own (one sweep runs at a time), not another holder's to wait out for 3 minutes. An
/// operator still waits for it.
#[tokio::test]
async fn the_next_sweep_run_takes_over_a_claim_an_interrupted_sweep_run_left() {
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    let clock = FixedClock::at(ts(NOW));
    leave_claim(
        &store,
        "sweep-run-cut-off",
        DecisionSource::Sweep,
        "deadline-sweep",
        ts(NOW) + ACTION_CLAIM_TTL,
    )
    .await;
    let notifier = RecordingNotifier::default();

    let err = apply(&api, &store, &notifier, &clock, DecisionSource::Operator)
        .await
        .unwrap_err();
    assert!(matches!(&err, DecisionError::ClaimHeld { .. }), "{err}");
    assert!(api.patches("netalrt_1").is_empty());

    let report = apply(&api, &store, &notifier, &clock, DecisionSource::Sweep)
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::Applied);
    assert_eq!(api.patches("netalrt_1").len(), 1);
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.action_claim, None);
}

/// The automatic policy acting on the view it fetched at `fetched_at`.
async fn policy_acts_on(
    api: &FakeChargebackStop,
    store: &MemoryAlertStore,
    notifier: &dyn Notifier,
    clock: &FixedClock,
    view: &Alert,
    fetched_at: chrono::DateTime<chrono::Utc>,
) -> Result<ActionReport, DecisionError> {
    let request = request(DecisionSource::AutoPolicy);
    apply_action_on_view(
        api,
        store,
        notifier,
        clock,
        request,
        Some((view, fetched_at)),
    )
    .await
}

/// One GET per decision: the caller's view of a moment ago stands in for the re-fetch when the
/// claim was free; an older view, or an earlier holder's claim, means the usual re-fetch.
#[tokio::test]
async fn a_fresh_view_spares_the_re_fetch_unless_old_or_an_earlier_holder_claimed() {
    let notifier = RecordingNotifier::default();
    let clock = FixedClock::at(ts(NOW));
    let view = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);

    // Fresh, claim free: the PATCH alone.
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    let report = policy_acts_on(&api, &store, &notifier, &clock, &view, ts(NOW))
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::Applied);
    assert_eq!((api.gets(), api.patches("netalrt_1").len()), (0, 1));

    // Older than FRESH_VIEW_MAX_AGE: fetched again.
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    let old = ts(NOW) - FRESH_VIEW_MAX_AGE - Duration::seconds(1);
    policy_acts_on(&api, &store, &notifier, &clock, &view, old)
        .await
        .unwrap();
    assert_eq!(api.gets(), 1);

    // An earlier holder's expired claim: its PATCH landed, the fresh-looking view predates it.
    let api = FakeChargebackStop::default();
    let store = MemoryAlertStore::default();
    waiting(&api, &store).await;
    leave_claim(
        &store,
        "crashed-lambda",
        DecisionSource::AutoPolicy,
        "default-policy",
        ts(NOW) - Duration::seconds(1),
    )
    .await;
    api.update_alert("netalrt_1", &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap();
    let report = policy_acts_on(&api, &store, &notifier, &clock, &view, ts(NOW))
        .await
        .unwrap();
    assert_eq!(report.result, DecisionResult::NotActionable);
    assert_eq!(api.gets(), 1);
    assert_eq!(api.patches("netalrt_1").len(), 1, "the landed PATCH only");
}
