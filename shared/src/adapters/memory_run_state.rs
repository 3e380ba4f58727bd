//! In-memory run leases and rate budgets, with the same conditions as the DynamoDB ones.

use crate::ports::order_outbox::iso;
use crate::ports::run_state::{BucketState, LeaseHolder, LeaseTaken, RateBudgets, RunLeases};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryRunState {
    leases: Mutex<HashMap<String, LeaseHolder>>,
    buckets: Mutex<HashMap<String, BucketState>>,
    /// Every bucket write, in order (pool, tokens).
    pub saves: Mutex<Vec<(String, f64)>>,
}

#[async_trait::async_trait]
impl RunLeases for MemoryRunState {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LeaseTaken, StoreError> {
        let mut leases = self.leases.lock().unwrap();
        if let Some(held) = leases.get(name) {
            if held.owner != owner && held.until.as_str() >= iso(now).as_str() {
                return Ok(LeaseTaken::HeldBy(held.clone()));
            }
        }
        leases.insert(
            name.to_string(),
            LeaseHolder {
                owner: owner.to_string(),
                until: iso(until),
            },
        );
        Ok(LeaseTaken::Acquired)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap();
        if leases.get(name).is_some_and(|h| h.owner == owner) {
            leases.remove(name);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RateBudgets for MemoryRunState {
    async fn load(&self, pool: &str) -> Result<Option<BucketState>, StoreError> {
        Ok(self.buckets.lock().unwrap().get(pool).copied())
    }

    async fn save(&self, pool: &str, state: &BucketState) -> Result<(), StoreError> {
        self.buckets
            .lock()
            .unwrap()
            .insert(pool.to_string(), *state);
        self.saves
            .lock()
            .unwrap()
            .push((pool.to_string(), state.tokens));
        Ok(())
    }
}
