//! Refund first, over the in-memory store, the fake ChargebackStop and a fake billing system
//! that can refund, refuse, not answer, answer only after our timeout (having refunded), and
//! answer the same refund twice.

use super::*;
use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore, RecordingNotifier};
use crate::adapters::memory_orders::MemoryOutbox;
use crate::clock::FixedClock;
use crate::domain::alert_policy::AlertPolicy;
use crate::domain::alert_record::store_fetched_alert;
use crate::domain::decision::apply_action;
use crate::domain::test_support::{alert, ts};
use crate::records::matching::{AlertMatch, Evidence, IndexedTransaction, MatchMethod};
use crate::records::matching::{MatchRecord, MatchStatus};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

const NOW: &str = "2026-11-24T10:00:00Z";
const ALERT: &str = "netalrt_1";

/// What the fake billing system does with one POST.
#[derive(Debug, Clone)]
enum Billing {
    Refund {
        cancelled: bool,
    },
    Refuse(&'static str),
    /// 503 / timeout as the adapter reports it.
    NoAnswer,
    /// Refunds, then answers only after the caller's timeout (the answer is lost).
    RefundThenHang,
}

/// A billing system keyed by idempotency key (the alert id): a refund made once is answered
/// again, never made twice.
#[derive(Default)]
struct FakeBilling {
    script: Mutex<VecDeque<Billing>>,
    posts: AtomicU32,
    refunds_made: AtomicU32,
    refunded: Mutex<Option<(String, bool)>>,
    /// How long a POST takes before answering.
    delay: Mutex<Duration>,
}

impl FakeBilling {
    fn scripted(script: Vec<Billing>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl RefundHook for FakeBilling {
    async fn post_once(
        &self,
        _config: &RefundHookConfig,
        request: &RefundRequest,
    ) -> Result<HookAnswer, HookCallError> {
        let n = self.posts.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some((reference, cancelled)) = self.refunded.lock().unwrap().clone() {
            return Ok(HookAnswer::Refunded {
                refund_reference: reference,
                subscription_cancelled: cancelled,
            });
        }
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Billing::NoAnswer);
        let refund = |cancelled: bool| {
            self.refunds_made.fetch_add(1, Ordering::SeqCst);
            let reference = format!("rf-{}-{n}", request.alert_id);
            *self.refunded.lock().unwrap() = Some((reference.clone(), cancelled));
            reference
        };
        match step {
            Billing::Refund { cancelled } => Ok(HookAnswer::Refunded {
                refund_reference: refund(cancelled),
                subscription_cancelled: cancelled,
            }),
            Billing::Refuse(reason) => Ok(HookAnswer::Refused {
                reason: format!("409: {reason}"),
            }),
            Billing::NoAnswer => Err(HookCallError::NoAnswer {
                reason: "HTTP 503".into(),
            }),
            Billing::RefundThenHang => {
                refund(false);
                tokio::time::sleep(Duration::from_secs(30)).await;
                unreachable!("the caller's timeout ends this first")
            }
        }
    }
}

fn config() -> RefundHookConfig {
    RefundHookConfig {
        url: "https://billing.example/refunds".into(),
        secret_id: "cbs/refund-hook/org_1".into(),
        timeout_ms: 100,
        max_attempts: 3,
    }
}

fn matched(refunded: bool) -> MatchRecord {
    MatchRecord {
        matched: AlertMatch {
            status: MatchStatus::Matched,
            method: Some(MatchMethod::Arn),
            confidence: 98,
            descriptor_tie_break: false,
            transaction: Some(IndexedTransaction {
                organisation_id: "org_1".into(),
                order_reference_id: "o-1".into(),
                transaction_reference_id: "txn-o-1".into(),
                amount_in_cents: Some(4900),
                currency: Some("USD".into()),
                ..Default::default()
            }),
            candidates: Vec::new(),
            tried: Vec::new(),
            reads: 1,
            matched_at: NOW.into(),
        },
        evidence: Some(Evidence {
            refunded_cents: if refunded { 4900 } else { 0 },
            fully_refunded: refunded,
            ..Default::default()
        }),
        rule: None,
    }
}

fn policy() -> AlertPolicy {
    AlertPolicy {
        name: "p".into(),
        note: Some("Refunded".into()),
        refund_hook: Some(config()),
        ..AlertPolicy::default()
    }
}

struct World {
    api: Arc<FakeChargebackStop>,
    store: Arc<MemoryAlertStore>,
    notifier: Arc<RecordingNotifier>,
    outbox: Arc<MemoryOutbox>,
    clock: Arc<FixedClock>,
    billing: Arc<FakeBilling>,
    first: RefundFirst,
}

async fn world(script: Vec<Billing>) -> World {
    let api = Arc::new(FakeChargebackStop::default());
    let store = Arc::new(MemoryAlertStore::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let outbox = Arc::new(MemoryOutbox::default());
    let clock = Arc::new(FixedClock::at(ts(NOW)));
    let billing = FakeBilling::scripted(script);
    let a = alert(ALERT, "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    api.put_alert(a.clone());
    store_fetched_alert(&*store, &a, ts(NOW)).await.unwrap();
    let order: crate::models::order::Order = serde_json::from_value(serde_json::json!({
        "type": "COMPLETE", "organisation_id": "org_1", "integration_id": "int_1",
        "reference_id": "o-1", "order_datetime": "2026-11-20T09:59:00Z", "order_number": "o-1",
        "order_subtotal_amount_in_cents": 4900, "order_currency": "USD",
        "order_total_amount_in_cents": 4900, "order_status": "CLOSED_COMPLETE",
        "transactions": [{"reference_id": "txn-o-1", "amount_in_cents": 4900, "currency": "USD",
            "payment_method_type": "CARD", "authorisation_status": "SETTLED",
            "payment_method_reference_id": "pay-1", "authorised_at": "2026-11-20T09:59:05Z"}]
    }))
    .unwrap();
    outbox.enqueue(&[order], ts(NOW)).await.unwrap();
    let first = RefundFirst {
        hook: billing.clone(),
        alert_api: api.clone(),
        alerts: store.clone(),
        outbox: Some(outbox.clone()),
        notifier: notifier.clone(),
        clock: clock.clone(),
        backoff: Duration::from_millis(5),
    };
    World {
        api,
        store,
        notifier,
        outbox,
        clock,
        billing,
        first,
    }
}

fn request(action: AlertAction) -> RefundRequest {
    let a = alert(ALERT, "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    match refund_need(&a, &policy(), Some(&matched(false)), &action) {
        RefundNeed::AskHook { request, .. } => request,
        other => panic!("expected the hook to be asked, got {other:?}"),
    }
}

fn asker() -> Asker {
    Asker {
        source: DecisionSource::AutoPolicy,
        actor: "p".into(),
        reason: "p/small: amount 4900 USD".into(),
        note: Some("Refunded".into()),
    }
}

impl World {
    async fn refund(&self, action: AlertAction) -> Result<RefundFirstOutcome, RefundFirstError> {
        self.first
            .refund_then_act(
                &config(),
                &request(action),
                &asker(),
                None,
                self.clock.now() + chrono::Duration::seconds(30),
            )
            .await
    }

    async fn record(&self) -> AlertRecord {
        self.store.get(ALERT).await.unwrap().unwrap()
    }

    fn queued_refunds(&self) -> Vec<String> {
        self.outbox
            .snapshot()
            .into_iter()
            .flat_map(|o| o.pending_updates.into_values())
            .flat_map(|p| p.refunds.unwrap_or_default())
            .filter_map(|r| r.reference_id)
            .collect()
    }
}

#[test]
fn only_an_unrefunded_matched_refund_with_a_hook_asks_the_billing_system() {
    let a = alert(ALERT, "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    let p = policy();
    let r = AlertAction::Refund;
    // Already refunded in the partner's records: REFUND at once, nothing asked.
    assert_eq!(
        refund_need(&a, &p, Some(&matched(true)), &r),
        RefundNeed::SendAsDecided
    );
    // Not a refund.
    assert_eq!(
        refund_need(&a, &p, Some(&matched(false)), &AlertAction::AcceptDispute),
        RefundNeed::SendAsDecided
    );
    // No hook configured: as before.
    let no_hook = AlertPolicy {
        refund_hook: None,
        ..p.clone()
    };
    assert_eq!(
        refund_need(&a, &no_hook, Some(&matched(false)), &r),
        RefundNeed::SendAsDecided
    );
    // Nothing matched: nothing to refund first; a person.
    assert!(matches!(
        refund_need(&a, &p, None, &r),
        RefundNeed::NoTransaction { .. }
    ));
    let RefundNeed::AskHook { request, .. } = refund_need(&a, &p, Some(&matched(false)), &r) else {
        panic!("asks")
    };
    assert_eq!(request.order_reference_id, "o-1");
    assert_eq!(request.transaction_reference_id, "txn-o-1");
    assert_eq!(request.amount_in_cents, Some(4900));
    assert_eq!(request.currency.as_deref(), Some("USD"));
}

#[test]
fn a_policy_refuses_a_hook_that_is_not_https_naming_the_field() {
    let bad =
        serde_json::json!({"refund_hook": {"url": "http://billing.example/r", "secret_id": "s"}});
    let err = AlertPolicy::from_json(&bad).unwrap_err();
    assert!(err.0.iter().any(|p| p.field == "refund_hook.url"), "{err}");
    let local =
        serde_json::json!({"refund_hook": {"url": "http://127.0.0.1:9000/r", "secret_id": "s"}});
    assert!(AlertPolicy::from_json(&local).is_ok());
    let typo = serde_json::json!({"refund_hook": {"url": "https://b.example", "secret": "s"}});
    assert!(AlertPolicy::from_json(&typo).is_err());
}

#[tokio::test]
async fn a_confirmed_refund_is_patched_naming_the_partners_reference() {
    let w = world(vec![Billing::Refund { cancelled: false }]).await;
    let outcome = w.refund(AlertAction::Refund).await.unwrap();
    let RefundFirstOutcome::Actioned(report) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(report.result, DecisionResult::Applied);
    let patches = w.api.patches(ALERT);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].action, Some(AlertAction::Refund));
    let note = patches[0].note.clone().unwrap();
    assert!(note.contains("rf-netalrt_1-1"), "{note}");
    let record = w.record().await;
    let hook = record.refund_hook.clone().unwrap();
    assert_eq!(hook.state, RefundHookState::Confirmed);
    assert_eq!(hook.refund_reference.as_deref(), Some("rf-netalrt_1-1"));
    assert_eq!(hook.attempts, 1);
    let d = record.decisions.last().unwrap();
    assert!(
        d.reason
            .contains("refund hook CONFIRMED: refund rf-netalrt_1-1"),
        "{}",
        d.reason
    );
    assert_eq!(record.action_claim, None);
    // The refund goes to ChargebackStop's order through the outbox.
    assert_eq!(w.queued_refunds(), vec!["rf-netalrt_1-1".to_string()]);
}

#[tokio::test]
async fn a_cancelled_subscription_is_refund_and_cancel() {
    let w = world(vec![Billing::Refund { cancelled: true }]).await;
    w.refund(AlertAction::RefundAndCancel).await.unwrap();
    assert_eq!(
        w.api.patches(ALERT)[0].action,
        Some(AlertAction::RefundAndCancel)
    );
}

#[tokio::test]
async fn a_refusal_leaves_the_alert_to_a_person_and_sends_nothing() {
    let w = world(vec![Billing::Refuse("already shipped")]).await;
    let outcome = w.refund(AlertAction::Refund).await.unwrap();
    assert!(
        matches!(outcome, RefundFirstOutcome::Refused { .. }),
        "{outcome:?}"
    );
    assert!(w.api.patches(ALERT).is_empty(), "nothing PATCHed");
    let record = w.record().await;
    assert_eq!(
        record.refund_hook.as_ref().unwrap().state,
        RefundHookState::Refused
    );
    assert!(record.action_queue.is_some(), "still in the action queue");
    assert!(record.was_left_for_person());
    assert!(!record.has_final_decision());
    assert_eq!(record.action_claim, None, "the claim is given back");
    let d = record.decisions.last().unwrap();
    assert_eq!(d.result, DecisionResult::LeftForPerson);
    assert!(d.detail.as_deref().unwrap().contains("already shipped"));
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "refund_hook.refused");
    assert!(w.queued_refunds().is_empty());
}

#[tokio::test]
async fn no_answer_is_retried_then_pending_and_a_later_retry_patches_once() {
    let w = world(vec![
        Billing::NoAnswer,
        Billing::NoAnswer,
        Billing::NoAnswer,
    ])
    .await;
    let outcome = w.refund(AlertAction::Refund).await.unwrap();
    assert!(
        matches!(outcome, RefundFirstOutcome::Pending { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.billing.posts.load(Ordering::SeqCst), 3, "max_attempts");
    assert!(w.api.patches(ALERT).is_empty());
    let record = w.record().await;
    let hook = record.refund_hook.clone().unwrap();
    assert_eq!(hook.state, RefundHookState::Pending);
    assert_eq!(hook.attempts, 3);
    assert!(hook.detail.unwrap().contains("503"));
    assert_eq!(record.action_claim, None);
    assert!(needs_retry(&record, w.clock.now()));
    assert!(
        record.decisions.is_empty(),
        "not decided, not a person's yet"
    );

    // The sweep asks again later: refunded, PATCHed once, attempts counted over both calls.
    w.billing
        .script
        .lock()
        .unwrap()
        .push_back(Billing::Refund { cancelled: false });
    w.refund(AlertAction::Refund).await.unwrap();
    assert_eq!(w.api.patches(ALERT).len(), 1);
    assert_eq!(w.record().await.refund_hook.unwrap().attempts, 4);
}

#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_asked_again_and_patched_once() {
    // The first POST refunds and times out; the retry (same idempotency key) gets the same
    // refund: one refund at the partner, one PATCH, the one reference.
    let w = world(vec![Billing::RefundThenHang]).await;
    w.refund(AlertAction::Refund).await.unwrap();
    assert_eq!(w.billing.refunds_made.load(Ordering::SeqCst), 1);
    assert_eq!(w.billing.posts.load(Ordering::SeqCst), 2);
    let patches = w.api.patches(ALERT);
    assert_eq!(patches.len(), 1);
    assert!(patches[0]
        .note
        .as_deref()
        .unwrap()
        .contains("rf-netalrt_1-1"));
}

#[tokio::test]
async fn a_hook_answering_twice_never_leads_to_two_patches() {
    let w = world(vec![Billing::Refund { cancelled: false }]).await;
    *w.billing.delay.lock().unwrap() = Duration::from_millis(50);
    // Two deliveries at once: one holds the claim, the other is refused before asking.
    let (a, b) = tokio::join!(w.refund(AlertAction::Refund), w.refund(AlertAction::Refund));
    let held = [&a, &b]
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(RefundFirstError::Decision(DecisionError::ClaimHeld { .. }))
            )
        })
        .count();
    assert_eq!(held, 1, "{a:?} {b:?}");
    // A redelivery after the decision: the billing system would answer the same refund
    // again, but nothing is asked and nothing sent.
    let again = w.refund(AlertAction::Refund).await;
    assert!(
        matches!(
            again,
            Err(RefundFirstError::Decision(
                DecisionError::AlreadyDecided { .. }
            ))
        ),
        "{again:?}"
    );
    assert_eq!(w.billing.posts.load(Ordering::SeqCst), 1);
    assert_eq!(w.api.patches(ALERT).len(), 1);
}

