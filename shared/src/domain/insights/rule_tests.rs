//! Who decided, automatically: counted by the policy rule that fired (`<policy>/<rule>`, kept on
//! the alert's match record), live and in the backfill, and shown by rule.

use super::backfill::Backfill;
use super::facts::*;
use super::report::build_view;
use crate::adapters::memory_insights::{MemoryInsightsStore, MemoryStoredRecords};
use crate::clock::FixedClock;
use crate::domain::alert_policy::{evaluate, AlertPolicy};
use crate::domain::alert_record::{merge_fetched, Merge};
use crate::domain::test_support::{alert, ts};
use crate::models::alert::AlertAction;
use crate::ports::decision_inputs::PartnerEvidence;
use crate::ports::insights_store::InsightsStore;
use crate::records::alert::{AlertRecord, Decision, DecisionResult, DecisionSource};
use crate::records::matching::MatchRecord;
use chrono::NaiveDate;
use std::sync::Arc;

/// `acme-2026`: refunds at or below 50.00 (the rule `refund_at_or_below_cents`).
fn policy() -> AlertPolicy {
    AlertPolicy {
        name: "acme-2026".into(),
        refund_at_or_below_cents: Some(5000),
        ..AlertPolicy::default()
    }
}

fn match_record(status: &str, rule: Option<&str>) -> MatchRecord {
    let mut m: MatchRecord = serde_json::from_value(serde_json::json!({
        "match": { "status": status, "confidence": 0, "matched_at": "2026-11-24T09:01:01Z" }
    }))
    .unwrap();
    m.rule = rule.map(str::to_string);
    m
}

/// Alert `id`, refunded by `source` / `actor`, with `matching` on its record.
fn refunded(
    id: &str,
    source: DecisionSource,
    actor: &str,
    matching: Option<MatchRecord>,
) -> AlertRecord {
    let Merge::Updated(mut r) = merge_fetched(
        None,
        alert(id, "ETHOCA_ALERT", "RESOLVED", 4900),
        ts("2026-11-24T09:01:00Z"),
    ) else {
        panic!()
    };
    r.alert_match = matching;
    r.decisions.push(Decision {
        at: "2026-11-24T09:05:00Z".into(),
        source,
        actor: actor.into(),
        action: Some(AlertAction::Refund),
        reason: "test".into(),
        note: None,
        result: DecisionResult::Applied,
        detail: None,
    });
    r
}

fn decided_by(r: &AlertRecord) -> Vec<String> {
    alert_facts(r)
        .facts
        .into_iter()
        .flat_map(|f| f.add.into_keys())
        .filter(|k| k.starts_with("decided_by:"))
        .collect()
}

#[test]
fn an_automatic_decision_is_counted_by_the_rule_that_fired() {
    // The rule as the policy names it when it evaluates (and the match record keeps it).
    let a = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900);
    let fired = evaluate(&a, &policy(), &PartnerEvidence::default()).rule;
    assert_eq!(fired, "acme-2026/refund_at_or_below_cents");
    let r = refunded(
        "a1",
        DecisionSource::AutoPolicy,
        "acme-2026",
        Some(match_record("MATCHED", Some(&fired))),
    );
    assert_eq!(
        decided_by(&r),
        vec!["decided_by:policy:acme-2026/refund_at_or_below_cents"]
    );

    // No rule known (no partner records to match against): the policy's name.
    let r = refunded("a2", DecisionSource::AutoPolicy, "acme-2026", None);
    assert_eq!(decided_by(&r), vec!["decided_by:policy:acme-2026"]);
    let r = refunded(
        "a3",
        DecisionSource::AutoPolicy,
        "acme-2026",
        Some(match_record("UNMATCHED", None)),
    );
    assert_eq!(decided_by(&r), vec!["decided_by:policy:acme-2026"]);
    // A rule of another policy (the customer's policy changed since) is not this decision's.
    let r = refunded(
        "a4",
        DecisionSource::AutoPolicy,
        "acme-2026",
        Some(match_record(
            "MATCHED",
            Some("default/refund_when_partner_refunded"),
        )),
    );
    assert_eq!(decided_by(&r), vec!["decided_by:policy:acme-2026"]);
    // A person decided after a rule left it to them: counted by the person, not the rule.
    let r = refunded(
        "a5",
        DecisionSource::Operator,
        "Dana",
        Some(match_record("UNMATCHED", Some("acme-2026/unmatched"))),
    );
    assert_eq!(decided_by(&r), vec!["decided_by:operator:Dana"]);
}

#[tokio::test]
async fn the_backfill_counts_automatic_decisions_by_rule_and_their_match_verdicts() {
    let mut records = MemoryStoredRecords::default();
    for i in 0..6 {
        let rule = if i % 2 == 0 {
            "acme-2026/small-usd"
        } else {
            "acme-2026/refund_at_or_below_cents"
        };
        records.alerts.push(refunded(
            &format!("a{i}"),
            DecisionSource::AutoPolicy,
            "acme-2026",
            Some(match_record(
                if i < 4 { "MATCHED" } else { "AMBIGUOUS" },
                Some(rule),
            )),
        ));
    }
    records.alerts.push(refunded(
        "a6",
        DecisionSource::AutoPolicy,
        "acme-2026",
        None,
    ));
    let insights = Arc::new(MemoryInsightsStore::default());
    let backfill = Backfill {
        insights: insights.clone(),
        records: Arc::new(records),
        clock: Arc::new(FixedClock::at(ts("2026-11-30T10:00:00Z"))),
        page_size: 4,
        restart: false,
        stop_at: None,
    };
    backfill.run(|_, _| {}).await.unwrap();
    assert_eq!(
        insights.total("org_1", "decided_by:policy:acme-2026/small-usd"),
        3
    );
    assert_eq!(
        insights.total(
            "org_1",
            "decided_by:policy:acme-2026/refund_at_or_below_cents"
        ),
        3
    );
    assert_eq!(insights.total("org_1", "decided_by:policy:acme-2026"), 1);
    assert_eq!(insights.total("org_1", "match:matched"), 4);
    assert_eq!(insights.total("org_1", "match:ambiguous"), 2);

    // The page's "who decided" shows each rule with its policy.
    let stored = insights
        .days("org_1", "2026-11-01", "2026-11-30")
        .await
        .unwrap();
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let v = build_view("org_1", day("2026-11-01"), day("2026-11-30"), &stored);
    let shown: Vec<(String, String, i64)> = v
        .decided_by
        .iter()
        .map(|w| (w.kind.clone(), w.name.clone(), w.count))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "policy".into(),
                "acme-2026/refund_at_or_below_cents".into(),
                3
            ),
            ("policy".into(), "acme-2026/small-usd".into(), 3),
            ("policy".into(), "acme-2026".into(), 1),
        ]
    );
}
