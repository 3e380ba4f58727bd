//! An in-memory order outbox with the same conditional transitions as the DynamoDB one, for
//! unit tests of the upload, the intake and the lease rules.

use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{
    iso, Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
    UploadState,
};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryOutbox {
    /// (organisation, reference) -> order, plus whether it sits in the pending-index.
    orders: Mutex<BTreeMap<(String, String), (OutboxOrder, bool)>>,
    /// Test hook: the next N `pending` and `record` calls fail as a throttled store would.
    fail_next: std::sync::atomic::AtomicU32,
    /// Test hook: the next `lease` takes its orders, then answers an error (a lost answer).
    fail_after_lease: std::sync::atomic::AtomicBool,
}

impl MemoryOutbox {
    pub fn snapshot(&self) -> Vec<OutboxOrder> {
        self.orders
            .lock()
            .unwrap()
            .values()
            .map(|(o, _)| o.clone())
            .collect()
    }

    pub fn in_pending_index(&self, org: &str, reference: &str) -> bool {
        self.orders
            .lock()
            .unwrap()
            .get(&(org.to_string(), reference.to_string()))
            .map(|(_, p)| *p)
            .unwrap_or(false)
    }

    /// Test hook: the next `n` reads of the pending-index and outcome writes fail transiently.
    pub fn fail_next_calls(&self, n: u32) {
        self.fail_next.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Test hook: the next lease lands and still answers a transient error, as a write whose
    /// answer was lost (the SDK's own retry then meets the lease it took).
    pub fn fail_after_next_lease(&self) {
        self.fail_after_lease
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn injected_failure(&self, operation: &'static str) -> Result<(), StoreError> {
        let left = self.fail_next.load(std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.fail_next
            .store(left - 1, std::sync::atomic::Ordering::SeqCst);
        Err(StoreError::Transient {
            operation,
            table: "memory-orders".into(),
            detail: "injected".into(),
        })
    }

    /// Test hook: change an order as another run would.
    pub fn edit(&self, org: &str, reference: &str, f: impl FnOnce(&mut OutboxOrder)) {
        let mut orders = self.orders.lock().unwrap();
        if let Some((o, _)) = orders.get_mut(&(org.to_string(), reference.to_string())) {
            f(o);
        }
    }
}

#[async_trait::async_trait]
impl OrderOutbox for MemoryOutbox {
    async fn enqueue(
        &self,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut map = self.orders.lock().unwrap();
        Ok(orders
            .iter()
            .map(|order| {
                let org = order.organisation_id.clone().unwrap_or_default();
                let reference = order.reference_id.clone().unwrap_or_default();
                let key = (org.clone(), reference.clone());
                if map.contains_key(&key) {
                    return Enqueued::AlreadyQueued;
                }
                let item = OutboxOrder {
                    organisation_id: org,
                    reference_id: reference,
                    state: UploadState::Pending,
                    order: order.clone(),
                    queued_at: iso(now),
                    enqueued_at: iso(now),
                    lease_until: None,
                    lease_owner: None,
                    attempts: 0,
                    order_id: None,
                    error_code: None,
                    error_field: None,
                    error_message: None,
                    last_error: None,
                    pending_updates: BTreeMap::new(),
                    updated_at: iso(now),
                };
                map.insert(key, (item, true));
                Enqueued::Stored
            })
            .collect())
    }

    async fn existing(
        &self,
        organisation_id: &str,
        reference_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let map = self.orders.lock().unwrap();
        Ok(reference_ids
            .iter()
            .filter(|r| map.contains_key(&(organisation_id.to_string(), r.to_string())))
            .cloned()
            .collect())
    }

    async fn queue_update(
        &self,
        organisation_id: &str,
        reference_id: &str,
        update_id: &str,
        patch: &PatchOrder,
        now: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError> {
        let mut map = self.orders.lock().unwrap();
        let Some((o, pending)) =
            map.get_mut(&(organisation_id.to_string(), reference_id.to_string()))
        else {
            return Ok(UpdateQueued::UnknownOrder);
        };
        if o.state == UploadState::Failed {
            return Ok(UpdateQueued::OrderFailed);
        }
        o.pending_updates
            .insert(update_id.to_string(), patch.clone());
        o.updated_at = iso(now);
        *pending = true;
        Ok(UpdateQueued::Queued)
    }

    async fn organisations(&self) -> Result<Vec<String>, StoreError> {
        let map = self.orders.lock().unwrap();
        let mut orgs: Vec<String> = map.keys().map(|(o, _)| o.clone()).collect();
        orgs.dedup();
        Ok(orgs)
    }

    async fn pending(
        &self,
        organisation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        self.injected_failure("pending")?;
        let map = self.orders.lock().unwrap();
        let mut rows: Vec<&OutboxOrder> = map
            .values()
            .filter(|(o, p)| *p && o.organisation_id == organisation_id)
            .map(|(o, _)| o)
            .collect();
        rows.sort_by(|a, b| (&a.queued_at, &a.reference_id).cmp(&(&b.queued_at, &b.reference_id)));
        let start = match after {
            None => 0,
            Some(cursor) => rows
                .iter()
                .position(|o| format!("{}|{}", o.queued_at, o.reference_id).as_str() > cursor)
                .unwrap_or(rows.len()),
        };
        let page: Vec<OutboxOrder> = rows[start..]
            .iter()
            .take(limit)
            .map(|o| (*o).clone())
            .collect();
        let next = if start + page.len() < rows.len() {
            page.last()
                .map(|o| format!("{}|{}", o.queued_at, o.reference_id))
        } else {
            None
        };
        Ok(PendingPage { orders: page, next })
    }

    async fn lease(
        &self,
        orders: &[OutboxOrder],
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        let mut map = self.orders.lock().unwrap();
        let mut leased = Vec::new();
        for wanted in orders {
            let Some((o, _)) =
                map.get_mut(&(wanted.organisation_id.clone(), wanted.reference_id.clone()))
            else {
                continue;
            };
            // The condition DynamoDB checks, on the stored item (not the caller's copy): work to
            // do, or a live lease of this very owner (a repeat after a lost answer).
            let ours = o.lease_owner.as_deref() == Some(owner)
                && o.lease_until
                    .as_deref()
                    .is_some_and(|u| u >= iso(now).as_str());
            if o.work_at(now).is_none() && !ours {
                continue;
            }
            if o.state == UploadState::Pending || o.state == UploadState::Leased {
                o.state = UploadState::Leased;
                o.attempts += 1;
            }
            // A lookup lease (RECONCILE) and a patch lease keep the state: only the lease is taken.
            o.lease_until = Some(iso(until));
            o.lease_owner = Some(owner.to_string());
            leased.push(o.clone());
        }
        if self
            .fail_after_lease
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Transient {
                operation: "lease",
                table: "memory-orders".into(),
                detail: "injected: the lease landed, its answer was lost".into(),
            });
        }
        Ok(leased)
    }

    async fn record(
        &self,
        organisation_id: &str,
        owner: &str,
        outcomes: &[(String, UploadOutcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.injected_failure("record")?;
        let mut map = self.orders.lock().unwrap();
        let mut recorded = 0;
        for (reference, outcome) in outcomes {
            let Some((o, pending)) = map.get_mut(&(organisation_id.to_string(), reference.clone()))
            else {
                continue;
            };
            let held = matches!(o.state, UploadState::Leased | UploadState::Reconcile)
                && o.lease_owner.as_deref() == Some(owner);
            if !held {
                continue;
            }
            recorded += 1;
            o.updated_at = iso(now);
            if let UploadOutcome::Lookup {
                reason,
                keep_lease: true,
            } = outcome
            {
                o.state = UploadState::Reconcile;
                o.last_error = Some(reason.clone());
                continue;
            }
            o.lease_until = None;
            o.lease_owner = None;
            match outcome {
                UploadOutcome::Created { order_id } | UploadOutcome::Duplicate { order_id } => {
                    o.state = if matches!(outcome, UploadOutcome::Created { .. }) {
                        UploadState::Created
                    } else {
                        UploadState::Duplicate
                    };
                    o.order_id = Some(order_id.clone());
                    *pending = !o.pending_updates.is_empty();
                }
                UploadOutcome::Failed {
                    code,
                    field,
                    message,
                } => {
                    o.state = UploadState::Failed;
                    o.error_code = Some(code.clone());
                    o.error_field = field.clone();
                    o.error_message = message.clone();
                    *pending = false;
                }
                UploadOutcome::Retry { reason, retry_at } => {
                    o.state = UploadState::Pending;
                    o.last_error = Some(reason.clone());
                    o.queued_at = iso(*retry_at);
                }
                UploadOutcome::Unsent { reason } => {
                    if o.state == UploadState::Leased {
                        o.attempts = o.attempts.saturating_sub(1);
                    }
                    o.state = UploadState::Pending;
                    o.last_error = Some(reason.clone());
                }
                UploadOutcome::Lookup { reason, .. } => {
                    o.state = UploadState::Reconcile;
                    o.last_error = Some(reason.clone());
                }
            }
        }
        Ok(recorded)
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
        let mut map = self.orders.lock().unwrap();
        if let Some((o, pending)) =
            map.get_mut(&(organisation_id.to_string(), reference_id.to_string()))
        {
            if o.lease_owner.as_deref() == Some(owner) {
                for id in update_ids {
                    o.pending_updates.remove(id);
                }
                if let Some(e) = error {
                    o.last_error = Some(e.to_string());
                }
                o.lease_owner = None;
                o.lease_until = None;
                o.updated_at = iso(now);
                *pending = !o.pending_updates.is_empty();
            }
        }
        Ok(())
    }

    async fn get(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<OutboxOrder>, StoreError> {
        Ok(self
            .orders
            .lock()
            .unwrap()
            .get(&(organisation_id.to_string(), reference_id.to_string()))
            .map(|(o, _)| o.clone()))
    }

    async fn requeue(
        &self,
        organisation_id: &str,
        reference_id: &str,
        order: Option<&Order>,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let mut map = self.orders.lock().unwrap();
        let Some((o, pending)) =
            map.get_mut(&(organisation_id.to_string(), reference_id.to_string()))
        else {
            return Ok(Requeued::UnknownOrder);
        };
        if o.state != UploadState::Failed {
            return Ok(Requeued::NotFailed(o.state));
        }
        if let Some(order) = order {
            o.order = order.clone();
        }
        o.state = UploadState::Pending;
        o.attempts = 0;
        o.error_code = None;
        o.error_field = None;
        o.error_message = None;
        o.last_error = Some("requeued by an operator".into());
        o.queued_at = iso(now);
        o.enqueued_at = iso(now);
        o.updated_at = iso(now);
        *pending = true;
        Ok(Requeued::Requeued)
    }
}
