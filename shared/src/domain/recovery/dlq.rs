//! The dead-letter queue: what is in it and why, moving messages back to the source queue
//! exactly once, and when operations hear about new dead letters.
//!
//! Redrive of the whole queue, unfiltered, is SQS `StartMessageMoveTask` (the queue service
//! moves the messages, at its own pace, with their attributes) where the service runs move
//! tasks. A move task cannot filter by reason or stop after N messages, and moto does not run
//! one: then, and for what a failed task left, redrive is receive → send to the source queue →
//! delete. Each send carries the deduplication id `redrive-<DLQ message id>`: if the delete after a send
//! fails (or the run dies between the two), the message is received again and sent again with
//! the same id, which the FIFO source queue drops within five minutes; later than that, the
//! events table's claim makes the second copy a duplicate (COMPLETED → acknowledged, nothing
//! applied twice).

use crate::event::WebhookEvent;
use crate::ports::dead_letters::{DeadLetterMessage, DeadLetterQueue, QueueError};
use crate::ports::event_archive::EventArchive;
use base64::Engine;
use serde::Serialize;

/// Operations are told of the first poison message since the DLQ was last drained, and of
/// every 100th after it (1, 101, 201, ...): a storm of bad payloads does not become a storm of
/// e-mails. An event given up on (`given_up`: its object stayed missing) is told every time:
/// each is one alert or enrolment a person must look at.
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
    /// Sent to the source queue and deleted from the DLQ, one by one.
    pub moved: Vec<String>,
    /// Moved by the queue service's move task (ids not reported by SQS).
    pub moved_by_task: u64,
    /// `StartMessageMoveTask`, or `receive-send-delete` (a filter, a limit, or a queue service
    /// without move tasks), or both when a task stopped part-way.
    pub methods: Vec<&'static str>,
    /// Left in the DLQ: their reason did not match.
    pub skipped: usize,
    /// What happened on the way that needed no person (a move task refused or stopped, its
    /// rest moved one by one).
    pub notes: Vec<String>,
    /// Sent but not deleted (they come back and are sent again with the same deduplication id),
    /// or not sent, or a move task we stopped waiting for: with the reason.
    pub failed: Vec<(String, String)>,
    /// Whether the DLQ was empty afterwards (the counters were then reset).
    pub drained: bool,
}

impl RedriveReport {
    pub fn moved_count(&self) -> u64 {
        self.moved.len() as u64 + self.moved_by_task
    }
}

/// What a redrive reports as it goes.
pub enum RedriveStep<'a> {
    /// One message moved (or not) by receive → send → delete.
    Message(&'a DeadLetterView, &'a Result<(), String>),
    /// The move task's count so far.
    TaskMoved(u64),
}

/// How often a running move task is asked where it stands, and for how long at most.
const MOVE_TASK_POLL: std::time::Duration = std::time::Duration::from_secs(2);
const MOVE_TASK_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How a move task ended.
enum MoveTask {
    /// None started (the service runs none, or refused): move one by one.
    NotStarted,
    /// COMPLETED.
    Completed,
    /// FAILED or CANCELLED part-way: what it left moves one by one.
    Stopped,
    /// Still running, or unreadable, when we stopped waiting: reported, nothing else moved.
    Unresolved,
}

/// The whole DLQ by the queue service's move task (StartMessageMoveTask).
async fn redrive_by_move_task(
    dlq: &dyn DeadLetterQueue,
    report: &mut RedriveReport,
    progress: &mut impl FnMut(RedriveStep<'_>),
) -> MoveTask {
    let task = match dlq.start_move_task().await {
        Ok(Some(task)) => task,
        Ok(None) => return MoveTask::NotStarted,
        Err(e) => {
            tracing::warn!(error = %e, "StartMessageMoveTask refused; moving message by message");
            report.notes.push(format!("move task not started: {e}"));
            return MoveTask::NotStarted;
        }
    };
    report.methods.push("StartMessageMoveTask");
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(MOVE_TASK_POLL).await;
        let waited_enough = started.elapsed() >= MOVE_TASK_MAX_WAIT;
        let status = match dlq.move_task_status(&task).await {
            Ok(status) => status,
            Err(e) if !waited_enough => {
                tracing::warn!(error = %e, "could not read the move task; asking again");
                continue;
            }
            Err(e) => {
                report
                    .failed
                    .push((task, format!("move task unreadable: {e}")));
                return MoveTask::Unresolved;
            }
        };
        report.moved_by_task = status.moved;
        progress(RedriveStep::TaskMoved(status.moved));
        if status.status == "COMPLETED" {
            return MoveTask::Completed;
        }
        if !status.is_running() {
            report.notes.push(format!(
                "move task {task} {} after {} message(s): {}; the rest moved one by one",
                status.status,
                status.moved,
                status
                    .failure_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ));
            return MoveTask::Stopped;
        }
        if waited_enough {
            report.failed.push((
                task,
                "move task still running; `cbs dlq list` shows what is left".into(),
            ));
            return MoveTask::Unresolved;
        }
    }
}

/// Moves messages whose reason contains `reason` (all when `None`) back to the source queue,
/// at most `max`. The whole queue, unfiltered, goes by the queue service's move task
/// (StartMessageMoveTask) where it runs one; otherwise, and for what a failed task left, each
/// message is received, sent with a deduplication id, then deleted. `progress` hears of each
/// message, or of the task's count.
pub async fn redrive(
    dlq: &dyn DeadLetterQueue,
    archive: Option<&dyn EventArchive>,
    reason: Option<&str>,
    max: u32,
    mut progress: impl FnMut(RedriveStep<'_>),
) -> Result<RedriveReport, QueueError> {
    let mut report = RedriveReport::default();
    let depth = dlq.depth().await?;
    let whole_queue = reason.is_none() && u64::from(max) >= depth && depth > 0;
    if whole_queue {
        match redrive_by_move_task(dlq, &mut report, &mut progress).await {
            MoveTask::Completed | MoveTask::Unresolved => {
                return finish(dlq, archive, report).await
            }
            MoveTask::NotStarted | MoveTask::Stopped => {}
        }
    }
    report.methods.push("receive-send-delete");
    let max = max.saturating_sub(report.moved_by_task.min(u64::from(u32::MAX)) as u32);
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
            progress(RedriveStep::Message(&v, &result));
        }
    }
    for m in &left {
        if let Err(e) = dlq.release(m).await {
            tracing::warn!(message_id = %m.message_id, error = %e, "could not release a skipped message; visible again in a minute");
        }
    }
    finish(dlq, archive, report).await
}

/// Whether the DLQ is now empty; if so the dead-letter counters start again.
async fn finish(
    dlq: &dyn DeadLetterQueue,
    archive: Option<&dyn EventArchive>,
    mut report: RedriveReport,
) -> Result<RedriveReport, QueueError> {
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
