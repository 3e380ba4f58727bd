//! The `customers` table (see `ports::customer_store`). Saves are conditional on the run's lease
//! token, so a run that lost its lease cannot overwrite the run that took over.

use super::table::{is_condition_failed, Table};
use crate::domain::onboarding::CustomerRecord;
use crate::ports::customer_store::{CustomerScan, CustomerStore};
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoCustomerStore {
    table: Table,
}

impl DynamoCustomerStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The `<TABLE_PREFIX>-customers` table with the environment's AWS configuration
    /// (`AWS_ENDPOINT_URL` locally), for the command line.
    pub async fn from_env(tables: &crate::config::TableNames) -> Self {
        let aws = crate::adapters::aws::load_config().await;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        Self::new(Table::new(client, tables.customers(), Default::default()))
    }

    fn conflict(&self, operation: &'static str, customer_id: &str) -> StoreError {
        StoreError::Conflict {
            operation,
            table: self.table.name.clone(),
            key: customer_id.to_owned(),
        }
    }

    fn to_item(
        &self,
        operation: &'static str,
        record: &CustomerRecord,
    ) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
        serde_dynamo::to_item(record).map_err(|e| self.table.bad_item(operation, e))
    }
}

#[async_trait::async_trait]
impl CustomerStore for DynamoCustomerStore {
    async fn get(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.table
            .get_by_key("get customer", "customer_id", customer_id)
            .await
    }

    async fn claim(&self, record: &CustomerRecord, now: &str) -> Result<(), StoreError> {
        let item = self.to_item("claim customer", record)?;
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(customer_id) OR attribute_not_exists(run_lease_until) \
                 OR run_lease_until < :now",
            )
            .expression_attribute_values(":now", AttributeValue::S(now.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                Err(self.conflict("claim customer", &record.customer_id))
            }
            Err(e) => Err(self.table.error("claim customer", e)),
        }
    }

    async fn save(&self, record: &CustomerRecord) -> Result<(), StoreError> {
        let item = self.to_item("save customer", record)?;
        let token = record.run_token.clone().unwrap_or_default();
        self.table.counters.write();
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("run_token = :token")
            .expression_attribute_values(":token", AttributeValue::S(token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                Err(self.conflict("save customer", &record.customer_id))
            }
            Err(e) => Err(self.table.error("save customer", e)),
        }
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<CustomerRecord>, StoreError> {
        // Every page: an organisation's customers past DynamoDB's 1 MB page are not dropped.
        let (records, skipped) = self
            .table
            .query_index_each(
                "customers by organisation",
                "organisation-index",
                ("organisation_id", organisation_id),
                None,
                false,
                None,
                "customer_id",
            )
            .await?;
        for s in &skipped {
            tracing::error!(table = %s.table, key = %s.key, reason = %s.reason, "customer item does not decode; skipped");
        }
        Ok(records)
    }

    async fn scan(&self, limit: usize) -> Result<CustomerScan, StoreError> {
        let mut out = CustomerScan::default();
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
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
                .map_err(|e| self.table.error("list customers", e))?;
            for item in page.items.unwrap_or_default() {
                if out.records.len() >= limit {
                    out.truncated = true;
                    return Ok(out);
                }
                match self.table.decode_item(item, "customer_id") {
                    Ok(record) => out.records.push(record),
                    Err(skipped) => {
                        tracing::error!(table = %skipped.table, key = %skipped.key, reason = %skipped.reason, "customer item does not decode; skipped");
                        out.skipped.push(skipped);
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
