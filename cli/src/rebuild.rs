//! `cbs rebuild [--since T] [--organisation X]`: rebuilds the alerts and enrolments tables
//! from the archive plus re-fetches from ChargebackStop, then a full reconciliation pass of
//! every organisation seen, each record with our own bookkeeping restored from the bookkeeping
//! journal (`shared::domain::recovery::rebuild`). Sends no action. Idempotent: run it again
//! after an interruption. Prints the report as JSON (`bookkeeping_restored`,
//! `bookkeeping_not_journaled`, ...).

use crate::recovery_wiring::{self, parse_time};
use shared::clock::{Clock, SystemClock};
use shared::domain::deadline_sweep::RunBudget;
use shared::domain::recovery::rebuild::rebuild;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RebuildArgs {
    /// Archived deliveries received since (default: the retention, 400 days).
    #[arg(long, default_value = "400d")]
    pub since: String,
    /// Organisations to reconcile besides those the archive names.
    #[arg(long, value_delimiter = ',')]
    pub organisation: Vec<String>,
    #[arg(long, default_value = "1h")]
    pub max_time: String,
}

pub async fn run(args: RebuildArgs) -> anyhow::Result<()> {
    let since = parse_time(&args.since)?;
    let max_time =
        shared::domain::rate_limit::parse_duration(&args.max_time).map_err(anyhow::Error::msg)?;
    let recovery = recovery_wiring::from_env().await?;
    let budget = RunBudget::new(max_time, Duration::from_secs(5), SystemClock.now());
    let bar = indicatif::ProgressBar::new_spinner();
    let report = rebuild(
        &recovery.sources,
        since,
        &args.organisation,
        &budget,
        |id| {
            bar.set_message(id.to_string());
            bar.tick();
        },
    )
    .await?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::ensure!(
        !report.incomplete && report.errors.is_empty(),
        "rebuild incomplete ({} errors); run it again",
        report.errors.len()
    );
    Ok(())
}
