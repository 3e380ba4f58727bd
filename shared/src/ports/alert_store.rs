//! The `alerts` table: each alert as last fetched, our decisions and their audit trail.
//! Writes are optimistic: `put` succeeds only if the stored `revision` is the one the record
//! was built from, and never lets an older `version_key` replace a newer one (both are checked
//! in the write's condition). A lost race is `StoreError::Conflict`: re-read and try again
//! (`domain::alert_record::update_alert_record` does that).

use super::store_error::{StoreError, UndecodableItem};
use crate::records::alert::AlertRecord;

#[async_trait::async_trait]
pub trait AlertStore: Send + Sync {
    /// A strongly consistent read (DynamoDB `ConsistentRead`): the action claim
    /// (`domain::decision`) is decided on what this returns.
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError>;

    /// `record.revision == 1`: the alert must not exist yet; otherwise the stored revision must
    /// be `record.revision - 1` and the stored `version_key` at most `record.version_key`.
    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError>;

    /// Ethoca alerts still waiting for an action whose deadline is at or before
    /// `deadline_at_or_before` (ISO 8601), soonest first: a query of `deadline-index`. Waiting
    /// alerts that have no deadline come first (they sort before every deadline).
    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError>;

    /// [`AlertStore::awaiting_action_until`], decoding item by item: an item that does not
    /// decode is returned apart instead of failing the read (the deadline sweep uses this, so
    /// one bad item cannot stop every organisation's deadlines).
    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        Ok((
            self.awaiting_action_until(deadline_at_or_before, limit)
                .await?,
            Vec::new(),
        ))
    }

    /// An organisation's alerts, newest received first (`organisation-index`).
    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError>;
}
