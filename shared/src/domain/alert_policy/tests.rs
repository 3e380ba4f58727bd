//! Policy rules, validation, the default loader and the once-per-run policy read.

use super::*;
use crate::domain::test_support::alert;
use crate::ports::customer_store::CustomerScan;

fn policy() -> AlertPolicy {
    AlertPolicy {
        refund_at_or_below_cents: Some(2500),
        accept_dispute_above_cents: Some(50_000),
        ..AlertPolicy::default()
    }
}

#[test]
fn small_amounts_are_refunded() {
    let d = decide(
        &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 2500),
        &policy(),
        &PartnerEvidence::default(),
    );
    assert!(
        matches!(
            d,
            PolicyDecision::Act {
                action: AlertAction::Refund,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn large_amounts_are_disputed() {
    let d = decide(
        &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 50_001),
        &policy(),
        &PartnerEvidence::default(),
    );
    assert!(
        matches!(
            d,
            PolicyDecision::Act {
                action: AlertAction::AcceptDispute,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn amounts_in_between_go_to_a_person() {
    for amount in [2501, 50_000] {
        let d = decide(
            &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", amount),
            &policy(),
            &PartnerEvidence::default(),
        );
        assert!(
            matches!(d, PolicyDecision::LeaveToPerson { .. }),
            "{amount}: {d:?}"
        );
    }
}

#[test]
fn a_refund_in_the_partners_records_wins_over_amount_rules() {
    let evidence = PartnerEvidence {
        refunded: Some(true),
        ..PartnerEvidence::default()
    };
    let d = decide(
        &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 90_000),
        &policy(),
        &evidence,
    );
    assert!(
        matches!(
            d,
            PolicyDecision::Act {
                action: AlertAction::Refund,
                ..
            }
        ),
        "{d:?}"
    );
    let off = AlertPolicy {
        refund_when_partner_refunded: false,
        ..policy()
    };
    let d = decide(
        &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 90_000),
        &off,
        &evidence,
    );
    assert!(
        matches!(
            d,
            PolicyDecision::Act {
                action: AlertAction::AcceptDispute,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn the_default_policy_acts_only_on_partner_refunds() {
    let d = decide(
        &alert("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 1),
        &AlertPolicy::default(),
        &PartnerEvidence::default(),
    );
    assert!(matches!(d, PolicyDecision::LeaveToPerson { .. }));
}

#[test]
fn policy_json_parses_with_defaults_for_missing_fields() {
    let p = AlertPolicy::from_json(&serde_json::json!({"refund_at_or_below_cents": 1000, "refund_action": "REFUND_AND_CANCEL"})).unwrap();
    assert_eq!(p.refund_at_or_below_cents, Some(1000));
    assert_eq!(p.refund_action, AlertAction::RefundAndCancel);
    assert!(p.refund_when_partner_refunded);
    assert_eq!(p.accept_dispute_above_cents, None);
}

fn fields(e: InvalidPolicy) -> Vec<String> {
    e.0.into_iter().map(|p| p.field).collect()
}

#[test]
fn an_unknown_action_is_refused_naming_the_field() {
    let e =
        AlertPolicy::from_json(&serde_json::json!({"cutoff_action": "REFUND_LATER"})).unwrap_err();
    assert_eq!(fields(e), vec!["cutoff_action"]);
    let e = AlertPolicy::from_json(&serde_json::json!({"refund_action": "ACCEPT_DISPUTE"}))
        .unwrap_err();
    assert_eq!(fields(e), vec!["refund_action"]);
}

#[test]
fn a_cutoff_beyond_seven_days_or_negative_is_refused() {
    for minutes in [i64::MAX, MAX_CUTOFF_MINUTES + 1, -1] {
        let e =
            AlertPolicy::from_json(&serde_json::json!({"cutoff_minutes_before_deadline": minutes}))
                .unwrap_err();
        assert_eq!(
            fields(e),
            vec!["cutoff_minutes_before_deadline"],
            "{minutes}"
        );
    }
    assert!(AlertPolicy::from_json(
        &serde_json::json!({"cutoff_minutes_before_deadline": MAX_CUTOFF_MINUTES})
    )
    .is_ok());
}

#[test]
fn wrong_types_and_unknown_fields_are_named() {
    let e = AlertPolicy::from_json(&serde_json::json!({
        "refund_at_or_below_cents": "lots", "cutoff_minutes": 30
    }))
    .unwrap_err();
    let mut f = fields(e);
    f.sort();
    assert_eq!(f, vec!["cutoff_minutes", "refund_at_or_below_cents"]);
    assert!(AlertPolicy::from_json(&serde_json::json!([1])).is_err());
}

#[test]
fn a_stored_cutoff_out_of_range_never_panics() {
    let p = AlertPolicy {
        cutoff_minutes_before_deadline: i64::MAX,
        ..AlertPolicy::default()
    };
    assert_eq!(p.cutoff(), chrono::Duration::minutes(MAX_CUTOFF_MINUTES));
    let p = AlertPolicy {
        cutoff_minutes_before_deadline: i64::MIN,
        ..AlertPolicy::default()
    };
    assert_eq!(p.cutoff(), chrono::Duration::zero());
}

#[test]
fn the_default_policy_comes_from_default_alert_policy_validated() {
    assert_eq!(
        AlertPolicy::default_from(None).unwrap(),
        AlertPolicy::default()
    );
    let p = AlertPolicy::default_from(Some(
        r#"{"name": "house", "cutoff_action": "REFUND", "cutoff_minutes_before_deadline": 300}"#,
    ))
    .unwrap();
    assert_eq!(
        (p.name.as_str(), p.cutoff_minutes_before_deadline),
        ("house", 300)
    );
    let e = AlertPolicy::default_from(Some(r#"{"cutoff_action": "NOPE"}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("DEFAULT_ALERT_POLICY") && e.contains("cutoff_action"),
        "{e}"
    );
}

#[test]
fn onboarding_refuses_an_invalid_policy_naming_the_field() {
    let spec: crate::domain::onboarding::CustomerSpec = serde_json::from_value(serde_json::json!({
        "customer_id": "acme",
        "organisation": {"name": "Acme"},
        "merchants": [{"name": "Acme", "external_id": "mid-1"}],
        "decision_policy": {"cutoff_action": "SOMETIMES", "cutoff_minutes_before_deadline": 99999999999i64}
    }))
    .unwrap();
    let mut problems: Vec<String> = crate::domain::onboarding::validate_spec(&spec)
        .into_iter()
        .map(|p| p.field)
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        vec![
            "decision_policy.cutoff_action",
            "decision_policy.cutoff_minutes_before_deadline"
        ]
    );
}

/// Customers as a Scan may find them: one item that does not decode, one invalid policy.
struct Customers(CustomerScan);

#[async_trait::async_trait]
impl CustomerStore for Customers {
    async fn get(&self, _: &str) -> Result<Option<CustomerRecord>, StoreError> {
        Ok(None)
    }
    async fn claim(&self, _: &CustomerRecord, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn save(&self, _: &CustomerRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn by_organisation(&self, org: &str) -> Result<Vec<CustomerRecord>, StoreError> {
        Ok(self
            .0
            .records
            .iter()
            .filter(|r| r.organisation_id.as_deref() == Some(org))
            .cloned()
            .collect())
    }
    async fn scan(&self, _: usize) -> Result<CustomerScan, StoreError> {
        Ok(self.0.clone())
    }
}

fn customer(id: &str, org: &str, policy: serde_json::Value) -> CustomerRecord {
    serde_json::from_value(serde_json::json!({
        "customer_id": id, "mode": "TEST", "organisation_name": id,
        "organisation_id": org, "decision_policy": policy, "status": "COMPLETED",
        "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z"
    }))
    .unwrap()
}

#[tokio::test]
async fn one_read_for_every_policy_invalid_ones_fall_back_and_are_reported() {
    let scan = CustomerScan {
        records: vec![
            customer(
                "good",
                "org_good",
                serde_json::json!({"cutoff_minutes_before_deadline": 4320}),
            ),
            customer(
                "bad",
                "org_bad",
                serde_json::json!({"cutoff_minutes_before_deadline": 99999999999i64}),
            ),
        ],
        skipped: vec![crate::ports::store_error::UndecodableItem {
            table: "customers".into(),
            key: "broken".into(),
            reason: "missing field `mode`".into(),
        }],
        truncated: false,
    };
    let policies = CustomerPolicies::new(Arc::new(Customers(scan)), AlertPolicy::default());
    let load = policies.load(100).await;
    assert!(load.complete);
    assert_eq!(load.organisations, vec!["org_bad", "org_good"]);
    assert_eq!(
        load.by_organisation["org_good"].cutoff_minutes_before_deadline,
        4320
    );
    assert_eq!(load.by_organisation["org_bad"], AlertPolicy::default());
    assert_eq!(load.widest_cutoff(), chrono::Duration::hours(72));
    let kinds: Vec<&str> = load
        .problems
        .iter()
        .map(|p| match p {
            PolicyLoadProblem::InvalidPolicy { customer_id, .. } => customer_id.as_str(),
            PolicyLoadProblem::UndecodableCustomer { key, .. } => key.as_str(),
        })
        .collect();
    assert_eq!(kinds, vec!["broken", "bad"]);
}

#[tokio::test]
async fn a_look_up_that_meets_an_invalid_stored_policy_notifies_and_uses_the_default() {
    let scan = CustomerScan {
        records: vec![customer(
            "bad",
            "org_bad",
            serde_json::json!({"cutoff_action": "SHRUG"}),
        )],
        skipped: vec![],
        truncated: false,
    };
    let notifier = Arc::new(crate::adapters::memory::RecordingNotifier::default());
    let policies = CustomerPolicies::new(Arc::new(Customers(scan)), AlertPolicy::default())
        .notifying(
            notifier.clone(),
            Arc::new(crate::clock::FixedClock::at(
                "2026-11-24T10:00:00Z".parse().unwrap(),
            )),
        );
    let policy = policies.policy_for("org_bad").await.unwrap();
    assert_eq!(policy, AlertPolicy::default());
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, "customer.invalid_decision_policy");
    assert_eq!(sent[0].object_id, "bad");
    assert_eq!(sent[0].organisation_id.as_deref(), Some("org_bad"));
    assert!(
        sent[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("cutoff_action"),
        "{:?}",
        sent[0].note
    );
    // A valid policy is looked up without a word.
    assert!(policies.policy_for("org_other").await.is_ok());
    assert_eq!(notifier.sent().len(), 1);
}
