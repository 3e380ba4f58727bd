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
//! 1. the partner's records show the matched transaction fully refunded → `refund_action`
//!    (`refund_when_partner_refunded`);
//! 2. the policy's own `rules`, in order (see `rules`: card scheme, BIN ranges, descriptor
//!    prefix, per-currency amounts, match status, refunds, dispute, cancellation, subscription,
//!    repeat customer), each deciding an action or `PERSON`;
//! 3. amount ≤ `refund_at_or_below_cents` → `refund_action`;
//! 4. amount > `accept_dispute_above_cents` → ACCEPT_DISPUTE;
//! 5. otherwise a person decides; the deadline sweep applies `cutoff_action` at the cutoff.
//!
//! Every decision names the rule that made it (`<policy>/<rule>`) and the evidence it rested on
//! ([`evaluate`]); a policy without `rules` decides exactly as before they existed.

pub mod rules;

use crate::clock::Clock;
use crate::domain::onboarding::CustomerRecord;
use crate::models::alert::{Alert, AlertAction};
use crate::ports::customer_store::CustomerStore;
use crate::ports::decision_inputs::{PartnerEvidence, PolicyCatalogue, PolicySource};
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::store_error::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The policy and a run's read of every policy live in `records` (below both this and the
/// ports that read them); re-exported here for the code that always found them here.
pub use crate::records::alert_policy::{AlertPolicy, PolicyLoad, PolicyLoadProblem};

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
    "rules",
    "refund_hook",
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
                "refund_hook" => serde_json::from_value::<
                    Option<crate::records::refund_hook::RefundHookConfig>,
                >(v.clone())
                .err(),
                "rules" => {
                    match v.as_array() {
                        None => problems.push(problem("rules", "must be a list of rules")),
                        Some(list) => {
                            for (i, rule) in list.iter().enumerate() {
                                if let Err(e) =
                                    serde_json::from_value::<rules::PolicyRule>(rule.clone())
                                {
                                    problems.push(problem(&format!("rules[{i}]"), e.to_string()));
                                }
                            }
                        }
                    }
                    None
                }
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
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for (field, message) in rules::rule_problems(rule) {
                problems.push(problem(&format!("rules[{i}].{field}"), message));
            }
            if !names.insert(rule.name.as_str()) {
                problems.push(problem(
                    &format!("rules[{i}].name"),
                    format!("{:?} is used by an earlier rule", rule.name),
                ));
            }
        }
        if let Some(hook) = &self.refund_hook {
            for (field, message) in hook.problems() {
                problems.push(problem(&format!("refund_hook.{field}"), message));
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

/// What the policy decided, which rule decided it, and what that rested on.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub decision: PolicyDecision,
    /// `<policy>/<rule>`: a rule's name, or one of `refund_when_partner_refunded`,
    /// `refund_at_or_below_cents`, `accept_dispute_above_cents`, `no_amount`, `no_rule_matched`.
    pub rule: String,
    /// The conditions that held, and the match and evidence, in words.
    pub evidence: Vec<String>,
}

/// Decide for an actionable Ethoca alert (pure; the caller checks `alert.is_actionable()`).
pub fn decide(alert: &Alert, policy: &AlertPolicy, evidence: &PartnerEvidence) -> PolicyDecision {
    evaluate(alert, policy, evidence).decision
}

/// The match and evidence in words, for reasons and the audit trail.
fn evidence_words(evidence: &PartnerEvidence) -> Vec<String> {
    let Some(m) = &evidence.matching else {
        return Vec::new();
    };
    let mut words = vec![match (&m.matched.transaction, m.matched.method) {
        (Some(t), Some(method)) => format!(
            "matched {} / {} by {method:?} ({}%)",
            t.order_reference_id, t.transaction_reference_id, m.matched.confidence
        ),
        _ => format!(
            "{} ({} candidate(s))",
            m.matched.status.as_str().to_lowercase(),
            m.matched.candidates.len()
        ),
    }];
    if let Some(e) = &m.evidence {
        words.push(e.summary());
    }
    words
}

/// [`decide`], with the rule that decided and the evidence it rested on.
pub fn evaluate(alert: &Alert, policy: &AlertPolicy, evidence: &PartnerEvidence) -> Evaluation {
    let words = evidence_words(evidence);
    let context = if words.is_empty() {
        String::new()
    } else {
        format!(" [{}]", words.join("; "))
    };
    let named = |rule: &str| format!("{}/{rule}", policy.name);
    let act = |rule: &str, action: AlertAction, why: String, held: Vec<String>| Evaluation {
        decision: PolicyDecision::Act {
            action,
            reason: format!("{}: {why}{context}", named(rule)),
        },
        rule: named(rule),
        evidence: held.into_iter().chain(words.iter().cloned()).collect(),
    };
    let person = |rule: &str, why: String, held: Vec<String>| Evaluation {
        decision: PolicyDecision::LeaveToPerson {
            reason: format!("{}: {why}{context}", named(rule)),
        },
        rule: named(rule),
        evidence: held.into_iter().chain(words.iter().cloned()).collect(),
    };
    if policy.refund_when_partner_refunded && evidence.refunded == Some(true) {
        return act(
            "refund_when_partner_refunded",
            policy.refund_action.clone(),
            "the partner's records show the transaction refunded".into(),
            vec!["partner refunded".into()],
        );
    }
    for rule in &policy.rules {
        if let Ok(held) = rule.when.check(alert, evidence) {
            let why = if held.is_empty() {
                "applies to every alert".to_string()
            } else {
                held.join(", ")
            };
            return match rule.then.action() {
                Some(action) => act(&rule.name, action, why, held),
                None => person(&rule.name, why, held),
            };
        }
    }
    let Some(amount) = alert.transaction_amount_in_cents else {
        return person(
            "no_amount",
            "the alert has no amount; no amount rule applies".into(),
            Vec::new(),
        );
    };
    let currency = alert.transaction_currency_code.as_deref().unwrap_or("");
    if let Some(limit) = policy.refund_at_or_below_cents {
        if amount <= limit {
            return act(
                "refund_at_or_below_cents",
                policy.refund_action.clone(),
                format!("amount {amount} {currency} is at most the refund threshold {limit}"),
                vec![format!("amount {amount} {currency}")],
            );
        }
    }
    if let Some(limit) = policy.accept_dispute_above_cents {
        if amount > limit {
            return act(
                "accept_dispute_above_cents",
                AlertAction::AcceptDispute,
                format!("amount {amount} {currency} is above the dispute threshold {limit}"),
                vec![format!("amount {amount} {currency}")],
            );
        }
    }
    person(
        "no_rule_matched",
        format!(
            "no rule of policy {} matched amount {amount} {currency}",
            policy.name
        ),
        Vec::new(),
    )
}

/// Policies from the customers table (`decision_policy` of the organisation's customer record),
/// falling back to the configured default. A stored policy that is invalid falls back to the
/// default too (logged; the sweep also notifies operations), rather than blocking the
/// organisation's alerts.
pub struct CustomerPolicies {
    customers: Arc<dyn CustomerStore>,
    default: AlertPolicy,
    /// Told when a stored policy is invalid and the default decides instead (process-events;
    /// the sweep reports its run's load problems itself).
    notifier: Option<(Arc<dyn Notifier>, Arc<dyn Clock>)>,
}

impl CustomerPolicies {
    pub fn new(customers: Arc<dyn CustomerStore>, default: AlertPolicy) -> Self {
        Self {
            customers,
            default,
            notifier: None,
        }
    }

    /// Each look-up that meets an invalid stored policy notifies `policy.invalid` (the default
    /// decided this alert instead of the customer's own policy).
    pub fn notifying(mut self, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>) -> Self {
        self.notifier = Some((notifier, clock));
        self
    }
}

impl PolicyLoadProblem {
    /// What a person is told about this problem (the sweep's run and process-events' look-ups
    /// say it the same way).
    pub fn notification(&self, at: String) -> OpsNotification {
        let (kind, subject, organisation_id, object_id, reason) = match self {
            PolicyLoadProblem::InvalidPolicy {
                customer_id,
                organisation_id,
                reason,
            } => (
                "customer.invalid_decision_policy",
                format!("Customer {customer_id}: decision_policy is invalid; the default policy applies"),
                Some(organisation_id.clone()),
                customer_id,
                reason,
            ),
            PolicyLoadProblem::UndecodableCustomer { key, reason } => (
                "customer.undecodable_item",
                format!("Customer item {key} does not decode; skipped"),
                None,
                key,
                reason,
            ),
        };
        OpsNotification {
            kind: kind.into(),
            subject,
            organisation_id,
            object_id: object_id.clone(),
            status: None,
            note: Some(reason.clone()),
            at,
        }
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
        let (policy, problems) = policy_of_records(organisation_id, &records, &self.default);
        if let Some((notifier, clock)) = &self.notifier {
            for problem in &problems {
                let at = crate::ports::event_log::iso(clock.now());
                if let Err(e) = notifier.notify(&problem.notification(at)).await {
                    tracing::error!(organisation_id, error = %e, "invalid decision_policy not notified");
                }
            }
        }
        Ok(policy)
    }
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
mod tests;
