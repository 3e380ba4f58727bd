//! `cbs`: the operator command line. Each subcommand lives in its own module and calls one
//! shared function.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cbs", about = "ChargebackStop partner operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
