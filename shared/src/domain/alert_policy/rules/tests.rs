//! Each rule condition, first match wins, the recorded rule and evidence, and the JSON format.

use super::super::{evaluate, AlertPolicy, PolicyDecision};
use crate::domain::test_support::alert;
use crate::models::alert::{Alert, AlertAction};
use crate::ports::decision_inputs::PartnerEvidence;
use crate::records::matching::{
    AlertMatch, Evidence, IndexedTransaction, MatchMethod, MatchRecord, MatchStatus,
};
use serde_json::json;

fn policy(rules: serde_json::Value) -> AlertPolicy {
    AlertPolicy::from_json(&json!({"name": "p", "rules": rules})).expect("valid policy")
}

fn an_alert(fields: serde_json::Value) -> Alert {
    let mut a = serde_json::to_value(alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900)).unwrap();
    for (k, v) in fields.as_object().unwrap() {
        a[k] = v.clone();
    }
    serde_json::from_value(a).unwrap()
}

fn matched(evidence: Evidence) -> PartnerEvidence {
    PartnerEvidence {
        refunded: Some(evidence.fully_refunded),
        matching: Some(MatchRecord {
            matched: AlertMatch {
                status: MatchStatus::Matched,
                method: Some(MatchMethod::Arn),
                confidence: 98,
                descriptor_tie_break: false,
                transaction: Some(IndexedTransaction {
                    order_reference_id: "o-1".into(),
                    transaction_reference_id: "t-1".into(),
                    ..IndexedTransaction::default()
                }),
                candidates: Vec::new(),
                tried: Vec::new(),
                reads: 1,
                matched_at: "2026-11-24T10:00:00.000Z".into(),
            },
            evidence: Some(evidence),
            rule: None,
        }),
    }
}

fn unmatched(status: MatchStatus) -> PartnerEvidence {
    let mut e = matched(Evidence::default());
    let m = e.matching.as_mut().unwrap();
    m.matched.status = status;
    m.matched.transaction = None;
    m.evidence = None;
    e.refunded = None;
    e
}

fn action(p: &AlertPolicy, a: &Alert, e: &PartnerEvidence) -> (Option<AlertAction>, String) {
    let ev = evaluate(a, p, e);
    let action = match ev.decision {
        PolicyDecision::Act { action, .. } => Some(action),
        PolicyDecision::LeaveToPerson { .. } => None,
    };
    (action, ev.rule)
}

#[test]
fn card_scheme_rule() {
    let p = policy(
        json!([{"name": "amex", "when": {"card_schemes": ["AMEX"]}, "then": "ACCEPT_DISPUTE"}]),
    );
    let e = PartnerEvidence::default();
    let amex = an_alert(json!({"transaction_card_scheme": "AMEX"}));
    assert_eq!(
        action(&p, &amex, &e),
        (Some(AlertAction::AcceptDispute), "p/amex".into())
    );
    let visa = an_alert(json!({"transaction_card_scheme": "VISA"}));
    assert_eq!(action(&p, &visa, &e).1, "p/no_rule_matched");
}

#[test]
fn bin_range_rule_compares_the_leading_digits_inclusively() {
    let p = policy(
        json!([{"name": "bins", "when": {"bin_ranges": [{"from": "400000", "to": "400099"}]}, "then": "REFUND"}]),
    );
    let e = PartnerEvidence::default();
    for (bin, hit) in [
        ("400000", true),
        ("40009912", true),
        ("400100", false),
        ("4000", false),
    ] {
        let a = an_alert(json!({"transaction_card_bin": bin}));
        assert_eq!(action(&p, &a, &e).0.is_some(), hit, "{bin}");
    }
}

#[test]
fn descriptor_prefix_rule_ignores_case_and_spaces() {
    let p = policy(
        json!([{"name": "gym", "when": {"descriptor_prefixes": ["ACME FIT"]}, "then": "REFUND_AND_CANCEL"}]),
    );
    let e = PartnerEvidence::default();
    let a = an_alert(json!({"transaction_statement_descriptor": "acmefit monthly"}));
    assert_eq!(action(&p, &a, &e).0, Some(AlertAction::RefundAndCancel));
    let b = an_alert(json!({"transaction_statement_descriptor": "OTHER ACMEFIT"}));
    assert_eq!(action(&p, &b, &e).0, None);
}

