//! Operations notifications: something a person on the partner's side must look at (an
//! enrolment blocked or failed, an alert a policy could not act on). SNS in the cloud, a log
//! line plus a file or HTTP sink locally (`adapters::notify`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpsNotification {
    /// A stable machine-readable kind, e.g. `enrolment.action_required`, `enrolment.failed`.
    pub kind: String,
    /// One line for a person.
    pub subject: String,
    pub organisation_id: Option<String>,
    /// The enrolment or alert id.
    pub object_id: String,
    pub status: Option<String>,
    /// The customer-facing note ChargebackStop attached, when there is one.
    pub note: Option<String>,
    /// ISO 8601 UTC.
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification to {sink} failed, worth retrying: {detail}")]
    Transient { sink: &'static str, detail: String },
    #[error("notification to {sink} failed: {detail}")]
    Permanent { sink: &'static str, detail: String },
}

impl NotifyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Transient { .. })
    }
}

#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notification: &OpsNotification) -> Result<(), NotifyError>;
}
