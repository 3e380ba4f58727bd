//! `cbs`: the operator command line. Each subcommand lives in its own module and calls one
//! shared function.

mod dlq;
mod escalations;
mod events;
mod import_orders;
mod insights;
mod onboard;
mod operator_key;
mod orders;
mod policy;
mod policy_stores;
mod rebuild;
mod reconcile;
mod recovery_wiring;
mod stack_env;
mod upload_orders;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cbs", about = "ChargebackStop partner operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Onboard (or resume onboarding) one customer from a JSON spec.
    Onboard(onboard::OnboardArgs),
    /// Operator API keys for the ops API.
    #[command(subcommand)]
    OperatorKey(operator_key::OperatorKeyCommand),
    /// Validate orders from a JSON or CSV file and queue them in the order outbox.
    ImportOrders(import_orders::ImportArgs),
    /// One order upload run from here (the order-upload function's work), e.g. for a backfill.
    UploadOrders(upload_orders::UploadArgs),
    /// Orders in the outbox: requeue a FAILED one.
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
    /// Archived webhooks: replay them through the processor.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// The edge queue's dead-letter queue: list, show, redrive.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Re-fetch one organisation's alerts and enrolments now and repair our copies.
    Reconcile(reconcile::ReconcileArgs),
    /// Rebuild the alerts and enrolments tables from the archive and ChargebackStop.
    Rebuild(rebuild::RebuildArgs),
    /// The insights counters: `backfill` builds them from stored records.
    #[command(subcommand)]
    Insights(insights::InsightsCommand),
    /// Decision policies: `test` dry-runs one over stored alerts.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Alerts for a person (unmatched, ambiguous): `export` as CSV.
    #[command(subcommand)]
    Escalations(escalations::EscalationsCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The dev stack's env file (bin/dev writes it), without overriding what is set.
    let env_file = stack_env::load();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Onboard(args) => onboard::run(args).await,
        Command::OperatorKey(cmd) => operator_key::run(cmd).await,
        Command::ImportOrders(args) => import_orders::run(args).await,
        Command::UploadOrders(args) => upload_orders::run(args).await,
        Command::Orders(cmd) => orders::run(cmd).await,
        Command::Events(cmd) => events::run(cmd).await,
        Command::Dlq(cmd) => dlq::run(cmd).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::Rebuild(args) => rebuild::run(args).await,
        Command::Insights(cmd) => insights::run(cmd).await,
        Command::Policy(cmd) => policy::run(cmd).await,
        Command::Escalations(cmd) => escalations::run(cmd).await,
    };
    result.map_err(|e| stack_env::explain(e, env_file.as_ref()))
}