#[test]
fn per_currency_thresholds() {
    let p = policy(json!([
        {"name": "small-eur", "when": {"currencies": ["EUR"], "amount_at_most_cents": 2000}, "then": "REFUND"},
        {"name": "small-usd", "when": {"currencies": ["USD"], "amount_at_most_cents": 5000}, "then": "REFUND"}
    ]));
    let e = PartnerEvidence::default();
    let eur = |amount: i64| {
        an_alert(json!({"transaction_currency_code": "EUR", "transaction_amount_in_cents": amount}))
    };
    assert_eq!(
        action(&p, &eur(2000), &e),
        (Some(AlertAction::Refund), "p/small-eur".into())
    );
    assert_eq!(
        action(&p, &eur(2001), &e).0,
        None,
        "4900 EUR-cents is over the EUR threshold"
    );
    assert_eq!(
        action(&p, &an_alert(json!({})), &e),
        (Some(AlertAction::Refund), "p/small-usd".into())
    );
}

#[test]
fn unmatched_and_ambiguous_alerts_go_to_a_person_before_an_amount_rule_refunds() {
    let p = AlertPolicy {
        refund_at_or_below_cents: Some(10_000),
        ..policy(
            json!([{"name": "unmatched", "when": {"match_status": ["UNMATCHED", "AMBIGUOUS"]}, "then": "PERSON"}]),
        )
    };
    let a = an_alert(json!({}));
    for status in [MatchStatus::Unmatched, MatchStatus::Ambiguous] {
        assert_eq!(
            action(&p, &a, &unmatched(status)),
            (None, "p/unmatched".into())
        );
    }
    assert_eq!(
        action(&p, &a, &matched(Evidence::default())),
        (
            Some(AlertAction::Refund),
            "p/refund_at_or_below_cents".into()
        )
    );
}

#[test]
fn already_refunded_refunds_at_once_whatever_the_rules_say() {
    let p = policy(json!([{"name": "dispute-all", "when": {}, "then": "ACCEPT_DISPUTE"}]));
    let refunded = matched(Evidence {
        refunded_cents: 4900,
        fully_refunded: true,
        ..Evidence::default()
    });
    let ev = evaluate(&an_alert(json!({})), &p, &refunded);
    assert_eq!(ev.rule, "p/refund_when_partner_refunded");
    assert!(matches!(
        ev.decision,
        PolicyDecision::Act {
            action: AlertAction::Refund,
            ..
        }
    ));
    assert!(
        ev.evidence
            .iter()
            .any(|e| e.contains("fully refunded (4900 cents)")),
        "{:?}",
        ev.evidence
    );
    // Partly refunded is not refunded: the rules decide, and can see it.
    let p2 = policy(
        json!([{"name": "partly", "when": {"partner_refunded": ["PARTLY"]}, "then": "PERSON"}]),
    );
    let partly = matched(Evidence {
        refunded_cents: 100,
        ..Evidence::default()
    });
    assert_eq!(
        action(&p2, &an_alert(json!({})), &partly),
        (None, "p/partly".into())
    );
}

