//! The batch over in-memory fakes: failures, hand-backs, dead letters, archiving.

use super::*;
use aws_lambda_events::event::sqs::SqsMessageAttribute;
use shared::adapters::memory::{
    FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog, RecordingNotifier,
};
use shared::adapters::memory_commit::MemoryCommitter;
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
        self.run_with(records, deadline, Some(&self.archive)).await
    }

    async fn run_with(
        &self,
        records: Vec<SqsMessage>,
        deadline: DateTime<Utc>,
        archive: Option<&Archiver>,
    ) -> (SqsBatchResponse, BatchSummary) {
        let ctx = BatchContext {
            processor: &self.processor,
            queue: &self.queue,
            meter: &NoMeter,
            settings: BatchSettings {
                backoff: RedeliveryBackoff::default(),
                stop_margin: Duration::from_secs(10),
            },
            archive,
        };
        handle_batch(&ctx, batch(records), deadline).await
    }
}

fn world(api: Arc<FakeChargebackStop>) -> World {
    let events = Arc::new(MemoryEventLog::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let enrolments = Arc::new(MemoryEnrolmentStore::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let archived = Arc::new(MemoryArchive::default());
    let processor = EventProcessor {
        events: events.clone(),
        alerts: alerts.clone(),
        enrolments: enrolments.clone(),
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
        commits: Arc::new(
            MemoryCommitter::new(events.clone(), alerts, enrolments).with_archive(archived.clone()),
        ),
    };
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
    let mut body: serde_json::Value = serde_json::from_str(&alert_body("evt_b64", &a1)).unwrap();
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
async fn every_record_is_archived_with_its_first_write_and_an_unarchivable_one_is_not_applied() {
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

#[tokio::test]
async fn every_event_given_up_on_is_told_to_operations_not_only_the_first() {
    // Three alerts ChargebackStop still answers 404 for, two hours after their events: each
    // is a decision someone must make, so each is notified (poison alone is throttled).
    let api = Arc::new(FakeChargebackStop::default());
    let w = world(api);
    let gone = |i: usize| {
        serde_json::json!({"id": format!("evt_gone_{i}"), "type": "alert.created",
            "created_at": "2026-11-24T07:00:00Z",
            "data": {"object": alert(&format!("netalrt_gone_{i}"), 100)}})
        .to_string()
    };
    let records = (0..3)
        .map(|i| record(&format!("m{i}"), &format!("g{i}"), &gone(i), 3))
        .collect();
    let (_, summary) = w.run(records).await;
    assert_eq!(summary.dead_lettered, 3, "{summary:?}");
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 3, "one per event given up on: {sent:?}");
    assert!(sent.iter().all(|n| n.kind == "event.dead_lettered"));
}

#[tokio::test]
async fn a_delivery_the_edge_refused_is_archived_and_never_processed() {
    let api = Arc::new(FakeChargebackStop::default());
    let a1 = alert("netalrt_1", 1000);
    api.put_alert(serde_json::from_value(a1.clone()).unwrap());
    let w = world(api.clone());
    let mut refused = record("m1", "g1", &alert_body("evt_1", &a1), 1);
    refused
        .message_attributes
        .insert("refused".into(), string_attribute("signature_mismatch"));
    let (response, summary) = w.run(vec![refused.clone()]).await;
    assert!(failed_ids(&response).is_empty(), "acknowledged");
    assert_eq!(summary.refused_at_edge, 1);
    assert_eq!((summary.applied, summary.actions_taken), (0, 0));
    assert_eq!(api.gets(), 0, "not even fetched");
    assert!(w.events.record("evt_1").is_none());
    let archived = w.archived.all();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].delivery_id, "refused:idem-m1");
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "webhook.refused_at_edge");

    // With no archive to keep it in, it is dead-lettered, still never processed.
    let (response, summary) = w
        .run_with(vec![refused], now() + chrono::Duration::seconds(30), None)
        .await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!((summary.dead_lettered, summary.applied), (1, 0));
    assert!(w.queue.dead()[0]
        .1
        .starts_with("refused at the edge (signature_mismatch)"));
    assert_eq!(api.gets(), 0);
    assert!(w.events.record("evt_1").is_none());
}
