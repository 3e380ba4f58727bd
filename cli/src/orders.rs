//! `cbs orders requeue <organisation_id> <reference_id> [--file corrected.json]`: puts a FAILED
//! order back in the upload queue under the same `reference_id`, as it was or replaced by a
//! corrected order (validated like an import: each problem names its field, nothing changes).
//! The same `shared::domain::order_intake::requeue_failed_order` as the ops API's route.
//!
//! Environment: TABLE_PREFIX (and the AWS variables).

use anyhow::Context;
use shared::adapters::dynamo::table::DynamoCounters;
use shared::config::TableNames;
use shared::domain::order_intake::{requeue_failed_order, RequeueAnswer};
use shared::ports::order_outbox::OrderOutbox;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand)]
pub enum OrdersCommand {
    /// Requeue a FAILED order (optionally corrected) for the next upload run.
    Requeue(RequeueArgs),
}

#[derive(clap::Args)]
pub struct RequeueArgs {
    pub organisation_id: String,
    pub reference_id: String,
    /// The corrected order as JSON (same organisation_id and reference_id); without it the
    /// stored order is sent again as it is.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

pub async fn run(cmd: OrdersCommand) -> anyhow::Result<()> {
    match cmd {
        OrdersCommand::Requeue(args) => requeue(args).await,
    }
}

async fn requeue(args: RequeueArgs) -> anyhow::Result<()> {
    let corrected = match &args.file {
        None => None,
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&raw)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            anyhow::ensure!(
                value.is_object(),
                "{} must hold one order object",
                path.display()
            );
            Some(value)
        }
    };
    let tables = TableNames::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    // Orders enter the outbox with their transactions indexed for matching alerts.
    let outbox = shared::adapters::dynamo::transactions::indexed_outbox(
        &aws_sdk_dynamodb::Client::new(&aws),
        &tables,
        Arc::new(DynamoCounters::default()),
    );
    let key = format!("{}/{}", args.organisation_id, args.reference_id);
    match requeue_failed_order(
        &outbox,
        &args.organisation_id,
        &args.reference_id,
        corrected,
        chrono::Utc::now(),
    )
    .await?
    {
        RequeueAnswer::Requeued => {
            let order = outbox
                .get(&args.organisation_id, &args.reference_id)
                .await?
                .context("the requeued order disappeared")?;
            println!(
                "{}",
                serde_json::json!({
                    "organisation_id": order.organisation_id,
                    "reference_id": order.reference_id,
                    "status": order.state.as_str(),
                    "attempts": order.attempts,
                    "queued_at": order.queued_at,
                })
            );
            Ok(())
        }
        RequeueAnswer::Invalid(problems) => {
            for p in &problems {
                eprintln!("order.{}: {}", p.field, p.message);
            }
            anyhow::bail!(
                "the corrected order for {key} is invalid ({} problem(s)); nothing changed",
                problems.len()
            )
        }
        RequeueAnswer::UnknownOrder => anyhow::bail!("no order {key} in the outbox"),
        RequeueAnswer::NotFailed(state) => anyhow::bail!(
            "order {key} is {}; only a FAILED order can be requeued",
            state.as_str()
        ),
    }
}
