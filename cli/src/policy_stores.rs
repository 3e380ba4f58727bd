//! The tables the read-only commands (`policy test`, `escalations export`) need: alerts,
//! customers and the transaction index (TABLE_PREFIX and the AWS variables only; no API key).

use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::dynamo::transactions::DynamoTransactionIndex;
use shared::config::TableNames;
use shared::ports::alert_store::AlertStore;
use shared::ports::customer_store::CustomerStore;
use shared::ports::transaction_index::TransactionIndex;
use std::sync::Arc;

pub struct Stores {
    pub alerts: Arc<dyn AlertStore>,
    pub customers: Arc<dyn CustomerStore>,
    pub index: Arc<dyn TransactionIndex>,
}

impl Stores {
    pub async fn from_env() -> anyhow::Result<Self> {
        let names = TableNames::from_env()?;
        let aws = shared::adapters::aws::load_config().await;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        let counters = Arc::new(DynamoCounters::default());
        let table = |name: String| Table::new(client.clone(), name, counters.clone());
        Ok(Self {
            alerts: Arc::new(DynamoAlertStore::new(table(names.alerts()))),
            customers: Arc::new(DynamoCustomerStore::new(table(names.customers()))),
            index: Arc::new(DynamoTransactionIndex::new(table(names.transactions()))),
        })
    }
}
