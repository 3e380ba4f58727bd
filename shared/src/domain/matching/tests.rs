use super::keys::order_entries;
use super::*;
use crate::adapters::memory_orders::MemoryOutbox;
use crate::adapters::memory_transactions::MemoryTransactionIndex;
use crate::domain::order_intake::intake_orders;
use crate::domain::test_support::ts;
use crate::models::alert::Alert;
use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::OrderOutbox;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::{MatchMethod, MatchStatus};
use serde_json::json;
use std::sync::Arc;

const NOW: &str = "2026-11-24T10:00:00Z";

/// An order with one card transaction; `t` overrides transaction fields.
fn order(reference: &str, t: serde_json::Value) -> serde_json::Value {
    let mut txn = json!({
        "reference_id": format!("txn-{reference}"),
        "amount_in_cents": 4900,
        "currency": "USD",
        "payment_method_type": "CARD",
        "authorisation_status": "SETTLED",
        "payment_method_reference_id": format!("pay-{reference}"),
        "authorised_at": "2026-11-20T09:59:05Z",
        "descriptor": "ACMEFIT MONTHLY",
        "payment_method_card_brand": "VISA",
        "payment_method_card_last_4": "4242",
        "payment_method_card_bin": "424242"
    });
    for (k, v) in t.as_object().unwrap() {
        txn[k] = v.clone();
    }
    json!({
        "type": "COMPLETE",
        "organisation_id": "org_1",
        "integration_id": "int_1",
        "reference_id": reference,
        "order_datetime": "2026-11-20T09:59:00Z",
        "order_number": format!("AF-{reference}"),
        "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD",
        "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE",
        "customer_email": "Casey@Example.com",
        "transactions": [txn]
    })
}

/// An alert with only the given transaction fields (besides the ids and amount).
fn alert(id: &str, fields: serde_json::Value) -> Alert {
    let mut a = json!({
        "id": id,
        "organisation_id": "org_1",
        "enrolment_type": "ETHOCA_ALERT",
        "status": "ACTION_REQUIRED",
        "transaction_amount_in_cents": 4900,
        "transaction_currency_code": "USD",
        "alert_received_at": "2026-11-24T09:00:00Z",
    });
    for (k, v) in fields.as_object().unwrap() {
        a[k] = v.clone();
    }
    serde_json::from_value(a).unwrap()
}

struct World {
    outbox: IndexedOutbox,
    index: Arc<MemoryTransactionIndex>,
}

fn world() -> World {
    let index = Arc::new(MemoryTransactionIndex::default());
    World {
        outbox: IndexedOutbox::new(Arc::new(MemoryOutbox::default()), index.clone()),
        index,
    }
}

