//! `cbs reconcile --organisation X [--since T]`: one full reconciliation pass for an
//! organisation, now: every alert received since T (default 30 days), of every status and on
//! every page, and every enrolment, re-fetched and stored through the normal versioned writes
//! (`shared::domain::reconcile`, the deadline sweep's own code, with its own cursors so the
//! sweep's place is not moved). For a gap longer than ChargebackStop's retries. Prints what
//! changed.

use crate::recovery_wiring::{self, parse_time};
use shared::clock::{Clock, SystemClock};
use shared::domain::deadline_sweep::RunBudget;
use shared::domain::recovery::rebuild::reconcile_organisations;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ReconcileArgs {
    #[arg(long, required = true, value_delimiter = ',')]
    pub organisation: Vec<String>,
    /// Alerts received at or after (time, date or age); default 30d.
    #[arg(long, default_value = "30d")]
    pub since: String,
    #[arg(long, default_value = "30m")]
    pub max_time: String,
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let since = parse_time(&args.since)?;
    let max_time =
        shared::domain::rate_limit::parse_duration(&args.max_time).map_err(anyhow::Error::msg)?;
    let recovery = recovery_wiring::from_env().await?;
    let budget = RunBudget::new(max_time, Duration::from_secs(5), SystemClock.now());
    let report =
        reconcile_organisations(&recovery.sources, &args.organisation, since, &budget).await;
    println!("alerts seen            {}", report.seen);
    println!(
        "alerts recovered       {} {:?}",
        report.recovered.len(),
        report.recovered
    );
    println!("alerts refreshed       {}", report.refreshed);
    println!("enrolments seen        {}", report.enrolments_seen);
    println!(
        "enrolments recovered   {} {:?}",
        report.enrolments_recovered.len(),
        report.enrolments_recovered
    );
    println!("enrolments refreshed   {}", report.enrolments_refreshed);
    println!("pages                  {}", report.pages);
    println!("errors                 {}", report.errors);
    anyhow::ensure!(
        report.errors == 0
            && report.not_reached == 0
            && report.passes_completed == args.organisation.len(),
        "reconciliation did not finish ({} errors, {} organisations not reached); run it again",
        report.errors,
        report.not_reached
    );
    Ok(())
}