#[tokio::test]
async fn a_confirmation_stored_before_a_crash_is_patched_without_asking_again() {
    let w = world(vec![Billing::Refund { cancelled: false }]).await;
    // The PATCH fails after the confirmation was stored (an outage): retryable, nothing sent.
    w.api.fail_next_calls(0, 1);
    assert!(w.refund(AlertAction::Refund).await.is_err());
    assert_eq!(
        w.record().await.refund_hook.unwrap().state,
        RefundHookState::Confirmed
    );
    w.refund(AlertAction::Refund).await.unwrap();
    assert_eq!(w.billing.posts.load(Ordering::SeqCst), 1, "asked once");
    assert_eq!(w.api.patches(ALERT).len(), 1);
    assert_eq!(w.queued_refunds().len(), 1, "queued once");
}

#[tokio::test]
async fn nobody_else_actions_the_alert_while_the_billing_system_is_asked() {
    let w = Arc::new(world(vec![Billing::Refund { cancelled: false }]).await);
    *w.billing.delay.lock().unwrap() = Duration::from_millis(80);
    let asking = {
        let w = w.clone();
        tokio::spawn(async move { w.refund(AlertAction::Refund).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The sweep at the cutoff meets the hook's claim: nothing sent.
    let sweep = apply_action(
        &*w.api,
        &*w.store,
        &*w.notifier,
        &*w.clock,
        ActionRequest {
            alert_id: ALERT.into(),
            action: AlertAction::AcceptDispute,
            note: None,
            source: DecisionSource::Sweep,
            actor: "deadline-sweep".into(),
            reason: "cutoff".into(),
        },
    )
    .await;
    assert!(
        matches!(sweep, Err(DecisionError::ClaimHeld { .. })),
        "{sweep:?}"
    );
    asking.await.unwrap();
    let patches = w.api.patches(ALERT);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].action, Some(AlertAction::Refund));
}

#[tokio::test]
async fn no_time_left_asks_nothing_and_leaves_it_pending() {
    let w = world(vec![Billing::Refund { cancelled: false }]).await;
    let outcome = w
        .first
        .refund_then_act(
            &config(),
            &request(AlertAction::Refund),
            &asker(),
            None,
            w.clock.now() + chrono::Duration::milliseconds(50),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, RefundFirstOutcome::Pending { .. }));
    assert_eq!(w.billing.posts.load(Ordering::SeqCst), 0);
    assert!(w.api.patches(ALERT).is_empty());
}

