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
}
