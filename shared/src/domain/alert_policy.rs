//! The partner's decision policy for Ethoca alerts waiting for an action, per organisation.
//!
//! The policy is JSON, stored as the customer record's `decision_policy` (customers table) or,
//! for organisations without one, the default from `DEFAULT_ALERT_POLICY`:
//! ```json
//! {"name": "acme-2026", "refund_when_partner_refunded": true,
//!  "refund_at_or_below_cents": 2500, "accept_dispute_above_cents": 50000,
//!  "refund_action": "REFUND", "note": "Refunded automatically",
//!  "cutoff_action": "ACCEPT_DISPUTE", "cutoff_minutes_before_deadline": 120}
//! ```
//! Amounts are minor units of the alert's own currency. Rules, first match wins:
//! 1. the partner's records show the transaction refunded → `refund_action`;
//! 2. amount ≤ `refund_at_or_below_cents` → `refund_action`;
//! 3. amount > `accept_dispute_above_cents` → ACCEPT_DISPUTE;
//! 4. otherwise a person decides; the deadline sweep applies `cutoff_action` at the cutoff.

use crate::domain::onboarding::CustomerRecord;
use crate::models::alert::{Alert, AlertAction};
use crate::ports::customer_store::CustomerStore;
use crate::ports::decision_inputs::{PartnerEvidence, PolicyCatalogue, PolicySource};
use crate::ports::store_error::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertPolicy {
    /// Shown in the audit trail as the actor of automatic decisions.
    pub name: String,
    pub refund_when_partner_refunded: bool,
    pub refund_at_or_below_cents: Option<i64>,
    pub accept_dispute_above_cents: Option<i64>,
    /// REFUND, or REFUND_AND_CANCEL for subscription businesses.
    pub refund_action: AlertAction,
    /// Customer-facing note sent with automatic actions.
    pub note: Option<String>,
    /// For the deadline sweep: what to do with alerts nobody decided, and how long before the
    /// deadline. `None` leaves them to expire (ChargebackStop then auto-declines).
    pub cutoff_action: Option<AlertAction>,
    pub cutoff_minutes_before_deadline: i64,
}

impl Default for AlertPolicy {
    /// Refund only what the partner already refunded; everything else goes to a person.
    fn default() -> Self {
        Self {
            name: "default".into(),
            refund_when_partner_refunded: true,
            refund_at_or_below_cents: None,
            accept_dispute_above_cents: None,
            refund_action: AlertAction::Refund,
            note: None,
            cutoff_action: None,
            cutoff_minutes_before_deadline: 120,
        }
    }
}

/// The widest cutoff a policy may set: 7 days before the deadline, past every Ethoca response
/// window (24-72 h). Larger values are refused where a policy is written and where it is read.
pub const MAX_CUTOFF_MINUTES: i64 = 7 * 24 * 60;

/// The fields a policy may carry; anything else is a typo worth refusing.
const POLICY_FIELDS: &[&str] = &[
    "name",
    "refund_when_partner_refunded",
    "refund_at_or_below_cents",
    "accept_dispute_above_cents",
    "refund_action",
    "note",
    "cutoff_action",
    "cutoff_minutes_before_deadline",
];

/// One thing wrong with a policy, naming the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProblem {
    pub field: String,
    pub message: String,
}

/// A decision policy that must not be used, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decision policy: {}", describe(.0))]
pub struct InvalidPolicy(pub Vec<PolicyProblem>);

