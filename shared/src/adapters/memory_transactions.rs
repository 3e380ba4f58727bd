//! An in-memory transaction index with the DynamoDB table's semantics (partition + sorted
//! entries, a range per query, a limit), counting its queries, for unit tests and the matching
//! benchmark's figures. It can fail like the real store: `fail_next_calls(n)` makes the next
//! `n` calls fail transiently, and `fail_after_write` makes a write land and still answer an error.

use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::IndexItem;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryTransactionIndex {
    items: Mutex<BTreeMap<(String, String), IndexItem>>,
    queries: AtomicU64,
    writes: AtomicU64,
    fail_next: AtomicU32,
    fail_after_write: AtomicBool,
}

impl MemoryTransactionIndex {
    /// Queries answered so far (each one DynamoDB Query).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Applies writes held for an event's commit (`memory_commit`).
    pub(crate) fn apply(&self, writes: &[crate::ports::transaction_index::IndexWrite]) {
        use crate::ports::transaction_index::IndexWrite;
        let mut map = self.items.lock().unwrap();
        for w in writes {
            self.writes.fetch_add(1, Ordering::SeqCst);
            match w {
                IndexWrite::Put(item) => {
                    map.insert((item.lookup.clone(), item.entry.clone()), (**item).clone());
                }
                IndexWrite::Delete { lookup, entry } => {
                    map.remove(&(lookup.clone(), entry.clone()));
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Test hook: the next `n` calls fail transiently, writing nothing.
    pub fn fail_next_calls(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Test hook: the next write lands, then answers a transient error (a lost answer).
    pub fn fail_after_next_write(&self) {
        self.fail_after_write.store(true, Ordering::SeqCst);
    }

    fn injected(&self, operation: &'static str) -> Result<(), StoreError> {
        let left = self.fail_next.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.fail_next.store(left - 1, Ordering::SeqCst);
        Err(StoreError::Transient {
            operation,
            table: "memory-transactions".into(),
            detail: "injected".into(),
        })
    }
}

#[async_trait::async_trait]
impl TransactionIndex for MemoryTransactionIndex {
    async fn put(&self, items: &[IndexItem]) -> Result<(), StoreError> {
        self.injected("put index entries")?;
        {
            let mut map = self.items.lock().unwrap();
            for item in items {
                self.writes.fetch_add(1, Ordering::SeqCst);
                map.insert((item.lookup.clone(), item.entry.clone()), item.clone());
            }
        }
        if self.fail_after_write.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Transient {
                operation: "put index entries",
                table: "memory-transactions".into(),
                detail: "injected after the write landed".into(),
            });
        }
        Ok(())
    }

    async fn query(
        &self,
        lookup: &str,
        between: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError> {
        self.injected("query index")?;
        self.queries.fetch_add(1, Ordering::SeqCst);
        let map = self.items.lock().unwrap();
        let (from, to) = match between {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (String::new(), "\u{10FFFF}".to_string()),
        };
        Ok(map
            .range((lookup.to_string(), from)..=(lookup.to_string(), to))
            .map(|(_, item)| item.clone())
            .take(limit)
            .collect())
    }

    async fn delete(&self, lookup: &str, entry: &str) -> Result<(), StoreError> {
        self.injected("delete index entry")?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.items
            .lock()
            .unwrap()
            .remove(&(lookup.to_string(), entry.to_string()));
        Ok(())
    }
}
