//! The `orders` table: the order outbox (see `ports::order_outbox` and README "State in
//! DynamoDB"). pk `organisation_id`, sk `reference_id`; the sparse `pending-index`
//! (`pending_organisation_id`, `queued_at`) holds exactly the orders a run still has to send.
//!
//! Every state change is a conditional UpdateItem, so two runs never both own an order and a
//! run whose lease expired cannot overwrite what the next run recorded. One extra item per
//! organisation (pk `#organisations`, sk the organisation id) lists the organisations that
//! ever queued orders, so a run finds them with one Query instead of a Scan.

use super::table::{is_condition_failed, Table};
use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{
    iso, Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
    UploadState,
};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

#[path = "orders_item.rs"]
mod item;
#[path = "orders_leases.rs"]
mod leases;
use item::OrderItem;

const PENDING_INDEX: &str = "pending-index";
/// Partition of the organisation directory items.
const ORGANISATIONS_PK: &str = "#organisations";
/// Concurrent single-item writes per call (leases, outcomes).
const WRITE_CONCURRENCY: usize = 16;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[derive(Debug, Clone)]
pub struct DynamoOrderOutbox {
    table: Table,
}

impl DynamoOrderOutbox {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn key(org: &str, reference: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("organisation_id".to_string(), s(org)),
            ("reference_id".to_string(), s(reference)),
        ])
    }

    pub(crate) fn parse(
        &self,
        operation: &'static str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<OutboxOrder, StoreError> {
        let raw: OrderItem =
            serde_dynamo::from_item(item).map_err(|e| self.table.bad_item(operation, e))?;
        raw.into_order()
            .map_err(|e| self.table.bad_item(operation, e))
    }

    fn conflict(&self, operation: &'static str, org: &str, reference: &str) -> StoreError {
        StoreError::Conflict {
            operation,
            table: self.table.name.clone(),
            key: format!("{org}/{reference}"),
        }
    }

    async fn put_new(&self, order: &Order, now: DateTime<Utc>) -> Result<Enqueued, StoreError> {
        let org = order.organisation_id.clone().unwrap_or_default();
        let item = OrderItem {
            organisation_id: org.clone(),
            reference_id: order.reference_id.clone().unwrap_or_default(),
            state: UploadState::Pending,
            order_json: serde_json::to_string(order)
                .map_err(|e| self.table.bad_item("enqueue", e))?,
            queued_at: iso(now),
            enqueued_at: Some(iso(now)),
            pending_organisation_id: Some(org),
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
        let item = serde_dynamo::to_item(&item).map_err(|e| self.table.bad_item("enqueue", e))?;
        self.table.counters.write();
        match self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(reference_id)")
            .send()
            .await
        {
            Ok(_) => Ok(Enqueued::Stored),
            Err(e) if is_condition_failed(&e) => Ok(Enqueued::AlreadyQueued),
            Err(e) => Err(self.table.error("enqueue", e)),
        }
    }

    async fn register_organisation(&self, org: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.table.counters.write();
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("organisation_id", s(ORGANISATIONS_PK))
            .item("reference_id", s(org))
            .item("registered_at", s(iso(now)))
            .send()
            .await
            .map_err(|e| self.table.error("register_organisation", e))?;
        Ok(())
    }
}

/// Runs `f` over `items` with at most `WRITE_CONCURRENCY` in flight, keeping input order; the
/// first error stops it (writes are conditional: what ran is safe to run again).
async fn concurrently<'a, T: Sync, R: Send, F, Fut>(
    items: &'a [T],
    f: F,
) -> Result<Vec<R>, StoreError>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<R, StoreError>> + Send + 'a,
{
    use futures::{StreamExt, TryStreamExt};
    // The futures are made first (lazy: none runs until polled), so the stream's type names no
    // closure (a closure there is not general enough for `async_trait`'s Send bound).
    let futures: Vec<Fut> = items.iter().map(f).collect();
    futures::stream::iter(futures)
        .buffered(WRITE_CONCURRENCY)
        .try_collect()
        .await
}

#[async_trait::async_trait]
impl OrderOutbox for DynamoOrderOutbox {
    async fn enqueue(
        &self,
        orders: &[Order],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let orgs: HashSet<&str> = orders
            .iter()
            .filter_map(|o| o.organisation_id.as_deref())
            .collect();
        for org in orgs {
            self.register_organisation(org, now).await?;
        }
        concurrently(orders, |o| self.put_new(o, now)).await
    }