fn describe(problems: &[PolicyProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn problem(field: &str, message: impl Into<String>) -> PolicyProblem {
    PolicyProblem {
        field: field.to_string(),
        message: message.into(),
    }
}

impl AlertPolicy {
    /// Parses and validates a policy (JSON object): every field of the wrong type, unknown,
    /// or out of range is reported by name. The one parser for the ops API, the CLI, the
    /// customers table and `DEFAULT_ALERT_POLICY`.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InvalidPolicy> {
        let Some(map) = value.as_object() else {
            return Err(InvalidPolicy(vec![problem(
                "decision_policy",
                "must be a JSON object",
            )]));
        };
        let mut problems = Vec::new();
        for (key, v) in map {
            let typed = match key.as_str() {
                "name" => serde_json::from_value::<String>(v.clone()).err(),
                "refund_when_partner_refunded" => serde_json::from_value::<bool>(v.clone()).err(),
                "refund_at_or_below_cents" | "accept_dispute_above_cents" => {
                    serde_json::from_value::<Option<i64>>(v.clone()).err()
                }
                "refund_action" => serde_json::from_value::<AlertAction>(v.clone()).err(),
                "note" => serde_json::from_value::<Option<String>>(v.clone()).err(),
                "cutoff_action" => serde_json::from_value::<Option<AlertAction>>(v.clone()).err(),
                "cutoff_minutes_before_deadline" => serde_json::from_value::<i64>(v.clone()).err(),
                _ => {
                    problems.push(problem(
                        key,
                        format!(
                            "is not a policy field (expected one of {})",
                            POLICY_FIELDS.join(", ")
                        ),
                    ));
                    None
                }
            };
            if let Some(e) = typed {
                problems.push(problem(key, format!("has the wrong type: {e}")));
            }
        }
        if !problems.is_empty() {
            return Err(InvalidPolicy(problems));
        }
        let policy: AlertPolicy = serde_json::from_value(value.clone())
            .map_err(|e| InvalidPolicy(vec![problem("decision_policy", e.to_string())]))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The range and vocabulary checks of a typed policy.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        let mut problems = Vec::new();
        if !matches!(
            self.refund_action,
            AlertAction::Refund | AlertAction::RefundAndCancel
        ) {
            problems.push(problem(
                "refund_action",
                format!(
                    "must be REFUND or REFUND_AND_CANCEL, got {}",
                    self.refund_action
                ),
            ));
        }
        if let Some(action) = &self.cutoff_action {
            if !action.is_known() {
                problems.push(problem(
                    "cutoff_action",
                    format!(
                        "must be REFUND, CANCEL, REFUND_AND_CANCEL or ACCEPT_DISPUTE, got {action}"
                    ),
                ));
            }
        }
        if !(0..=MAX_CUTOFF_MINUTES).contains(&self.cutoff_minutes_before_deadline) {
            problems.push(problem(
                "cutoff_minutes_before_deadline",
                format!(
                    "must be from 0 to {MAX_CUTOFF_MINUTES} (7 days), got {}",
                    self.cutoff_minutes_before_deadline
                ),
            ));
        }
        for (field, value) in [
            ("refund_at_or_below_cents", self.refund_at_or_below_cents),
            (
                "accept_dispute_above_cents",
                self.accept_dispute_above_cents,
            ),
        ] {
            if value.is_some_and(|v| v < 0) {
                problems.push(problem(field, "must not be negative"));
            }
        }
        if let (Some(refund), Some(dispute)) = (
            self.refund_at_or_below_cents,
            self.accept_dispute_above_cents,
        ) {
            if refund > dispute {
                problems.push(problem(
                    "refund_at_or_below_cents",
                    format!("must not exceed accept_dispute_above_cents ({dispute})"),
                ));
            }
        }
        if self.note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
            problems.push(problem("note", "must be at most 1000 characters"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidPolicy(problems))
        }
    }

    /// How long before the deadline the sweep acts (checked: never panics, whatever is stored).
    pub fn cutoff(&self) -> chrono::Duration {
        chrono::Duration::try_minutes(
            self.cutoff_minutes_before_deadline
                .clamp(0, MAX_CUTOFF_MINUTES),
        )
        .unwrap_or_else(chrono::Duration::zero)
    }

    /// The default policy of every function: `DEFAULT_ALERT_POLICY` (JSON) when set, validated,
    /// else [`AlertPolicy::default`]. A bad value stops start-up naming the variable and field.
    pub fn default_from_env() -> Result<Self, crate::config::ConfigError> {
        Self::default_from(crate::config::optional("DEFAULT_ALERT_POLICY").as_deref())
    }

    /// [`AlertPolicy::default_from_env`] for a given value of `DEFAULT_ALERT_POLICY`.
    pub fn default_from(raw: Option<&str>) -> Result<Self, crate::config::ConfigError> {
        let invalid = |reason: String| crate::config::ConfigError::Invalid {
            name: "DEFAULT_ALERT_POLICY",
            reason,
        };
        match raw {
            None => Ok(Self::default()),
            Some(raw) => {
                let value: serde_json::Value =
                    serde_json::from_str(raw).map_err(|e| invalid(e.to_string()))?;
                Self::from_json(&value).map_err(|e| invalid(e.to_string()))
            }
        }
    }
}

/// What the policy decided for one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyDecision {
    Act { action: AlertAction, reason: String },
    LeaveToPerson { reason: String },
}

