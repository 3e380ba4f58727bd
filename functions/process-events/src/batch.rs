//! One SQS batch from the edge queue in, one partial batch response out.
//!
//! Every record is processed on its own (`EventProcessor::process`); a record that fails is
//! reported in `batchItemFailures`, so only it comes back after the visibility timeout and the
//! rest are deleted. The edge queue is FIFO: once a record of a message group fails, the later
//! records of that group in this batch are handed back unprocessed too, so a group's events are
//! never applied past one that is still waiting (AWS's rule for FIFO partial batches). Records
//! of other groups go on.
//!
//! A poison message (unparseable, wrong shape) fails on every delivery and so ends in the
//! dead-letter queue by the queue's redrive policy after maxReceiveCount; its reason is logged
//! at ERROR on its first delivery only, not once per delivery.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use shared::domain::event_processing::{EventProcessor, IncomingEvent, ProcessError};
use std::collections::HashSet;
use std::time::Instant;

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
    pub failed: u32,
    pub poison: u32,
    /// Handed back unprocessed behind an earlier failure of their message group.
    pub held_back: u32,
}

/// The record as the processor wants it: body plus the attributes the edge Worker set.
pub fn incoming_from(record: &SqsMessage) -> IncomingEvent {
    let attribute = |name: &str| {
        record
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.clone())
            .filter(|v| !v.is_empty())
    };
    IncomingEvent {
        message_id: record.message_id.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        idempotency_key: attribute("idempotency_key"),
        signature_timestamp: attribute("signature_timestamp").and_then(|t| t.parse().ok()),
        received_at: attribute("received_at"),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    }
}

