//! `cbs insights backfill`: build the insights counters from the stored alerts and orders of an
//! existing deployment (`shared::domain::insights::backfill`). Prints progress after every page
//! on stderr; killed or stopped by `--max-minutes`, the same command resumes where it stopped;
//! `--restart` walks the tables again from the start (counting nothing twice).

use anyhow::Context;
use shared::adapters::dynamo::insights::{DynamoInsightsStore, DynamoStoredRecords};
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::clock::{Clock, SystemClock};
use shared::config::TableNames;
use shared::domain::insights::backfill::Backfill;
use std::sync::Arc;

#[derive(clap::Subcommand)]
pub enum InsightsCommand {
    /// Count every stored alert and order into the insights counters (resumable, idempotent).
    Backfill(BackfillArgs),
}

#[derive(clap::Args)]
pub struct BackfillArgs {
    /// Items read per page (a Scan page); progress is saved after each.
    #[arg(long, default_value_t = 200)]
    page_size: i32,
    /// Walk both tables again from the first page, even where an earlier run finished.
    #[arg(long)]
    restart: bool,
    /// Take no new page after this many minutes (run the command again to go on).
    #[arg(long)]
    max_minutes: Option<i64>,
}

pub async fn run(cmd: InsightsCommand) -> anyhow::Result<()> {
    let InsightsCommand::Backfill(args) = cmd;
    let tables = TableNames::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    let clock = Arc::new(SystemClock);
    let backfill = Backfill {
        insights: Arc::new(DynamoInsightsStore::new(table(tables.insights()))),
        records: Arc::new(DynamoStoredRecords::new(
            table(tables.alerts()),
            table(tables.orders()),
        )),
        clock: clock.clone(),
        page_size: args.page_size,
        restart: args.restart,
        stop_at: args
            .max_minutes
            .map(|m| clock.now() + chrono::Duration::minutes(m)),
    };
    let report = backfill
        .run(|source, p| {
            eprintln!(
                "insights backfill: {source}: {} records read, {} facts counted{}",
                p.records_seen,
                p.facts_counted,
                if p.done { ", done" } else { "" }
            )
        })
        .await
        .context("insights backfill stopped (progress is saved: run the same command to resume)")?;
    for item in &report.skipped {
        eprintln!(
            "insights backfill: skipped {} {}: {}",
            item.table, item.key, item.reason
        );
    }
    let summary = serde_json::json!({
        "sources": report.sources.iter().map(|(s, p)| serde_json::json!({
            "source": s, "records_seen": p.records_seen, "facts_counted": p.facts_counted, "done": p.done,
        })).collect::<Vec<_>>(),
        "skipped": report.skipped.len(),
        "stopped_early": report.stopped_early,
        "dynamodb_reads": counters.reads(),
        "dynamodb_writes": counters.writes(),
    });
    println!("{summary}");
    if report.stopped_early {
        eprintln!("insights backfill: stopped at --max-minutes; run the same command to go on");
    }
    Ok(())
}