/// Decide for an actionable Ethoca alert (pure; the caller checks `alert.is_actionable()`).
pub fn decide(alert: &Alert, policy: &AlertPolicy, evidence: &PartnerEvidence) -> PolicyDecision {
    if policy.refund_when_partner_refunded && evidence.refunded == Some(true) {
        return PolicyDecision::Act {
            action: policy.refund_action.clone(),
            reason: "the partner's records show the transaction refunded".into(),
        };
    }
    let Some(amount) = alert.transaction_amount_in_cents else {
        return PolicyDecision::LeaveToPerson {
            reason: "the alert has no amount; no amount rule applies".into(),
        };
    };
    let currency = alert.transaction_currency_code.as_deref().unwrap_or("");
    if let Some(limit) = policy.refund_at_or_below_cents {
        if amount <= limit {
            return PolicyDecision::Act {
                action: policy.refund_action.clone(),
                reason: format!(
                    "amount {amount} {currency} is at most the refund threshold {limit}"
                ),
            };
        }
    }
    if let Some(limit) = policy.accept_dispute_above_cents {
        if amount > limit {
            return PolicyDecision::Act {
                action: AlertAction::AcceptDispute,
                reason: format!(
                    "amount {amount} {currency} is above the dispute threshold {limit}"
                ),
            };
        }
    }
    PolicyDecision::LeaveToPerson {
        reason: format!(
            "no rule of policy {} matched amount {amount} {currency}",
            policy.name
        ),
    }
}

/// Policies from the customers table (`decision_policy` of the organisation's customer record),
/// falling back to the configured default. A stored policy that is invalid falls back to the
/// default too (logged; the sweep also notifies operations), rather than blocking the
/// organisation's alerts.
pub struct CustomerPolicies {
    customers: Arc<dyn CustomerStore>,
    default: AlertPolicy,
}

impl CustomerPolicies {
    pub fn new(customers: Arc<dyn CustomerStore>, default: AlertPolicy) -> Self {
        Self { customers, default }
    }
}

