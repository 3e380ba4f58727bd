//! The order upload Lambda, fired by an EventBridge schedule: one run of
//! `shared::domain::order_upload` over the order outbox, stopping before the invocation's
//! deadline. Orders it could not finish stay in the outbox for the next run.

mod config;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::client::{ChargebackStop, RetryPolicy};
use shared::clock::SystemClock;
use shared::domain::order_upload::{OrderUpload, UploadReport};
use shared::domain::rate_limit::OrgRateLimiter;
use std::sync::Arc;
use std::time::Duration;

/// What every invocation shares (built once per container).
struct Wiring {
    config: config::Config,
    outbox: Arc<DynamoOrderOutbox>,
    api: Arc<ChargebackStop>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json_logs();
    let config = config::Config::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let table = Table::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.partner.tables.orders(),
        Arc::new(DynamoCounters::default()),
    );
    // The upload decides on 429/5xx itself (rate limiter, backoff, lease), so the client sends
    // each call once.
    let api = config.partner.client(RetryPolicy::none())?;
    let wiring = Arc::new(Wiring {
        outbox: Arc::new(DynamoOrderOutbox::new(table)),
        api: Arc::new(api),
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let wiring = wiring.clone();
        async move { handle(&wiring, event).await }
    }))
    .await
}

async fn handle(
    wiring: &Wiring,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<UploadReport, lambda_runtime::Error> {
    let started = std::time::Instant::now();
    // Time left in this invocation, less a margin to record outcomes and give leases back.
    let deadline_ms = event.context.deadline as i64;
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Lambda sends the deadline in epoch milliseconds; `cargo lambda watch` sends the timeout
    // itself (600000). Anything before 2001 can only be such a duration.
    let left_ms = if deadline_ms < 978_307_200_000 {
        deadline_ms.max(0) as u64
    } else {
        (deadline_ms - now_ms).max(0) as u64
    };
    let mut budget = Duration::from_millis(left_ms).saturating_sub(wiring.config.stop_margin);
    if let Some(max_run) = wiring.config.max_run {
        budget = budget.min(max_run);
    }
    tracing::info!(
        deadline_ms,
        budget_ms = budget.as_millis() as u64,
        "order upload run starting"
    );
    let run = OrderUpload {
        outbox: wiring.outbox.clone(),
        api: wiring.api.clone(),
        // A fresh limiter per run: runs do not overlap (one schedule, reserved concurrency 1),
        // and the first requests of a run stay inside the burst.
        limiter: Arc::new(OrgRateLimiter::with_scope(
            wiring.config.rate_limit,
            wiring.config.pool,
        )),
        clock: Arc::new(SystemClock),
        config: wiring.config.upload.clone(),
        owner: format!("order-upload/{}", event.context.request_id),
        stop_at: tokio::time::Instant::now() + budget,
    };
    let report = run.run().await?;
    tracing::info!(
        rule = event
            .payload
            .resources
            .as_ref()
            .and_then(|r| r.first())
            .map(String::as_str)
            .unwrap_or(""),
        organisations = report.organisations,
        created = report.created,
        duplicate = report.duplicate,
        failed = report.failed,
        retry_later = report.retry_later,
        patched = report.patched,
        requests = report.requests,
        rate_limited = report.rate_limited,
        server_errors = report.server_errors,
        blocked = report.blocked.len(),
        duration_ms = started.elapsed().as_millis() as u64,
        "order upload run finished"
    );
    // CloudWatch embedded metric: alarm on failures and blocked organisations.
    println!(
        "{}",
        shared::telemetry::emf_counts_line(
            &[
                ("OrdersCreated", report.created + report.duplicate),
                ("OrdersFailed", report.failed),
                ("OrdersRetryLater", report.retry_later),
                (
                    "OrderUploadBlockedOrganisations",
                    report.blocked.len() as u64
                ),
            ],
            chrono::Utc::now().timestamp_millis(),
        )
    );
    Ok(report)
}
