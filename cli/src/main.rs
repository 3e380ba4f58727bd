//! `cbs`: the operator command line. Each subcommand lives in its own module and calls one
//! shared function.

mod chargebackstop;
mod onboard;
mod operator_key;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Onboard(args) => onboard::run(args).await,
        Command::OperatorKey(cmd) => operator_key::run(cmd).await,
    }
}
