//! Builds the state from the environment (README "Configuration"): TABLE_PREFIX, STACK_MODE,
//! CBS_API_BASE_URL, CBS_API_KEY, NOTIFY_TOPIC_ARN or NOTIFY_SINK, and OPS_URGENT_HOURS
//! (default 24). A missing or bad value stops start-up with a message naming the variable; a
//! partner key of the other mode too.

use crate::state::AppState;
use crate::upload_status::DynamoUploadStatus;
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::operators::DynamoOperatorKeys;
use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::notify::NotifyTarget;
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::config::{self, PartnerEnv};
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::ports::order_outbox::OrderOutbox;
use std::sync::Arc;

pub async fn from_env() -> anyhow::Result<AppState> {
    let partner = PartnerEnv::from_env()?;
    refuse_key_of_other_mode(partner.mode, &partner.api_key)?;
    let tables = &partner.tables;
    let urgent_hours: i64 = config::parsed("OPS_URGENT_HOURS", 24)?;
    let notify = NotifyTarget::from_env()?;

    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    // One typed client for every ChargebackStop call (alerts, enrolments, onboarding).
    let http = Arc::new(partner.client(RetryPolicy::default())?);
    let insights: Arc<dyn shared::ports::insights_store::InsightsStore> = Arc::new(
        shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(tables.insights())),
    );
    // Orders taken in and operator decisions are counted into the insights table as written.
    let outbox: Arc<dyn OrderOutbox> =
        Arc::new(shared::domain::insights::CountingOrderOutbox::new(
            Arc::new(DynamoOrderOutbox::new(table(tables.orders()))),
            insights.clone(),
            Arc::new(SystemClock),
        ));
    Ok(AppState {
        mode: partner.mode,
        urgent_hours,
        clock: Arc::new(SystemClock),
        operators: Arc::new(DynamoOperatorKeys::new(table(tables.operators()))),
        customers: Arc::new(DynamoCustomerStore::new(table(tables.customers()))),
        alerts: Arc::new(shared::domain::insights::CountingAlertStore::new(
            Arc::new(DynamoAlertStore::new(table(tables.alerts()))),
            insights.clone(),
            Arc::new(SystemClock),
        )),
        enrolments: Arc::new(DynamoEnrolmentStore::new(table(tables.enrolments()))),
        upload_status: Arc::new(DynamoUploadStatus {
            client: client.clone(),
            table: tables.orders(),
            outbox: outbox.clone(),
        }),
        outbox,
        alert_api: http.clone(),
        enrolment_api: http.clone(),
        onboarding_api: http,
        notifier: std::sync::Arc::from(notify.build(Some(&aws))),
        insights,
    })
}
