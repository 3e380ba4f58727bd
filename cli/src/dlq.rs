//! `cbs dlq list | show ID | redrive [--reason R] [--max N]`: the edge queue's dead-letter
//! queue (`shared::domain::recovery::dlq`). `redrive` moves messages back to the edge queue
//! exactly once (the whole queue by SQS's move task where it runs one; otherwise, or with
//! `--reason` / `--max`, receive → send with a deduplication id → delete) with a progress bar;
//! when the DLQ is drained, the dead-letter notification counters start again.
//!
//! Environment: EDGE_DLQ_URL, EDGE_QUEUE_URL, TABLE_PREFIX (and the AWS variables).

use crate::recovery_wiring;
use shared::domain::recovery::dlq;
use shared::ports::dead_letters::DeadLetterQueue;

#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// Every message with its reason, event id, type, object id and receive count.
    List {
        #[arg(long, default_value_t = 100)]
        max: u32,
        #[arg(long)]
        json: bool,
    },
    /// One message in full (by its DLQ message id or its event id).
    Show { id: String },
    /// Move messages back to the edge queue.
    Redrive {
        /// Only messages whose reason contains this.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value_t = 1000)]
        max: u32,
    },
}

pub async fn run(cmd: DlqCommand) -> anyhow::Result<()> {
    let queue = recovery_wiring::dlq_from_env().await?;
    match cmd {
        DlqCommand::List { max, json } => {
            let depth = queue.depth().await?;
            let list = dlq::list(&queue, max).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            println!("dead-letter queue depth: {depth}");
            println!(
                "{:<38} {:<28} {:<18} {:<24} {:>5} reason",
                "message", "event", "type", "object", "recv"
            );
            for m in &list {
                println!(
                    "{:<38} {:<28} {:<18} {:<24} {:>5} {}",
                    m.message_id,
                    m.event_id.as_deref().unwrap_or("-"),
                    m.event_type.as_deref().unwrap_or("-"),
                    m.object_id.as_deref().unwrap_or("-"),
                    m.source_receive_count
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.reason
                );
            }
            Ok(())
        }
        DlqCommand::Show { id } => {
            let list = dlq::list(&queue, 1000).await?;
            let found = list
                .iter()
                .find(|m| m.message_id == id || m.event_id.as_deref() == Some(id.as_str()))
                .ok_or_else(|| anyhow::anyhow!("no message {id} in the dead-letter queue"))?;
            println!("{}", serde_json::to_string_pretty(found)?);
            Ok(())
        }
        DlqCommand::Redrive { reason, max } => {
            let archive = recovery_wiring::archive_from_env().await.ok();
            let depth = queue.depth().await?;
            let bar = indicatif::ProgressBar::new(depth.min(u64::from(max)));
            let report =
                dlq::redrive(
                    &queue,
                    archive.as_deref(),
                    reason.as_deref(),
                    max,
                    |step| match step {
                        dlq::RedriveStep::Message(m, result) => {
                            bar.set_message(format!(
                                "{} {}",
                                m.event_id.as_deref().unwrap_or(&m.message_id),
                                if result.is_ok() { "moved" } else { "failed" }
                            ));
                            bar.inc(1);
                        }
                        dlq::RedriveStep::TaskMoved(n) => {
                            bar.set_message("moved by SQS's move task");
                            bar.set_position(n);
                        }
                    },
                )
                .await?;
            bar.finish_and_clear();
            println!("moved {}", report.moved_count());
            println!("by {}", report.methods.join(", then "));
            println!("left (other reasons) {}", report.skipped);
            for note in &report.notes {
                println!("note: {note}");
            }
            for (id, why) in &report.failed {
                println!("failed {id}: {why}");
            }
            println!("drained {}", report.drained);
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} message(s) not moved cleanly; run again",
                report.failed.len()
            );
            Ok(())
        }
    }
}
