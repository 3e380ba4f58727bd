//! One SQS batch from the edge queue in, one partial batch response out.
//!
//! Every record is processed on its own (`EventProcessor::process`); a record that fails is
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
use crate::queue::EdgeQueue;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;
use chrono::{DateTime, Utc};
use shared::domain::event_processing::redelivery::RedeliveryBackoff;
use shared::domain::event_processing::{EventProcessor, IncomingEvent, ProcessError};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What a record cost, read before and after it (see `CostMeter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub dynamo_reads: u64,
    pub dynamo_writes: u64,
    pub api_calls: u64,
}

impl Cost {
    fn since(self, before: Cost) -> Cost {
        Cost {
            dynamo_reads: self.dynamo_reads - before.dynamo_reads,
            dynamo_writes: self.dynamo_writes - before.dynamo_writes,
            api_calls: self.api_calls - before.api_calls,
        }
    }
}

/// Running totals of DynamoDB requests and ChargebackStop calls. Records are processed one
/// after another, so the difference of two readings is one record's cost.
pub trait CostMeter: Send + Sync {
    fn reading(&self) -> Cost;
}

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
    /// Every record is archived raw before it is processed (`archive`).
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
        // The first dead letter of its kind since the DLQ was drained, then every 100th.
        if let Some(archive) = self.ctx.archive {
            if !archive.notify_due(reason).await {
                return;
            }
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
        if let Some(archive) = ctx.archive {
            if let Err(e) = archive.keep(record, processor.clock.now()).await {
                tracing::error!(message_id, error = %e, "could not archive the delivery; not processed, retried after its backoff");
                run.summary.failed += 1;
                run.retry(record, Retry::Backoff).await;
                continue;
            }
        }
        let incoming = match incoming_from(record) {
            Ok(incoming) => incoming,
            Err(reason) => {
                run.summary.poison += 1;
                run.dead_letter(record, None, &format!("poison: {reason}"))
                    .await;
                continue;
            }
        };

        let before = ctx.meter.reading();
        let started = Instant::now();
        // Cut off a second before the deadline, so the invocation always answers.
        let budget = left.saturating_sub(Duration::from_secs(1));
        let result = tokio::time::timeout(budget, processor.process(&incoming, deadline)).await;
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
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;
    use shared::adapters::memory::{
        FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog,
        RecordingNotifier,
    };
    use shared::adapters::memory_recovery::MemoryArchive;
    use shared::clock::FixedClock;
    use shared::domain::alert_policy::{AlertPolicy, FixedPolicy};
    use shared::ports::decision_inputs::NoPartnerRecords;
    use shared::ports::event_log::EventStatus;
    use std::sync::{Arc, Mutex};

    struct NoMeter;
    impl CostMeter for NoMeter {
        fn reading(&self) -> Cost {
            Cost::default()
        }
    }

    /// Records what the batch did to the queue; can refuse dead-letter sends.
    #[derive(Default)]
    struct FakeQueue {
        visibility: Mutex<Vec<(String, u32)>>,
        dead: Mutex<Vec<(String, String)>>,
        refuse_dead_letters: bool,
    }

    impl FakeQueue {
        fn visibility(&self) -> Vec<(String, u32)> {
            self.visibility.lock().unwrap().clone()
        }
        fn dead(&self) -> Vec<(String, String)> {
            self.dead.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl EdgeQueue for FakeQueue {
        async fn retry_after(&self, receipt: &str, secs: u32) -> anyhow::Result<()> {
            self.visibility
                .lock()
                .unwrap()
                .push((receipt.to_string(), secs));
            Ok(())
        }
        async fn dead_letter(
            &self,
            record: &SqsMessage,
            reason: &str,
            _now: DateTime<Utc>,
        ) -> anyhow::Result<()> {
            if self.refuse_dead_letters {
                anyhow::bail!("SQS unreachable");
            }
            self.dead
                .lock()
                .unwrap()
                .push((record.message_id.clone().unwrap(), reason.to_string()));
            Ok(())
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    struct World {
        processor: EventProcessor,
        events: Arc<MemoryEventLog>,
        notifier: Arc<RecordingNotifier>,
        queue: FakeQueue,
        archive: Archiver,
        archived: Arc<MemoryArchive>,
    }

    impl World {
        async fn run(&self, records: Vec<SqsMessage>) -> (SqsBatchResponse, BatchSummary) {
            self.run_until(records, now() + chrono::Duration::seconds(30))
                .await
        }

        async fn run_until(
            &self,
            records: Vec<SqsMessage>,
            deadline: DateTime<Utc>,
        ) -> (SqsBatchResponse, BatchSummary) {
            let ctx = BatchContext {
                processor: &self.processor,
                queue: &self.queue,
                meter: &NoMeter,
                settings: BatchSettings {
                    backoff: RedeliveryBackoff::default(),
                    stop_margin: Duration::from_secs(10),
                },
                archive: Some(&self.archive),
            };
            handle_batch(&ctx, batch(records), deadline).await
        }
    }

    fn world(api: Arc<FakeChargebackStop>) -> World {
        let events = Arc::new(MemoryEventLog::default());
        let notifier = Arc::new(RecordingNotifier::default());
        let processor = EventProcessor {
            events: events.clone(),
            alerts: Arc::new(MemoryAlertStore::default()),
            enrolments: Arc::new(MemoryEnrolmentStore::default()),
            alert_api: api.clone(),
            enrolment_api: api,
            notifier: notifier.clone(),
            policies: Arc::new(FixedPolicy(AlertPolicy {
                refund_at_or_below_cents: Some(2500),
                ..AlertPolicy::default()
            })),
            partner_records: Arc::new(NoPartnerRecords),
            clock: Arc::new(FixedClock::at(now())),
            not_found_retry_for: chrono::Duration::hours(1),
            refund_first: None,
        };
        let archived = Arc::new(MemoryArchive::default());
        World {
            processor,
            events,
            notifier,
            queue: FakeQueue::default(),
            archive: Archiver {
                store: archived.clone(),
                retention_days: 400,
            },
            archived,
        }
    }

    fn alert(id: &str, amount: i64) -> serde_json::Value {
        serde_json::json!({
            "id": id, "organisation_id": "org_1", "merchant_id": "mrch_1",
            "enrolment_id": "enrl_1", "enrolment_type": "ETHOCA_ALERT",
            "status": "ACTION_REQUIRED", "transaction_amount_in_cents": amount,
            "transaction_currency_code": "USD",
            "action_required_deadline": "2026-11-26T10:00:00Z",
            "alert_received_at": "2026-11-24T09:00:00Z"
        })
    }

    fn string_attribute(v: &str) -> SqsMessageAttribute {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(v.into());
        a.data_type = Some("String".into());
        a
    }

    fn record(message_id: &str, group: &str, body: &str, receive_count: u32) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(message_id.into());
        r.receipt_handle = Some(format!("rh-{message_id}"));
        r.body = Some(body.into());
        r.attributes.insert("MessageGroupId".into(), group.into());
        r.attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        r.message_attributes.insert(
            "idempotency_key".into(),
            string_attribute(&format!("idem-{message_id}")),
        );
        r
    }

    fn alert_body(event_id: &str, alert: &serde_json::Value) -> String {
        serde_json::json!({"id": event_id, "type": "alert.created",
            "created_at": "2026-11-24T09:59:00Z", "data": {"object": alert}})
        .to_string()
    }

    fn batch(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn failed_ids(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    fn rh(ids: &[(&str, u32)]) -> Vec<(String, u32)> {
        ids.iter().map(|(m, s)| (format!("rh-{m}"), *s)).collect()
    }

    #[tokio::test]
    async fn poison_goes_to_the_dead_letter_queue_at_once_and_a_404_comes_back_later() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        let w = world(api.clone());
        let (response, summary) = w
            .run(vec![
                record("m1", "g1", &alert_body("evt_1", &a1), 1),
                record("m2", "g2", "{not json", 1),
                // Unknown to the API (yet): retried after its backoff, not stored as done.
                record(
                    "m3",
                    "g3",
                    &alert_body("evt_3", &alert("netalrt_gone", 1)),
                    1,
                ),
            ])
            .await;
        assert_eq!(failed_ids(&response), vec!["m3"]);
        assert_eq!(w.queue.visibility(), rh(&[("m3", 30)]));
        assert_eq!((summary.poison, summary.dead_lettered), (1, 1));
        assert_eq!((summary.applied, summary.failed), (1, 1));
        assert_eq!(summary.actions_taken, 1);
        let dead = w.queue.dead();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].0, "m2");
        assert!(
            dead[0].1.starts_with("poison: event body is not JSON"),
            "{dead:?}"
        );
        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, "event.dead_lettered");
        assert!(
            w.events.record("evt_3").is_none(),
            "not done, claim released"
        );
        assert_eq!(
            w.events.record("evt_1").unwrap().idempotency_key.as_deref(),
            Some("idem-m1")
        );
    }

    #[tokio::test]
    async fn a_failure_backs_off_and_holds_back_the_rest_of_its_group_only() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        let a2 = alert("netalrt_2", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        api.put_alert(serde_json::from_value(a2.clone()).unwrap());
        api.fail_next_calls(1, 0);
        let w = world(api.clone());
        let (response, summary) = w
            .run(vec![
                record("m1", "g1", &alert_body("evt_1", &a1), 4), // the GET answers 503
                record("m2", "g1", &alert_body("evt_2", &a1), 4), // same group: held back
                record("m3", "g2", &alert_body("evt_3", &a2), 1), // other group: goes on
            ])
            .await;
        assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
        assert_eq!((summary.failed, summary.held_back), (1, 1));
        // The 4th receive failed: back in 30 x 2^3 s. The untried one at once (its group is
        // locked behind m1 until then anyway).
        assert_eq!(w.queue.visibility(), rh(&[("m1", 240), ("m2", 0)]));
        assert!(w.events.record("evt_2").is_none(), "never claimed");
        assert!(w.events.record("evt_3").is_some());
        assert_eq!(api.patches("netalrt_2").len(), 1);
        assert!(w.queue.dead().is_empty());
    }

    #[tokio::test]
    async fn nothing_new_is_started_near_the_deadline() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        let w = world(api.clone());
        let (response, summary) = w
            .run_until(
                vec![
                    record("m1", "g1", &alert_body("evt_1", &a1), 1),
                    record("m2", "g2", "{not json", 1),
                ],
                now() + chrono::Duration::seconds(9),
            )
            .await;
        assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
        assert_eq!(summary.out_of_time, 2);
        assert_eq!(w.queue.visibility(), rh(&[("m1", 0), ("m2", 0)]));
        assert_eq!(api.gets(), 0);
        assert!(w.queue.dead().is_empty());
    }

    #[tokio::test]
    async fn a_base64_body_is_decoded_and_applied() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        let w = world(api.clone());
        // A body the Worker had to send as base64 (U+FFFF is not allowed in an SQS body).
        let mut body: serde_json::Value =
            serde_json::from_str(&alert_body("evt_b64", &a1)).unwrap();
        body["data"]["object"]["note"] = serde_json::json!("odd \u{FFFF} text");
        let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string().as_bytes());
        let mut r = record("m1", "g1", &encoded, 1);
        r.message_attributes
            .insert("body_encoding".into(), string_attribute("base64"));
        let mut bad = record("m2", "g2", "%%% not base64", 1);
        bad.message_attributes
            .insert("body_encoding".into(), string_attribute("base64"));
        let (response, summary) = w.run(vec![r, bad]).await;
        assert!(failed_ids(&response).is_empty());
        assert_eq!(summary.applied, 1);
        assert_eq!(
            w.events.record("evt_b64").unwrap().status,
            EventStatus::Completed
        );
        assert_eq!(api.patches("netalrt_1").len(), 1);
        let dead = w.queue.dead();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].1.contains("not base64"), "{dead:?}");
    }

    #[tokio::test]
    async fn a_dead_letter_that_cannot_be_sent_comes_back() {
        let api = Arc::new(FakeChargebackStop::default());
        let mut w = world(api);
        w.queue.refuse_dead_letters = true;
        let (response, summary) = w.run(vec![record("m1", "g1", "{not json", 2)]).await;
        assert_eq!(failed_ids(&response), vec!["m1"]);
        assert_eq!(w.queue.visibility(), rh(&[("m1", 60)]));
        assert_eq!((summary.dead_lettered, summary.failed), (0, 1));
        assert!(w.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn attributes_become_the_event_arrival() {
        let mut r = record("m1", "g1", "{}", 3);
        r.message_attributes
            .insert("signature_timestamp".into(), string_attribute("1795000000"));
        r.attributes
            .insert("SentTimestamp".into(), "1795000001000".into());
        let incoming = incoming_from(&r).unwrap();
        assert_eq!(incoming.receive_count, 3);
        assert_eq!(incoming.signature_timestamp, Some(1_795_000_000));
        assert_eq!(incoming.idempotency_key.as_deref(), Some("idem-m1"));
        assert_eq!(incoming.received_at, None);
        assert_eq!(
            incoming.sent_at,
            DateTime::from_timestamp_millis(1_795_000_001_000)
        );
    }

    #[tokio::test]
    async fn every_record_is_archived_first_and_an_unarchivable_one_is_not_processed() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_arch", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        let w = world(api.clone());
        *w.archived.refuse_puts.lock().unwrap() = 1;
        let (response, summary) = w
            .run(vec![
                record("m1", "g1", &alert_body("evt_1", &a1), 1),
                record("m2", "g2", "{not json", 1),
            ])
            .await;
        // m1 could not be archived: not claimed, not applied, back after its backoff.
        assert_eq!(failed_ids(&response), vec!["m1"]);
        assert!(w.events.record("evt_1").is_none());
        assert_eq!(summary.applied, 0);
        // The poison message is archived as it came, then dead-lettered.
        let kept = w.archived.all();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].body, b"{not json".to_vec());
        assert_eq!(summary.dead_lettered, 1);

        let (response, summary) = w
            .run(vec![record("m1", "g1", &alert_body("evt_1", &a1), 2)])
            .await;
        assert!(failed_ids(&response).is_empty());
        assert_eq!(summary.applied, 1);
        assert_eq!(w.archived.all().len(), 2);
    }

    #[tokio::test]
    async fn operations_hear_of_the_first_dead_letter_of_a_kind_and_every_100th() {
        let api = Arc::new(FakeChargebackStop::default());
        let w = world(api);
        let poison: Vec<SqsMessage> = (0..101)
            .map(|i| record(&format!("p{i}"), &format!("g{i}"), "{not json", 1))
            .collect();
        for chunk in poison.chunks(10) {
            w.run(chunk.to_vec()).await;
        }
        assert_eq!(w.queue.dead().len(), 101);
        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 2, "the 1st and the 101st");
        // A counter that cannot be read errs on the side of telling.
        *w.archived.counters_down.lock().unwrap() = true;
        w.run(vec![record("p-x", "gx", "{not json", 1)]).await;
        assert_eq!(w.notifier.sent().len(), 3);
    }
}