impl World {
    async fn take_in(&self, orders: Vec<serde_json::Value>) {
        let report = intake_orders(&self.outbox, orders, ts(NOW)).await.unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    async fn matched(&self, a: &Alert) -> crate::records::matching::AlertMatch {
        match_alert(&*self.index, a, ts(NOW)).await.unwrap()
    }
}

#[tokio::test]
async fn integration_transaction_id_matches_first_even_when_the_arn_points_elsewhere() {
    let w = world();
    w.take_in(vec![
        order("o-1", json!({"acquirer_reference_number": "ARN-A"})),
        order("o-2", json!({"acquirer_reference_number": "ARN-B"})),
    ])
    .await;
    let m = w
        .matched(&alert(
            "a1",
            json!({"integration_transaction_id": "txn-o-1",
                   "transaction_acquirer_reference_number": "ARN-B"}),
        ))
        .await;
    assert_eq!(m.status, MatchStatus::Matched);
    assert_eq!(m.method, Some(MatchMethod::IntegrationTransactionId));
    assert_eq!(m.confidence, 100);
    assert_eq!(m.transaction.unwrap().order_reference_id, "o-1");
    assert_eq!(m.reads, 1);
}

#[tokio::test]
async fn arn_matches_exactly_ignoring_case_and_spaces() {
    let w = world();
    w.take_in(vec![
        order("o-1", json!({"acquirer_reference_number": "7402701 2345"})),
        order("o-2", json!({"acquirer_reference_number": "7402701-9999"})),
    ])
    .await;
    let m = w
        .matched(&alert(
            "a1",
            json!({"transaction_acquirer_reference_number": "74027012345"}),
        ))
        .await;
    assert_eq!(
        (m.status, m.method),
        (MatchStatus::Matched, Some(MatchMethod::Arn))
    );
    assert_eq!(m.transaction.unwrap().transaction_reference_id, "txn-o-1");
    assert_eq!(
        m.tried[0].skipped.as_deref(),
        Some("the alert has no integration_transaction_id")
    );
    let none = w
        .matched(&alert(
            "a2",
            json!({"transaction_acquirer_reference_number": "7402701234"}),
        ))
        .await;
    assert_eq!(
        none.status,
        MatchStatus::Unmatched,
        "a prefix of an ARN is not the ARN"
    );
}

#[tokio::test]
async fn auth_code_needs_last4_and_amount_too() {
    let w = world();
    w.take_in(vec![order("o-1", json!({"authorisation_code": "123456"}))])
        .await;
    let hit = w
        .matched(&alert(
            "a1",
            json!({"transaction_authorisation_code": "123456", "transaction_card_last4": "4242"}),
        ))
        .await;
    assert_eq!(hit.method, Some(MatchMethod::AuthCodeLast4Amount));
    assert_eq!((hit.status, hit.confidence), (MatchStatus::Matched, 90));
    let other_amount = w
        .matched(&alert(
            "a2",
            json!({"transaction_authorisation_code": "123456", "transaction_card_last4": "4242",
                   "transaction_amount_in_cents": 5000}),
        ))
        .await;
    assert_eq!(other_amount.status, MatchStatus::Unmatched);
}

#[tokio::test]
async fn bin_last4_amount_currency_matches_only_inside_the_date_window() {
    let w = world();
    w.take_in(vec![order("o-1", json!({}))]).await;
    let card = |at: &str| {
        alert(
            "a1",
            json!({"transaction_card_bin": "424242", "transaction_card_last4": "4242",
                   "transaction_authorised_at": at}),
        )
    };
    let inside = w.matched(&card("2026-11-22T23:00:00Z")).await;
    assert_eq!(inside.method, Some(MatchMethod::BinLast4AmountWindow));
    assert_eq!(
        (inside.status, inside.confidence),
        (MatchStatus::Matched, 75)
    );
    let outside = w.matched(&card("2026-11-23T10:00:00Z")).await;
    assert_eq!(
        outside.status,
        MatchStatus::Unmatched,
        "3 days and 1 minute later"
    );
    let mut other_currency = card("2026-11-20T10:00:00Z");
    other_currency.transaction_currency_code = Some("EUR".into());
    assert_eq!(
        w.matched(&other_currency).await.status,
        MatchStatus::Unmatched
    );
}

#[tokio::test]
async fn two_candidates_are_ambiguous_unless_the_descriptor_singles_one_out() {
    let w = world();
    w.take_in(vec![
        order("o-1", json!({"descriptor": "ACMEFIT MONTHLY"})),
        order("o-2", json!({"descriptor": "OTHERSHOP"})),
    ])
    .await;
    let card = json!({"transaction_card_bin": "424242", "transaction_card_last4": "4242",
                      "transaction_authorised_at": "2026-11-20T10:00:00Z"});
    let plain = w.matched(&alert("a1", card.clone())).await;
    assert_eq!(plain.status, MatchStatus::Ambiguous);
    assert_eq!(plain.candidates.len(), 2);
    assert!(
        plain.transaction.is_none(),
        "ambiguous is a result, not a guess"
    );

    let mut with_descriptor = card.clone();
    with_descriptor["transaction_statement_descriptor"] = json!("acmefit");
    let m = w.matched(&alert("a2", with_descriptor)).await;
    assert_eq!(m.status, MatchStatus::Matched);
    assert!(m.descriptor_tie_break);
    assert_eq!(m.confidence, 65);
    assert_eq!(m.transaction.unwrap().order_reference_id, "o-1");

    let mut both_fit = card;
    both_fit["transaction_statement_descriptor"] = json!("ZZZ");
    assert_eq!(
        w.matched(&alert("a3", both_fit)).await.status,
        MatchStatus::Ambiguous
    );
}

#[tokio::test]
async fn an_alert_without_identifiers_is_unmatched_after_no_read() {
    let w = world();
    w.take_in(vec![order("o-1", json!({}))]).await;
    let m = w.matched(&alert("a1", json!({}))).await;
    assert_eq!(m.status, MatchStatus::Unmatched);
    assert_eq!(m.reads, 0);
    assert_eq!(m.tried.len(), 4);
    assert!(m.tried.iter().all(|t| t.skipped.is_some()));
}

#[tokio::test]
async fn evidence_counts_refunds_of_this_transaction_from_the_order_and_later_updates() {
    let w = world();
    let mut o = order("o-1", json!({"acquirer_reference_number": "ARN1"}));
    o["refunds"] = json!([
        {"reference_id": "r-1", "amount_in_cents": 1000, "currency": "USD", "status": "SUCCEEDED",
         "original_transaction_reference_id": "txn-o-1"},
        {"reference_id": "r-x", "amount_in_cents": 3900, "currency": "USD", "status": "SUCCEEDED",
         "original_transaction_reference_id": "txn-other"},
        {"reference_id": "r-f", "amount_in_cents": 3900, "currency": "USD", "status": "FAILED",
         "original_transaction_reference_id": "txn-o-1"}
    ]);
    w.take_in(vec![o]).await;
    let a = alert(
        "a1",
        json!({"transaction_acquirer_reference_number": "ARN1"}),
    );
    let e = evidence_for_alert(&*w.index, &a, ts(NOW)).await.unwrap();
    let ev = e.evidence().unwrap().clone();
    assert_eq!(
        (ev.refunded_cents, ev.fully_refunded),
        (1000, false),
        "partly"
    );
    assert_eq!(e.refunded, Some(false));

    let patch: PatchOrder = serde_json::from_value(json!({
        "order_status": "CLOSED_CANCELLED",
        "refunds": [{"reference_id": "r-2", "amount_in_cents": 3900, "currency": "USD",
                     "status": "SUCCEEDED", "original_transaction_reference_id": "txn-o-1"}],
        "disputes": [{"reference_id": "d-1", "status": "OPEN",
                      "original_transaction_reference_id": "txn-o-1"}],
        "subscriptions": [{"reference_id": "s-1", "status": "CANCELLED"}]
    }))
    .unwrap();
    w.outbox
        .queue_update("org_1", "o-1", "u-1", &patch, ts(NOW))
        .await
        .unwrap();
    // The same update queued twice counts once.
    w.outbox
        .queue_update("org_1", "o-1", "u-1", &patch, ts(NOW))
        .await
        .unwrap();
    let e = evidence_for_alert(&*w.index, &a, ts(NOW)).await.unwrap();
    let ev = e.evidence().unwrap();
    assert_eq!((ev.refunded_cents, ev.fully_refunded), (4900, true));
    assert_eq!(ev.refund_references, vec!["r-1", "r-2"]);
    assert!(ev.disputed && ev.order_cancelled);
    assert_eq!(ev.subscription_status.as_deref(), Some("CANCELLED"));
    assert_eq!(e.refunded, Some(true));
}

#[tokio::test]
async fn a_customers_earlier_alerts_are_counted_across_orders() {
    let w = world();
    w.take_in(vec![
        order("o-1", json!({"acquirer_reference_number": "ARN1"})),
        order("o-2", json!({"acquirer_reference_number": "ARN2"})),
    ])
    .await;
    let first = alert(
        "a1",
        json!({"transaction_acquirer_reference_number": "ARN1"}),
    );
    let e1 = evidence_for_alert(&*w.index, &first, ts(NOW))
        .await
        .unwrap();
    assert_eq!(e1.evidence().unwrap().earlier_alerts, 0);
    // The same alert again (a redelivery) is not its own earlier alert.
    let again = evidence_for_alert(&*w.index, &first, ts(NOW))
        .await
        .unwrap();
    assert_eq!(again.evidence().unwrap().earlier_alerts, 0);
    let second = alert(
        "a2",
        json!({"transaction_acquirer_reference_number": "ARN2"}),
    );
    let e2 = evidence_for_alert(&*w.index, &second, ts(NOW))
        .await
        .unwrap();
    assert_eq!(e2.evidence().unwrap().earlier_alerts, 1);
    assert_eq!(e2.evidence().unwrap().earlier_alert_ids, vec!["a1"]);
}

#[tokio::test]
async fn an_unmatched_alert_has_no_evidence_and_unknown_refund() {
    let w = world();
    let e = evidence_for_alert(
        &*w.index,
        &alert("a1", json!({"transaction_acquirer_reference_number": "X"})),
        ts(NOW),
    )
    .await
    .unwrap();
    assert_eq!(e.refunded, None);
    assert_eq!(e.match_status(), Some(MatchStatus::Unmatched));
}

#[tokio::test]
async fn reads_per_alert_do_not_grow_with_the_number_of_transactions() {
    let mut reads = Vec::new();
    for size in [100usize, 5_000] {
        let index = MemoryTransactionIndex::default();
        let mut items = Vec::new();
        for i in 0..size {
            let o: Order = serde_json::from_value(order(
                &format!("o-{i}"),
                json!({"payment_method_card_last_4": format!("{:04}", i % 10_000),
                       "authorisation_code": format!("A{i}")}),
            ))
            .unwrap();
            items.extend(order_entries(&o, ts(NOW)));
        }
        index.put(&items).await.unwrap();
        // The worst case: every method tried, the last one finds it.
        let a = alert(
            "a1",
            json!({"transaction_acquirer_reference_number": "NONE",
                   "transaction_authorisation_code": "NONE", "transaction_card_last4": "0007",
                   "transaction_card_bin": "424242",
                   "transaction_authorised_at": "2026-11-20T10:00:00Z"}),
        );
        let before = index.queries();
        let e = evidence_for_alert(&index, &a, ts(NOW)).await.unwrap();
        assert_eq!(e.match_status(), Some(MatchStatus::Matched));
        reads.push(index.queries() - before);
    }
    assert_eq!(reads[0], reads[1], "{reads:?}");
    assert_eq!(reads[0], 5, "3 match queries (no itid) + order + customer");
}

#[tokio::test]
async fn an_order_whose_index_write_failed_is_indexed_when_the_intake_is_repeated() {
    let w = world();
    w.index.fail_next_calls(1);
    let err = intake_orders(
        &w.outbox,
        vec![order("o-1", json!({"acquirer_reference_number": "ARN1"}))],
        ts(NOW),
    )
    .await;
    assert!(err.is_err(), "the intake reports the failed index write");
    let a = alert(
        "a1",
        json!({"transaction_acquirer_reference_number": "ARN1"}),
    );
    assert_eq!(w.matched(&a).await.status, MatchStatus::Unmatched);
    let report = intake_orders(
        &w.outbox,
        vec![order("o-1", json!({"acquirer_reference_number": "ARN1"}))],
        ts(NOW),
    )
    .await
    .unwrap();
    assert_eq!(report.already_queued, vec!["o-1"]);
    assert_eq!(w.matched(&a).await.status, MatchStatus::Matched);
}
