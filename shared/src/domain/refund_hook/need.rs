//! Whether a refund decided by the policy must first be asked of the partner's billing system
//! (pure: the alert, the policy, the match and the action).

use crate::domain::alert_policy::AlertPolicy;
use crate::models::alert::{Alert, AlertAction};
use crate::records::matching::{MatchRecord, MatchStatus};
use crate::records::refund_hook::{RefundHookConfig, RefundRequest};

/// What a refund decided by the policy needs before it may be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundNeed {
    /// Not a refund, no hook configured, or the partner refunded already: send as decided.
    SendAsDecided,
    /// Ask the billing system first.
    AskHook {
        config: RefundHookConfig,
        request: RefundRequest,
    },
    /// A hook is configured but no single transaction was matched: nothing to refund in the
    /// partner's system, so a person decides.
    NoTransaction { reason: String },
}

/// Whether `action`, decided by `policy` for `alert` on its match (`alert_match` of the
/// record, as `matching::record_match` stored it), must go through the hook.
pub fn refund_need(
    alert: &Alert,
    policy: &AlertPolicy,
    matching: Option<&MatchRecord>,
    action: &AlertAction,
) -> RefundNeed {
    let Some(config) = &policy.refund_hook else {
        return RefundNeed::SendAsDecided;
    };
    if !matches!(action, AlertAction::Refund | AlertAction::RefundAndCancel) {
        return RefundNeed::SendAsDecided;
    }
    // Already refunded in the partner's records: REFUND at once, nothing to ask.
    if matching
        .and_then(|m| m.evidence.as_ref())
        .is_some_and(|e| e.fully_refunded)
    {
        return RefundNeed::SendAsDecided;
    }
    let matched = matching
        .filter(|m| m.matched.status == MatchStatus::Matched)
        .and_then(|m| m.matched.transaction.as_ref());
    let Some(t) = matched else {
        return RefundNeed::NoTransaction {
            reason: format!(
                "refund hook: {action} decided, but no single transaction of the partner matched, \
                 so nothing can be refunded first; a person decides"
            ),
        };
    };
    RefundNeed::AskHook {
        config: config.clone(),
        request: RefundRequest {
            alert_id: alert.id.clone(),
            organisation_id: alert.organisation_id.clone(),
            order_reference_id: t.order_reference_id.clone(),
            transaction_reference_id: t.transaction_reference_id.clone(),
            amount_in_cents: alert.transaction_amount_in_cents.or(t.amount_in_cents),
            currency: alert
                .transaction_currency_code
                .clone()
                .or_else(|| t.currency.clone()),
            requested_action: action.clone(),
        },
    }
}
