//! Builds the processor from the configuration: DynamoDB stores on one shared client, the
//! ChargebackStop API behind a call counter, the notifier, the per-organisation policies.

use crate::batch::{BatchSettings, Cost, CostMeter};
use crate::config::ProcessorConfig;
use crate::counting::CountingApi;
use crate::queue::SqsEdgeQueue;
use shared::adapters::dynamo::archive::DynamoEventArchive;
use shared::adapters::dynamo::event_processor::{
    dynamo_event_processor_counting, ProcessorSettings,
};
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::notify::NotifyTarget;
use shared::client::{ChargebackStop, ClientConfig, RetryPolicy};
use shared::domain::event_processing::EventProcessor;
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::ports::notifier::Notifier;
use std::sync::Arc;
use std::time::Duration;

/// The ChargebackStop implementation of the alert and enrolment ports: the typed client.
type Api = ChargebackStop;

/// Redelivery (with backoff, see `batch`) is this function's retry: inside one invocation only
/// a short second try, so a batch of ten during an outage stays well inside the function's
/// timeout.
fn api(config: &ProcessorConfig) -> anyhow::Result<Api> {
    // The key shared with the environment's source: re-read from its secret after a 401.
    let client_config = ClientConfig::new(
        config.partner.api_base_url.clone(),
        config.partner.api_key_source.clone(),
    )
    .with_timeout(Duration::from_secs(5))
    .with_retry(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        max_total: Duration::from_secs(2),
    });
    Ok(ChargebackStop::new(client_config)?)
}

pub struct Wired {
    pub processor: EventProcessor,
    pub archive: crate::archive::Archiver,
    pub meter: Meter,
    pub queue: SqsEdgeQueue,
    pub settings: BatchSettings,
}

pub struct Meter {
    dynamo: Arc<DynamoCounters>,
    /// The insights and transactions-index tables (also in `dynamo_*` of a reading).
    bookkeeping: Arc<DynamoCounters>,
    api: Arc<CountingApi<Api>>,
}

impl CostMeter for Meter {
    fn reading(&self) -> Cost {
        Cost {
            dynamo_reads: self.dynamo.reads() + self.bookkeeping.reads(),
            dynamo_writes: self.dynamo.writes() + self.bookkeeping.writes(),
            bookkeeping_reads: self.bookkeeping.reads(),
            bookkeeping_writes: self.bookkeeping.writes(),
            api_calls: self.api.calls(),
        }
    }
}

/// The API key's read from its secret runs while the rest is built; init ends when it has
/// landed, and fails as before when it cannot.
pub async fn from_env() -> anyhow::Result<Wired> {
    let aws = shared::adapters::aws::load_config().await;
    let config = ProcessorConfig::from_env(&aws)?;
    if let Some(key) = config.partner.api_key() {
        refuse_key_of_other_mode(config.partner.mode, &key)?;
    }
    let notify = NotifyTarget::from_env()?;

    let client = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let bookkeeping = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    let api = Arc::new(CountingApi::new(api(&config)?));
    let notifier: Arc<dyn Notifier> = Arc::from(notify.build(Some(&aws)));
    let processor = dynamo_event_processor_counting(
        &client,
        &config.partner.tables,
        counters.clone(),
        bookkeeping.clone(),
        ProcessorSettings {
            alert_api: api.clone(),
            enrolment_api: api.clone(),
            notifier,
            default_policy: config.default_policy,
            not_found_retry_for: config.not_found_retry_for,
        },
    )?;
    let archive = crate::archive::Archiver {
        store: Arc::new(DynamoEventArchive::new(table(
            config.partner.tables.archive(),
        ))),
        retention_days: config.archive_retention_days,
    };
    config.partner.key_ready().await?;
    Ok(Wired {
        processor,
        archive,
        meter: Meter {
            dynamo: counters,
            bookkeeping,
            api,
        },
        queue: SqsEdgeQueue {
            client: aws_sdk_sqs::Client::new(&aws),
            queue_url: config.edge_queue_url.clone(),
            dlq_url: config.edge_dlq_url.clone(),
        },
        settings: BatchSettings {
            backoff: config.backoff,
            stop_margin: config.stop_margin,
        },
    })
}