#[test]
fn repeat_customers_disputed_and_cancelled_orders_and_subscriptions() {
    let p = policy(json!([
        {"name": "disputed", "when": {"disputed": true}, "then": "ACCEPT_DISPUTE"},
        {"name": "repeat", "when": {"earlier_alerts_at_least": 2}, "then": "ACCEPT_DISPUTE"},
        {"name": "cancelled", "when": {"order_cancelled": true}, "then": "PERSON"},
        {"name": "active-sub", "when": {"subscription_status": ["active"]}, "then": "REFUND_AND_CANCEL"}
    ]));
    let a = an_alert(json!({}));
    let with = |e: Evidence| action(&p, &a, &matched(e)).1;
    assert_eq!(
        with(Evidence {
            disputed: true,
            earlier_alerts: 5,
            ..Evidence::default()
        }),
        "p/disputed",
        "first match wins"
    );
    assert_eq!(
        with(Evidence {
            earlier_alerts: 2,
            ..Evidence::default()
        }),
        "p/repeat"
    );
    assert_eq!(
        with(Evidence {
            earlier_alerts: 1,
            ..Evidence::default()
        }),
        "p/no_rule_matched"
    );
    assert_eq!(
        with(Evidence {
            order_cancelled: true,
            ..Evidence::default()
        }),
        "p/cancelled"
    );
    assert_eq!(
        with(Evidence {
            subscription_status: Some("ACTIVE".into()),
            ..Evidence::default()
        }),
        "p/active-sub"
    );
    // Without a match there is no evidence: evidence conditions do not hold.
    assert_eq!(
        action(&p, &a, &unmatched(MatchStatus::Unmatched)).1,
        "p/no_rule_matched"
    );
}

#[test]
fn every_decision_names_its_rule_and_evidence_in_the_reason() {
    let p = policy(
        json!([{"name": "small", "when": {"amount_at_most_cents": 5000}, "then": "REFUND"}]),
    );
    let ev = evaluate(&an_alert(json!({})), &p, &matched(Evidence::default()));
    let PolicyDecision::Act { reason, .. } = &ev.decision else {
        panic!()
    };
    assert!(
        reason.starts_with("p/small: amount 4900 at most 5000"),
        "{reason}"
    );
    assert!(
        reason.contains("matched o-1 / t-1 by Arn (98%)"),
        "{reason}"
    );
    assert!(reason.contains("not refunded"), "{reason}");
}

#[test]
fn the_old_format_still_parses_and_rules_are_validated_by_field() {
    let old = json!({"name": "acme", "refund_when_partner_refunded": true,
        "refund_at_or_below_cents": 2500, "accept_dispute_above_cents": 50000,
        "refund_action": "REFUND", "cutoff_action": "ACCEPT_DISPUTE",
        "cutoff_minutes_before_deadline": 120});
    let parsed = AlertPolicy::from_json(&old).unwrap();
    assert!(parsed.rules.is_empty());
    assert_eq!(
        serde_json::to_value(&parsed).unwrap()["rules"],
        serde_json::Value::Null,
        "written back unchanged"
    );

    let bad = json!({"rules": [
        {"name": "a", "when": {"card_scheme": ["VISA"]}, "then": "REFUND"},
        {"name": "b", "when": {"bin_ranges": [{"from": "4999", "to": "4000"}]}, "then": "REFUND"},
        {"name": "b", "when": {"currencies": ["usd"], "card_schemes": ["VISAA"]}, "then": "PERSON"},
        {"name": "c", "then": "REFUND_LATER"}
    ]});
    let problems = AlertPolicy::from_json(&bad).unwrap_err().0;
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, vec!["rules[0]", "rules[3]"], "{problems:?}");
    assert!(problems[0].message.contains("card_scheme"), "{problems:?}");
    let bad = json!({"rules": [
        {"name": "b", "when": {"bin_ranges": [{"from": "4999", "to": "4000"}]}, "then": "REFUND"},
        {"name": "b", "when": {"currencies": ["usd"], "card_schemes": ["VISAA"]}, "then": "PERSON"}
    ]});
    let problems = AlertPolicy::from_json(&bad).unwrap_err().0;
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "rules[0].when.bin_ranges[0]",
            "rules[1].when.card_schemes",
            "rules[1].when.currencies",
            "rules[1].name"
        ],
        "{problems:?}"
    );
    let round =
        policy(json!([{"name": "x", "when": {"card_schemes": ["VISA"]}, "then": "PERSON"}]));
    assert_eq!(
        AlertPolicy::from_json(&serde_json::to_value(&round).unwrap()).unwrap(),
        round
    );
}
