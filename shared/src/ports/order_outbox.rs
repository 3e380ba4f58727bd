//! The order outbox (`<prefix>-orders`, README "State in DynamoDB"): validated orders wait here
//! until the upload has created them at ChargebackStop, so a crash between our write and their
//! answer loses nothing and a retry duplicates nothing (`reference_id` is the idempotency key).
//!
//! States: PENDING → LEASED (with `lease_until`, `lease_owner`) → CREATED (`order_id`) |
//! FAILED (error code and field) | DUPLICATE (reconciled `order_id`) | RECONCILE (ChargebackStop
//! answered DUPLICATE_ORDER without the id: the next step is a lookup by reference, never another
//! POST). An expired lease is taken again. A FAILED order can be corrected and requeued by an
//! operator (back to PENDING, same `reference_id`, attempts from zero). PATCH updates wait in
//! `pending_updates` and bring an uploaded order back into the sparse `pending-index` until they
//! are sent.
//!
//! The pending-index is sorted by `queued_at`, which is when the order is next due: an order
//! that failed transiently is moved to its next-attempt time, so it never blocks the head of the
//! index; `enqueued_at` keeps when it was first taken in.

use crate::models::order::{Order, PatchOrder};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UploadState {
    Pending,
    Leased,
    Created,
    Failed,
    Duplicate,
    /// ChargebackStop already has it (DUPLICATE_ORDER without the id): look it up by reference.
    Reconcile,
}

impl UploadState {
    pub fn as_str(&self) -> &'static str {
        match self {
            UploadState::Pending => "PENDING",
            UploadState::Leased => "LEASED",
            UploadState::Created => "CREATED",
            UploadState::Failed => "FAILED",
            UploadState::Duplicate => "DUPLICATE",
            UploadState::Reconcile => "RECONCILE",
        }
    }

    /// Created at ChargebackStop (by us or, reconciled, by an earlier attempt).
    pub fn is_uploaded(&self) -> bool {
        matches!(self, UploadState::Created | UploadState::Duplicate)
    }
}

/// One order of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxOrder {
    pub organisation_id: String,
    pub reference_id: String,
    pub state: UploadState,
    /// The validated order exactly as it will be sent.
    pub order: Order,
    /// ISO 8601 UTC; the sort key of the pending-index: when the order is next due (its intake,
    /// or the next-attempt time after a transient failure).
    pub queued_at: String,
    /// ISO 8601 UTC; when the order was taken in (or requeued by an operator).
    pub enqueued_at: String,
    pub lease_until: Option<String>,
    pub lease_owner: Option<String>,
    /// How many times a run has taken it for upload.
    pub attempts: u32,
    pub order_id: Option<String>,
    pub error_code: Option<String>,
    pub error_field: Option<String>,
    pub error_message: Option<String>,
    /// Why the last attempt did not finish (429, 5xx...), for operators.
    pub last_error: Option<String>,
    /// PATCH bodies waiting to be sent, by update id (JSON of `PatchOrder`).
    pub pending_updates: BTreeMap<String, PatchOrder>,
    pub updated_at: String,
}

/// What a run may do with an order it found in the pending-index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Create,
    /// Find the `order_id` ChargebackStop already has (`GET /v1/orders/?reference_id=`).
    Lookup,
    Patch,
}

impl Work {
    /// The work an order returned by `OrderOutbox::lease` was leased for.
    pub fn for_leased(order: &OutboxOrder) -> Work {
        if order.state.is_uploaded() {
            Work::Patch
        } else if order.state == UploadState::Reconcile {
            Work::Lookup
        } else {
            Work::Create
        }
    }
}

impl OutboxOrder {
    fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        match &self.lease_until {
            None => true,
            Some(until) => until.as_str() < iso(now).as_str(),
        }
    }

    /// Not due before its next-attempt time (`queued_at`).
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.queued_at.as_str() <= iso(now).as_str()
    }

    /// Whether a run may lease this order now, and for what.
    pub fn work_at(&self, now: DateTime<Utc>) -> Option<Work> {
        match self.state {
            UploadState::Pending if self.is_due(now) => Some(Work::Create),
            UploadState::Leased if self.lease_expired(now) => Some(Work::Create),
            UploadState::Reconcile if self.lease_expired(now) && self.is_due(now) => {
                Some(Work::Lookup)
            }
            UploadState::Created | UploadState::Duplicate
                if !self.pending_updates.is_empty()
                    && self.order_id.is_some()
                    && self.lease_expired(now) =>
            {
                Some(Work::Patch)
            }
            _ => None,
        }
    }
}

