//! `cbs events replay --event-id ID... | --since T --until T [--type alert.*]
//! [--organisation X] [--dry-run] [--reprocess]`: feeds archived webhooks back through the
//! processor (`shared::domain::recovery::replay`). COMPLETED events are reported and skipped
//! unless `--reprocess`. A progress bar on stderr, a summary table and one line per event on
//! stdout (`--json` for the items as JSON).
//!
//! `--refused` also replays deliveries the edge refused (`shared::domain::recovery::refused`),
//! each one only if it verifies with the webhook signing secret read from Secrets Manager
//! (`WEBHOOK_SECRET_ID`, default `cbs/<test|live>/webhook-secret`, the operators' record copy of
//! the Worker's `WEBHOOK_SECRET`).
//!
//! Environment: TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, the API key (and the AWS
//! variables); read from the dev stack's env file when unset (see `stack_env`).

use crate::recovery_wiring::{self, parse_time};
use shared::domain::recovery::replay::{summarise, ReplayItem, ReplayOptions, ReplaySelection};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum EventsCommand {
    /// Replay archived events through the same processing path as the queue.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// These events (`--event-id A B C`, a comma list, or the flag repeated).
    #[arg(long = "event-id", value_delimiter = ',', num_args = 1..)]
    pub event_ids: Vec<String>,
    /// Received at or after (2026-11-24T10:00:00Z, 2026-11-24, or an age: 3d, 12h).
    #[arg(long, conflicts_with = "event_ids")]
    pub since: Option<String>,
    /// Received before (default: now).
    #[arg(long, conflicts_with = "event_ids")]
    pub until: Option<String>,
    /// `alert.*` (prefix) or an exact type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    #[arg(long)]
    pub organisation: Option<String>,
    /// Report what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Re-run events already COMPLETED (the processor re-fetches their objects first).
    #[arg(long)]
    pub reprocess: bool,
    /// Also replay deliveries the edge refused (a wrong WEBHOOK_SECRET, a too-short retry
    /// window), each only if it verifies with the current signing secret (WEBHOOK_SECRET_ID).
    #[arg(long)]
    pub refused: bool,
    /// Stop starting new events after this long (e.g. 30m); run again for the rest.
    #[arg(long, default_value = "1h")]
    pub max_time: String,
    /// Print the items as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Replay(args) => replay(args).await,
    }
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.event_ids.is_empty() || args.since.is_some(),
        "say what to replay: --event-id ID... or --since T [--until T]"
    );
    let selection = ReplaySelection {
        event_ids: args.event_ids.clone(),
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        event_type: args.event_type.clone(),
        organisation_id: args.organisation.clone(),
    };
    let max_time =
        shared::domain::rate_limit::parse_duration(&args.max_time).map_err(anyhow::Error::msg)?;
    let mut recovery = recovery_wiring::from_env().await?;
    if args.refused {
        recovery.replayer.verify_refused_with = Some(webhook_secret().await?);
    }
    let selected = recovery.replayer.select(&selection).await?;
    let bar = indicatif::ProgressBar::new(selected.deliveries.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let options = ReplayOptions {
        dry_run: args.dry_run,
        reprocess: args.reprocess,
    };
    let items = recovery
        .replayer
        .replay(
            &selected,
            options,
            Instant::now() + max_time,
            Duration::from_secs(60).as_secs() as i64,
            |item| {
                bar.set_message(format!("{} {}", item.event_id, item.result.label()));
                bar.inc(1);
            },
        )
        .await;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        print_table(&items);
    }
    let failed = items
        .iter()
        .filter(|i| {
            matches!(
                i.result,
                shared::domain::recovery::replay::ReplayResult::Failed { .. }
                    | shared::domain::recovery::replay::ReplayResult::Busy
                    | shared::domain::recovery::replay::ReplayResult::StillRefused { .. }
            )
        })
        .count();
    anyhow::ensure!(failed == 0, "{failed} event(s) not replayed (failed, busy or still refused: see the table); run again once the cause is fixed");
    Ok(())
}

/// The webhook signing secret, from Secrets Manager (never from an argument or the env file's
/// values: only its id is configuration).
async fn webhook_secret() -> anyhow::Result<shared::signature::WebhookSecrets> {
    use shared::client::ApiKeyLoader;
    let id = match shared::config::optional("WEBHOOK_SECRET_ID") {
        Some(id) => id,
        None => {
            let mode = shared::config::stack_mode()?;
            let env = match mode {
                shared::config::StackMode::Test => "test",
                shared::config::StackMode::Live => "live",
            };
            format!("cbs/{env}/webhook-secret")
        }
    };
    let secret = shared::client::SecretsManagerKey::new(id.clone(), None)
        .load()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--refused needs the webhook signing secret to verify refused deliveries: {e} \
                 (WEBHOOK_SECRET_ID names the Secrets Manager secret; default {id})"
            )
        })?;
    Ok(shared::signature::WebhookSecrets::new(secret, None))
}

fn print_table(items: &[ReplayItem]) {
    println!("{:<36} {:<24} {:<20} detail", "event", "type", "result");
    for i in items {
        let detail = match &i.result {
            shared::domain::recovery::replay::ReplayResult::Replayed { outcome }
            | shared::domain::recovery::replay::ReplayResult::SkippedCompleted { outcome } => {
                outcome.clone()
            }
            shared::domain::recovery::replay::ReplayResult::Failed { reason }
            | shared::domain::recovery::replay::ReplayResult::RefusedAtEdge { reason }
            | shared::domain::recovery::replay::ReplayResult::StillRefused { reason } => {
                reason.clone()
            }
            _ => String::new(),
        };
        println!(
            "{:<36} {:<24} {:<20} {}",
            i.event_id,
            i.event_type.as_deref().unwrap_or("-"),
            i.result.label(),
            detail
        );
    }
    println!();
    println!("{:<20} count", "result");
    for (label, n) in summarise(items) {
        println!("{label:<20} {n}");
    }
    println!("{:<20} {}", "total", items.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cbs {
        #[command(subcommand)]
        events: EventsCommand,
    }

    fn event_ids(args: &[&str]) -> Vec<String> {
        let cli = Cbs::try_parse_from(["cbs", "replay"].iter().chain(args)).expect("parses");
        let EventsCommand::Replay(replay) = cli.events;
        replay.event_ids
    }

    #[test]
    fn event_ids_are_taken_after_one_flag_in_a_comma_list_or_repeated() {
        let want = vec!["evt_1".to_string(), "evt_2".into(), "evt_3".into()];
        assert_eq!(
            event_ids(&["--event-id", "evt_1", "evt_2", "evt_3", "--dry-run"]),
            want
        );
        assert_eq!(event_ids(&["--event-id", "evt_1,evt_2,evt_3"]), want);
        assert_eq!(
            event_ids(&["--event-id", "evt_1", "--event-id", "evt_2,evt_3"]),
            want
        );
    }
}
