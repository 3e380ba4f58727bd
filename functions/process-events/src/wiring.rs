//! Builds the processor from the configuration: DynamoDB stores on one shared client, the
//! ChargebackStop API behind a call counter, the notifier, the per-organisation policies.

use crate::batch::{BatchSettings, Cost, CostMeter};
use crate::config::ProcessorConfig;
use crate::counting::CountingApi;
use crate::queue::SqsEdgeQueue;
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::archive::DynamoEventArchive;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::events::DynamoEventLog;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::dynamo::transactions::DynamoTransactionIndex;
use shared::adapters::notify::NotifyTarget;
use shared::client::{ChargebackStop, ClientConfig, RetryPolicy};
use shared::clock::SystemClock;
use shared::domain::alert_policy::CustomerPolicies;
use shared::domain::event_processing::EventProcessor;
use shared::domain::matching::IndexedPartnerRecords;
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
    api: Arc<CountingApi<Api>>,
}

impl CostMeter for Meter {
    fn reading(&self) -> Cost {
        Cost {
            dynamo_reads: self.dynamo.reads(),
            dynamo_writes: self.dynamo.writes(),
            api_calls: self.api.calls(),
        }
    }
}

pub async fn from_env() -> anyhow::Result<Wired> {
    let config = ProcessorConfig::from_env()?;
    refuse_key_of_other_mode(config.partner.mode, &config.partner.api_key)?;
    let notify = NotifyTarget::from_env()?;

    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    let api = Arc::new(CountingApi::new(api(&config)?));
    let customers = Arc::new(DynamoCustomerStore::new(table(
        config.partner.tables.customers(),
    )));

    let notifier: Arc<dyn Notifier> = Arc::from(notify.build(Some(&aws)));
    // Every alert write also counts its facts into the insights table (idempotent).
    let alerts: Arc<dyn shared::ports::alert_store::AlertStore> =
        Arc::new(shared::domain::insights::CountingAlertStore::new(
            Arc::new(DynamoAlertStore::new(table(config.partner.tables.alerts()))),
            Arc::new(
                shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(
                    config.partner.tables.insights(),
                )),
            ),
            Arc::new(SystemClock),
        ));
    // Refund first in the partner's billing system (policies with a `refund_hook`); a confirmed
    // refund is queued for the order at ChargebackStop through the (indexed) order outbox.
    let refund_first = Arc::new(shared::domain::refund_hook::RefundFirst {
        hook: shared::adapters::refund_hook::http_refund_hook()?,
        alert_api: api.clone(),
        alerts: alerts.clone(),
        outbox: Some(Arc::new(
            shared::adapters::dynamo::transactions::indexed_outbox(
                &client,
                &config.partner.tables,
                counters.clone(),
            ),
        )),
        notifier: notifier.clone(),
        clock: Arc::new(SystemClock),
        backoff: Duration::from_millis(250),
    });
    let processor = EventProcessor {
        events: Arc::new(DynamoEventLog::new(table(config.partner.tables.events()))),
        alerts,
        enrolments: Arc::new(DynamoEnrolmentStore::new(table(
            config.partner.tables.enrolments(),
        ))),
        alert_api: api.clone(),
        enrolment_api: api.clone(),
        notifier: notifier.clone(),
        policies: Arc::new(
            CustomerPolicies::new(customers, config.default_policy)
                .notifying(notifier, Arc::new(SystemClock)),
        ),
        // Alerts matched to the partner's own transactions (the index written at order intake).
        partner_records: Arc::new(IndexedPartnerRecords::new(
            Arc::new(DynamoTransactionIndex::new(table(
                config.partner.tables.transactions(),
            ))),
            Arc::new(SystemClock),
        )),
        clock: Arc::new(SystemClock),
        not_found_retry_for: config.not_found_retry_for,
        refund_first: Some(refund_first),
    };
    let archive = crate::archive::Archiver {
        store: Arc::new(DynamoEventArchive::new(table(
            config.partner.tables.archive(),
        ))),
        retention_days: config.archive_retention_days,
    };
    Ok(Wired {
        processor,
        archive,
        meter: Meter {
            dynamo: counters,
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