mod sweep {
    use super::*;
    use crate::domain::alert_policy::FixedPolicy;
    use crate::domain::deadline_sweep::{DeadlineSweep, RunBudget, SweepConfig, Threshold};

    fn sweep(w: &World, retrying: bool) -> DeadlineSweep {
        let refund_first = RefundFirst {
            hook: w.billing.clone(),
            alert_api: w.api.clone(),
            alerts: w.store.clone(),
            outbox: Some(w.outbox.clone()),
            notifier: w.notifier.clone(),
            clock: w.clock.clone(),
            backoff: Duration::from_millis(5),
        };
        DeadlineSweep {
            alerts: w.store.clone(),
            api: w.api.clone(),
            notifier: w.notifier.clone(),
            policies: Arc::new(FixedPolicy(AlertPolicy {
                cutoff_action: Some(AlertAction::AcceptDispute),
                ..policy()
            })),
            clock: w.clock.clone(),
            refund_first: retrying.then(|| Arc::new(refund_first)),
            config: SweepConfig {
                thresholds: Threshold::parse_list("48h,24h,4h").unwrap(),
                cutoff: Some(chrono::Duration::hours(2)),
                ..SweepConfig::default()
            },
        }
    }

    async fn run(w: &World, retrying: bool) -> crate::domain::deadline_sweep::SweepReport {
        let s = sweep(w, retrying);
        let load = s.policies.load(100).await;
        let budget = RunBudget::new(
            Duration::from_secs(600),
            Duration::from_secs(2),
            w.clock.now(),
        );
        s.run(&load, &budget).await.unwrap()
    }

