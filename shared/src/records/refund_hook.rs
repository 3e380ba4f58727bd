//! The refund hook: how an organisation's policy names the partner's billing system
//! (`refund_hook` in the policy JSON), what we ask it, and what the alert record keeps of the
//! answer (`refund_hook` on the alert item). The rules are in `domain::refund_hook`; the HTTP
//! call in `adapters::refund_hook`.

use crate::models::alert::AlertAction;
use serde::{Deserialize, Serialize};

/// Default time one POST may take before it counts as no answer.
pub const DEFAULT_HOOK_TIMEOUT_MS: u64 = 5_000;
/// Default number of POSTs one decision makes (timeouts, 5xx and 429 are retried).
pub const DEFAULT_HOOK_ATTEMPTS: u32 = 3;

/// `refund_hook` of a decision policy: where the partner's billing system refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundHookConfig {
    /// `https://...` (plain `http://` only to a loopback address: local stacks and tests).
    pub url: String,
    /// The name or ARN of the Secrets Manager secret holding OUR signing secret for this
    /// organisation (shared with the partner once, out of band). Never the secret itself.
    pub secret_id: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_HOOK_TIMEOUT_MS
}

fn default_attempts() -> u32 {
    DEFAULT_HOOK_ATTEMPTS
}

impl RefundHookConfig {
    /// Each problem as `(field below refund_hook, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let url = self.url.trim();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                url.strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !(url.starts_with("https://") && url.len() > "https://".len()) && !loopback {
            problems.push((
                "url".to_string(),
                "must be an https:// URL (http:// only to a loopback address)".to_string(),
            ));
        }
        if self.secret_id.trim().is_empty() {
            problems.push((
                "secret_id".to_string(),
                "must name the Secrets Manager secret holding the signing secret".to_string(),
            ));
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            problems.push((
                "timeout_ms".to_string(),
                format!("must be from 100 to 30000, got {}", self.timeout_ms),
            ));
        }
        if !(1..=5).contains(&self.max_attempts) {
            problems.push((
                "max_attempts".to_string(),
                format!("must be from 1 to 5, got {}", self.max_attempts),
            ));
        }
        problems
    }
}

/// The body we POST to the hook (JSON). `alert_id` is also the `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub alert_id: String,
    pub organisation_id: String,
    /// The partner's order (`reference_id` of the order as it sent it to us).
    pub order_reference_id: String,
    /// The partner's transaction (`reference_id` of the transaction).
    pub transaction_reference_id: String,
    pub amount_in_cents: Option<i64>,
    pub currency: Option<String>,
    /// REFUND or REFUND_AND_CANCEL.
    pub requested_action: AlertAction,
}

/// Where the refund in the partner's billing system stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundHookState {
    /// A call is under way until `in_flight_until` (another caller waits; a crashed caller's
    /// claim expires then).
    InFlight,
    /// The partner refunded (`refund_reference`); the alert may be actioned.
    Confirmed,
    /// The partner refused: the alert is a person's.
    Refused,
    /// No answer (timeouts, 5xx, 429, unreachable, an unreadable secret): retried by the deadline
    /// sweep until the policy's cutoff; then the cutoff action applies.
    Pending,
}

/// `refund_hook` on the alert record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundHookRecord {
    pub state: RefundHookState,
    /// What was asked (kept so a retry asks exactly the same).
    pub request: RefundRequest,
    /// The policy's reason for the refund (for the decision recorded once confirmed).
    pub reason: String,
    /// POSTs sent so far, over every call.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reference: Option<String>,
    #[serde(default)]
    pub subscription_cancelled: bool,
    /// Why refused, or why no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// ISO 8601 UTC of the last change.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_until: Option<String>,
    /// The refund was queued as an order update (PATCH /v1/orders) for ChargebackStop.
    #[serde(default)]
    pub order_update_queued: bool,
}
