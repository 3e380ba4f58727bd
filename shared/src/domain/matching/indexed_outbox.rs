//! The order outbox with the transaction index written alongside: every order that enters the
//! outbox (intake, import, requeue with a correction) and every update queued for one writes its
//! index entries, so an alert is matched against everything the partner has sent us.
//!
//! Order of writes: the outbox first, then the index. A crash between the two leaves an order
//! the index does not know yet; the intake is safe to repeat (`AlreadyQueued` orders are indexed
//! again, index writes are idempotent), and `cbs orders reindex` is not needed for that reason.

use super::keys::{order_entries, update_entries};
use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{
    Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
};
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;

pub struct IndexedOutbox {
    outbox: Arc<dyn OrderOutbox>,
    index: Arc<dyn TransactionIndex>,
}

impl IndexedOutbox {
    pub fn new(outbox: Arc<dyn OrderOutbox>, index: Arc<dyn TransactionIndex>) -> Self {
        Self { outbox, index }
    }
}

#[async_trait::async_trait]
impl OrderOutbox for IndexedOutbox {
    async fn enqueue(
        &self,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let results = self.outbox.enqueue(orders, now).await?;
        // Already queued ones too: a repeated import finishes an index write a crash cut short.
        let items: Vec<_> = orders.iter().flat_map(|o| order_entries(o, now)).collect();
        self.index.put(&items).await?;
        Ok(results)
    }

    async fn existing(
        &self,
        organisation_id: &str,
        reference_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        self.outbox.existing(organisation_id, reference_ids).await
    }

    async fn queue_update(
        &self,
        organisation_id: &str,
        reference_id: &str,
        update_id: &str,
        patch: &PatchOrder,
        now: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError> {
        let queued = self
            .outbox
            .queue_update(organisation_id, reference_id, update_id, patch, now)
            .await?;
        if queued == UpdateQueued::Queued {
            let items = update_entries(organisation_id, reference_id, update_id, patch, now);
            self.index.put(&items).await?;
        }
        Ok(queued)
    }

    async fn organisations(&self) -> Result<Vec<String>, StoreError> {
        self.outbox.organisations().await
    }

    async fn pending(
        &self,
        organisation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        self.outbox.pending(organisation_id, after, limit).await
    }

    async fn lease(
        &self,
        orders: &[OutboxOrder],
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        self.outbox.lease(orders, owner, now, until).await
    }

    async fn record(
        &self,
        organisation_id: &str,
        owner: &str,
        outcomes: &[(String, UploadOutcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.outbox
            .record(organisation_id, owner, outcomes, now)
            .await
    }

    async fn record_patch(
        &self,
        organisation_id: &str,
        reference_id: &str,
        owner: &str,
        update_ids: &[String],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.outbox
            .record_patch(organisation_id, reference_id, owner, update_ids, error, now)
            .await
    }

    async fn get(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<OutboxOrder>, StoreError> {
        self.outbox.get(organisation_id, reference_id).await
    }

    async fn requeue(
        &self,
        organisation_id: &str,
        reference_id: &str,
        order: Option<&Order>,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let answer = self
            .outbox
            .requeue(organisation_id, reference_id, order, now)
            .await?;
        if let (Requeued::Requeued, Some(order)) = (&answer, order) {
            self.index.put(&order_entries(order, now)).await?;
        }
        Ok(answer)
    }
}
