//! The dead-letter queue: what is in it and why, moving messages back to the source queue
//! exactly once, and when operations hear about new dead letters.
//!
//! Redrive is receive → send to the source queue → delete, not SQS `StartMessageMoveTask`: a
//! move task cannot filter by reason or stop after N messages, and moto does not run one. Each
//! send carries the deduplication id `redrive-<DLQ message id>`: if the delete after a send
//! fails (or the run dies between the two), the message is received again and sent again with
//! the same id, which the FIFO source queue drops within five minutes; later than that, the
//! events table's claim makes the second copy a duplicate (COMPLETED → acknowledged, nothing
//! applied twice).

use crate::event::WebhookEvent;
use crate::ports::dead_letters::{DeadLetterMessage, DeadLetterQueue, QueueError};
use crate::ports::event_archive::EventArchive;
use base64::Engine;
use serde::Serialize;

/// Operations are told of the first dead letter of a kind since the DLQ was last drained, and
/// of every 100th after it (1, 101, 201, ...): a storm does not become a storm of e-mails.
pub const NOTIFY_EVERY: u64 = 100;

pub fn notify_due(count: u64) -> bool {
    count >= 1 && (count - 1) % NOTIFY_EVERY == 0
}

/// The kind of a dead-letter reason, the unit of the counters: `poison` (a message that can
/// never be processed) or `given_up` (an event whose object stayed missing, and the rest).
pub fn reason_kind(reason: &str) -> &'static str {
    if reason.starts_with("poison") {
        "poison"
    } else {
        "given_up"
    }
}

/// What a message that SQS moved itself (after maxReceiveCount) has for a reason.
pub const MOVED_BY_SQS: &str = "(no reason: moved by SQS after maxReceiveCount receives)";

/// One DLQ message, as `cbs dlq list` and the ops page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterView {
    pub message_id: String,
    pub reason: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub object_id: Option<String>,
    /// Receives in the source queue before it was dead-lettered.
    pub source_receive_count: Option<u32>,
    /// Receives in the DLQ (each look counts).
    pub dlq_receive_count: u32,
    pub dead_lettered_at: Option<String>,
    pub body: String,
}

