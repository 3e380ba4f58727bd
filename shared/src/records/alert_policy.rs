//! An organisation's decision policy as it is stored (the customer record's `decision_policy`,
//! or `DEFAULT_ALERT_POLICY`), the conditions and outcomes of its own `rules`, and what one run's
//! read of every policy found. The rules that parse, check and apply a policy are in
//! `domain::alert_policy`; `ports::decision_inputs` reads it.

use super::matching::MatchStatus;
use crate::models::alert::AlertAction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// The policy's own rules, tried in order after the partner-refunded rule
    /// (`domain::alert_policy::rules`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,
    /// The partner's billing system, called to refund first whenever the policy decides a
    /// refund of a transaction the partner has not refunded (`domain::refund_hook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_hook: Option<crate::records::refund_hook::RefundHookConfig>,
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
            rules: Vec::new(),
            refund_hook: None,
        }
    }
}

/// What a rule decides: an action, or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleOutcome {
    Refund,
    RefundAndCancel,
    Cancel,
    AcceptDispute,
    /// Leave the alert to a person (the sweep applies the cutoff action at the cutoff).
    Person,
}

impl RuleOutcome {
    pub fn action(&self) -> Option<AlertAction> {
        match self {
            RuleOutcome::Refund => Some(AlertAction::Refund),
            RuleOutcome::RefundAndCancel => Some(AlertAction::RefundAndCancel),
            RuleOutcome::Cancel => Some(AlertAction::Cancel),
            RuleOutcome::AcceptDispute => Some(AlertAction::AcceptDispute),
            RuleOutcome::Person => None,
        }
    }
}

/// An inclusive range of BINs, compared on the BIN's first `from.len()` digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinRange {
    pub from: String,
    pub to: String,
}

/// The partner's refund state of the matched transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    Fully,
    Partly,
    /// Matched, and no refund found.
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConditions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_schemes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin_ranges: Option<Vec<BinRange>>,
    /// Statement descriptor starts with one of these (case and spaces ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor_prefixes: Option<Vec<String>>,
    /// ISO 4217 codes; with the amount bounds, a per-currency threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currencies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_at_most_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_above_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_status: Option<Vec<MatchStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_refunded: Option<Vec<RefundState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disputed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_cancelled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<Vec<String>>,
    /// Repeat customer: at least this many earlier alerts of the same customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_alerts_at_least: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    pub name: String,
    #[serde(default)]
    pub when: RuleConditions,
    pub then: RuleOutcome,
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
