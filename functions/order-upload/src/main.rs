//! The order upload Lambda, fired by an EventBridge schedule: one run of
//! `shared::domain::order_upload` over the order outbox, stopping before the invocation's
//! deadline. Orders it could not finish stay in the outbox for the next run.
//!
//! One run at a time: the run takes the `order-upload` run lease (`shared::domain::run_lease`)
//! for `RUN_LEASE_TTL`, renewed while it goes on (a killed run blocks the next one for that long
//! at most), or exits at once naming the holder. The rate budget continues from the
//! last run's (stored per pool in the run-state table), never a fresh burst.

mod config;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::run_state::DynamoRunState;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::client::{ChargebackStop, RetryPolicy};
use shared::clock::SystemClock;
use shared::domain::order_upload::{OrderUpload, UploadReport};
use shared::domain::rate_limit::OrgRateLimiter;
use shared::domain::run_lease::{exclusive_renewed, Exclusive, RUN_LEASE_TTL};
use shared::ports::notifier::Notifier;
use std::sync::Arc;
use std::time::Duration;

/// The run lease every order upload takes (the Lambda and `cbs upload-orders`).
const LEASE: &str = "order-upload";

/// What every invocation shares (built once per container).
struct Wiring {
    config: config::Config,
    outbox: Arc<dyn shared::ports::order_outbox::OrderOutbox>,
    run_state: Arc<DynamoRunState>,
    api: Arc<ChargebackStop>,
    notifier: Arc<dyn Notifier>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json_logs();
    let aws = shared::adapters::aws::load_config().await;
    let config = config::Config::from_env(&aws)?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(dynamo.clone(), name, counters.clone());
    // The upload decides on 429/5xx itself (rate limiter, backoff, lease), so the client sends
    // each call once.
    let api = config.partner.client(RetryPolicy::none())?;
    let wiring = Arc::new(Wiring {
        // Counts upload outcomes into the insights table as they are recorded.
        outbox: Arc::new(shared::domain::insights::CountingOrderOutbox::new(
            Arc::new(DynamoOrderOutbox::new(table(
                config.partner.tables.orders(),
            ))),
            Arc::new(
                shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(
                    config.partner.tables.insights(),
                )),
            ),
            Arc::new(shared::clock::SystemClock),
        )),
        run_state: Arc::new(DynamoRunState::new(table(
            config.partner.tables.run_state(),
        ))),
        api: Arc::new(api),
        notifier: Arc::from(config.notify.build(Some(&aws))),
        config,
    });
    // The key's read from its secret ran while the rest was built.
    wiring.config.partner.key_ready().await?;
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
    let owner = format!("order-upload/{}", event.context.request_id);
    tracing::info!(
        deadline_ms,
        budget_ms = budget.as_millis() as u64,
        owner = %owner,
        "order upload run starting"
    );
    let clock = Arc::new(SystemClock);
    let run = OrderUpload {
        outbox: wiring.outbox.clone(),
        api: wiring.api.clone(),
        // The budget of each pool continues from the last run's, written as it is spent.
        limiter: Arc::new(
            OrgRateLimiter::with_scope(wiring.config.rate_limit, wiring.config.pool)
                .persisted_in(wiring.run_state.clone(), clock.clone()),
        ),
        clock: clock.clone(),
        notifier: wiring.notifier.clone(),
        config: wiring.config.upload.clone(),
        owner: owner.clone(),
        stop_at: tokio::time::Instant::now() + budget,
    };
    // Renewed while the run goes on: a killed run blocks the next one for RUN_LEASE_TTL at most.
    let report = match exclusive_renewed(
        wiring.run_state.as_ref(),
        LEASE,
        &owner,
        &*clock,
        RUN_LEASE_TTL,
        run.run(),
    )
    .await?
    {
        Exclusive::Ran(report) => report,
        Exclusive::Busy(holder) => {
            tracing::warn!(holder = %holder.owner, until = %holder.until, "another order upload run is going; exiting");
            return Ok(UploadReport::skipped(holder));
        }
    };
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
        attempts_exhausted = report.attempts_exhausted,
        lookups = report.lookups,
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
                ("OrdersAttemptsExhausted", report.attempts_exhausted),
                ("OrdersRetryLater", report.retry_later),
                ("OrderLookups", report.lookups),
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
