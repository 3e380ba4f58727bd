//! The partner's transactions, indexed for matching alerts (`<prefix>-transactions`, README
//! "State in DynamoDB"): pk `lookup`, sk `entry`, no secondary index. Every lookup a match needs
//! is one Query of one partition, whatever the number of stored transactions; the keys are
//! built by `domain::matching::keys`.

use super::store_error::StoreError;
use crate::records::matching::IndexItem;

#[async_trait::async_trait]
pub trait TransactionIndex: Send + Sync {
    /// Writes entries (idempotent: the same entry again replaces itself).
    async fn put(&self, items: &[IndexItem]) -> Result<(), StoreError>;

    /// One Query: up to `limit` entries of partition `lookup`, in `entry` order, optionally only
    /// those with `from <= entry <= to`.
    async fn query(
        &self,
        lookup: &str,
        between: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError>;

    /// Removes one entry (absent is fine).
    async fn delete(&self, lookup: &str, entry: &str) -> Result<(), StoreError>;
}

/// Told when orders taken in (or an order's update) may change an alert that waits: an
/// unmatched alert one of whose lookups a new transaction answers, or an alert matched to the
/// updated order. It re-evaluates them (`domain::matching::late`).
#[async_trait::async_trait]
pub trait LateMatchHandler: Send + Sync {
    async fn rematch(&self, organisation_id: &str, alert_ids: &[String]);
}
