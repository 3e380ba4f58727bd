use super::backfill::Backfill;
use super::facts::*;
use super::report::*;
use super::CountingAlertStore;
use crate::adapters::memory::MemoryAlertStore;
use crate::adapters::memory_insights::{MemoryInsightsStore, MemoryStoredRecords};
use crate::clock::FixedClock;
use crate::domain::alert_record::{merge_fetched, record_decision, store_fetched_alert, Merge};
use crate::domain::test_support::{alert, ts};
use crate::models::alert::{AlertAction, RefundOutcome};
use crate::ports::alert_store::AlertStore;
use crate::ports::insights_store::{InsightsStore, ALL_ORGANISATIONS};
use crate::records::alert::{AlertRecord, Decision, DecisionResult, DecisionSource};
use chrono::NaiveDate;
use std::sync::Arc;

fn stored(kind: &str, status: &str) -> AlertRecord {
    let Merge::Updated(r) = merge_fetched(
        None,
        alert("a1", kind, status, 4900),
        ts("2026-11-24T09:01:00Z"),
    ) else {
        panic!()
    };
    r
}

fn decided(source: DecisionSource, actor: &str, action: AlertAction, at: &str) -> AlertRecord {
    let mut r = stored("ETHOCA_ALERT", "RESOLVED");
    r.decisions.push(Decision {
        at: at.into(),
        source,
        actor: actor.into(),
        action: Some(action),
        reason: "test".into(),
        note: None,
        result: DecisionResult::Applied,
        detail: None,
    });
    r
}

fn outcome_fact(r: &AlertRecord) -> crate::ports::insights_store::Fact {
    alert_facts(r)
        .facts
        .into_iter()
        .find(|f| f.name == "outcome")
        .expect("an outcome fact")
}

#[test]
fn every_outcome_is_classified() {
    // Received 2026-11-24T09:00, deadline 2026-11-26T10:00 (49 h allowed).
    let refund = decided(
        DecisionSource::AutoPolicy,
        "refund-small",
        AlertAction::Refund,
        "2026-11-24T09:05:00Z",
    );
    assert_eq!(alert_outcome(&refund), Some(AlertOutcome::Refunded));
    let f = outcome_fact(&refund);
    assert_eq!(f.day, "2026-11-24");
    assert_eq!(f.add["outcome:ETHOCA_ALERT:refunded"], 1);
    assert_eq!(f.add["decided_by:policy:refund-small"], 1);
    assert_eq!(f.add["latency:0-10"], 1);
    assert_eq!(f.add["decided_24h_early"], 1);
    assert_eq!(f.add["refunds"], 1);
    assert_eq!(f.add["refunded_cents:USD"], 4900);
    assert!(
        !f.add.contains_key("scheme_disputes:UNKNOWN"),
        "a refund heads the dispute off"
    );

    let accepted = decided(
        DecisionSource::Operator,
        "Dana",
        AlertAction::AcceptDispute,
        "2026-11-25T20:00:00Z",
    );
    let f = outcome_fact(&accepted);
    assert_eq!(f.add["outcome:ETHOCA_ALERT:accepted"], 1);
    assert_eq!(f.add["decided_by:operator:Dana"], 1);
    assert_eq!(f.add["latency:50-75"], 1, "35 of 49 hours used");
    assert!(!f.add.contains_key("decided_24h_early"));
    assert_eq!(f.add["scheme_disputes:UNKNOWN"], 1);

    let swept = decided(
        DecisionSource::Sweep,
        "deadline-sweep",
        AlertAction::Cancel,
        "2026-11-26T09:00:00Z",
    );
    let f = outcome_fact(&swept);
    assert_eq!(f.add["outcome:ETHOCA_ALERT:cancelled"], 1);
    assert_eq!(f.add["decided_by:sweep"], 1);
    assert_eq!(f.add["latency:90-100"], 1);

    // Resolved without us after the deadline, not refunded: expired, missed, loudly.
    let mut expired = stored("ETHOCA_ALERT", "RESOLVED");
    expired.alert.updated_at = Some(ts("2026-11-26T10:00:01Z"));
    expired.alert.transaction_refund_outcome = Some(RefundOutcome::NotRefunded);
    let f = outcome_fact(&expired);
    assert_eq!(f.add["outcome:ETHOCA_ALERT:expired"], 1);
    assert_eq!(f.add["decided_by:nobody"], 1);
    assert_eq!(f.add["missed"], 1);
    assert_eq!(f.add["latency:late"], 1);
    assert!(f.missed_alert_ids.contains("a1"));

    // Our action after the deadline is a miss too.
    let late = decided(
        DecisionSource::Operator,
        "Dana",
        AlertAction::Refund,
        "2026-11-26T11:00:00Z",
    );
    assert_eq!(outcome_fact(&late).add["missed"], 1);

    let mut rdr_refunded = stored("VERIFI_RDR", "RESOLVED");
    rdr_refunded.alert.transaction_refund_outcome = Some(RefundOutcome::Refunded);
    let f = outcome_fact(&rdr_refunded);
    assert_eq!(f.add["outcome:VERIFI_RDR:rdr_refunded"], 1);
    assert_eq!(f.add["scheme_rdr_resolved:UNKNOWN"], 1);
    assert!(
        !f.add.keys().any(|k| k.starts_with("decided_by")),
        "RDR is decided at the network"
    );
    let rdr_declined = stored("VERIFI_RDR", "INVALID");
    assert_eq!(
        alert_outcome(&rdr_declined),
        Some(AlertOutcome::RdrDeclined)
    );

    let waiting = stored("ETHOCA_ALERT", "ACTION_REQUIRED");
    assert_eq!(
        alert_facts(&waiting).facts.len(),
        1,
        "received only, no outcome yet"
    );
}

