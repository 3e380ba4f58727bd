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

/// One write of the index, for a caller that makes it part of its own write
/// (`ports::event_commit`).
#[derive(Debug, Clone, PartialEq)]
pub enum IndexWrite {
    Put(Box<IndexItem>),
    Delete { lookup: String, entry: String },
}

impl IndexWrite {
    pub fn key(&self) -> (&str, &str) {
        match self {
            IndexWrite::Put(item) => (&item.lookup, &item.entry),
            IndexWrite::Delete { lookup, entry } => (lookup, entry),
        }
    }
}

/// The index writes the matching makes while one event is processed, held for the event's
/// next commit instead of being written on their own (each entry is idempotent, so writing it
/// with the event changes nothing but the number of requests). Outside `hold_during` an index
/// wrapped in `HeldIndex` writes as usual.
pub mod held {
    use super::IndexWrite;
    use std::cell::RefCell;

    tokio::task_local! {
        static HELD: RefCell<Vec<IndexWrite>>;
    }

    /// Runs `f` with index writes held (`take` hands them over).
    pub async fn hold_during<F: std::future::Future>(f: F) -> F::Output {
        HELD.scope(RefCell::new(Vec::new()), f).await
    }

    /// Holds `writes`; false outside `hold_during` (the caller writes them itself).
    pub fn hold(writes: Vec<IndexWrite>) -> Result<(), Vec<IndexWrite>> {
        let mut writes = Some(writes);
        let held = HELD
            .try_with(|h| h.borrow_mut().extend(writes.take().unwrap_or_default()))
            .is_ok();
        match writes {
            Some(w) if !held => Err(w),
            _ => Ok(()),
        }
    }

    /// The writes held so far (none outside `hold_during`).
    pub fn take() -> Vec<IndexWrite> {
        HELD.try_with(|h| std::mem::take(&mut *h.borrow_mut()))
            .unwrap_or_default()
    }
}

/// An index whose writes are held while an event is processed (`held`), and made at once
/// otherwise. Reads go to `inner`.
pub struct HeldIndex {
    pub inner: std::sync::Arc<dyn TransactionIndex>,
}

#[async_trait::async_trait]
impl TransactionIndex for HeldIndex {
    async fn put(&self, items: &[IndexItem]) -> Result<(), StoreError> {
        match held::hold(
            items
                .iter()
                .map(|i| IndexWrite::Put(Box::new(i.clone())))
                .collect(),
        ) {
            Ok(()) => Ok(()),
            Err(_) => self.inner.put(items).await,
        }
    }

    async fn query(
        &self,
        lookup: &str,
        between: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError> {
        self.inner.query(lookup, between, limit).await
    }

    async fn delete(&self, lookup: &str, entry: &str) -> Result<(), StoreError> {
        let write = IndexWrite::Delete {
            lookup: lookup.to_string(),
            entry: entry.to_string(),
        };
        match held::hold(vec![write]) {
            Ok(()) => Ok(()),
            Err(_) => self.inner.delete(lookup, entry).await,
        }
    }
}
