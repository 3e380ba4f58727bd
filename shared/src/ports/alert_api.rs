//! What the alert processing needs from ChargebackStop: read an alert, action it.
//! The reqwest client implements it (`impl AlertApi for client::...`, below once the client
//! exists); unit tests use `adapters::memory::FakeChargebackStop`.

use crate::models::alert::{Alert, UpdateAlert};

/// Why a call to ChargebackStop failed, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// 5xx, 429, a timeout or a connection failure: try again by redelivery.
    #[error("ChargebackStop {operation} for {id} failed, worth retrying: {detail}")]
    Transient {
        operation: &'static str,
        id: String,
        detail: String,
    },
    #[error("ChargebackStop {operation}: {id} not found")]
    NotFound { operation: &'static str, id: String },
    /// 422: for an action, the alert is already resolved (or the action is not allowed). Final.
    #[error("ChargebackStop {operation} for {id} refused (422 {code}): {message}")]
    Unprocessable {
        operation: &'static str,
        id: String,
        code: String,
        message: String,
    },
    /// Any other refusal (401, 403, 400): a configuration problem, not the event's fault.
    #[error("ChargebackStop {operation} for {id} refused with status {status}: {detail}")]
    Refused {
        operation: &'static str,
        id: String,
        status: u16,
        detail: String,
    },
}

impl ApiCallError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiCallError::Transient { .. })
    }
}

#[async_trait::async_trait]
pub trait AlertApi: Send + Sync {
    /// `GET /v1/alerts/{id}`: the current truth, fetched before any state change.
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError>;

    /// `PATCH /v1/alerts/{id}` with `{action, note}`; the response may be a subset of the alert.
    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError>;
}