/// The body as text: decoded when the Worker sent it as base64.
fn body_text(message: &DeadLetterMessage) -> String {
    if message.attributes.get("body_encoding").map(String::as_str) == Some("base64") {
        if let Ok(bytes) =
            base64::engine::general_purpose::STANDARD.decode(message.body.trim().as_bytes())
        {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    message.body.clone()
}

pub fn view(message: &DeadLetterMessage) -> DeadLetterView {
    let body = body_text(message);
    let parsed = WebhookEvent::parse(body.as_bytes()).ok();
    let attr = |k: &str| message.attributes.get(k).filter(|v| !v.is_empty()).cloned();
    DeadLetterView {
        message_id: message.message_id.clone(),
        reason: attr("reason").unwrap_or_else(|| MOVED_BY_SQS.to_string()),
        event_id: attr("event_id").or_else(|| parsed.as_ref().map(|e| e.id.clone())),
        event_type: attr("event_type").or_else(|| parsed.as_ref().map(|e| e.event_type.clone())),
        object_id: parsed
            .as_ref()
            .and_then(|e| e.object_id().map(str::to_string)),
        source_receive_count: attr("receive_count").and_then(|c| c.parse().ok()),
        dlq_receive_count: message.receive_count,
        dead_lettered_at: attr("dead_lettered_at"),
        body,
    }
}

/// How long a listed or redriven message stays hidden from other readers.
const LIST_HIDE_SECS: u32 = 5;
const REDRIVE_HIDE_SECS: u32 = 60;
/// Receives that return nothing before the queue is taken as read to the end.
const EMPTY_RECEIVES: u32 = 2;

/// Lists up to `max` messages (each hidden for a few seconds while listing, then back).
pub async fn list(dlq: &dyn DeadLetterQueue, max: u32) -> Result<Vec<DeadLetterView>, QueueError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut looked_at = Vec::new();
    let mut empty = 0;
    // Bounded: at most max/10 + EMPTY_RECEIVES + a few receives.
    for _ in 0..(max / 10 + 10) {
        if out.len() as u32 >= max || empty >= EMPTY_RECEIVES {
            break;
        }
        let batch = dlq
            .receive(10.min(max - out.len() as u32), LIST_HIDE_SECS)
            .await?;
        if batch.is_empty() {
            empty += 1;
            continue;
        }
        for m in batch {
            if seen.insert(m.message_id.clone()) {
                out.push(view(&m));
            }
            looked_at.push(m);
        }
    }
    // Back in the queue at once: a look takes nothing (a failed release only delays them).
    for m in &looked_at {
        if let Err(e) = dlq.release(m).await {
            tracing::warn!(message_id = %m.message_id, error = %e, "could not release a listed message; visible again in seconds");
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Sent to the source queue and deleted from the DLQ.
    pub moved: Vec<String>,
    /// Left in the DLQ: their reason did not match.
    pub skipped: usize,
    /// Sent but not deleted (they come back and are sent again with the same deduplication id),
    /// or not sent: with the reason.
    pub failed: Vec<(String, String)>,
    /// Whether the DLQ was empty afterwards (the counters were then reset).
    pub drained: bool,
}

/// Moves messages whose reason contains `reason` (all when `None`) back to the source queue,
/// at most `max`. `progress` is called after each message.
pub async fn redrive(
    dlq: &dyn DeadLetterQueue,
    archive: Option<&dyn EventArchive>,
    reason: Option<&str>,
    max: u32,
    mut progress: impl FnMut(&DeadLetterView, &Result<(), String>),
) -> Result<RedriveReport, QueueError> {
    let mut report = RedriveReport::default();
    let mut empty = 0;
    let mut handled = std::collections::BTreeSet::new();
    let mut left = Vec::new();
    for _ in 0..(max / 10 + 20) {
        if report.moved.len() as u32 >= max || empty >= EMPTY_RECEIVES {
            break;
        }
        let batch = dlq.receive(10, REDRIVE_HIDE_SECS).await?;
        if batch.is_empty() {
            empty += 1;
            continue;
        }
        for m in batch {
            let v = view(&m);
            if !handled.insert(m.message_id.clone()) {
                continue;
            }
            if reason.is_some_and(|r| !v.reason.contains(r)) || report.moved.len() as u32 >= max {
                // Left in the DLQ untouched (released below).
                report.skipped += 1;
                left.push(m);
                continue;
            }
            let dedup = format!("redrive-{}", m.message_id);
            let result = match dlq.send_to_source(&m, &dedup).await {
                Err(e) => Err(format!("not sent: {e}")),
                Ok(()) => match dlq.delete(&m).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(format!(
                        "sent, not deleted (a second send with the same deduplication id is dropped): {e}"
                    )),
                },
            };
            match &result {
                Ok(()) => report.moved.push(m.message_id.clone()),
                Err(e) => report.failed.push((m.message_id.clone(), e.clone())),
            }
            progress(&v, &result);
        }
    }
    for m in &left {
        if let Err(e) = dlq.release(m).await {
            tracing::warn!(message_id = %m.message_id, error = %e, "could not release a skipped message; visible again in a minute");
        }
    }
    report.drained = dlq.depth().await? == 0;
    if report.drained {
        if let Some(archive) = archive {
            if let Err(e) = archive.reset_dead_letter_counts().await {
                tracing::warn!(error = %e, "could not reset the dead-letter counters");
            }
        }
    }
    Ok(report)
}

/// Counts one new dead letter of `reason`'s kind; `true` when operations should be told. A
/// counter that cannot be read errs on the side of telling.
pub async fn count_and_decide(archive: &dyn EventArchive, reason: &str) -> bool {
    match archive.count_dead_letter(reason_kind(reason)).await {
        Ok(n) => notify_due(n),
        Err(e) => {
            tracing::warn!(error = %e, "dead-letter counter unavailable; notifying");
            true
        }
    }
}
