//! Late data and the decision path over in-memory fakes: the processor matches an alert through
//! the index and records match, evidence and rule; an order (or a refund) taken in after the
//! alert re-evaluates it while it waits.

use super::late::{Reevaluator, Rematch};
use super::*;
use crate::adapters::memory::{
    FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog, RecordingNotifier,
};
use crate::adapters::memory_orders::MemoryOutbox;
use crate::adapters::memory_transactions::MemoryTransactionIndex;
use crate::clock::{Clock, FixedClock};
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::decision::{DecisionResult, DecisionSource};
use crate::domain::event_processing::{EventProcessor, IncomingEvent};
use crate::domain::order_intake::intake_orders;
use crate::domain::test_support::ts;
use crate::models::alert::{Alert, AlertAction};
use crate::models::order::PatchOrder;
use crate::ports::alert_store::AlertStore;
use crate::ports::order_outbox::OrderOutbox;
use crate::records::matching::MatchStatus;
use serde_json::json;
use std::sync::Arc;

struct World {
    alerts: Arc<MemoryAlertStore>,
    api: Arc<FakeChargebackStop>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<FixedClock>,
    index: Arc<MemoryTransactionIndex>,
    outbox: IndexedOutbox,
    processor: EventProcessor,
}

/// Unmatched and ambiguous alerts to a person; matched, not refunded ones too; a refunded one
/// is refunded at once (the policy's first rule).
fn policy() -> AlertPolicy {
    AlertPolicy::from_json(&json!({
        "name": "late",
        "note": "Refunded in our platform",
        "rules": [
            {"name": "unmatched", "when": {"match_status": ["UNMATCHED", "AMBIGUOUS"]}, "then": "PERSON"},
            {"name": "not-refunded", "when": {"partner_refunded": ["NONE", "PARTLY"]}, "then": "PERSON"}
        ]
    }))
    .unwrap()
}

