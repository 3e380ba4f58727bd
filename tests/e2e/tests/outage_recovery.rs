//! An API outage over real parts: moto (the edge queue and DLQ of `infra/template.yaml`, the
//! tables), the sandbox answering every API call with 503, `process-events` under
//! `cargo lambda watch`, fed by the devstack bridge (the event source mapping). Time is scaled
//! down 60 times (queue visibility 180 s -> 3 s; backoff 30 s..15 min -> 1 s..4 s; a 2-hour
//! outage -> 40 s) and the template's maxReceiveCount is used as it is, so the same arithmetic
//! as in production decides whether anything is dead-lettered:
//!
//! - old settings: every receive burnt after the visibility timeout, 5 receives x 3 s = 15 s of
//!   outage and the events were in the DLQ (the 2-hour outage of production: 15 minutes);
//! - now: backoff 1, 2, 4, 4, ... s: 40 s of outage cost 13 receives (as 2 hours do at
//!   30 s..15 min), within the template's maxReceiveCount with room for held-back records.
//!
//! During the outage a poison message goes to the DLQ at once with its reason; after it, every
//! event is COMPLETED, each alert actioned once, and only the poison message and an event whose
//! alert stays 404 past the retry window are in the DLQ, each with its reason and a
//! notification. Then an alert the API answers 404 for at first (a replica behind the webhook:
//! a small HTTP gate in front of the sandbox hides it) is processed once it appears.
//!
//! Needs the debug binaries `process-events` and `cbs-sandbox` (`cargo build --workspace
//! --bins`, or `-p process-events -p cbs-sandbox`).

use devstack::not_found_gate::NotFoundGate;
use devstack::{
    log_dir, resources, Bridge, BridgeOptions, BridgeStats, Functions, Moto, QueueOptions,
    Resources, Sandbox, SandboxClient, SandboxOptions,
};
use serde_json::{json, Value};
use shared::adapters::dynamo::events::DynamoEventLog;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::event_processing::redelivery::RedeliveryBackoff;
use shared::ports::event_log::{EventLog, EventStatus};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FUNCTION: &str = "process-events";
/// Production's 180 s visibility timeout, scaled down 60 times.
const QUEUE_VISIBILITY_SECS: u32 = 3;
/// maxReceiveCount before this fix.
const OLD_MAX_RECEIVE_COUNT: u64 = 5;
/// Production's 30 s .. 15 min backoff, scaled down (the cap a little more, so the arithmetic
/// is the same: 13 receives for the outage).
const BACKOFF: RedeliveryBackoff = RedeliveryBackoff {
    base_secs: 1,
    max_secs: 4,
};
/// Production's 2 hours.
const OUTAGE_SECS: u64 = 40;
/// Production's 1 hour of 404 retries.
const NOT_FOUND_RETRY_SECS: u64 = 20;
const POLICY: &str =
    r#"{"name":"outage-policy","refund_at_or_below_cents":2500,"note":"Refunded automatically"}"#;

struct Stack {
    #[allow(dead_code)]
    moto: Moto,
    res: Resources,
    #[allow(dead_code)]
    sandbox: Sandbox,
    functions: Functions,
    cbs: SandboxClient,
    sqs: aws_sdk_sqs::Client,
    events: DynamoEventLog,
    notifications: PathBuf,
    gate: Arc<NotFoundGate>,
    /// Between process-events and DynamoDB only (SQS stays reachable): closed, DynamoDB is down.
    dynamo_gate: devstack::gate::Gate,
}

