//! `cbs`: the operator command line. Each subcommand lives in its own module and calls one
//! shared function.

mod import_orders;
mod insights;
mod onboard;
mod operator_key;
mod orders;
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
    /// The insights counters: `backfill` builds them from stored records.
    #[command(subcommand)]
    Insights(insights::InsightsCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Onboard(args) => onboard::run(args).await,
        Command::OperatorKey(cmd) => operator_key::run(cmd).await,
        Command::ImportOrders(args) => import_orders::run(args).await,
        Command::UploadOrders(args) => upload_orders::run(args).await,
        Command::Orders(cmd) => orders::run(cmd).await,
        Command::Insights(cmd) => insights::run(cmd).await,
    }
}
