//! Builds the state from the environment (README "Configuration"): TABLE_PREFIX, STACK_MODE,
//! CBS_API_BASE_URL, CBS_API_KEY, NOTIFY_TOPIC_ARN or NOTIFY_SINK, and OPS_URGENT_HOURS
//! (default 24), DEFAULT_ALERT_POLICY (optional: the policy late order data is re-evaluated
//! with for organisations without their own). A missing or bad value stops start-up with a
//! message naming the variable; a partner key of the other mode too.

use crate::state::AppState;
use crate::upload_status::DynamoUploadStatus;
use shared::adapters::dead_letter_queue::{aws_sdk_sqs_client, SqsDeadLetterQueue};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::archive::DynamoEventArchive;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::event_processor::{dynamo_event_processor, ProcessorSettings};
use shared::adapters::dynamo::operators::DynamoOperatorKeys;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::dynamo::transactions::{indexed_outbox, DynamoTransactionIndex};
use shared::adapters::notify::NotifyTarget;
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::config::{self, PartnerEnv};
use shared::domain::alert_policy::{AlertPolicy, CustomerPolicies};
use shared::domain::matching::late::Reevaluator;
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::ports::order_outbox::OrderOutbox;
use std::sync::Arc;

/// The API key's read from its secret runs while the rest is built; init ends when it has
/// landed, and fails as before when it cannot.
pub async fn from_env() -> anyhow::Result<AppState> {
    let aws = shared::adapters::aws::load_config().await;
    let partner = PartnerEnv::from_env_reading_key(&aws)?;
    if let Some(key) = partner.api_key() {
        refuse_key_of_other_mode(partner.mode, &key)?;
    }
    let tables = &partner.tables;
    let urgent_hours: i64 = config::parsed("OPS_URGENT_HOURS", 24)?;
    let notify = NotifyTarget::from_env()?;

    let client = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    // One typed client for every ChargebackStop call (alerts, enrolments, onboarding).
    let http = Arc::new(partner.client(RetryPolicy::default())?);
    let notifier: Arc<dyn shared::ports::notifier::Notifier> = Arc::from(notify.build(Some(&aws)));
    let insights: Arc<dyn shared::ports::insights_store::InsightsStore> = Arc::new(
        shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(tables.insights())),
    );
    let customers = Arc::new(DynamoCustomerStore::new(table(tables.customers())));
    // Every alert write (operator decisions, late-data re-evaluation, replay) also counts its
    // facts into the insights table.
    let alerts: Arc<dyn shared::ports::alert_store::AlertStore> =
        Arc::new(shared::domain::insights::CountingAlertStore::new(
            Arc::new(DynamoAlertStore::new(table(tables.alerts()))),
            insights.clone(),
            Arc::new(SystemClock),
        ));
    let enrolments = Arc::new(DynamoEnrolmentStore::new(table(tables.enrolments())));
    // Orders enter the outbox with their transactions indexed for matching alerts; an alert
    // waiting for them is re-evaluated on arrival (late data), with the organisation's policy.
    let late = Arc::new(Reevaluator {
        alert_api: http.clone(),
        alerts: alerts.clone(),
        notifier: notifier.clone(),
        policies: Arc::new(CustomerPolicies::new(
            customers.clone(),
            AlertPolicy::default_from_env()?,
        )),
        index: Arc::new(DynamoTransactionIndex::new(table(tables.transactions()))),
        clock: Arc::new(SystemClock),
        // A refund decided on late data asks the partner's billing system first (a confirmed
        // refund is queued on the plain indexed outbox: no re-evaluation of its own update).
        refund_first: Some(Arc::new(shared::domain::refund_hook::RefundFirst {
            hook: shared::adapters::refund_hook::http_refund_hook()?,
            alert_api: http.clone(),
            alerts: alerts.clone(),
            outbox: Some(Arc::new(indexed_outbox(&client, tables, counters.clone()))),
            notifier: notifier.clone(),
            clock: Arc::new(SystemClock),
            backoff: std::time::Duration::from_millis(250),
        })),
    });
    // Orders taken in are counted into the insights table as written.
    let outbox: Arc<dyn OrderOutbox> =
        Arc::new(shared::domain::insights::CountingOrderOutbox::new(
            Arc::new(indexed_outbox(&client, tables, counters.clone()).with_late_matches(late)),
            insights.clone(),
            Arc::new(SystemClock),
        ));
    // Replay runs the processor exactly as process-events builds it (same stores, policy with
    // its notifications, matching, refund hook).
    let recovery = crate::routes::recovery::Recovery {
        replayer: shared::domain::recovery::replay::Replayer {
            processor: dynamo_event_processor(
                &client,
                tables,
                counters.clone(),
                ProcessorSettings {
                    alert_api: http.clone(),
                    enrolment_api: http.clone(),
                    notifier: notifier.clone(),
                    default_policy: AlertPolicy::default_from_env()?,
                    not_found_retry_for: chrono::Duration::seconds(config::parsed(
                        "EVENT_NOT_FOUND_RETRY_SECS",
                        3600i64,
                    )?),
                },
            )?,
            archive: Arc::new(DynamoEventArchive::new(table(tables.archive()))),
            // The API holds no webhook secret: a refused delivery is reported with the command
            // that verifies and replays it (`cbs events replay --refused`).
            verify_refused_with: None,
        },
        dlq: match config::optional("EDGE_DLQ_URL") {
            Some(dlq_url) => Some(Arc::new(SqsDeadLetterQueue {
                client: aws_sdk_sqs_client(&aws),
                dlq_url,
                // The page only reads the DLQ; redrive is `cbs dlq redrive`.
                source_url: String::new(),
            })),
            None => None,
        },
    };
    partner.key_ready().await?;
    Ok(AppState {
        mode: partner.mode,
        urgent_hours,
        clock: Arc::new(SystemClock),
        operators: Arc::new(DynamoOperatorKeys::new(table(tables.operators()))),
        customers,
        alerts,
        enrolments,
        upload_status: Arc::new(DynamoUploadStatus {
            client: client.clone(),
            table: tables.orders(),
            outbox: outbox.clone(),
        }),
        outbox,
        alert_api: http.clone(),
        enrolment_api: http.clone(),
        onboarding_api: http,
        notifier,
        recovery: Some(recovery),
        insights,
    })
}