/// The policy of an organisation from its customer records: the first valid one, else the
/// default. Each invalid one is returned with its reason.
pub fn policy_of_records<'a>(
    organisation_id: &str,
    records: impl IntoIterator<Item = &'a CustomerRecord>,
    default: &AlertPolicy,
) -> (AlertPolicy, Vec<PolicyLoadProblem>) {
    let mut problems = Vec::new();
    for record in records {
        let Some(raw) = record.decision_policy.as_ref() else {
            continue;
        };
        match AlertPolicy::from_json(raw) {
            Ok(policy) => return (policy, problems),
            Err(e) => {
                tracing::warn!(
                    organisation_id,
                    customer_id = %record.customer_id,
                    error = %e,
                    "decision_policy is invalid; using the default policy"
                );
                problems.push(PolicyLoadProblem::InvalidPolicy {
                    customer_id: record.customer_id.clone(),
                    organisation_id: organisation_id.to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }
    (default.clone(), problems)
}

#[async_trait::async_trait]
impl PolicySource for CustomerPolicies {
    async fn policy_for(&self, organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        let records = self.customers.by_organisation(organisation_id).await?;
        Ok(policy_of_records(organisation_id, &records, &self.default).0)
    }
}

/// Why a customer's policy could not be used this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyLoadProblem {
    /// The stored `decision_policy` does not validate: the default applies.
    InvalidPolicy {
        customer_id: String,
        organisation_id: String,
        reason: String,
    },
    /// The customer item does not decode at all: skipped.
    UndecodableCustomer { key: String, reason: String },
}

/// Every organisation's policy, read once for a run (one Scan of the customers table).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLoad {
    pub by_organisation: HashMap<String, AlertPolicy>,
    pub default: AlertPolicy,
    /// Organisations of every onboarded customer (reconciliation polls them).
    pub organisations: Vec<String>,
    pub problems: Vec<PolicyLoadProblem>,
    /// False when the read failed or stopped early: an organisation not listed may still have
    /// a policy of its own, so look it up before acting.
    pub complete: bool,
}

impl PolicyLoad {
    /// Only the default (no customers read).
    pub fn default_only(default: AlertPolicy) -> Self {
        Self {
            by_organisation: HashMap::new(),
            default,
            organisations: Vec::new(),
            problems: Vec::new(),
            complete: true,
        }
    }

    /// The widest cutoff of any policy loaded (the default's included); when the load is
    /// incomplete, the widest any valid policy may set.
    pub fn widest_cutoff(&self) -> chrono::Duration {
        if !self.complete {
            return AlertPolicy {
                cutoff_minutes_before_deadline: MAX_CUTOFF_MINUTES,
                ..AlertPolicy::default()
            }
            .cutoff();
        }
        self.by_organisation
            .values()
            .chain(std::iter::once(&self.default))
            .map(AlertPolicy::cutoff)
            .max()
            .unwrap_or_else(chrono::Duration::zero)
    }
}

#[async_trait::async_trait]
impl PolicyCatalogue for CustomerPolicies {
    async fn load(&self, max_customers: usize) -> PolicyLoad {
        let scan = match self.customers.scan(max_customers).await {
            Ok(scan) => scan,
            Err(e) => {
                tracing::error!(error = %e, "could not read the customers table; default policy, per-organisation look-ups");
                let mut load = PolicyLoad::default_only(self.default.clone());
                load.complete = false;
                return load;
            }
        };
        let mut load = PolicyLoad::default_only(self.default.clone());
        load.complete = !scan.truncated;
        load.problems.extend(scan.skipped.into_iter().map(|s| {
            PolicyLoadProblem::UndecodableCustomer {
                key: s.key,
                reason: s.reason,
            }
        }));
        let mut by_org: std::collections::BTreeMap<String, Vec<CustomerRecord>> =
            Default::default();
        for record in scan.records {
            if let Some(org) = record.organisation_id.clone() {
                by_org.entry(org).or_default().push(record);
            }
        }
        for (org, records) in by_org {
            let (policy, problems) = policy_of_records(&org, &records, &self.default);
            load.problems.extend(problems);
            if records.iter().any(|r| r.decision_policy.is_some()) {
                load.by_organisation.insert(org.clone(), policy);
            }
            load.organisations.push(org);
        }
        load
    }

    async fn lookup(&self, organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        self.policy_for(organisation_id).await
    }
}

/// The same policy for every organisation (tests, or a deployment without per-customer policies).
pub struct FixedPolicy(pub AlertPolicy);

#[async_trait::async_trait]
impl PolicySource for FixedPolicy {
    async fn policy_for(&self, _organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        Ok(self.0.clone())
    }
}

#[async_trait::async_trait]
impl PolicyCatalogue for FixedPolicy {
    async fn load(&self, _max_customers: usize) -> PolicyLoad {
        PolicyLoad::default_only(self.0.clone())
    }

    async fn lookup(&self, _organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
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
        let e = AlertPolicy::from_json(&serde_json::json!({"cutoff_action": "REFUND_LATER"}))
            .unwrap_err();
        assert_eq!(fields(e), vec!["cutoff_action"]);
        let e = AlertPolicy::from_json(&serde_json::json!({"refund_action": "ACCEPT_DISPUTE"}))
            .unwrap_err();
        assert_eq!(fields(e), vec!["refund_action"]);
    }

    #[test]
    fn a_cutoff_beyond_seven_days_or_negative_is_refused() {
        for minutes in [i64::MAX, MAX_CUTOFF_MINUTES + 1, -1] {
            let e = AlertPolicy::from_json(
                &serde_json::json!({"cutoff_minutes_before_deadline": minutes}),
            )
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
}
