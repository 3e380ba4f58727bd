//! Takes the dumps the checker reads (ChargebackStop's records from the sandbox's admin API, our
//! tables, the dead-letter queue, the notification sink) and writes them with `--out DIR`.

use crate::check::Dumps;
use crate::stack::ChaosStack;
use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The tables the checker reads, dumped on every poll while the run settles.
pub const TABLES: [&str; 5] = ["events", "alerts", "enrolments", "orders", "customers"];

/// The rest of our tables, dumped once at the end so anyone can re-check what we kept: the
/// webhook archive, the partner's transactions, run leases and rate budgets, cursors and the
/// insights counters. Not `operators`: key hashes are nobody's business in a report.
pub const OTHER_TABLES: [&str; 5] = [
    "archive",
    "transactions",
    "run-state",
    "cursors",
    "insights",
];

async fn admin(chaos: &ChaosStack, path: &str) -> anyhow::Result<Value> {
    let (s, v) = chaos
        .stack
        .sandbox_admin(Method::GET, path, None)
        .await
        .with_context(|| format!("GET /_sandbox/{path}"))?;
    anyhow::ensure!(s.is_success(), "GET /_sandbox/{path}: {s}");
    Ok(v)
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// Every message left on the dead-letter queue, with its attributes. Each receive hides the
/// messages for 30 s only, so they are back on the queue for anyone re-checking.
pub async fn dlq_messages(chaos: &ChaosStack) -> anyhow::Result<Vec<Value>> {
    let sqs = &chaos.stack.sqs;
    let url = &chaos.stack.resources.edge_dlq_url;
    let mut seen = BTreeMap::new();
    for _ in 0..100 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .context("receive from the DLQ")?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let id = m.message_id.clone().unwrap_or_default();
            let attributes: BTreeMap<String, String> = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            let message_attributes: BTreeMap<String, Value> = m
                .message_attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let value = v.string_value.clone().map(Value::String).unwrap_or_else(
                        || json!({"data_type": v.data_type(), "binary": v.binary_value.is_some()}),
                    );
                    (k, value)
                })
                .collect();
            seen.insert(
                id.clone(),
                json!({
                    "message_id": id,
                    "body": m.body,
                    "attributes": attributes,
                    "message_attributes": message_attributes,
                }),
            );
        }
    }
    Ok(seen.into_values().collect())
}

pub async fn edge_queue_depth(chaos: &ChaosStack) -> anyhow::Result<u64> {
    let out = chaos
        .stack
        .sqs
        .get_queue_attributes()
        .queue_url(&chaos.stack.resources.edge_queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await?;
    let attrs = out.attributes.unwrap_or_default();
    let n =
        |a: QueueAttributeName| -> u64 { attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0) };
    Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        + n(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
}

pub fn notifications(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Everything but the DLQ (cheap enough to poll while settling).
pub async fn dumps_without_dlq(
    chaos: &ChaosStack,
    queued_orders: Vec<(String, String)>,
) -> anyhow::Result<Dumps> {
    let mut tables = BTreeMap::new();
    for t in TABLES {
        tables.insert(t.to_string(), chaos.stack.scan(t).await?);
    }
    Ok(Dumps {
        sandbox_state: admin(chaos, "state").await?,
        sandbox_events: array(admin(chaos, "events").await?),
        sandbox_deliveries: array(admin(chaos, "deliveries").await?),
        sandbox_actions: array(admin(chaos, "actions").await?),
        dlq: Vec::new(),
        edge_queue_depth: edge_queue_depth(chaos).await?,
        tables,
        notifications: notifications(&chaos.notify_sink),
        queued_orders,
        taken_at: Some(chrono::Utc::now()),
    })
}

pub async fn dumps(
    chaos: &ChaosStack,
    queued_orders: Vec<(String, String)>,
) -> anyhow::Result<Dumps> {
    let mut d = dumps_without_dlq(chaos, queued_orders).await?;
    d.dlq = dlq_messages(chaos).await?;
    for t in OTHER_TABLES {
        d.tables.insert(t.to_string(), chaos.stack.scan(t).await?);
    }
    Ok(d)
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// `report.json`, `sandbox-*.json`, `dlq.json`, `tables/<table>.json`, `notifications.json`
/// and `dumps.json` (all of it in the checker's input form: `chaos --check DIR/dumps.json`).
pub fn write(dir: &Path, d: &Dumps, report: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("tables"))?;
    write_json(&dir.join("report.json"), report)?;
    write_json(&dir.join("sandbox-state.json"), &d.sandbox_state)?;
    write_json(&dir.join("sandbox-events.json"), &d.sandbox_events)?;
    write_json(&dir.join("sandbox-deliveries.json"), &d.sandbox_deliveries)?;
    write_json(&dir.join("sandbox-actions.json"), &d.sandbox_actions)?;
    write_json(&dir.join("dlq.json"), &d.dlq)?;
    write_json(&dir.join("notifications.json"), &d.notifications)?;
    for (name, items) in &d.tables {
        write_json(&dir.join("tables").join(format!("{name}.json")), items)?;
    }
    write_json(&dir.join("dumps.json"), d)?;
    Ok(())
}