#[tokio::test]
async fn each_transition_is_counted_once_however_often_the_alert_is_written() {
    let alerts = Arc::new(MemoryAlertStore::default());
    let insights = Arc::new(MemoryInsightsStore::default());
    let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
    let store = CountingAlertStore::new(alerts.clone(), insights.clone(), clock);
    let now = ts("2026-11-24T09:01:00Z");
    let waiting = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    store_fetched_alert(&store, &waiting, now).await.unwrap();
    // The same event again, and a note change: no new fact.
    let mut noted = waiting.clone();
    noted.note = Some("n".into());
    store_fetched_alert(&store, &noted, now).await.unwrap();
    assert_eq!(insights.total("org_1", "alerts:ETHOCA_ALERT"), 1);
    assert_eq!(insights.total(ALL_ORGANISATIONS, "alerts:ETHOCA_ALERT"), 1);

    // The decision lands but the count's answer is lost: the write still succeeds, and the
    // next write of the alert does not count the outcome twice.
    insights.lose_next_answers(1);
    let decision = Decision {
        at: "2026-11-24T09:30:00Z".into(),
        source: DecisionSource::Operator,
        actor: "Dana".into(),
        action: Some(AlertAction::Refund),
        reason: "r".into(),
        note: None,
        result: DecisionResult::Applied,
        detail: None,
    };
    let mut resolved = waiting.clone();
    resolved.status = crate::models::alert::AlertStatus::Resolved;
    record_decision(
        &store,
        "a1",
        decision.clone(),
        Some(&resolved),
        None,
        None,
        now,
    )
    .await
    .unwrap();
    // The webhook of the resolution stores the alert again.
    resolved.note = Some("resolved".into());
    store_fetched_alert(&store, &resolved, now).await.unwrap();
    assert_eq!(insights.total("org_1", "outcome:ETHOCA_ALERT:refunded"), 1);
    assert_eq!(insights.total("org_1", "decided_by:operator:Dana"), 1);
    assert_eq!(insights.total("org_1", "alerts:ETHOCA_ALERT"), 1);

    // A refused count does not fail the write; the next write counts what was missed.
    insights.refuse_next(1);
    let other = alert("a2", "VERIFI_RDR", "RESOLVED", 100);
    store_fetched_alert(&store, &other, now).await.unwrap();
    assert_eq!(insights.total("org_1", "alerts:VERIFI_RDR"), 0);
    let mut other2 = other.clone();
    other2.note = Some("again".into());
    store_fetched_alert(&store, &other2, now).await.unwrap();
    assert_eq!(insights.total("org_1", "alerts:VERIFI_RDR"), 1);
    assert_eq!(
        insights.total("org_1", "outcome:VERIFI_RDR:rdr_declined"),
        1
    );
}