/// What happened to one order of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    Created {
        order_id: String,
    },
    /// DUPLICATE_ORDER, reconciled with `GET /v1/orders/?reference_id=`.
    Duplicate {
        order_id: String,
    },
    /// The API refused this order (its code and field).
    Failed {
        code: String,
        field: Option<String>,
        message: Option<String>,
    },
    /// Not finished (429, 5xx...): back to PENDING, due again at `retry_at` (its place in the
    /// pending-index moves there, behind the orders that are due now).
    Retry {
        reason: String,
        retry_at: DateTime<Utc>,
    },
    /// Leased but never sent (the run ended, the organisation is blocked): back to PENDING in
    /// its place; the attempt does not count.
    Unsent {
        reason: String,
    },
    /// DUPLICATE_ORDER without the existing id: RECONCILE, so no run POSTs it again. With
    /// `keep_lease` this run goes on to look it up; without, the next run does.
    Lookup {
        reason: String,
        keep_lease: bool,
    },
}

impl UploadOutcome {
    /// A final outcome: the order leaves the create path for good.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            UploadOutcome::Created { .. }
                | UploadOutcome::Duplicate { .. }
                | UploadOutcome::Failed { .. }
        )
    }
}

/// The answer to an operator's requeue of a FAILED order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    /// Back to PENDING (attempts from zero, errors cleared, due now).
    Requeued,
    UnknownOrder,
    /// Only a FAILED order can be requeued; this one is in another state.
    NotFailed(UploadState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Stored,
    /// Already in the outbox (any state): left untouched, so a re-import resumes.
    AlreadyQueued,
}

#[derive(Debug, Clone, Default)]
pub struct PendingPage {
    pub orders: Vec<OutboxOrder>,
    /// Opaque cursor for the next page of the same organisation; `None` at the end.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateQueued {
    Queued,
    /// No such order in the outbox: an update needs the order first.
    UnknownOrder,
    /// The order failed; it will never have an `order_id` to PATCH.
    OrderFailed,
}

#[async_trait::async_trait]
pub trait OrderOutbox: Send + Sync {
    /// Stores new orders as PENDING (each `reference_id` once per organisation; an existing
    /// one is never overwritten). Orders must be validated and carry their organisation and
    /// reference. Results are in input order.
    async fn enqueue(
        &self,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Which of these references an organisation already has in the outbox (import resume).
    async fn existing(
        &self,
        organisation_id: &str,
        reference_ids: &[String],
    ) -> Result<HashSet<String>, StoreError>;

    /// Queues a PATCH for an order (sent once the order has its `order_id`).
    async fn queue_update(
        &self,
        organisation_id: &str,
        reference_id: &str,
        update_id: &str,
        patch: &PatchOrder,
        now: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError>;

    /// Every organisation that has ever queued an order.
    async fn organisations(&self) -> Result<Vec<String>, StoreError>;

    /// One page of an organisation's pending-index, oldest first.
    async fn pending(
        &self,
        organisation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PendingPage, StoreError>;

    /// Takes leases (conditional: only orders still free or with an expired lease); returns the
    /// orders this run now holds as stored after the lease (LEASED for a create, attempts + 1;
    /// RECONCILE with this run's lease for a lookup; CREATED or DUPLICATE with this run's lease
    /// for a patch).
    async fn lease(
        &self,
        orders: &[OutboxOrder],
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError>;

    /// Records create or lookup outcomes for orders this run leased (LEASED or RECONCILE). An
    /// order whose lease was taken over is left alone (the other run finishes it); returns how
    /// many were recorded.
    async fn record(
        &self,
        organisation_id: &str,
        owner: &str,
        outcomes: &[(String, UploadOutcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// After a PATCH: removes the updates that were sent (or refused, with `error`) and the lease.
    async fn record_patch(
        &self,
        organisation_id: &str,
        reference_id: &str,
        owner: &str,
        update_ids: &[String],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn get(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<OutboxOrder>, StoreError>;

    /// Puts a FAILED order back to PENDING under the same `reference_id` (conditional on FAILED),
    /// with `order` (validated, same organisation and reference) replacing the stored one when
    /// given; attempts start again from zero and the error is cleared.
    async fn requeue(
        &self,
        organisation_id: &str,
        reference_id: &str,
        order: Option<&Order>,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError>;
}

/// ISO 8601 UTC with milliseconds, so stored timestamps sort as strings.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