fn world() -> World {
    let alerts = Arc::new(MemoryAlertStore::default());
    let api = Arc::new(FakeChargebackStop::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
    let index = Arc::new(MemoryTransactionIndex::default());
    let policies = Arc::new(FixedPolicy(policy()));
    let reevaluator = Arc::new(Reevaluator {
        alert_api: api.clone(),
        alerts: alerts.clone(),
        notifier: notifier.clone(),
        policies: policies.clone(),
        index: index.clone(),
        clock: clock.clone(),
        refund_first: None,
    });
    let outbox = IndexedOutbox::new(Arc::new(MemoryOutbox::default()), index.clone())
        .with_late_matches(reevaluator);
    let (events, enrolments) = (
        Arc::new(MemoryEventLog::default()),
        Arc::new(MemoryEnrolmentStore::default()),
    );
    let processor = EventProcessor {
        commits: Arc::new(crate::adapters::memory_commit::MemoryCommitter::new(
            events.clone(),
            alerts.clone(),
            enrolments.clone(),
        )),
        events,
        alerts: alerts.clone(),
        enrolments,
        alert_api: api.clone(),
        enrolment_api: api.clone(),
        notifier: notifier.clone(),
        policies,
        partner_records: Arc::new(IndexedPartnerRecords::new(index.clone(), clock.clone())),
        clock: clock.clone(),
        not_found_retry_for: chrono::Duration::hours(1),
        refund_first: None,
    };
    World {
        alerts,
        api,
        notifier,
        clock,
        index,
        outbox,
        processor,
    }
}

fn alert(id: &str, arn: &str) -> Alert {
    serde_json::from_value(json!({
        "id": id,
        "organisation_id": "org_1",
        "enrolment_type": "ETHOCA_ALERT",
        "status": "ACTION_REQUIRED",
        "transaction_amount_in_cents": 4900,
        "transaction_currency_code": "USD",
        "transaction_acquirer_reference_number": arn,
        "action_required_deadline": "2026-11-26T10:00:00Z",
        "alert_received_at": "2026-11-24T09:00:00Z",
    }))
    .unwrap()
}

fn order(reference: &str, arn: &str, refunded: bool) -> serde_json::Value {
    let mut o = json!({
        "type": "COMPLETE", "organisation_id": "org_1", "integration_id": "int_1",
        "reference_id": reference, "order_datetime": "2026-11-20T09:59:00Z",
        "order_number": reference, "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD", "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE", "customer_email": "casey@example.com",
        "transactions": [{
            "reference_id": format!("txn-{reference}"), "amount_in_cents": 4900, "currency": "USD",
            "payment_method_type": "CARD", "authorisation_status": "SETTLED",
            "payment_method_reference_id": "pay", "authorised_at": "2026-11-20T09:59:05Z",
            "payment_method_card_brand": "VISA", "payment_method_card_last_4": "4242",
            "acquirer_reference_number": arn
        }]
    });
    if refunded {
        o["refunds"] = json!([{"reference_id": format!("rf-{reference}"), "amount_in_cents": 4900,
            "currency": "USD", "status": "SUCCEEDED",
            "original_transaction_reference_id": format!("txn-{reference}")}]);
    }
    o
}

impl World {
    async fn arrive(&self, a: &Alert) {
        self.api.put_alert(a.clone());
        let m = IncomingEvent {
            message_id: format!("msg-{}", a.id),
            body: json!({"id": format!("evt-{}", a.id), "type": "alert.created",
                "created_at": "2026-11-24T09:59:00Z", "data": {"object": a}})
            .to_string(),
            idempotency_key: None,
            signature_timestamp: None,
            received_at: None,
            receive_count: 1,
            sent_at: None,
        };
        self.processor
            .process(&m, self.clock.now() + chrono::Duration::seconds(30))
            .await
            .unwrap();
    }

    async fn record(&self, id: &str) -> crate::records::alert::AlertRecord {
        self.alerts.get(id).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn a_matched_refunded_alert_is_refunded_at_once_with_match_evidence_and_rule_recorded() {
    let w = world();
    intake_orders(&w.outbox, vec![order("o-1", "ARN1", true)], w.clock.now())
        .await
        .unwrap();
    w.arrive(&alert("a1", "ARN1")).await;
    assert_eq!(w.api.patches("a1")[0].action, Some(AlertAction::Refund));
    let r = w.record("a1").await;
    let m = r.alert_match.expect("match stored on the alert");
    assert_eq!(m.matched.status, MatchStatus::Matched);
    assert_eq!(m.rule.as_deref(), Some("late/refund_when_partner_refunded"));
    assert!(m.evidence.unwrap().fully_refunded);
    assert_eq!(r.decisions[0].result, DecisionResult::Applied);
    assert!(
        r.decisions[0].reason.contains("fully refunded"),
        "{}",
        r.decisions[0].reason
    );
}

#[tokio::test]
async fn an_order_taken_in_after_its_alert_decides_the_waiting_alert() {
    let w = world();
    w.arrive(&alert("a1", "ARN1")).await;
    let r = w.record("a1").await;
    assert_eq!(
        r.alert_match.as_ref().unwrap().matched.status,
        MatchStatus::Unmatched
    );
    assert_eq!(
        r.alert_match.as_ref().unwrap().rule.as_deref(),
        Some("late/unmatched")
    );
    assert_eq!(r.decisions[0].result, DecisionResult::LeftForPerson);
    assert!(w.api.patches("a1").is_empty());

    // An unrelated order re-evaluates nothing.
    intake_orders(&w.outbox, vec![order("o-0", "ARN0", true)], w.clock.now())
        .await
        .unwrap();
    assert!(w.api.patches("a1").is_empty());
    assert_eq!(w.record("a1").await.decisions.len(), 1);

    // The alert's own order, already refunded: matched on arrival, refunded.
    intake_orders(&w.outbox, vec![order("o-1", "ARN1", true)], w.clock.now())
        .await
        .unwrap();
    let patches = w.api.patches("a1");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].action, Some(AlertAction::Refund));
    let r = w.record("a1").await;
    assert_eq!(
        r.alert_match.as_ref().unwrap().matched.status,
        MatchStatus::Matched
    );
    let last = r.decisions.last().unwrap();
    assert_eq!(
        (last.result, last.source),
        (DecisionResult::Applied, DecisionSource::AutoPolicy)
    );
    assert!(
        last.reason.starts_with("late data (was UNMATCHED)"),
        "{}",
        last.reason
    );

    // Taken in again: no second action, the alert left the waiting list.
    intake_orders(&w.outbox, vec![order("o-1", "ARN1", true)], w.clock.now())
        .await
        .unwrap();
    assert_eq!(w.api.patches("a1").len(), 1);
}

#[tokio::test]
async fn a_refund_queued_for_a_matched_order_decides_its_waiting_alert() {
    let w = world();
    intake_orders(&w.outbox, vec![order("o-1", "ARN1", false)], w.clock.now())
        .await
        .unwrap();
    w.arrive(&alert("a1", "ARN1")).await;
    let r = w.record("a1").await;
    assert_eq!(
        r.alert_match.as_ref().unwrap().rule.as_deref(),
        Some("late/not-refunded")
    );
    assert!(w.api.patches("a1").is_empty());

    let refund: PatchOrder = serde_json::from_value(json!({"refunds": [{
        "reference_id": "rf-1", "amount_in_cents": 4900, "currency": "USD", "status": "SUCCEEDED",
        "original_transaction_reference_id": "txn-o-1"}]}))
    .unwrap();
    w.outbox
        .queue_update("org_1", "o-1", "u-1", &refund, w.clock.now())
        .await
        .unwrap();
    assert_eq!(w.api.patches("a1")[0].action, Some(AlertAction::Refund));
    let r = w.record("a1").await;
    assert_eq!(
        r.alert_match.unwrap().rule.as_deref(),
        Some("late/refund_when_partner_refunded")
    );
}

#[tokio::test]
async fn late_data_for_a_still_unmatched_alert_is_told_to_a_person_once() {
    let w = world();
    w.arrive(&alert("a1", "ARN1")).await;
    let told = w.notifier.sent().len();
    // Two orders with the same ARN: ambiguous, still a person's; they are told what changed.
    intake_orders(
        &w.outbox,
        vec![order("o-1", "ARN1", false), order("o-2", "ARN1", false)],
        w.clock.now(),
    )
    .await
    .unwrap();
    let r = w.record("a1").await;
    assert_eq!(
        r.alert_match.as_ref().unwrap().matched.status,
        MatchStatus::Ambiguous
    );
    assert_eq!(r.alert_match.as_ref().unwrap().matched.candidates.len(), 2);
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), told + 1);
    assert_eq!(sent.last().unwrap().kind, "alert.rematched");
    // Re-evaluating again with nothing new changes nothing.
    let again = Reevaluator {
        alert_api: w.api.clone(),
        alerts: w.alerts.clone(),
        notifier: w.notifier.clone(),
        policies: Arc::new(FixedPolicy(policy())),
        index: w.index.clone(),
        clock: w.clock.clone(),
        refund_first: None,
    };
    assert_eq!(again.rematch_one("a1").await.unwrap(), Rematch::Unchanged);
    assert_eq!(w.notifier.sent().len(), told + 1);
    assert!(w.api.patches("a1").is_empty());
}

