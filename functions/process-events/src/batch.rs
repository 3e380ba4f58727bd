//! One SQS batch from the edge queue in, one partial batch response out.
//!
//! Every record is processed on its own (`EventProcessor::process_delivery`, which archives it
//! raw with the event's first write); a record that fails is
//! reported in `batchItemFailures` and its visibility is set to its backoff
//! (`RedeliveryBackoff`: 30 s doubling to 15 min by default) with ChangeMessageVisibility, so a
//! long API or DynamoDB outage costs a few receives per message instead of one every visibility
//! timeout. The edge queue is FIFO: once a record of a message group fails, the later records
//! of that group in this batch are handed back untried (visibility 0: the group stays locked
//! behind its failed head anyway), so a group's events are never applied past one that is still
//! waiting. Records of other groups go on.
//!
//! No record is started with less than the stop margin left before the invocation's deadline,
//! and each one is cut off a second before it: the rest are handed back untried (visibility 0),
//! so the invocation always answers and nothing waits out the queue's visibility timeout.
//!
//! A poison message (unparseable, wrong shape, an undecodable body) and an event the processor
//! gave up on (`ProcessError::DeadLetter`) are sent to the dead-letter queue at once with a
//! `reason` attribute, operations are notified, and the record is reported done. Only if that
//! send fails does the record come back (with backoff) to be dead-lettered again.

use crate::archive::Archiver;
pub use crate::cost::{Cost, CostMeter};
use crate::queue::EdgeQueue;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;
use chrono::{DateTime, Utc};
use shared::domain::event_processing::redelivery::RedeliveryBackoff;
use shared::domain::event_processing::{EventProcessor, IncomingEvent, ProcessError};
use shared::domain::recovery::archive::refused_at_edge;
use shared::domain::recovery::dlq::reason_kind;
use shared::domain::recovery::refused::keep_refused;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Counts of one batch, for the invocation's summary line and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub records: u32,
    pub applied: u32,
    pub duplicates: u32,
    pub actions_taken: u32,
    /// Tried and failed: back on the queue after their backoff.
    pub failed: u32,
    /// Poison messages (a subset of `dead_lettered` when the DLQ send worked).
    pub poison: u32,
    /// Sent to the dead-letter queue with their reason by this batch.
    pub dead_lettered: u32,
    /// Handed back unprocessed behind an earlier failure of their message group.
    pub held_back: u32,
    /// Handed back untried because the invocation was nearly out of time.
    pub out_of_time: u32,
    /// Deliveries the edge refused (a signature it could not verify), archived and not
    /// processed (`shared::domain::recovery::refused`).
    pub refused_at_edge: u32,
}

/// How the batch is run (see `config`).
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    pub backoff: RedeliveryBackoff,
    /// No record is started with less than this left before the deadline.
    pub stop_margin: Duration,
}

/// What a batch needs besides the records.
pub struct BatchContext<'a> {
    pub processor: &'a EventProcessor,
    pub queue: &'a dyn EdgeQueue,
    pub meter: &'a dyn CostMeter,
    pub settings: BatchSettings,
    /// Every record is archived raw: with the event's first write, or on its own when it is
    /// not an event (`archive`).
    pub archive: Option<&'a Archiver>,
}

/// The record as the processor wants it: body (decoded when the edge Worker sent it as
/// base64, `body_encoding=base64`) plus the attributes the Worker set. An undecodable body is
/// an error: the message is poison.
pub fn incoming_from(record: &SqsMessage) -> Result<IncomingEvent, String> {
    let attribute = |name: &str| {
        record
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.clone())
            .filter(|v| !v.is_empty())
    };
    let raw = record.body.clone().unwrap_or_default();
    let body = match attribute("body_encoding").as_deref() {
        None | Some("text") => raw,
        Some("base64") => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .map_err(|e| format!("body_encoding=base64 but the body is not base64: {e}"))?;
            String::from_utf8(bytes)
                .map_err(|e| format!("the base64 body is not UTF-8 text: {e}"))?
        }
        Some(other) => return Err(format!("unknown body_encoding {other:?}")),
    };
    Ok(IncomingEvent {
        message_id: record.message_id.clone().unwrap_or_default(),
        body,
        idempotency_key: attribute("idempotency_key"),
        signature_timestamp: attribute("signature_timestamp").and_then(|t| t.parse().ok()),
        received_at: attribute("received_at"),
        receive_count: receive_count(record),
        sent_at: record
            .attributes
            .get("SentTimestamp")
            .and_then(|ms| ms.parse().ok())
            .and_then(DateTime::from_timestamp_millis),
    })
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Why a record goes back on the queue.
enum Retry {
    /// Tried and failed: come back after the backoff of its receive count.
    Backoff,
    /// Not tried: come back at once (visibility 0).
    Untried,
}