pub async fn handle_batch(
    processor: &EventProcessor,
    meter: &dyn CostMeter,
    event: SqsEvent,
    in_progress_until: DateTime<Utc>,
) -> (SqsBatchResponse, BatchSummary) {
    let mut response = SqsBatchResponse::default();
    let mut summary = BatchSummary::default();
    let mut failed_groups: HashSet<String> = HashSet::new();

    for record in &event.records {
        summary.records += 1;
        let incoming = incoming_from(record);
        let message_id = incoming.message_id.as_str();
        let group = record.attributes.get("MessageGroupId").cloned();

        if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
            tracing::info!(
                message_id,
                group = group.as_deref(),
                "held back behind an earlier failure of its message group"
            );
            summary.held_back += 1;
            response.add_failure(message_id);
            continue;
        }

        let before = meter.reading();
        let started = Instant::now();
        let result = processor.process(&incoming, in_progress_until).await;
        let cost = meter.reading().since(before);
        let duration_ms = started.elapsed().as_millis() as u64;

        match result {
            Ok(p) => {
                if p.duplicate {
                    summary.duplicates += 1;
                } else {
                    summary.applied += 1;
                }
                summary.actions_taken += p.actions_taken;
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
                continue;
            }
            Err(ProcessError::Poison { reason }) => {
                summary.poison += 1;
                if incoming.receive_count <= 1 {
                    tracing::error!(
                        message_id,
                        reason = %reason,
                        "poison message: fails on every delivery, goes to the dead-letter queue after maxReceiveCount"
                    );
                } else {
                    tracing::debug!(
                        message_id,
                        receive_count = incoming.receive_count,
                        "poison message again"
                    );
                }
            }
            Err(e @ ProcessError::Busy { .. }) => {
                tracing::info!(message_id, error = %e, "event busy elsewhere; SQS redelivers it");
            }
            Err(e @ ProcessError::Failed { .. }) => {
                let retryable = e.is_retryable();
                if retryable {
                    tracing::warn!(
                        message_id,
                        receive_count = incoming.receive_count,
                        error = %e,
                        dynamo_reads = cost.dynamo_reads,
                        dynamo_writes = cost.dynamo_writes,
                        api_calls = cost.api_calls,
                        duration_ms,
                        "event failed, retried by redelivery"
                    );
                } else {
                    tracing::error!(
                        message_id,
                        receive_count = incoming.receive_count,
                        error = %e,
                        "event failed and needs a person (configuration or a refused call); it reaches the dead-letter queue if it keeps failing"
                    );
                }
            }
        }
        summary.failed += 1;
        if let Some(g) = group {
            failed_groups.insert(g);
        }
        response.add_failure(message_id);
    }
    (response, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;
    use shared::adapters::memory::{
        FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog,
        RecordingNotifier,
    };
    use shared::clock::FixedClock;
    use shared::domain::alert_policy::{AlertPolicy, FixedPolicy};
    use shared::ports::decision_inputs::NoPartnerRecords;
    use std::sync::Arc;

    struct NoMeter;
    impl CostMeter for NoMeter {
        fn reading(&self) -> Cost {
            Cost::default()
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    fn processor(api: Arc<FakeChargebackStop>) -> (EventProcessor, Arc<MemoryEventLog>) {
        let events = Arc::new(MemoryEventLog::default());
        let p = EventProcessor {
            events: events.clone(),
            alerts: Arc::new(MemoryAlertStore::default()),
            enrolments: Arc::new(MemoryEnrolmentStore::default()),
            alert_api: api.clone(),
            enrolment_api: api,
            notifier: Arc::new(RecordingNotifier::default()),
            policies: Arc::new(FixedPolicy(AlertPolicy {
                refund_at_or_below_cents: Some(2500),
                ..AlertPolicy::default()
            })),
            partner_records: Arc::new(NoPartnerRecords),
            clock: Arc::new(FixedClock::at(now())),
        };
        (p, events)
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

    fn record(message_id: &str, group: &str, body: &str, receive_count: u32) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(message_id.into());
        r.body = Some(body.into());
        r.attributes.insert("MessageGroupId".into(), group.into());
        r.attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        let mut key = SqsMessageAttribute::default();
        key.string_value = Some(format!("idem-{message_id}"));
        key.data_type = Some("String".into());
        r.message_attributes.insert("idempotency_key".into(), key);
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

    #[tokio::test]
    async fn only_the_bad_records_come_back() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        let (p, events) = processor(api.clone());
        let event = batch(vec![
            record("m1", "g1", &alert_body("evt_1", &a1), 1),
            record("m2", "g2", "{not json", 1),
            // Unknown to the API: stored as not found, acknowledged.
            record(
                "m3",
                "g3",
                &alert_body("evt_3", &alert("netalrt_gone", 1)),
                1,
            ),
        ]);
        let (response, summary) =
            handle_batch(&p, &NoMeter, event, now() + chrono::Duration::seconds(30)).await;
        assert_eq!(failed_ids(&response), vec!["m2"]);
        assert_eq!(summary.poison, 1);
        assert_eq!(summary.applied, 2);
        assert_eq!(summary.actions_taken, 1);
        assert_eq!(
            events.record("evt_1").unwrap().idempotency_key.as_deref(),
            Some("idem-m1")
        );
    }

    #[tokio::test]
    async fn a_failure_holds_back_the_rest_of_its_group_only() {
        let api = Arc::new(FakeChargebackStop::default());
        let a1 = alert("netalrt_1", 1000);
        let a2 = alert("netalrt_2", 1000);
        api.put_alert(serde_json::from_value(a1.clone()).unwrap());
        api.put_alert(serde_json::from_value(a2.clone()).unwrap());
        api.fail_next_calls(1, 0);
        let (p, events) = processor(api.clone());
        let event = batch(vec![
            record("m1", "g1", &alert_body("evt_1", &a1), 1), // the GET answers 503
            record("m2", "g1", &alert_body("evt_2", &a1), 1), // same group: held back
            record("m3", "g2", &alert_body("evt_3", &a2), 1), // other group: goes on
        ]);
        let (response, summary) =
            handle_batch(&p, &NoMeter, event, now() + chrono::Duration::seconds(30)).await;
        assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
        assert_eq!((summary.failed, summary.held_back), (1, 1));
        assert!(events.record("evt_2").is_none(), "never claimed");
        assert!(events.record("evt_3").is_some());
        assert_eq!(api.patches("netalrt_2").len(), 1);
    }

    #[tokio::test]
    async fn attributes_become_the_event_arrival() {
        let mut r = record("m1", "g1", "{}", 3);
        let mut ts = SqsMessageAttribute::default();
        ts.string_value = Some("1795000000".into());
        r.message_attributes
            .insert("signature_timestamp".into(), ts);
        let incoming = incoming_from(&r);
        assert_eq!(incoming.receive_count, 3);
        assert_eq!(incoming.signature_timestamp, Some(1_795_000_000));
        assert_eq!(incoming.idempotency_key.as_deref(), Some("idem-m1"));
        assert_eq!(incoming.received_at, None);
    }
}