#[tokio::test]
async fn a_killed_backfill_resumes_and_counts_nothing_twice() {
    let mut records = MemoryStoredRecords::default();
    for i in 0..23 {
        let mut a = alert(
            &format!("a{i}"),
            if i % 3 == 0 {
                "VERIFI_RDR"
            } else {
                "ETHOCA_ALERT"
            },
            "RESOLVED",
            100,
        );
        a.transaction_refund_outcome = Some(RefundOutcome::Refunded);
        let Merge::Updated(r) = merge_fetched(None, a, ts("2026-11-24T09:01:00Z")) else {
            panic!()
        };
        records.alerts.push(r);
    }
    *records.fail_alert_page_at.lock().unwrap() = Some(10);
    let insights = Arc::new(MemoryInsightsStore::default());
    // Live counting already counted one of them.
    insights
        .count(&[alert_facts(&records.alerts[0])])
        .await
        .unwrap();
    let backfill = Backfill {
        insights: insights.clone(),
        records: Arc::new(records),
        clock: Arc::new(FixedClock::at(ts("2026-11-30T10:00:00Z"))),
        page_size: 5,
        restart: false,
        stop_at: None,
    };
    let mut seen = Vec::new();
    let first = backfill
        .run(|s, p| seen.push((s.to_string(), p.records_seen)))
        .await;
    assert!(first.is_err(), "the page at 10 fails");
    assert_eq!(seen, vec![("alerts".into(), 5), ("alerts".into(), 10)]);
    let second = backfill.run(|_, _| {}).await.unwrap();
    assert_eq!(second.sources[0].1.records_seen, 23);
    assert!(second.sources[0].1.done);
    assert_eq!(
        insights.total("org_1", "alerts:ETHOCA_ALERT")
            + insights.total("org_1", "alerts:VERIFI_RDR"),
        23
    );
    assert_eq!(
        insights.total("org_1", "outcome:VERIFI_RDR:rdr_refunded"),
        8
    );
    // Done: a third run reads nothing more.
    let calls = insights.count_calls();
    backfill.run(|_, _| {}).await.unwrap();
    assert_eq!(insights.count_calls(), calls);
}

#[test]
fn orders_count_identifiers_and_settled_card_transactions_by_scheme() {
    let order: crate::models::order::Order = serde_json::from_value(serde_json::json!({
        "organisation_id": "org_1", "reference_id": "r1",
        "order_datetime": "2026-10-31T23:00:00Z",
        "transactions": [
            {"payment_method_type": "CARD", "authorisation_status": "SETTLED", "payment_method_card_brand": "VISA",
             "acquirer_reference_number": "740", "authorisation_code": "A1", "payment_method_card_bin": "424242",
             "authorised_at": "2026-11-01T00:10:00Z"},
            {"payment_method_type": "CARD", "authorisation_status": "SETTLED", "payment_method_card_brand": "MASTERCARD",
             "payment_method_card_bin": "555555"},
            {"payment_method_type": "CARD", "authorisation_status": "DECLINED", "payment_method_card_brand": "VISA"},
            {"payment_method_type": "WALLET", "authorisation_status": "SETTLED"}
        ]
    }))
    .unwrap();
    let s = order_taken_in_facts("org_1", "r1", &order, ts("2026-11-02T08:00:00Z"));
    let taken = &s.facts[0];
    assert_eq!(taken.day, "2026-11-02");
    assert_eq!(taken.add["card_txns"], 3);
    assert_eq!(taken.add["card_txns_arn"], 1);
    assert_eq!(taken.add["card_txns_auth_code"], 1);
    assert_eq!(taken.add["card_txns_bin"], 2);
    let settled: Vec<_> = s.facts[1..]
        .iter()
        .map(|f| (f.day.as_str(), f.add.clone()))
        .collect();
    assert_eq!(settled.len(), 2, "{settled:?}");
    assert_eq!(
        settled[0].0, "2026-10-31",
        "no authorised_at: the order's day"
    );
    assert_eq!(settled[0].1["settled:MASTERCARD"], 1);
    assert_eq!(settled[1].0, "2026-11-01");
    assert_eq!(settled[1].1["settled:VISA"], 1);
}

