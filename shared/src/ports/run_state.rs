//! What scheduled runs keep between invocations (`<prefix>-run-state`, README "State in
//! DynamoDB"): a run lease per function, so one run at a time does the work (locally, across
//! Lambda's async retries and a run from the command line), and the rate-limit budget per pool,
//! so a new run never starts with a fresh full burst.

use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who holds a run lease, and until when (ISO 8601 UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    pub owner: String,
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTaken {
    Acquired,
    /// A live lease of another owner.
    HeldBy(LeaseHolder),
}

#[async_trait::async_trait]
pub trait RunLeases: Send + Sync {
    /// Takes `name`'s lease for `owner` until `until` when it is free, expired or already ours
    /// (one conditional write).
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LeaseTaken, StoreError>;

    /// Gives the lease back if `owner` still holds it.
    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError>;
}

/// A token bucket as last written: `tokens` (negative while a 429 pause lasts) at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub tokens: f64,
    pub at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait RateBudgets: Send + Sync {
    async fn load(&self, pool: &str) -> Result<Option<BucketState>, StoreError>;
    async fn save(&self, pool: &str, state: &BucketState) -> Result<(), StoreError>;
}
