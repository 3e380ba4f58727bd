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

use crate::models::alert::{Alert, AlertAction};
use crate::ports::customer_store::CustomerStore;
use crate::ports::decision_inputs::{PartnerEvidence, PolicySource};
use crate::ports::store_error::StoreError;
use serde::{Deserialize, Serialize};
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

impl AlertPolicy {
    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value.clone())
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
/// falling back to the configured default. A record whose policy does not parse falls back to
/// the default too (logged), rather than blocking the organisation's alerts.
pub struct CustomerPolicies {
    customers: Arc<dyn CustomerStore>,
    default: AlertPolicy,
}

impl CustomerPolicies {
    pub fn new(customers: Arc<dyn CustomerStore>, default: AlertPolicy) -> Self {
        Self { customers, default }
    }
}

#[async_trait::async_trait]
impl PolicySource for CustomerPolicies {
    async fn policy_for(&self, organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        let records = self.customers.by_organisation(organisation_id).await?;
        for raw in records.iter().filter_map(|r| r.decision_policy.as_ref()) {
            match AlertPolicy::from_json(raw) {
                Ok(policy) => return Ok(policy),
                Err(e) => tracing::warn!(
                    organisation_id,
                    error = %e,
                    "decision_policy does not parse; using the default policy"
                ),
            }
        }
        Ok(self.default.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::alert;

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
}
