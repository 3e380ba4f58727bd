//! The deadline sweep Lambda, fired by an EventBridge schedule. Each run:
//! 1. reconciles: polls ChargebackStop for ACTION_REQUIRED alerts of every organisation and
//!    stores those whose webhook never arrived (`shared::domain::reconcile`);
//! 2. sweeps the alerts table's deadline-index: warns operations once per threshold and applies
//!    the organisation's default action at the cutoff (`shared::domain::deadline_sweep`).
//!
//! Reconciliation runs first so an alert found by polling is swept in the same run.

mod config;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::domain::alert_policy::{AlertPolicy, CustomerPolicies};
use shared::domain::deadline_sweep::{DeadlineSweep, SweepReport};
use shared::domain::reconcile::{ClientListing, ReconcileReport, Reconciler};
use shared::ports::customer_store::CustomerStore;
use shared::ports::notifier::Notifier;
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Debug, serde::Serialize)]
struct RunReport {
    reconcile: Option<ReconcileReport>,
    sweep: SweepReport,
    dynamodb_reads: u64,
    /// Set when another run held the run lease: this run did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_held_by: Option<shared::ports::run_state::LeaseHolder>,
}

struct Wiring {
    /// The `deadline-sweep` run lease: one run at a time (`shared::domain::run_lease`).
    run_state: shared::adapters::dynamo::run_state::DynamoRunState,
    config: config::Config,
    customers: Arc<DynamoCustomerStore>,
    sweep: DeadlineSweep,
    reconciler: Reconciler,
    counters: Arc<DynamoCounters>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json_logs();
    let config = config::Config::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(dynamo.clone(), name, counters.clone());
    let api = config.partner.client(RetryPolicy::default())?;
    let alerts = Arc::new(DynamoAlertStore::new(table(config.partner.tables.alerts())));
    let customers = Arc::new(DynamoCustomerStore::new(table(
        config.partner.tables.customers(),
    )));
    let notifier: Arc<dyn Notifier> = Arc::from(config.notify.build(Some(&aws)));
    let clock = Arc::new(SystemClock);
    let wiring = Arc::new(Wiring {
        run_state: shared::adapters::dynamo::run_state::DynamoRunState::new(table(
            config.partner.tables.run_state(),
        )),
        sweep: DeadlineSweep {
            alerts: alerts.clone(),
            api: Arc::new(api.clone()),
            notifier: notifier.clone(),
            policies: Arc::new(CustomerPolicies::new(
                customers.clone(),
                AlertPolicy::default(),
            )),
            clock: clock.clone(),
            config: config.sweep.clone(),
        },
        reconciler: Reconciler {
            api: Arc::new(ClientListing(api)),
            alerts,
            notifier,
            clock,
            page_size: config.reconcile_page_size,
        },
        customers,
        counters,
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let wiring = wiring.clone();
        async move { handle(&wiring, event).await }
    }))
    .await
}

/// The organisations to poll: every onboarded customer's, plus the configured ones.
async fn organisations(wiring: &Wiring) -> Vec<String> {
    let mut orgs: BTreeSet<String> = wiring
        .config
        .reconcile_organisations
        .iter()
        .cloned()
        .collect();
    match wiring.customers.list(10_000).await {
        Ok(customers) => orgs.extend(customers.into_iter().filter_map(|c| c.organisation_id)),
        Err(e) => {
            tracing::error!(error = %e, "could not list customers; reconciling the configured organisations only")
        }
    }
    orgs.into_iter().collect()
}

/// One run at a time: the run takes the `deadline-sweep` lease until the invocation's end, or
/// exits at once naming the holder.
async fn handle(
    wiring: &Wiring,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RunReport, lambda_runtime::Error> {
    use shared::domain::run_lease::{exclusive, invocation_end, Exclusive};
    let now = chrono::Utc::now();
    let owner = format!("deadline-sweep/{}", event.context.request_id);
    let until = invocation_end(event.context.deadline, now);
    let leases = &wiring.run_state;
    match exclusive(
        leases,
        "deadline-sweep",
        &owner,
        now,
        until,
        sweep_run(wiring, event),
    )
    .await?
    {
        Exclusive::Ran(report) => Ok(report),
        Exclusive::Busy(holder) => Ok(RunReport {
            reconcile: None,
            sweep: SweepReport::default(),
            dynamodb_reads: 0,
            lease_held_by: Some(holder),
        }),
    }
}

async fn sweep_run(
    wiring: &Wiring,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RunReport, lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let reads_before = wiring.counters.reads();
    let reconcile = if wiring.config.reconcile {
        let orgs = organisations(wiring).await;
        Some(wiring.reconciler.run(&orgs).await)
    } else {
        None
    };
    let sweep = wiring.sweep.run().await?;
    let report = RunReport {
        reconcile,
        sweep,
        dynamodb_reads: wiring.counters.reads() - reads_before,
        lease_held_by: None,
    };
    tracing::info!(
        rule = event
            .payload
            .resources
            .as_ref()
            .and_then(|r| r.first())
            .map(String::as_str)
            .unwrap_or(""),
        recovered = report
            .reconcile
            .as_ref()
            .map(|r| r.recovered.len())
            .unwrap_or(0),
        read = report.sweep.read,
        warned = report.sweep.warned,
        actioned = report.sweep.actioned,
        errors = report.sweep.errors,
        duration_ms = started.elapsed().as_millis() as u64,
        "deadline sweep run finished"
    );
    let recovered = report
        .reconcile
        .as_ref()
        .map(|r| r.recovered.len())
        .unwrap_or(0);
    let reconcile_errors = report.reconcile.as_ref().map(|r| r.errors).unwrap_or(0);
    println!(
        "{}",
        shared::telemetry::emf_counts_line(
            &[
                ("AlertsAutoActioned", report.sweep.actioned as u64),
                ("AlertDeadlineWarnings", report.sweep.warned as u64),
                ("AlertsRecoveredByPolling", recovered as u64),
                (
                    "DeadlineSweepErrors",
                    (report.sweep.errors + reconcile_errors) as u64
                ),
            ],
            chrono::Utc::now().timestamp_millis(),
        )
    );
    Ok(report)
}
