//! The partner's billing system, as the refund-first decision needs it: one signed POST of a
//! refund request, answered refunded, refused, or not at all. Retries and their budget are the
//! domain's (`domain::refund_hook`); the HTTP call is `adapters::refund_hook`.

use crate::records::refund_hook::{RefundHookConfig, RefundRequest};

/// What one POST brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// `{"status":"refunded","refund_reference":"..","subscription_cancelled":bool}`.
    Refunded {
        refund_reference: String,
        subscription_cancelled: bool,
    },
    /// `{"status":"refused","reason":".."}`, or any other 4xx (not 408/429).
    Refused { reason: String },
}

/// One POST that brought no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookCallError {
    /// Timeout, connection refused, 5xx, 408 or 429: worth another attempt.
    #[error("refund hook did not answer: {reason}")]
    NoAnswer { reason: String },
    /// Our side cannot make the call (the signing secret cannot be read, a bad URL): another
    /// attempt in this call would fail the same way; a later retry may succeed.
    #[error("refund hook not called: {reason}")]
    NotCalled { reason: String },
    /// A 2xx whose body is not a refund answer: nothing we can act on. Treated as no answer
    /// (the partner may have refunded; never assumed).
    #[error("refund hook answered something else: {reason}")]
    Unreadable { reason: String },
}

impl HookCallError {
    /// Worth another POST within this call.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HookCallError::NoAnswer { .. })
    }
}

#[async_trait::async_trait]
pub trait RefundHook: Send + Sync {
    /// One signed POST of `request` to `config.url`, waiting at most `config.timeout_ms`.
    async fn post_once(
        &self,
        config: &RefundHookConfig,
        request: &RefundRequest,
    ) -> Result<HookAnswer, HookCallError>;
}
