//! `cbs escalations export --organisation X [--since DATE] [--out FILE]`: the escalation
//! records of the organisation's unmatched and ambiguous alerts (`shared::domain::escalation`:
//! the fields the Orders guide asks for when escalating), as CSV, to FILE or stdout.
//!
//! Exit codes: 0 written (even when there is nothing to escalate: the header alone); 1 the
//! alerts table could not be read or FILE written; 2 bad input (unknown organisation, bad date).

use crate::policy::refuse;
use crate::policy_stores::Stores;
use crate::recovery_wiring::parse_time;
use anyhow::Context;
use shared::domain::escalation::{escalations, write_csv};
use shared::domain::matching::dry_run::organisation_known;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum EscalationsCommand {
    /// Unmatched and ambiguous alerts with the Orders guide's escalation fields, as CSV.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub organisation: String,
    /// Alerts received at or after (2026-11-24, 2026-11-24T10:00:00Z, or an age: 30d).
    #[arg(long)]
    pub since: Option<String>,
    /// Write the CSV here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Alerts read at most (newest received first).
    #[arg(long, default_value_t = 20_000)]
    pub limit: i32,
}

pub async fn run(cmd: EscalationsCommand) -> anyhow::Result<()> {
    let EscalationsCommand::Export(args) = cmd;
    let since = args
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .unwrap_or_else(|e| refuse(format!("--since: {e}")));
    if args.limit < 1 {
        refuse("--limit must be at least 1");
    }
    let stores = Stores::from_env().await?;
    let org = args.organisation.as_str();
    if !organisation_known(&*stores.customers, &*stores.alerts, org)
        .await
        .context("reading the customers and alerts tables")?
    {
        refuse(format!(
            "unknown organisation {org}: no customer onboarded for it and no alert stored"
        ));
    }
    let records = escalations(&*stores.alerts, org, since, args.limit)
        .await
        .context("reading the alerts table")?;
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            write_csv(&records, std::io::BufWriter::new(file))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "escalations: {} alert(s) to escalate written to {}",
                records.len(),
                path.display()
            );
        }
        None => {
            write_csv(&records, std::io::stdout().lock()).context("writing to stdout")?;
            eprintln!("escalations: {} alert(s) to escalate", records.len());
        }
    }
    Ok(())
}