struct Run<'a, 'b> {
    ctx: &'b BatchContext<'a>,
    response: SqsBatchResponse,
    summary: BatchSummary,
    failed_groups: HashSet<String>,
}

impl Run<'_, '_> {
    /// Report the record failed and set when it comes back.
    async fn retry(&mut self, record: &SqsMessage, how: Retry) {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        self.response.add_failure(message_id);
        let visibility = match how {
            Retry::Backoff => {
                if let Some(g) = record.attributes.get("MessageGroupId") {
                    self.failed_groups.insert(g.clone());
                }
                self.ctx
                    .settings
                    .backoff
                    .visibility_after(receive_count(record))
            }
            Retry::Untried => 0,
        };
        let Some(receipt) = record.receipt_handle.as_deref() else {
            return;
        };
        if let Err(e) = self.ctx.queue.retry_after(receipt, visibility).await {
            // The record still comes back, after the queue's own visibility timeout.
            tracing::warn!(message_id, visibility, error = %e, "could not set the message's visibility");
        }
    }

    /// Send the record to the dead-letter queue with the reason and tell operations; if the
    /// send fails, the record comes back to be dead-lettered on a later receive.
    async fn dead_letter(&mut self, record: &SqsMessage, event_id: Option<&str>, reason: &str) {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let now = self.ctx.processor.clock.now();
        if let Err(e) = self.ctx.queue.dead_letter(record, reason, now).await {
            tracing::error!(message_id, event_id, reason, error = %e, "could not send to the dead-letter queue; retried");
            self.summary.failed += 1;
            self.retry(record, Retry::Backoff).await;
            return;
        }
        self.summary.dead_lettered += 1;
        tracing::error!(
            message_id,
            event_id,
            reason,
            receive_count = receive_count(record),
            "sent to the dead-letter queue"
        );
        // Poison: the first since the DLQ was drained, then every 100th (a storm of bad
        // payloads is one problem). An event given up on (its alert or enrolment stayed
        // missing) is a decision someone must make about that object: every one is told.
        let due = match self.ctx.archive {
            Some(archive) => archive.notify_due(reason).await,
            None => true,
        };
        if !due && reason_kind(reason) == "poison" {
            return;
        }
        if let Err(e) = self
            .ctx
            .processor
            .notify_dead_lettered(event_id, message_id, reason)
            .await
        {
            // The copy is in the DLQ (and its depth alarm fires): not worth a second copy.
            tracing::error!(message_id, error = %e, "could not notify operations of a dead letter");
        }
    }
}

