//! The `transactions` table: the partner's transactions indexed for matching alerts (see
//! `ports::transaction_index`). pk `lookup`, sk `entry`; items mapped with serde_dynamo.
//! Writes go in BatchWriteItem requests of 25, a few in flight at once (unprocessed items are
//! sent again, a bounded number of times, then a transient error); each lookup is one Query.

use super::table::Table;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::IndexItem;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use std::collections::HashMap;

/// BatchWriteItem's maximum.
const BATCH: usize = 25;
/// Rounds of resending unprocessed items before giving up (transient: the caller retries).
const UNPROCESSED_ROUNDS: u32 = 5;

/// BatchWriteItem calls in flight at once.
const BATCH_CONCURRENCY: usize = 4;

/// Sends `requests` in BatchWriteItem calls of 25 (a few at once), sending unprocessed items
/// again with backoff a bounded number of rounds; items still unprocessed then are an error
/// (never dropped). Every call is waited for before an error is returned.
pub(crate) async fn batch_write(
    table: &Table,
    requests: Vec<WriteRequest>,
    operation: &'static str,
) -> Result<(), StoreError> {
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(BATCH).map(|c| c.to_vec()).collect();
    let mut first_error = None;
    for wave in chunks.chunks(BATCH_CONCURRENCY) {
        let mut calls = tokio::task::JoinSet::new();
        for chunk in wave {
            calls.spawn(write_one_batch(table.clone(), chunk.clone(), operation));
        }
        while let Some(done) = calls.join_next().await {
            let outcome = done.unwrap_or_else(|e| {
                Err(StoreError::Transient {
                    operation,
                    table: table.name.clone(),
                    detail: format!("batch write task ended: {e}"),
                })
            });
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(())
}

/// One BatchWriteItem of up to 25 requests, unprocessed items sent again.
async fn write_one_batch(
    table: Table,
    chunk: Vec<WriteRequest>,
    operation: &'static str,
) -> Result<(), StoreError> {
    let mut pending = chunk;
    let mut round = 0;
    while !pending.is_empty() {
        if round == UNPROCESSED_ROUNDS {
            return Err(StoreError::Transient {
                operation,
                table: table.name.clone(),
                detail: format!("{} items still unprocessed", pending.len()),
            });
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
        }
        round += 1;
        table.counters.write();
        let out = table
            .client
            .batch_write_item()
            .request_items(&table.name, pending)
            .send()
            .await
            .map_err(|e| table.error(operation, e))?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(&table.name))
            .unwrap_or_default();
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct DynamoTransactionIndex {
    table: Table,
}

impl DynamoTransactionIndex {
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait::async_trait]
impl TransactionIndex for DynamoTransactionIndex {
    async fn put(&self, items: &[IndexItem]) -> Result<(), StoreError> {
        // The same key twice in one batch is refused by DynamoDB: keep the last.
        let mut unique: HashMap<(String, String), &IndexItem> = HashMap::new();
        for item in items {
            unique.insert((item.lookup.clone(), item.entry.clone()), item);
        }
        let mut requests = Vec::with_capacity(unique.len());
        for item in unique.into_values() {
            let attrs: HashMap<String, AttributeValue> = serde_dynamo::to_item(item)
                .map_err(|e| self.table.bad_item("put index entries", e))?;
            let put = PutRequest::builder()
                .set_item(Some(attrs))
                .build()
                .map_err(|e| self.table.bad_item("put index entries", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        batch_write(&self.table, requests, "put index entries").await
    }

    async fn query(
        &self,
        lookup: &str,
        between: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError> {
        let mut request = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .expression_attribute_names("#pk", "lookup")
            .expression_attribute_values(":pk", AttributeValue::S(lookup.to_string()))
            .limit(limit.clamp(1, 1000) as i32);
        request = match between {
            Some((from, to)) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", "entry")
                .expression_attribute_values(":from", AttributeValue::S(from.to_string()))
                .expression_attribute_values(":to", AttributeValue::S(to.to_string())),
            None => request.key_condition_expression("#pk = :pk"),
        };
        self.table.counters.read();
        let out = request
            .send()
            .await
            .map_err(|e| self.table.error("query index", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| self.table.bad_item("query index", e))
            })
            .collect()
    }

    async fn delete(&self, lookup: &str, entry: &str) -> Result<(), StoreError> {
        self.table.counters.write();
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("lookup", AttributeValue::S(lookup.to_string()))
            .key("entry", AttributeValue::S(entry.to_string()))
            .send()
            .await
            .map_err(|e| self.table.error("delete index entry", e))?;
        Ok(())
    }
}

/// The order outbox of `tables`, writing the transaction index with every order and update it
/// takes in: what every door into the outbox (ops API, `cbs import-orders`, `cbs orders`) uses.
pub fn indexed_outbox(
    client: &aws_sdk_dynamodb::Client,
    tables: &crate::config::TableNames,
    counters: std::sync::Arc<super::table::DynamoCounters>,
) -> crate::domain::matching::IndexedOutbox {
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    crate::domain::matching::IndexedOutbox::new(
        std::sync::Arc::new(super::orders::DynamoOrderOutbox::new(table(
            tables.orders(),
        ))),
        std::sync::Arc::new(DynamoTransactionIndex::new(table(tables.transactions()))),
    )
}
