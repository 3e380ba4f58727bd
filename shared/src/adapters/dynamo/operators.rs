//! The `operators` table: operator API keys by their SHA-256 (see `ports::operator_keys`).

use super::table::{is_condition_failed, Table};
use crate::ports::operator_keys::{OperatorKeys, OperatorRecord};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoOperatorKeys {
    table: Table,
}

impl DynamoOperatorKeys {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The `<TABLE_PREFIX>-operators` table with the environment's AWS configuration
    /// (`AWS_ENDPOINT_URL` locally), for the command line.
    pub async fn from_env(tables: &crate::config::TableNames) -> Self {
        let aws = crate::adapters::aws::load_config().await;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        Self::new(Table::new(client, tables.operators(), Default::default()))
    }
}

impl DynamoOperatorKeys {
    /// Every stored key (hashes only), for `cbs operator-key list`. A Scan: the table holds a
    /// handful of operators.
    pub async fn list(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            self.table.counters.read();
            let page = self
                .table
                .client
                .scan()
                .table_name(&self.table.name)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.table.error("list operator keys", e))?;
            for item in page.items.unwrap_or_default() {
                out.push(
                    serde_dynamo::from_item(item)
                        .map_err(|e| self.table.bad_item("list operator keys", e))?,
                );
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Marks one key revoked (the ops API refuses it from the next request on). `Ok(false)`
    /// when no key has that hash.
    pub async fn revoke(&self, key_hash: &str) -> Result<bool, StoreError> {
        self.table.counters.write();
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("key_hash", AttributeValue::S(key_hash.to_owned()))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(key_hash)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.table.error("revoke operator key", e)),
        }
    }
}

#[async_trait::async_trait]
impl OperatorKeys for DynamoOperatorKeys {
    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<OperatorRecord>, StoreError> {
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("key_hash", AttributeValue::S(key_hash.to_owned()))
            .send()
            .await
            .map_err(|e| self.table.error("find operator key", e))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| self.table.bad_item("find operator key", e))
            })
            .transpose()
    }

    async fn insert(&self, record: &OperatorRecord) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(record)
            .map_err(|e| self.table.bad_item("insert operator key", e))?;
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(key_hash)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict {
                operation: "insert operator key",
                table: self.table.name.clone(),
                key: "<key hash>".into(),
            }),
            Err(e) => Err(self.table.error("insert operator key", e)),
        }
    }
}