#[tokio::test]
async fn a_dry_run_shows_what_another_policy_would_decide_and_writes_nothing() {
    let w = world();
    intake_orders(&w.outbox, vec![order("o-1", "ARN1", true)], w.clock.now())
        .await
        .unwrap();
    w.arrive(&alert("a1", "ARN1")).await; // refunded: REFUND
    w.arrive(&alert("a2", "ARN2")).await; // unmatched: a person's
    let writes = w.index.writes();
    let other =
        AlertPolicy::from_json(&json!({"name": "other", "refund_at_or_below_cents": 10000}))
            .unwrap();
    let lines = super::dry_run::policy_dry_run(
        &*w.alerts,
        &*w.index,
        &other,
        "org_1",
        None,
        100,
        w.clock.now(),
    )
    .await
    .unwrap();
    let by_id = |id: &str| lines.iter().find(|l| l.alert_id == id).unwrap().clone();
    let a1 = by_id("a1");
    assert_eq!(
        (a1.would.as_str(), a1.decided.as_str(), a1.same),
        ("REFUND", "REFUND", true)
    );
    assert_eq!(a1.rule, "other/refund_when_partner_refunded");
    assert_eq!(a1.matched, "MATCHED Arn");
    assert!(
        a1.evidence.iter().any(|e| e.contains("fully refunded")),
        "{:?}",
        a1.evidence
    );
    assert!(a1
        .decided_rule
        .as_deref()
        .is_some_and(|r| r.ends_with("/refund_when_partner_refunded")));
    let a2 = by_id("a2");
    assert_eq!(
        (a2.would.as_str(), a2.decided.as_str(), a2.same),
        ("REFUND", "PERSON", false)
    );
    assert_eq!(a2.matched, "UNMATCHED");
    assert_eq!(w.index.writes(), writes, "a dry run writes nothing");
    let since = super::dry_run::policy_dry_run(
        &*w.alerts,
        &*w.index,
        &other,
        "org_1",
        Some(ts("2026-11-25T00:00:00Z")),
        100,
        w.clock.now(),
    )
    .await
    .unwrap();
    assert!(since.is_empty(), "both alerts were received before --since");
}