/// The outages take turns: each needs the whole machine's timing.
static ONE_OUTAGE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        // The template's maxReceiveCount, the scaled visibility timeout.
        let res = resources::create_with(
            &moto.endpoint,
            &resources::unique_prefix("outage"),
            &QueueOptions {
                visibility_timeout_secs: Some(QUEUE_VISIBILITY_SECS),
                max_receive_count: None,
            },
        )
        .await
        .expect("tables and queues from the template");
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox (cargo build -p cbs-sandbox)");
        let notifications = log_dir().join(format!("{}-notifications.jsonl", res.table_prefix));
        let (gate_url, gate) = NotFoundGate::start(Some(sandbox.base_url.clone()))
            .await
            .expect("gate");
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.retain(|(k, _)| k != "NOTIFY_TOPIC_ARN" && k != "CBS_API_BASE_URL");
        env.push(("CBS_API_BASE_URL".into(), gate_url));
        let dynamo_gate = devstack::gate::Gate::bind("process-events-dynamodb")
            .await
            .expect("a loopback port for the DynamoDB gate");
        dynamo_gate
            .set_upstream(&moto.endpoint)
            .expect("gate upstream");
        // The SDK's service-specific endpoint: only DynamoDB goes through the gate.
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamo_gate.url()));
        env.extend(
            [
                ("STACK_MODE", "TEST".to_string()),
                ("DEFAULT_ALERT_POLICY", POLICY.to_string()),
                ("NOTIFY_SINK", format!("file://{}", notifications.display())),
                ("EVENT_RETRY_BASE_SECS", BACKOFF.base_secs.to_string()),
                ("EVENT_RETRY_MAX_SECS", BACKOFF.max_secs.to_string()),
                (
                    "EVENT_NOT_FOUND_RETRY_SECS",
                    NOT_FOUND_RETRY_SECS.to_string(),
                ),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let functions = Functions::start_prebuilt(env)
            .await
            .expect("cargo lambda watch");
        // Warm up: the first invoke waits for `cargo lambda watch` to start the binary, which
        // would otherwise eat into the outage's timings.
        functions
            .invoker
            .invoke(FUNCTION, json!({ "Records": [] }))
            .await
            .expect("process-events starts");
        let aws = moto.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let tables = TableNames::new(res.table_prefix.clone());
        Stack {
            events: DynamoEventLog::new(Table::new(dynamo, tables.events(), Default::default())),
            sqs: aws_sdk_sqs::Client::new(&aws),
            cbs: SandboxClient::new(
                &sandbox,
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap(),
            ),
            moto,
            res,
            sandbox,
            functions,
            notifications,
            gate,
            dynamo_gate,
        }
    }

    /// An organisation with an ENABLED Ethoca enrolment: (organisation id, enrolment id).
    async fn enrolled(&self, name: &str) -> (String, String) {
        let post = reqwest::Method::POST;
        let org = self
            .cbs
            .api(post.clone(), "/v1/organisations/", json!({ "name": name }))
            .await;
        let org = org["id"].as_str().unwrap().to_string();
        let merchant = self
            .cbs
            .api(
                post.clone(),
                "/v1/merchants/",
                json!({ "organisation_id": org, "name": format!("{name} store"),
                        "type": "GENERIC", "external_id": format!("ext-{name}") }),
            )
            .await;
        let enrolment = self
            .cbs
            .api(
                post,
                "/v2/enrolments/",
                json!({ "merchant_ids": [merchant["id"]], "type": "ETHOCA_ALERT",
                        "ethoca_alert": { "descriptors": [{ "descriptor": "ACMEFIT", "match_type": "STARTS_WITH" }] } }),
            )
            .await;
        let enrolment = enrolment["id"].as_str().unwrap().to_string();
        self.cbs
            .api(
                reqwest::Method::PATCH,
                &format!("/v1/simulate/enrolments/{enrolment}"),
                json!({ "status": "ENABLED" }),
            )
            .await;
        (org, enrolment)
    }

    async fn simulate_alert(&self, org: &str, enrolment: &str) -> String {
        let a = self
            .cbs
            .api(
                reqwest::Method::POST,
                "/v1/simulate/alerts",
                json!({ "organisation_id": org, "enrolment_id": enrolment,
                        "amount_in_cents": 1000, "currency_code": "USD" }),
            )
            .await;
        a["id"].as_str().unwrap().to_string()
    }

    /// Every event the sandbox emitted, in order.
    async fn emitted(&self) -> Vec<Value> {
        self.cbs
            .admin(reqwest::Method::GET, "events", None)
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Enqueue a body the way the edge Worker does (group = the object, dedup = the event id,
    /// the Worker's attributes).
    async fn enqueue(&self, body: &str, event_id: &str, group: &str) {
        let attr = |v: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .unwrap()
        };
        self.sqs
            .send_message()
            .queue_url(&self.res.edge_queue_url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(event_id)
            .message_attributes("event_id", attr(event_id))
            .message_attributes("idempotency_key", attr(&format!("idem-{event_id}")))
            .message_attributes(
                "received_at",
                attr(&shared::ports::event_log::iso(chrono::Utc::now())),
            )
            .send()
            .await
            .expect("send to the edge queue");
    }

    /// The DLQ's messages now (received with visibility 0, so they stay).
    /// Waits until the poison message is in the DLQ, then: it is alone there, with its reason.
    async fn poison_alone_in_the_dlq(&self, poison: &str, within: Duration) {
        let dead = devstack::wait::until("the poison message in the DLQ", within, || async {
            let dead = self.dead_letters().await;
            dead.iter()
                .any(|m| m.body.as_deref() == Some(poison))
                .then_some(dead)
        })
        .await
        .expect("poison dead-lettered");
        assert_eq!(dead.len(), 1, "only the poison message");
        assert!(reason_of(&dead[0]).contains("not JSON"), "{dead:?}");
    }

    async fn dead_letters(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.res.edge_dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive from the DLQ")
            .messages
            .unwrap_or_default()
    }

    async fn max_receive_count(&self) -> u64 {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.res.edge_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let policy: Value =
            serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy])
                .unwrap();
        policy["maxReceiveCount"]
            .as_u64()
            .or_else(|| policy["maxReceiveCount"].as_str()?.parse().ok())
            .unwrap()
    }

    fn notifications(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.notifications)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The functions' JSON log lines so far.
    fn log_lines(&self) -> Vec<Value> {
        self.functions.json_log_lines()
    }

    async fn patches_of(&self, alert_id: &str) -> usize {
        self.cbs
            .admin(
                reqwest::Method::GET,
                &format!("alerts/{alert_id}/actions"),
                None,
            )
            .await
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    }
}

