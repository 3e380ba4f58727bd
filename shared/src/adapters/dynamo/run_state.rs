//! The `run-state` table (pk `name`): what scheduled runs keep between invocations.
//! - `lease#<function>`: `owner`, `lease_until` (ISO 8601 UTC): one run at a time.
//! - `rate#<pool>`: `tokens` (number), `at` (ISO 8601 UTC): the token bucket of one rate-limit
//!   pool as last spent, so the next run continues it instead of starting with a full burst.

use super::table::{is_condition_failed, Table};
use crate::ports::order_outbox::iso;
use crate::ports::run_state::{BucketState, LeaseHolder, LeaseTaken, RateBudgets, RunLeases};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[derive(Debug, Clone)]
pub struct DynamoRunState {
    table: Table,
}

impl DynamoRunState {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    async fn holder(&self, key: &str) -> Result<Option<LeaseHolder>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("name", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error("read run lease", e))?;
        let text = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        Ok(out.item.map(|item| LeaseHolder {
            owner: text(&item, "owner"),
            until: text(&item, "lease_until"),
        }))
    }
}

#[async_trait::async_trait]
impl RunLeases for DynamoRunState {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<LeaseTaken, StoreError> {
        let key = format!("lease#{name}");
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("name", s(&key))
            .item("owner", s(owner))
            .item("lease_until", s(iso(until)))
            .item("acquired_at", s(iso(now)))
            .condition_expression(
                "attribute_not_exists(#name) OR lease_until < :now OR #owner = :owner",
            )
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(LeaseTaken::Acquired),
            Err(e) if is_condition_failed(&e) => match self.holder(&key).await? {
                Some(holder) => Ok(LeaseTaken::HeldBy(holder)),
                // Released between our write and our read: try once more.
                None => Box::pin(self.acquire(name, owner, now, until)).await,
            },
            Err(e) => Err(self.table.error("take run lease", e)),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.table.counters.write();
        match self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("name", s(format!("lease#{name}")))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(self.table.error("release run lease", e)),
        }
    }
}

#[async_trait::async_trait]
impl RateBudgets for DynamoRunState {
    async fn load(&self, pool: &str) -> Result<Option<BucketState>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("name", s(format!("rate#{pool}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error("read rate budget", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let tokens = item
            .get("tokens")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<f64>().ok());
        let at = item
            .get("at")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        match (tokens, at) {
            (Some(tokens), Some(at)) => Ok(Some(BucketState { tokens, at })),
            _ => Err(self.table.bad_item(
                "read rate budget",
                format!("rate#{pool} lacks tokens or at"),
            )),
        }
    }

    async fn save(&self, pool: &str, state: &BucketState) -> Result<(), StoreError> {
        self.table.counters.write();
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("name", s(format!("rate#{pool}")))
            .item("tokens", AttributeValue::N(format!("{:.6}", state.tokens)))
            .item("at", s(iso(state.at)))
            .send()
            .await
            .map_err(|e| self.table.error("save rate budget", e))?;
        Ok(())
    }
}