/// A billing system that refunds every request (counted).
#[derive(Default)]
struct RefundingBilling(std::sync::atomic::AtomicU32);

#[async_trait::async_trait]
impl crate::ports::refund_hook::RefundHook for RefundingBilling {
    async fn post_once(
        &self,
        _config: &crate::records::refund_hook::RefundHookConfig,
        request: &crate::records::refund_hook::RefundRequest,
    ) -> Result<crate::ports::refund_hook::HookAnswer, crate::ports::refund_hook::HookCallError>
    {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(crate::ports::refund_hook::HookAnswer::Refunded {
            refund_reference: format!("bill-{}", request.order_reference_id),
            subscription_cancelled: false,
        })
    }
}

#[tokio::test]
async fn a_refund_decided_on_late_data_asks_the_billing_system_first() {
    let w = world();
    let hook_policy = AlertPolicy::from_json(&json!({
        "name": "late-hook", "refund_at_or_below_cents": 5000,
        "refund_hook": {"url": "https://billing.example/r", "secret_id": "s"},
        "rules": [{"name": "unmatched", "when": {"match_status": ["UNMATCHED"]}, "then": "PERSON"}]
    }))
    .unwrap();
    w.arrive(&alert("a1", "ARN1")).await;
    let billing = Arc::new(RefundingBilling::default());
    let reevaluator = Arc::new(Reevaluator {
        alert_api: w.api.clone(),
        alerts: w.alerts.clone(),
        notifier: w.notifier.clone(),
        policies: Arc::new(FixedPolicy(hook_policy)),
        index: w.index.clone(),
        clock: w.clock.clone(),
        refund_first: Some(Arc::new(crate::domain::refund_hook::RefundFirst {
            hook: billing.clone(),
            alert_api: w.api.clone(),
            alerts: w.alerts.clone(),
            outbox: None,
            notifier: w.notifier.clone(),
            clock: w.clock.clone(),
            backoff: std::time::Duration::from_millis(5),
        })),
    });
    let outbox = IndexedOutbox::new(Arc::new(MemoryOutbox::default()), w.index.clone())
        .with_late_matches(reevaluator);
    // The alert's order arrives, not refunded: the amount rule decides REFUND, asked first.
    intake_orders(&outbox, vec![order("o-1", "ARN1", false)], w.clock.now())
        .await
        .unwrap();
    assert_eq!(billing.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    let patches = w.api.patches("a1");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].action, Some(AlertAction::Refund));
    assert!(patches[0].note.as_deref().unwrap().contains("bill-o-1"));
}