pub async fn handle_batch(
    ctx: &BatchContext<'_>,
    event: SqsEvent,
    deadline: DateTime<Utc>,
) -> (SqsBatchResponse, BatchSummary) {
    let mut run = Run {
        ctx,
        response: SqsBatchResponse::default(),
        summary: BatchSummary::default(),
        failed_groups: HashSet::new(),
    };
    let processor = ctx.processor;

    for record in &event.records {
        run.summary.records += 1;
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned();

        let left = (deadline - processor.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if left < ctx.settings.stop_margin {
            tracing::info!(
                message_id,
                left_ms = left.as_millis() as u64,
                "handed back untried: the invocation is nearly out of time"
            );
            run.summary.out_of_time += 1;
            run.retry(record, Retry::Untried).await;
            continue;
        }
        if group
            .as_ref()
            .is_some_and(|g| run.failed_groups.contains(g))
        {
            tracing::info!(
                message_id,
                group = group.as_deref(),
                "held back behind an earlier failure of its message group"
            );
            run.summary.held_back += 1;
            run.retry(record, Retry::Untried).await;
            continue;
        }
        // A delivery the edge refused is kept, never processed.
        let raw = crate::archive::raw_from(record);
        if let (None, Some(code)) = (ctx.archive, refused_at_edge(&raw)) {
            // Nowhere to keep it (no archive wired): never processed all the same.
            let reason = format!("refused at the edge ({code}) and no archive to keep it");
            run.dead_letter(record, None, &reason).await;
            continue;
        }
        if let Some(archive) = ctx.archive {
            match keep_refused(
                &*archive.store,
                &raw,
                processor.clock.now(),
                archive.retention_days,
            )
            .await
            {
                Ok(None) => {}
                Ok(Some(kept)) => {
                    run.summary.refused_at_edge += 1;
                    tracing::warn!(
                        message_id,
                        event_id = raw.attributes.get("event_id").map(String::as_str),
                        refused = %kept.code,
                        newly_archived = kept.newly_archived,
                        "a delivery the edge refused is archived, not processed (`cbs events replay --refused` once the Worker is fixed)"
                    );
                    if let Some(notice) = kept.notify {
                        if let Err(e) = processor.notifier.notify(&notice).await {
                            tracing::error!(message_id, error = %e, "could not tell operations of refused deliveries");
                        }
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(message_id, error = %e, "could not archive a delivery the edge refused; retried after its backoff");
                    run.summary.failed += 1;
                    run.retry(record, Retry::Backoff).await;
                    continue;
                }
            }
        }
        // The cost of the record includes archiving it.
        let before = ctx.meter.reading();
        let started = Instant::now();
        let incoming = match incoming_from(record) {
            Ok(incoming) => incoming,
            Err(reason) => {
                // Kept as it came, then dead-lettered; if it cannot be kept, it comes back.
                if let Some(archive) = ctx.archive {
                    if let Err(e) = archive.keep(record, processor.clock.now()).await {
                        tracing::error!(message_id, error = %e, "could not archive the delivery; not processed, retried after its backoff");
                        run.summary.failed += 1;
                        run.retry(record, Retry::Backoff).await;
                        continue;
                    }
                }
                run.summary.poison += 1;
                run.dead_letter(record, None, &format!("poison: {reason}"))
                    .await;
                continue;
            }
        };

        // Archived with the event's first write (`EventProcessor::process_delivery`).
        let delivery = ctx
            .archive
            .map(|archive| archive.delivery(record, processor.clock.now()));
        // Cut off a second before the deadline, so the invocation always answers.
        let budget = left.saturating_sub(Duration::from_secs(1));
        let result = tokio::time::timeout(
            budget,
            processor.process_delivery(&incoming, delivery, deadline),
        )
        .await;
        let cost = ctx.meter.reading().since(before);
        let duration_ms = started.elapsed().as_millis() as u64;

        let result = match result {
            Ok(result) => result,
            Err(_) => {
                // Safe to cut: the claim expires at the deadline and applying again re-fetches.
                tracing::warn!(
                    message_id,
                    duration_ms,
                    "event cut off at the invocation's deadline, retried by redelivery"
                );
                run.summary.failed += 1;
                run.retry(record, Retry::Backoff).await;
                continue;
            }
        };
        match result {
            Ok(p) => {
                if p.duplicate {
                    run.summary.duplicates += 1;
                } else {
                    run.summary.applied += 1;
                }
                run.summary.actions_taken += p.actions_taken;
                tracing::info!(
                    message_id,
                    event_id = %p.event_id,
                    event_type = %p.event_type,
                    outcome = %p.outcome,
                    duplicate = p.duplicate,
                    actions_taken = p.actions_taken,
                    dynamo_reads = cost.dynamo_reads,
                    dynamo_writes = cost.dynamo_writes,
                    bookkeeping_reads = cost.bookkeeping_reads,
                    bookkeeping_writes = cost.bookkeeping_writes,
                    api_calls = cost.api_calls,
                    duration_ms,
                    "event processed"
                );
            }
            Err(ProcessError::Poison { reason }) => {
                run.summary.poison += 1;
                run.dead_letter(record, None, &format!("poison: {reason}"))
                    .await;
            }
            Err(ProcessError::DeadLetter {
                event_id, reason, ..
            }) => {
                run.dead_letter(record, Some(&event_id), &reason).await;
            }
            Err(e @ ProcessError::Busy { .. }) => {
                tracing::info!(message_id, error = %e, "event busy elsewhere; SQS redelivers it");
                run.summary.failed += 1;
                run.retry(record, Retry::Backoff).await;
            }
            Err(e @ ProcessError::Failed { .. }) => {
                let visibility = ctx
                    .settings
                    .backoff
                    .visibility_after(incoming.receive_count);
                if e.is_retryable() {
                    tracing::warn!(
                        message_id,
                        receive_count = incoming.receive_count,
                        retry_in_secs = visibility,
                        error = %e,
                        dynamo_reads = cost.dynamo_reads,
                        dynamo_writes = cost.dynamo_writes,
                        api_calls = cost.api_calls,
                        duration_ms,
                        "event failed, retried after its backoff"
                    );
                } else {
                    tracing::error!(
                        message_id,
                        receive_count = incoming.receive_count,
                        retry_in_secs = visibility,
                        error = %e,
                        "event failed and needs a person (configuration or a refused call); retried after its backoff, it reaches the dead-letter queue at maxReceiveCount"
                    );
                }
                run.summary.failed += 1;
                run.retry(record, Retry::Backoff).await;
            }
        }
    }
    (run.response, run.summary)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