    /// A refund left pending by process-events (no answer).
    async fn pending(script: Vec<Billing>) -> World {
        let w = world(vec![
            Billing::NoAnswer,
            Billing::NoAnswer,
            Billing::NoAnswer,
        ])
        .await;
        w.refund(AlertAction::Refund).await.unwrap();
        assert_eq!(
            w.record().await.refund_hook.unwrap().state,
            RefundHookState::Pending
        );
        w.billing.script.lock().unwrap().extend(script);
        w
    }

    #[tokio::test]
    async fn the_sweep_asks_a_pending_refund_again_before_the_cutoff() {
        let w = pending(vec![Billing::Refund { cancelled: false }]).await;
        w.clock.advance(chrono::Duration::hours(1));
        let report = run(&w, true).await;
        assert_eq!(report.refund_hook_retried, 1, "{report:?}");
        let patches = w.api.patches(ALERT);
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].action, Some(AlertAction::Refund));
        assert_eq!(
            w.record().await.refund_hook.unwrap().state,
            RefundHookState::Confirmed
        );
        // Without the retry wired, the pending refund waits (the same run sends nothing).
        let w = pending(vec![Billing::Refund { cancelled: false }]).await;
        w.clock.advance(chrono::Duration::hours(1));
        assert_eq!(run(&w, false).await.refund_hook_retried, 0);
        assert!(w.api.patches(ALERT).is_empty());
    }

    #[tokio::test]
    async fn at_the_cutoff_an_unconfirmed_refund_gets_the_cutoff_action_and_a_person_is_told() {
        let w = pending(vec![]).await;
        // One hour before the deadline: inside the 2 h cutoff.
        w.clock.set(ts("2026-11-26T09:00:00Z"));
        let report = run(&w, true).await;
        assert_eq!(report.actioned, 1, "{report:?}");
        assert_eq!(
            report.refund_hook_retried, 0,
            "no more asking at the cutoff"
        );
        let patches = w.api.patches(ALERT);
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].action, Some(AlertAction::AcceptDispute));
        let kinds: Vec<String> = w.notifier.sent().into_iter().map(|n| n.kind).collect();
        assert!(
            kinds.contains(&"refund_hook.unconfirmed_at_cutoff".to_string()),
            "{kinds:?}"
        );
    }
}
