//! The deadline sweep Lambda, fired by an EventBridge schedule. Each run, within the
//! invocation's remaining time (`shared::domain::deadline_sweep::ScheduledSweep`):
//! 1. reads every organisation's policy once;
//! 2. sweeps the alerts table's deadline-index: acts at the cutoff, then warns, soonest first;
//! 3. reconciles with the time left (alerts of every status, enrolments), resuming from each
//!    organisation's stored cursor (`shared::domain::reconcile`).
//!
//! One run at a time: the run takes the `deadline-sweep` run lease for `RUN_LEASE_TTL`, renewed
//! while it goes on (`shared::domain::run_lease`), or exits at once naming the holder.

mod config;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Serialize;
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::cursors::DynamoCursorStore;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::domain::alert_policy::CustomerPolicies;
use shared::domain::deadline_sweep::{DeadlineSweep, RunBudget, RunReport, ScheduledSweep};
use shared::domain::reconcile::{ClientListing, Reconciler};
use shared::ports::notifier::Notifier;
use std::sync::Arc;

struct Wiring {
    /// The `deadline-sweep` run lease: one run at a time.
    run_state: shared::adapters::dynamo::run_state::DynamoRunState,
    config: config::Config,
    run: ScheduledSweep,
    counters: Arc<DynamoCounters>,
}

#[derive(Serialize)]
struct Response {
    #[serde(flatten)]
    report: Option<RunReport>,
    dynamodb_reads: u64,
    /// Set when another run held the run lease: this run did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_held_by: Option<shared::ports::run_state::LeaseHolder>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json_logs();
    let aws = shared::adapters::aws::load_config().await;
    let config = config::Config::from_env(&aws)?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(dynamo.clone(), name, counters.clone());
    let tables = &config.partner.tables;
    let api = config.partner.client(RetryPolicy::default())?;
    // Counts what each alert write records (decisions at the cutoff, reconciled alerts) into
    // the insights table.
    let alerts = Arc::new(shared::domain::insights::CountingAlertStore::new(
        Arc::new(DynamoAlertStore::new(table(tables.alerts()))),
        Arc::new(
            shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(tables.insights())),
        ),
        Arc::new(SystemClock),
    ));
    let customers = Arc::new(DynamoCustomerStore::new(table(tables.customers())));
    let notifier: Arc<dyn Notifier> = Arc::from(config.notify.build(Some(&aws)));
    let clock = Arc::new(SystemClock);
    let api_port: Arc<dyn shared::ports::alert_api::AlertApi> = Arc::new(api.clone());
    // Pending refunds asked again before the cutoff (policies with a `refund_hook`).
    let refund_first = Arc::new(shared::domain::refund_hook::RefundFirst {
        hook: shared::adapters::refund_hook::http_refund_hook()?,
        alert_api: api_port.clone(),
        alerts: alerts.clone(),
        outbox: Some(Arc::new(
            shared::adapters::dynamo::transactions::indexed_outbox(
                &dynamo,
                tables,
                counters.clone(),
            ),
        )),
        notifier: notifier.clone(),
        clock: clock.clone(),
        backoff: std::time::Duration::from_millis(250),
    });
    let sweep = DeadlineSweep {
        alerts: alerts.clone(),
        api: api_port,
        notifier: notifier.clone(),
        policies: Arc::new(CustomerPolicies::new(
            customers,
            config.default_policy.clone(),
        )),
        clock: clock.clone(),
        config: config.sweep.clone(),
        refund_first: Some(refund_first),
    };
    let reconciler = config.reconcile.then(|| Reconciler {
        api: Arc::new(ClientListing(api)),
        alerts,
        enrolments: Arc::new(DynamoEnrolmentStore::new(table(tables.enrolments()))),
        cursors: Arc::new(DynamoCursorStore::new(table(format!(
            "{}-cursors",
            tables.prefix()
        )))),
        notifier,
        clock,
        page_size: config.reconcile_page_size,
        lookback: config.reconcile_lookback,
    });
    let wiring = Arc::new(Wiring {
        run_state: shared::adapters::dynamo::run_state::DynamoRunState::new(table(
            tables.run_state(),
        )),
        run: ScheduledSweep {
            sweep,
            reconciler,
            extra_organisations: config.reconcile_organisations.clone(),
        },
        counters,
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
) -> Result<Response, lambda_runtime::Error> {
    use shared::domain::run_lease::{exclusive_renewed, Exclusive, RUN_LEASE_TTL};
    let owner = format!("deadline-sweep/{}", event.context.request_id);
    let work = async { Ok::<_, lambda_runtime::Error>(sweep_run(wiring, event).await) };
    // Renewed while the run goes on: a killed run blocks the next one for RUN_LEASE_TTL at most.
    match exclusive_renewed(
        &wiring.run_state,
        "deadline-sweep",
        &owner,
        &SystemClock,
        RUN_LEASE_TTL,
        work,
    )
    .await?
    {
        Exclusive::Ran(response) => Ok(response),
        Exclusive::Busy(holder) => {
            tracing::warn!(holder = ?holder, "another deadline-sweep run holds the run lease; this run does nothing");
            Ok(Response {
                report: None,
                dynamodb_reads: 0,
                lease_held_by: Some(holder),
            })
        }
    }
}

async fn sweep_run(wiring: &Wiring, event: LambdaEvent<EventBridgeEvent>) -> Response {
    let started = std::time::Instant::now();
    let reads_before = wiring.counters.reads();
    let budget = RunBudget::from_lambda_deadline(
        event.context.deadline,
        chrono::Utc::now(),
        wiring.config.stop_margin,
        wiring.config.max_run,
    );
    let report = wiring.run.run(&budget).await;
    let recovered = report
        .reconcile
        .as_ref()
        .map(|r| r.recovered.len() + r.enrolments_recovered.len())
        .unwrap_or(0);
    tracing::info!(
        rule = event
            .payload
            .resources
            .as_ref()
            .and_then(|r| r.first())
            .map(String::as_str)
            .unwrap_or(""),
        recovered,
        read = report.sweep.read,
        warned = report.sweep.warned,
        actioned = report.sweep.actioned,
        deferred = report.sweep.deferred,
        errors = report.errors(),
        duration_ms = started.elapsed().as_millis() as u64,
        "deadline sweep run finished"
    );
    println!(
        "{}",
        shared::telemetry::emf_counts_line(
            &[
                ("AlertsAutoActioned", report.sweep.actioned as u64),
                ("AlertDeadlineWarnings", report.sweep.warned as u64),
                ("AlertsRecoveredByPolling", recovered as u64),
                ("DeadlineSweepErrors", report.errors() as u64),
                ("DeadlineSweepDeferred", report.sweep.deferred as u64),
                (
                    "DeadlineSweepSkippedItems",
                    (report.sweep.skipped_items + report.policy_problems) as u64
                ),
            ],
            chrono::Utc::now().timestamp_millis(),
        )
    );
    Response {
        dynamodb_reads: wiring.counters.reads() - reads_before,
        report: Some(report),
        lease_held_by: None,
    }
}
