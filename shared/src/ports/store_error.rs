//! The one error type of the DynamoDB-backed stores (events, alerts, enrolments), so callers can
//! decide "retry by redelivery" or "give up" from its kind, never from its text.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a timeout, an internal error of the store: try again later.
    #[error("{operation} on {table} failed, worth retrying: {detail}")]
    Transient {
        operation: &'static str,
        table: String,
        detail: String,
    },
    /// Another writer changed the item between our read and our write.
    #[error("{operation} on {table} lost a race for {key}")]
    Conflict {
        operation: &'static str,
        table: String,
        key: String,
    },
    /// A stored item or a request the store refused (missing table, bad item shape).
    #[error("{operation} on {table} failed: {detail}")]
    Permanent {
        operation: &'static str,
        table: String,
        detail: String,
    },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Transient { .. } | StoreError::Conflict { .. }
        )
    }
}

/// A stored item that does not decode into its record: skipped by readers that go item by item
/// (the sweep, reconciliation), logged and notified, instead of failing the whole read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UndecodableItem {
    pub table: String,
    /// The item's key, as far as it can be read.
    pub key: String,
    pub reason: String,
}
