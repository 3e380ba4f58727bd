//! The order outbox with the transaction index written alongside: every order that enters the
//! outbox (intake, import, requeue with a correction) and every update queued for one writes its
//! index entries, so an alert is matched against everything the partner has sent us.
//!
//! Order of writes: the outbox first, then the index. A crash between the two leaves an order
//! the index does not know yet; the intake is safe to repeat (`AlreadyQueued` orders are indexed
//! again, index writes are idempotent), and `cbs orders reindex` is not needed for that reason.

use super::keys::{order_entries, order_key, update_entries};
use super::late::alerts_answered_by;
use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{
    Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
};
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::LateMatchHandler;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::{IndexBody, IndexItem};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::Arc;

pub struct IndexedOutbox {
    outbox: Arc<dyn OrderOutbox>,
    index: Arc<dyn TransactionIndex>,
    /// Told of waiting alerts the new data may decide (late data); none: not checked.
    late: Option<Arc<dyn LateMatchHandler>>,
}

impl IndexedOutbox {
    pub fn new(outbox: Arc<dyn OrderOutbox>, index: Arc<dyn TransactionIndex>) -> Self {
        Self {
            outbox,
            index,
            late: None,
        }
    }

    /// Re-evaluate waiting alerts that orders taken in here may match (`late`).
    pub fn with_late_matches(mut self, handler: Arc<dyn LateMatchHandler>) -> Self {
        self.late = Some(handler);
        self
    }

    /// Tells the handler about the waiting alerts of `org` the new entries answer, plus
    /// `also` (alerts matched to an updated order).
    async fn late_data(
        &self,
        org: &str,
        items: &[IndexItem],
        also: Vec<String>,
    ) -> Result<(), StoreError> {
        let Some(handler) = &self.late else {
            return Ok(());
        };
        let mut alerts = also;
        if items
            .iter()
            .any(|i| matches!(i.body, IndexBody::Transaction { .. }))
        {
            alerts.extend(alerts_answered_by(&*self.index, org, items).await?);
        }
        alerts.sort();
        alerts.dedup();
        if !alerts.is_empty() {
            handler.rematch(org, &alerts).await;
        }
        Ok(())
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
        let mut by_org: BTreeMap<&str, Vec<IndexItem>> = BTreeMap::new();
        for (order, result) in orders.iter().zip(&results) {
            // Only orders new to the outbox can be late data (a repeat import changes nothing).
            if *result == Enqueued::Stored {
                if let Some(org) = order.organisation_id.as_deref() {
                    by_org
                        .entry(org)
                        .or_default()
                        .extend(order_entries(order, now));
                }
            }
        }
        for (org, items) in by_org {
            self.late_data(org, &items, Vec::new()).await?;
        }
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
            if self.late.is_some() {
                // Alerts already matched to this order: a refund or dispute may decide them.
                let matched: Vec<String> = self
                    .index
                    .query(&order_key(organisation_id, reference_id), None, 200)
                    .await?
                    .into_iter()
                    .filter_map(|item| match item.body {
                        IndexBody::CustomerAlert { alert } => Some(alert.alert_id),
                        _ => None,
                    })
                    .collect();
                self.late_data(organisation_id, &items, matched).await?;
            }
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