fn reason_of(m: &aws_sdk_sqs::types::Message) -> String {
    m.message_attributes
        .as_ref()
        .and_then(|a| a.get("reason"))
        .and_then(|r| r.string_value.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_dead_letters_nothing_and_loses_nothing() {
    let _turn = ONE_OUTAGE_AT_A_TIME.lock().await;
    let s = Stack::start().await;

    // The arithmetic, with the template's maxReceiveCount.
    let max_receive_count = s.max_receive_count().await;
    let needed = BACKOFF.receives_to_outlast(OUTAGE_SECS);
    let sized = BACKOFF.max_receive_count_for(OUTAGE_SECS, 10);
    eprintln!(
        "outage {OUTAGE_SECS} s: old settings dead-letter after {} s ({OLD_MAX_RECEIVE_COUNT} receives x {QUEUE_VISIBILITY_SECS} s); \
         backoff {}..{} s needs {needed} receives, {sized} with held-back records and hand-backs; maxReceiveCount {max_receive_count}",
        OLD_MAX_RECEIVE_COUNT * u64::from(QUEUE_VISIBILITY_SECS),
        BACKOFF.base_secs,
        BACKOFF.max_secs
    );
    assert!(
        OLD_MAX_RECEIVE_COUNT * u64::from(QUEUE_VISIBILITY_SECS) < OUTAGE_SECS,
        "the outage is long enough for the old settings to dead-letter"
    );
    assert_eq!(
        needed,
        RedeliveryBackoff::default().receives_to_outlast(7_200),
        "scaled like production's 2 hours"
    );
    assert!(
        sized <= max_receive_count as u32,
        "{sized} > {max_receive_count}"
    );

    // The workload: two organisations, their enrolment events (two per enrolment, one FIFO
    // group: the second is held back behind the first), three alerts each.
    let mut alerts = Vec::new();
    for name in ["outage-a", "outage-b"] {
        let (org, enrolment) = s.enrolled(name).await;
        for _ in 0..3 {
            alerts.push(s.simulate_alert(&org, &enrolment).await);
        }
    }
    let emitted = s.emitted().await;
    assert!(emitted.len() >= 10, "{} events", emitted.len());

    // The outage starts; everything arrives during it.
    s.cbs
        .faults(json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    let outage_started = Instant::now();
    for e in &emitted {
        let id = e["id"].as_str().unwrap();
        let group = e["data"]["object"]["id"].as_str().unwrap_or(id);
        s.enqueue(&e.to_string(), id, group).await;
    }
    let poison = "{\"id\": \"evt_cut_off";
    s.enqueue(poison, "poison-1", "g-poison").await;
    // An alert the API will never show (404 once the outage is over).
    let missing = json!({"id": "evt_missing_alert", "type": "alert.created",
        "created_at": shared::ports::event_log::iso(chrono::Utc::now()),
        "data": {"object": {"id": "netalrt_never_there"}}});
    s.enqueue(
        &missing.to_string(),
        "evt_missing_alert",
        "netalrt_never_there",
    )
    .await;

    let bridge = Bridge::start(
        s.sqs.clone(),
        s.functions.invoker.clone(),
        BridgeOptions::new(&s.res.edge_queue_url, &s.res.edge_queue_arn, FUNCTION),
    );

    // The poison message is dead-lettered at once, with its reason, while the outage lasts.
    s.poison_alone_in_the_dlq(poison, Duration::from_secs(30))
        .await;
    eprintln!(
        "poison message dead-lettered {:?} after the outage began",
        outage_started.elapsed()
    );

    // Through the outage: nothing else reaches the DLQ.
    while outage_started.elapsed() < Duration::from_secs(OUTAGE_SECS) {
        let dead = s.dead_letters().await;
        assert_eq!(
            dead.len(),
            1,
            "dead-lettered during the outage after {:?}: {:?}",
            outage_started.elapsed(),
            dead.iter().map(|m| &m.body).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    s.cbs.faults(json!({ "error_rate": 0.0 })).await;
    let recovery_started = Instant::now();

    // Recovery: every emitted event COMPLETED.
    for e in &emitted {
        let id = e["id"].as_str().unwrap().to_string();
        devstack::wait::until(&format!("{id} completed"), Duration::from_secs(60), || {
            let (id, s) = (id.clone(), &s);
            async move {
                let r = s.events.get(&id).await.ok()??;
                (r.status == EventStatus::Completed).then_some(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let recovered_in = recovery_started.elapsed();

    // The permanent 404 is given up (its event is older than the retry window by now).
    let dead = devstack::wait::until(
        "the 404 event in the DLQ",
        Duration::from_secs(30),
        || async {
            let dead = s.dead_letters().await;
            (dead.len() >= 2).then_some(dead)
        },
    )
    .await
    .expect("the missing alert's event dead-lettered");

    assert_eq!(dead.len(), 2, "{dead:?}");
    let missing_dead = dead
        .iter()
        .find(|m| m.body.as_deref() == Some(missing.to_string().as_str()))
        .expect("the missing alert's event");
    let reason = reason_of(missing_dead);
    assert!(
        reason.contains("alert netalrt_never_there not found"),
        "{reason}"
    );
    let record = s.events.get("evt_missing_alert").await.unwrap().unwrap();
    assert_eq!(record.status, EventStatus::DeadLettered);
    // The notification follows the DLQ send (never a note for a message that is not there):
    // wait for it rather than race it.
    let dead_notes = devstack::wait::until(
        "the missing alert's dead-letter notification",
        Duration::from_secs(30),
        || async {
            let notes: Vec<Value> = s
                .notifications()
                .into_iter()
                .filter(|n| n["kind"] == "event.dead_lettered")
                .collect();
            (notes.len() >= 2).then_some(notes)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", s.notifications()));
    assert_eq!(dead_notes.len(), 2, "{dead_notes:?}");
    assert!(dead_notes
        .iter()
        .any(|n| n["object_id"] == "evt_missing_alert"
            && n["note"].as_str().unwrap_or_default().contains("not found")));

    // Each alert actioned exactly once; the edge queue is empty.
    for a in &alerts {
        assert_eq!(s.patches_of(a).await, 1, "{a}");
    }
    devstack::wait::until("the edge queue empty", Duration::from_secs(20), || async {
        let attrs = s
            .sqs
            .get_queue_attributes()
            .queue_url(&s.res.edge_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .ok()?
            .attributes
            .unwrap_or_default();
        let count = |a: aws_sdk_sqs::types::QueueAttributeName| {
            attrs.get(&a).and_then(|v| v.parse::<u64>().ok())
        };
        (count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)? == 0
            && count(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )? == 0)
            .then_some(())
    })
    .await
    .expect("every message deleted or dead-lettered");
    let stats = (
        BridgeStats::get(&bridge.stats.records_delivered),
        BridgeStats::get(&bridge.stats.records_failed),
    );
    drop(bridge);

    // The receives the outage cost.
    let most_receives = s
        .log_lines()
        .iter()
        .filter_map(|l| l["fields"]["receive_count"].as_u64())
        .max()
        .unwrap_or(0);
    eprintln!(
        "outage {OUTAGE_SECS} s: {} records delivered, {} handed back; at most {most_receives} receives of one message \
         (maxReceiveCount {max_receive_count}); every event COMPLETED {recovered_in:?} after the API came back",
        stats.0, stats.1
    );
    assert!(most_receives >= 3, "the outage was met: {most_receives}");
    assert!(most_receives < max_receive_count);

    a_404_that_becomes_200_is_processed(&s).await;
}

/// The API does not show a new alert at first (404), then does: the event is retried with
/// backoff inside the retry window and applied once, nothing dead-lettered.
async fn a_404_that_becomes_200_is_processed(s: &Stack) {
    let (org, enrolment) = s.enrolled("outage-late").await;
    let alert = s.simulate_alert(&org, &enrolment).await;
    s.gate.hide(&alert, true);
    let created = s
        .emitted()
        .await
        .into_iter()
        .rev()
        .find(|e| e["type"] == "alert.created" && e["data"]["object"]["id"] == alert.as_str())
        .expect("alert.created emitted");
    let event_id = created["id"].as_str().unwrap().to_string();
    let dead_before = s.dead_letters().await.len();
    let bridge = Bridge::start(
        s.sqs.clone(),
        s.functions.invoker.clone(),
        BridgeOptions::new(&s.res.edge_queue_url, &s.res.edge_queue_arn, FUNCTION),
    );
    s.enqueue(&created.to_string(), &event_id, &alert).await;
    devstack::wait::until("two 404s", Duration::from_secs(30), || async {
        (s.gate.not_found_answers(&alert) >= 2).then_some(())
    })
    .await
    .expect("the function met the 404 and retried");
    assert!(
        s.events.get(&event_id).await.unwrap().is_none(),
        "not recorded as done while 404"
    );
    s.gate.hide(&alert, false);
    devstack::wait::until(
        "the late alert applied",
        Duration::from_secs(30),
        || async {
            let r = s.events.get(&event_id).await.ok()??;
            (r.status == EventStatus::Completed).then_some(r)
        },
    )
    .await
    .expect("applied once the API shows it");
    drop(bridge);
    assert_eq!(s.patches_of(&alert).await, 1);
    assert_eq!(s.dead_letters().await.len(), dead_before);
    eprintln!(
        "404 then 200: {} answers of 404, then applied",
        s.gate.not_found_answers(&alert)
    );
}

/// DynamoDB unreachable (every connection refused or cut) for the scaled 2 hours, while SQS and
/// the API stay up: process-events can neither archive, claim nor record an event. Nothing
/// reaches the DLQ during it; once DynamoDB is back every event is COMPLETED, each alert
/// actioned exactly once, and the poison message (archived first, then refused) is the only
/// dead letter, with its reason.
#[tokio::test]
async fn a_dynamodb_outage_dead_letters_nothing_and_loses_nothing() {
    let _turn = ONE_OUTAGE_AT_A_TIME.lock().await;
    let s = Stack::start().await;
    let (org, enrolment) = s.enrolled("ddb-outage").await;
    let mut alerts = Vec::new();
    for _ in 0..3 {
        alerts.push(s.simulate_alert(&org, &enrolment).await);
    }
    let emitted = s.emitted().await;
    assert!(emitted.len() >= 5, "{} events", emitted.len());

    s.dynamo_gate.close();
    let outage_started = Instant::now();
    for e in &emitted {
        let id = e["id"].as_str().unwrap();
        let group = e["data"]["object"]["id"].as_str().unwrap_or(id);
        s.enqueue(&e.to_string(), id, group).await;
    }
    let poison = "{\"id\": \"evt_cut_off";
    s.enqueue(poison, "poison-ddb", "g-poison").await;
    let bridge = Bridge::start(
        s.sqs.clone(),
        s.functions.invoker.clone(),
        BridgeOptions::new(&s.res.edge_queue_url, &s.res.edge_queue_arn, FUNCTION),
    );
    // Every record is archived before it is processed, so while DynamoDB is down even the
    // poison message waits (nothing is lost): the DLQ must hold nothing but, at most, it.
    while outage_started.elapsed() < Duration::from_secs(OUTAGE_SECS) {
        let dead = s.dead_letters().await;
        assert!(
            dead.iter().all(|m| m.body.as_deref() == Some(poison)),
            "dead-lettered during the DynamoDB outage after {:?}: {:?}",
            outage_started.elapsed(),
            dead.iter().map(reason_of).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let refused = s.dynamo_gate.stats();
    s.dynamo_gate.open();
    let recovery_started = Instant::now();
    assert!(
        refused.refused + refused.cut > 0,
        "process-events met the outage: {refused:?}"
    );

    for e in &emitted {
        let id = e["id"].as_str().unwrap().to_string();
        devstack::wait::until(&format!("{id} completed"), Duration::from_secs(60), || {
            let (id, s) = (id.clone(), &s);
            async move {
                let r = s.events.get(&id).await.ok()??;
                (r.status == EventStatus::Completed).then_some(())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for a in &alerts {
        assert_eq!(s.patches_of(a).await, 1, "{a} actioned exactly once");
    }
    s.poison_alone_in_the_dlq(poison, Duration::from_secs(60))
        .await;
    drop(bridge);
    let most_receives = s
        .log_lines()
        .iter()
        .filter_map(|l| l["fields"]["receive_count"].as_u64())
        .max()
        .unwrap_or(0);
    eprintln!(
        "DynamoDB outage {OUTAGE_SECS} s: {} connections refused, {} cut; at most {most_receives} receives of one message; \
         every event COMPLETED {:?} after DynamoDB came back",
        refused.refused,
        refused.cut,
        recovery_started.elapsed()
    );
}