    async fn existing(
        &self,
        organisation_id: &str,
        reference_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for chunk in reference_ids.chunks(100) {
            let unique: HashSet<&String> = chunk.iter().collect();
            let mut keys = KeysAndAttributes::builder().projection_expression("reference_id");
            for reference in unique {
                keys = keys.keys(Self::key(organisation_id, reference));
            }
            let mut request = Some(HashMap::from([(
                self.table.name.clone(),
                keys.build()
                    .map_err(|e| self.table.bad_item("existing", e))?,
            )]));
            // BatchGetItem may return some keys unprocessed under load: ask again for those.
            while let Some(items) = request.take().filter(|m| !m.is_empty()) {
                self.table.counters.read();
                let out = self
                    .table
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| self.table.error("existing", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table.name)
                    .unwrap_or_default()
                {
                    if let Some(AttributeValue::S(r)) = item.get("reference_id") {
                        found.insert(r.clone());
                    }
                }
                request = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    async fn queue_update(
        &self,
        organisation_id: &str,
        reference_id: &str,
        update_id: &str,
        patch: &PatchOrder,
        now: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError> {
        let body =
            serde_json::to_string(patch).map_err(|e| self.table.bad_item("queue_update", e))?;
        self.table.counters.write();
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(organisation_id, reference_id)))
            .update_expression(
                "SET pending_updates.#update_id = :body, pending_organisation_id = :org, updated_at = :now",
            )
            .condition_expression("attribute_exists(reference_id) AND #state <> :failed")
            .expression_attribute_names("#update_id", update_id)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":body", s(body))
            .expression_attribute_values(":org", s(organisation_id))
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":failed", s("FAILED"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(UpdateQueued::Queued),
            Err(e) if is_condition_failed(&e) => {
                Ok(match self.get(organisation_id, reference_id).await? {
                    None => UpdateQueued::UnknownOrder,
                    Some(_) => UpdateQueued::OrderFailed,
                })
            }
            Err(e) => Err(self.table.error("queue_update", e)),
        }
    }

    async fn organisations(&self) -> Result<Vec<String>, StoreError> {
        let items = self
            .table
            .query_all("organisations", |q| {
                q.key_condition_expression("organisation_id = :pk")
                    .expression_attribute_values(":pk", s(ORGANISATIONS_PK))
            })
            .await?;
        Ok(items
            .into_iter()
            .filter_map(|item| match item.get("reference_id") {
                Some(AttributeValue::S(org)) => Some(org.clone()),
                _ => None,
            })
            .collect())
    }

    async fn pending(
        &self,
        organisation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PendingPage, StoreError> {
        // The cursor is DynamoDB's LastEvaluatedKey of the index, as JSON.
        let start = match after {
            None => None,
            Some(cursor) => {
                let map: HashMap<String, String> =
                    serde_json::from_str(cursor).map_err(|e| self.table.bad_item("pending", e))?;
                Some(map.into_iter().map(|(k, v)| (k, s(v))).collect())
            }
        };
        self.table.counters.read();
        let out = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending_organisation_id = :org")
            .expression_attribute_values(":org", s(organisation_id))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.table.error("pending", e))?;
        let orders = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| self.parse("pending", item))
            .collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key {
            None => None,
            Some(key) => {
                let map: HashMap<String, String> = key
                    .into_iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k, v.clone())))
                    .collect();
                Some(serde_json::to_string(&map).map_err(|e| self.table.bad_item("pending", e))?)
            }
        };
        Ok(PendingPage { orders, next })
    }

    async fn lease(
        &self,
        orders: &[OutboxOrder],
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        let leased = concurrently(orders, |o| self.lease_one(o, owner, now, until)).await?;
        Ok(leased.into_iter().flatten().collect())
    }

    async fn record(
        &self,
        organisation_id: &str,
        owner: &str,
        outcomes: &[(String, UploadOutcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let recorded = concurrently(outcomes, |(reference, outcome)| {
            self.record_one(organisation_id, reference, owner, outcome, now)
        })
        .await?;
        Ok(recorded.into_iter().filter(|r| *r).count())
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
        let mut expression = String::from("SET updated_at = :now");
        let mut request = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(organisation_id, reference_id)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", s(iso(now)));
        if let Some(e) = error {
            expression.push_str(", last_error = :error");
            request = request.expression_attribute_values(":error", s(e));
        }
        expression.push_str(" REMOVE lease_until, lease_owner");
        for (i, id) in update_ids.iter().enumerate() {
            expression.push_str(&format!(", pending_updates.#u{i}"));
            request = request.expression_attribute_names(format!("#u{i}"), id);
        }
        self.table.counters.write();
        match request.update_expression(expression).send().await {
            Ok(_) => {}
            Err(e) if is_condition_failed(&e) => {
                return Err(self.conflict("record_patch", organisation_id, reference_id))
            }
            Err(e) => return Err(self.table.error("record_patch", e)),
        }
        // Leave the pending-index once nothing waits any more (an update queued meanwhile
        // keeps it there).
        self.table.counters.write();
        match self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(organisation_id, reference_id)))
            .update_expression("REMOVE pending_organisation_id")
            .condition_expression(
                "size(pending_updates) = :zero AND attribute_not_exists(lease_owner)",
            )
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(self.table.error("record_patch", e)),
        }
    }

    async fn get(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<OutboxOrder>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(organisation_id, reference_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error("get", e))?;
        out.item.map(|item| self.parse("get", item)).transpose()
    }

    async fn requeue(
        &self,
        organisation_id: &str,
        reference_id: &str,
        order: Option<&Order>,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let mut expression = String::from(
            "SET #state = :pending, attempts = :zero, queued_at = :now, enqueued_at = :now, \
             pending_organisation_id = :org, last_error = :why, updated_at = :now",
        );
        let mut request = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::key(organisation_id, reference_id)))
            .condition_expression("#state = :failed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", s("FAILED"))
            .expression_attribute_values(":pending", s("PENDING"))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":now", s(iso(now)))
            .expression_attribute_values(":org", s(organisation_id))
            .expression_attribute_values(":why", s("requeued by an operator"));
        if let Some(order) = order {
            expression.push_str(", order_json = :order");
            request = request.expression_attribute_values(
                ":order",
                s(serde_json::to_string(order).map_err(|e| self.table.bad_item("requeue", e))?),
            );
        }
        expression
            .push_str(" REMOVE error_code, error_field, error_message, lease_until, lease_owner");
        self.table.counters.write();
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(Requeued::Requeued),
            Err(e) if is_condition_failed(&e) => {
                Ok(match self.get(organisation_id, reference_id).await? {
                    None => Requeued::UnknownOrder,
                    Some(o) => Requeued::NotFailed(o.state),
                })
            }
            Err(e) => Err(self.table.error("requeue", e)),
        }
    }
}