fn day(d: &str, counters: &[(&str, i64)]) -> crate::ports::insights_store::DayCounters {
    crate::ports::insights_store::DayCounters {
        day: d.into(),
        counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        missed_alert_ids: Default::default(),
    }
}

#[test]
fn gauges_follow_the_scheme_thresholds() {
    let m = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    // 1,650 Visa alerts, 100 resolved by RDR: 1,550 cases over 50,000 settled = 3.1 %: above.
    let above = scheme_month(
        m,
        &[day(
            "2026-11-03",
            &[
                ("scheme_alerts:VISA", 1650),
                ("scheme_rdr_resolved:VISA", 100),
                ("settled:VISA", 50_000),
            ],
        )],
    );
    assert_eq!(above.visa.cases, 1550);
    assert_eq!(above.visa.level, "above");
    // The same ratio with few cases is not enforced.
    let few = scheme_month(
        m,
        &[day(
            "2026-11-03",
            &[("scheme_alerts:VISA", 31), ("settled:VISA", 1000)],
        )],
    );
    assert_eq!(few.visa.level, "ratio_above_few_cases");
    // RDR-resolved cases bring a merchant under the count.
    let rdr = scheme_month(
        m,
        &[day(
            "2026-11-03",
            &[
                ("scheme_alerts:VISA", 1600),
                ("scheme_rdr_resolved:VISA", 200),
                ("settled:VISA", 50_000),
            ],
        )],
    );
    assert_eq!(rdr.visa.level, "ratio_above_few_cases");
    let ecm = |cb, settled| {
        scheme_month(
            m,
            &[day(
                "2026-11-09",
                &[
                    ("scheme_disputes:MASTERCARD", cb),
                    ("settled:MASTERCARD", settled),
                ],
            )],
        )
        .mastercard
        .level
    };
    assert_eq!(ecm(120, 6000), "excessive");
    assert_eq!(ecm(99, 1000), "below");
    assert_eq!(ecm(300, 10_000), "high_excessive");
    assert_eq!(ecm(300, 12_000), "excessive");
    assert_eq!(ecm(5, 0), "no_settled_transactions");
    // Other months do not count.
    assert_eq!(
        scheme_month(m, &[day("2026-10-31", &[("scheme_alerts:VISA", 5000)])])
            .visa
            .alerts,
        0
    );
    let (cur, prev) = current_and_previous_month(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap());
    assert_eq!(
        (cur.to_string(), prev.to_string()),
        ("2026-01-01".into(), "2025-12-01".into())
    );
}

#[test]
fn the_view_fills_every_day_and_sums_the_window() {
    let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    let mut d2 = day(
        "2026-11-02",
        &[
            ("alerts:ETHOCA_ALERT", 5),
            ("alerts:VERIFI_RDR", 2),
            ("outcome:ETHOCA_ALERT:refunded", 3),
            ("outcome:VERIFI_RDR:rdr_refunded", 2),
            ("deadline_tracked", 3),
            ("decided_24h_early", 2),
            ("missed", 1),
            ("latency:late", 1),
            ("decided_by:operator:Dana", 2),
            ("decided_by:policy:small", 1),
            ("match:matched", 3),
            ("match:unmatched", 1),
            ("orders:accepted", 7),
        ],
    );
    d2.missed_alert_ids.insert("netalrt_x".into());
    let v = build_view("ALL", from, to, &[d2]);
    assert_eq!(v.days.len(), 3);
    assert_eq!(v.days[1].pending, 2);
    assert_eq!(v.received["ETHOCA_ALERT"], 5);
    assert_eq!(v.outcomes["refunded"], 3);
    assert_eq!(v.deadline.missed_alerts[0].alert_id, "netalrt_x");
    assert!((v.deadline.early_share.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(v.decided_by[0].kind, "operator");
    assert_eq!(v.decided_by[0].name, "Dana");
    assert_eq!(v.matching.rate, Some(0.75));
    assert_eq!(v.orders.accepted, 7);
}

/// Alerts per day by provider and outcome: each provider's outcomes and its own still-waiting
/// count (an RDR alert still open is not an Ethoca alert waiting for us).
#[test]
fn each_day_splits_its_alerts_by_provider_and_outcome() {
    let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let d1 = day(
        "2026-11-01",
        &[
            ("alerts:ETHOCA_ALERT", 6),
            ("alerts:VERIFI_RDR", 4),
            ("outcome:ETHOCA_ALERT:refunded", 3),
            ("outcome:ETHOCA_ALERT:accepted", 1),
            ("outcome:VERIFI_RDR:rdr_refunded", 1),
        ],
    );
    let d2 = day("2026-11-02", &[("alerts:VERIFI_RDR", 1)]);
    let v = build_view("ALL", from, to, &[d1, d2]);
    let of = |day: usize, p: &str| {
        v.days[day].by_provider[p]
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(0, "ETHOCA_ALERT"),
        [("accepted", 1), ("pending", 2), ("refunded", 3)]
    );
    assert_eq!(of(0, "VERIFI_RDR"), [("pending", 3), ("rdr_refunded", 1)]);
    assert_eq!(v.days[0].pending, 5);
    assert_eq!(of(1, "ETHOCA_ALERT"), []);
    assert_eq!(of(1, "VERIFI_RDR"), [("pending", 1)]);
    assert_eq!(v.pending_by_provider["ETHOCA_ALERT"], 2);
    assert_eq!(v.pending_by_provider["VERIFI_RDR"], 4);
    assert_eq!(v.pending, 6);
}

/// The match verdict matching stores on the record is counted through the alert store, once:
/// without it the page's match rate stayed "no match verdicts recorded yet" in real use.
#[tokio::test]
async fn a_match_verdict_stored_on_the_alert_is_counted_once() {
    let alerts = Arc::new(MemoryAlertStore::default());
    let insights = Arc::new(MemoryInsightsStore::default());
    let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
    let store = CountingAlertStore::new(alerts.clone(), insights.clone(), clock);
    let now = ts("2026-11-24T09:01:00Z");
    let waiting = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    store_fetched_alert(&store, &waiting, now).await.unwrap();
    assert_eq!(insights.total("org_1", "match:unmatched"), 0);

    let mut record = store.get("a1").await.unwrap().unwrap();
    record.alert_match = Some(
        serde_json::from_value(serde_json::json!({
            "match": { "status": "UNMATCHED", "confidence": 0,
                       "matched_at": "2026-11-24T09:01:01Z" }
        }))
        .unwrap(),
    );
    record.revision += 1;
    store.put(&record).await.unwrap();
    record.revision += 1;
    store.put(&record).await.unwrap();
    assert_eq!(insights.total("org_1", "match:unmatched"), 1);
    assert_eq!(insights.total(ALL_ORGANISATIONS, "match:unmatched"), 1);
}
