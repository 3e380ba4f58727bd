//! `process-events` over real parts: the function under `cargo lambda watch`, invoked with SQS
//! events (and, for the dead-letter case, fed from the real edge queue by the devstack bridge);
//! DynamoDB and SQS from moto with the tables and queues of `infra/template.yaml`;
//! ChargebackStop from the sandbox. The webhook bodies are the events the sandbox itself emitted
//! (`GET /_sandbox/events`), so the function sees what the edge Worker would enqueue.
//!
//! One test runs every scenario on one stack, each with its own organisation: starting
//! `cargo lambda watch` once keeps the suite quick and steady on two cores.
//!
//! Needs the debug binaries `process-events` and `cbs-sandbox`: `bin/test` builds every binary
//! first (`cargo build --workspace --bins`); by hand, run that too, or the first invoke waits
//! minutes while `cargo lambda watch`'s `cargo run` compiles the function. Run with `--nocapture` to
//! see the per-event DynamoDB/API figures and the function's init time and peak memory.

use devstack::{
    resources, Bridge, BridgeOptions, BridgeStats, Functions, Moto, QueueOptions, Resources,
};
use devstack::{Sandbox, SandboxClient, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::events::DynamoEventLog;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::AlertRecord;
use shared::domain::decision::{DecisionResult, DecisionSource};
use shared::domain::enrolment_lifecycle::EnrolmentRecord;
use shared::ports::alert_store::AlertStore;
use shared::ports::enrolment_store::EnrolmentStore;
use shared::ports::event_log::{EventLog, EventRecord, EventStatus};
use std::time::Duration;

const FUNCTION: &str = "process-events";

/// Refund at most 25.00, dispute above 500.00, a person decides in between.
const POLICY: &str = r#"{"name":"e2e-policy","refund_at_or_below_cents":2500,"accept_dispute_above_cents":50000,"note":"Refunded automatically"}"#;

struct Stack {
    #[allow(dead_code)]
    moto: Moto,
    res: Resources,
    /// Kept so the sandbox runs as long as the stack; requests go through `cbs`.
    #[allow(dead_code)]
    sandbox: Sandbox,
    functions: Functions,
    /// The sandbox's partner and admin API, panicking on a refusal.
    cbs: SandboxClient,
    sqs: aws_sdk_sqs::Client,
    alerts: DynamoAlertStore,
    enrolments: DynamoEnrolmentStore,
    events: DynamoEventLog,
    next_message: std::sync::atomic::AtomicU32,
}

/// One record of an SQS batch.
struct Msg {
    id: String,
    body: String,
    group: String,
    receive_count: u32,
}

/// One "event processed" log line of the function.
#[derive(Debug, Clone)]
struct Cost {
    message_id: String,
    event_type: String,
    outcome: String,
    duplicate: bool,
    /// Every DynamoDB request, the archive and the bookkeeping included.
    reads: u64,
    writes: u64,
    /// Of those, the bookkeeping tables' (insights counters, the transactions index).
    bookkeeping_reads: u64,
    bookkeeping_writes: u64,
    api_calls: u64,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        // A short visibility timeout and maxReceiveCount 2, so a poison message reaches the
        // dead-letter queue within seconds; the other scenarios invoke the function directly.
        let res = resources::create_with(
            &moto.endpoint,
            &resources::unique_prefix("pe"),
            &QueueOptions {
                visibility_timeout_secs: Some(1),
                max_receive_count: Some(2),
            },
        )
        .await
        .expect("tables and queues from the template");
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox (cargo build -p cbs-sandbox)");
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        env.push(("DEFAULT_ALERT_POLICY".into(), POLICY.into()));
        let functions = Functions::start_prebuilt(env)
            .await
            .expect("cargo lambda watch");

        let aws = moto.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let tables = TableNames::new(res.table_prefix.clone());
        let table = |name: String| Table::new(dynamo.clone(), name, Default::default());
        Stack {
            alerts: DynamoAlertStore::new(table(tables.alerts())),
            enrolments: DynamoEnrolmentStore::new(table(tables.enrolments())),
            events: DynamoEventLog::new(table(tables.events())),
            sqs: aws_sdk_sqs::Client::new(&aws),
            cbs: SandboxClient::new(
                &sandbox,
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap(),
            ),
            moto,
            res,
            sandbox,
            functions,
            next_message: Default::default(),
        }
    }

    // ------------------------------------------------------------------ the sandbox

    /// An organisation with one merchant; returns (organisation id, merchant id).
    async fn organisation(&self, name: &str) -> (String, String) {
        let org = self
            .cbs
            .api(
                reqwest::Method::POST,
                "/v1/organisations/",
                json!({ "name": name }),
            )
            .await;
        let org_id = org["id"].as_str().unwrap().to_string();
        let merchant = self
            .cbs
            .api(
                reqwest::Method::POST,
                "/v1/merchants/",
                json!({ "organisation_id": org_id, "name": format!("{name} store"),
                        "type": "GENERIC", "external_id": format!("ext-{name}") }),
            )
            .await;
        (org_id, merchant["id"].as_str().unwrap().to_string())
    }

    async fn enrolment(&self, merchant_id: &str, rdr: bool) -> String {
        let body = if rdr {
            json!({ "merchant_ids": [merchant_id], "type": "VERIFI_RDR",
                    "verifi_rdr": { "bin": "424242", "caid": "ACMECAID01" } })
        } else {
            json!({ "merchant_ids": [merchant_id], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [{ "descriptor": "ACMEFIT", "match_type": "STARTS_WITH" }] } })
        };
        let e = self
            .cbs
            .api(reqwest::Method::POST, "/v2/enrolments/", body)
            .await;
        e["id"].as_str().unwrap().to_string()
    }

    async fn enable(&self, enrolment_id: &str) {
        self.cbs
            .api(
                reqwest::Method::PATCH,
                &format!("/v1/simulate/enrolments/{enrolment_id}"),
                json!({ "status": "ENABLED" }),
            )
            .await;
    }

    /// An organisation with an ENABLED enrolment; returns (organisation id, enrolment id).
    async fn enrolled(&self, name: &str, rdr: bool) -> (String, String) {
        let (org, merchant) = self.organisation(name).await;
        let enrolment = self.enrolment(&merchant, rdr).await;
        self.enable(&enrolment).await;
        (org, enrolment)
    }

    async fn simulate_alert(&self, org: &str, enrolment: &str, amount_in_cents: i64) -> String {
        let a = self
            .cbs
            .api(
                reqwest::Method::POST,
                "/v1/simulate/alerts",
                json!({ "organisation_id": org, "enrolment_id": enrolment,
                        "amount_in_cents": amount_in_cents, "currency_code": "USD",
                        "transaction_acquirer_reference_number": "74027012345678901234567" }),
            )
            .await;
        a["id"].as_str().unwrap().to_string()
    }

    /// The newest event of `kind` about `object_id`, as the sandbox emitted it.
    async fn event(&self, kind: &str, object_id: &str) -> Value {
        let all = self.cbs.admin(reqwest::Method::GET, "events", None).await;
        all.as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["type"] == kind && e["data"]["object"]["id"] == object_id)
            .cloned()
            .unwrap_or_else(|| panic!("the sandbox emitted no {kind} for {object_id}"))
    }

    /// API requests the sandbox received after `since` (its request sequence number).
    async fn requests_since(&self, since: u64) -> Vec<Value> {
        self.cbs
            .admin(
                reqwest::Method::GET,
                &format!("requests?since={since}"),
                None,
            )
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    async fn last_request_seq(&self) -> u64 {
        self.requests_since(0)
            .await
            .last()
            .and_then(|r| r["seq"].as_u64())
            .unwrap_or(0)
    }

    /// PATCH /v1/alerts/{id} requests the sandbox received, with the status it answered.
    async fn patches_of(&self, alert_id: &str) -> Vec<Value> {
        self.requests_since(0)
            .await
            .into_iter()
            .filter(|r| r["method"] == "PATCH" && r["path"] == format!("/v1/alerts/{alert_id}"))
            .collect()
    }

    // ------------------------------------------------------------------ the function

    fn msg(&self, event: &Value, group: &str) -> Msg {
        Msg {
            id: self.new_message_id(),
            body: event.to_string(),
            group: group.to_string(),
            receive_count: 1,
        }
    }

    fn new_message_id(&self) -> String {
        let n = self
            .next_message
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("msg-{n:04}")
    }

    /// Invokes the function with these records as one SQS batch, the way the event source
    /// mapping would; returns the message ids it reported in `batchItemFailures`.
    async fn invoke(&self, records: &[Msg]) -> Vec<String> {
        let records: Vec<Value> = records
            .iter()
            .map(|m| {
                let event: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
                json!({
                    "messageId": m.id,
                    "receiptHandle": format!("rh-{}", m.id),
                    "body": m.body,
                    "attributes": {
                        "ApproximateReceiveCount": m.receive_count.to_string(),
                        "MessageGroupId": m.group,
                        "MessageDeduplicationId": event["id"].as_str().unwrap_or(&m.id),
                        "SentTimestamp": "1795000000000",
                    },
                    "messageAttributes": {
                        "idempotency_key": { "stringValue": format!("idem-{}", event["id"].as_str().unwrap_or("none")), "dataType": "String" },
                        "signature_timestamp": { "stringValue": "1795000000", "dataType": "Number" },
                    },
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.res.edge_queue_arn,
                    "awsRegion": devstack::moto::REGION,
                })
            })
            .collect();
        let response = self
            .functions
            .invoke(FUNCTION, json!({ "Records": records }))
            .await
            .expect("process-events answers");
        response["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The functions' JSON log lines so far.
    fn log_lines(&self) -> Vec<Value> {
        self.functions.json_log_lines()
    }

    fn costs(&self) -> Vec<Cost> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["fields"]["message"] == "event processed")
            .map(|l| {
                let f = &l["fields"];
                Cost {
                    message_id: f["message_id"].as_str().unwrap_or_default().into(),
                    event_type: f["event_type"].as_str().unwrap_or_default().into(),
                    outcome: f["outcome"].as_str().unwrap_or_default().into(),
                    duplicate: f["duplicate"].as_bool().unwrap_or(false),
                    reads: f["dynamo_reads"].as_u64().unwrap_or(0),
                    writes: f["dynamo_writes"].as_u64().unwrap_or(0),
                    bookkeeping_reads: f["bookkeeping_reads"].as_u64().unwrap_or(0),
                    bookkeeping_writes: f["bookkeeping_writes"].as_u64().unwrap_or(0),
                    api_calls: f["api_calls"].as_u64().unwrap_or(0),
                }
            })
            .collect()
    }

    fn cost_of(&self, message_id: &str) -> Cost {
        self.costs()
            .into_iter()
            .find(|c| c.message_id == message_id)
            .unwrap_or_else(|| panic!("no 'event processed' log line for {message_id}"))
    }

    // ------------------------------------------------------------------ our tables

    async fn alert(&self, id: &str) -> AlertRecord {
        self.alerts
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("alert {id} is not stored"))
    }

    async fn event_record(&self, event: &Value) -> Option<EventRecord> {
        self.events
            .get(event["id"].as_str().unwrap())
            .await
            .unwrap()
    }

    async fn enrolment_record(&self, id: &str) -> EnrolmentRecord {
        self.enrolments
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("enrolment {id} is not stored"))
    }
}

fn results(record: &AlertRecord) -> Vec<DecisionResult> {
    record.decisions.iter().map(|d| d.result).collect()
}

// ---------------------------------------------------------------------- scenarios

async fn an_enrolment_reaches_enabled(s: &Stack) {
    let (org, merchant) = s.organisation("enrol").await;
    let enrolment = s.enrolment(&merchant, false).await;
    let created = s.event("enrolment.created", &enrolment).await;
    assert_eq!(
        s.invoke(&[s.msg(&created, &org)]).await,
        Vec::<String>::new()
    );
    let stored = s.enrolment_record(&enrolment).await;
    assert!(!stored.live, "not live before ENABLED");

    s.enable(&enrolment).await;
    let updated = s.event("enrolment.updated", &enrolment).await;
    let m = s.msg(&updated, &org);
    assert_eq!(s.invoke(&[m]).await, Vec::<String>::new());
    let stored = s.enrolment_record(&enrolment).await;
    assert!(stored.live, "live once ENABLED");
    assert_eq!(stored.enrolment.status.as_str(), "ENABLED");
    let history: Vec<&str> = stored
        .status_history
        .iter()
        .map(|c| c.status.as_str())
        .collect();
    assert_eq!(history.last(), Some(&"ENABLED"), "{history:?}");
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        stored.status_history[1].event_id.as_deref(),
        updated["id"].as_str()
    );
}

/// An auto-refunded alert, delivered twice in one batch and once more later; returns the
/// message id of its first delivery (for the figures).
async fn duplicates_have_no_second_effect(s: &Stack) -> String {
    let (org, enrolment) = s.enrolled("dupes", false).await;
    let alert = s.simulate_alert(&org, &enrolment, 1000).await;
    let created = s.event("alert.created", &alert).await;

    let seq = s.last_request_seq().await;
    let first = s.msg(&created, &org);
    let first_id = first.id.clone();
    let twin = s.msg(&created, &org);
    let twin_id = twin.id.clone();
    assert_eq!(s.invoke(&[first, twin]).await, Vec::<String>::new());
    let calls = s.requests_since(seq).await;
    let late = s.msg(&created, &org);
    let late_id = late.id.clone();
    assert_eq!(s.invoke(&[late]).await, Vec::<String>::new());

    let patches = s.patches_of(&alert).await;
    assert_eq!(
        patches.len(),
        1,
        "one action, whatever the deliveries: {patches:?}"
    );
    assert_eq!(patches[0]["body"]["action"], "REFUND");
    assert_eq!(patches[0]["body"]["note"], "Refunded automatically");
    let record = s.alert(&alert).await;
    assert_eq!(results(&record), vec![DecisionResult::Applied]);
    assert_eq!(record.decisions[0].source, DecisionSource::AutoPolicy);
    assert!(record.decisions[0].reason.contains("refund threshold"));
    assert_eq!(record.alert.status.as_str(), "RESOLVED");
    assert_eq!(record.action_queue, None);
    let log = s.event_record(&created).await.expect("event recorded");
    assert_eq!(log.status, EventStatus::Completed);
    assert_eq!(log.outcome.as_deref(), Some("alert_actioned:REFUND"));
    assert_eq!(
        log.idempotency_key.as_deref(),
        Some(format!("idem-{}", created["id"].as_str().unwrap()).as_str())
    );

    // The function's own count of API calls agrees with what the sandbox received.
    let (c1, c2, c3) = (
        s.cost_of(&first_id),
        s.cost_of(&twin_id),
        s.cost_of(&late_id),
    );
    assert!(!c1.duplicate && c2.duplicate && c3.duplicate);
    assert_eq!(c1.api_calls as usize, calls.len(), "{calls:?}");
    assert_eq!(c1.api_calls, 2, "one GET per decision, then the PATCH");
    assert_eq!((c2.api_calls, c3.api_calls), (0, 0));
    // The cost now includes the delivery's archive write (it was a second, uncounted write):
    // a duplicate is refused on one consistent read and costs one write, its delivery archived.
    assert_eq!(
        (c2.reads, c2.writes),
        (1, 1),
        "a duplicate costs one consistent read and one write (the archive)"
    );

    // The alert.updated our own PATCH caused is stored and changes nothing.
    let updated = s.event("alert.updated", &alert).await;
    assert_eq!(
        s.invoke(&[s.msg(&updated, &org)]).await,
        Vec::<String>::new()
    );
    assert_eq!(s.patches_of(&alert).await.len(), 1);
    assert_eq!(s.alert(&alert).await.decisions.len(), 1);
    first_id
}

async fn created_and_updated_in_both_orders(s: &Stack) {
    let (org, enrolment) = s.enrolled("pairs", false).await;

    // In order: created (a person must decide), then someone resolves it in the dashboard.
    let a = s.simulate_alert(&org, &enrolment, 10_000).await;
    let created = s.event("alert.created", &a).await;
    assert_eq!(
        s.invoke(&[s.msg(&created, &org)]).await,
        Vec::<String>::new()
    );
    let waiting = s.alert(&a).await;
    assert_eq!(results(&waiting), vec![DecisionResult::LeftForPerson]);
    assert!(waiting.action_queue.is_some(), "on the sweep's queue");
    s.cbs
        .api(
            reqwest::Method::PATCH,
            &format!("/v1/alerts/{a}"),
            json!({ "action": "REFUND" }),
        )
        .await;
    let updated = s.event("alert.updated", &a).await;
    assert_eq!(
        s.invoke(&[s.msg(&updated, &org)]).await,
        Vec::<String>::new()
    );

    // Reversed: resolved first, the updated event arrives before the created one.
    let b = s.simulate_alert(&org, &enrolment, 10_000).await;
    let created_b = s.event("alert.created", &b).await;
    s.cbs
        .api(
            reqwest::Method::PATCH,
            &format!("/v1/alerts/{b}"),
            json!({ "action": "REFUND" }),
        )
        .await;
    let updated_b = s.event("alert.updated", &b).await;
    let (m1, m2) = (s.msg(&updated_b, &org), s.msg(&created_b, &org));
    assert_eq!(s.invoke(&[m1, m2]).await, Vec::<String>::new());

    for id in [&a, &b] {
        let r = s.alert(id).await;
        assert_eq!(r.alert.status.as_str(), "RESOLVED", "{id}");
        assert_eq!(r.action_queue, None, "{id} left the action queue");
        assert_eq!(
            r.alert
                .transaction_refund_outcome
                .as_ref()
                .map(|o| o.to_string())
                .as_deref(),
            Some("REFUNDED")
        );
        assert_eq!(
            s.patches_of(id).await.len(),
            1,
            "only the dashboard's action for {id}"
        );
    }
    let a = s.alert(&a).await;
    assert_eq!(
        results(&a),
        vec![
            DecisionResult::LeftForPerson,
            DecisionResult::ResolvedElsewhere
        ]
    );
    assert!(
        s.alert(&b).await.decisions.is_empty(),
        "never waited, never decided"
    );
}

async fn the_re_fetch_wins_over_a_disagreeing_payload(s: &Stack) {
    let (org, enrolment) = s.enrolled("refetch", false).await;
    let alert = s.simulate_alert(&org, &enrolment, 90_000).await;
    let mut created = s.event("alert.created", &alert).await;
    // The payload claims a refundable amount; the API says 900.00.
    created["data"]["object"]["transaction_amount_in_cents"] = json!(100);
    assert_eq!(
        s.invoke(&[s.msg(&created, &org)]).await,
        Vec::<String>::new()
    );
    let patches = s.patches_of(&alert).await;
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0]["body"]["action"], "ACCEPT_DISPUTE",
        "decided on the API's amount"
    );
    let record = s.alert(&alert).await;
    assert_eq!(record.alert.transaction_amount_in_cents, Some(90_000));
    assert!(
        record.decisions[0].reason.contains("90000"),
        "{:?}",
        record.decisions
    );
}

/// The alert is resolved by someone else between our fetch and our PATCH (one GET per
/// decision: the processor acts on the view it fetched). The sandbox holds every API request
/// `LATENCY_MS`; once it has recorded the function's fetch, the test resolves the alert, which
/// the sandbox then applies before the function's PATCH (that PATCH can only be sent after the
/// fetch's answer). Should the timing still miss, the scenario is
/// set up again (the assertions stay the same).
async fn a_422_on_the_action_is_final(s: &Stack) {
    const LATENCY_MS: u64 = 3000;
    let (org, enrolment) = s.enrolled("race", false).await;
    for attempt in 1..=3 {
        let alert = s.simulate_alert(&org, &enrolment, 1000).await;
        let created = s.event("alert.created", &alert).await;
        s.cbs.faults(json!({ "latency_ms": LATENCY_MS })).await;
        let m = s.msg(&created, &org);
        let invoke = s.invoke(std::slice::from_ref(&m));
        let race = async {
            let path = format!("/v1/alerts/{alert}");
            devstack::wait::until("the function's fetch", Duration::from_secs(60), || {
                let path = path.clone();
                async move {
                    let gets = s
                        .requests_since(0)
                        .await
                        .into_iter()
                        .filter(|r| r["method"] == "GET" && r["path"] == path)
                        .count();
                    (gets >= 1).then_some(())
                }
            })
            .await
            .unwrap();
            s.cbs
                .call(
                    reqwest::Method::PATCH,
                    &format!("/v1/alerts/{alert}"),
                    Some(json!({ "action": "ACCEPT_DISPUTE" })),
                )
                .await
        };
        let (failed, (status, _)) = tokio::join!(invoke, race);
        s.cbs.faults(json!({ "latency_ms": 0 })).await;
        assert_eq!(
            failed,
            Vec::<String>::new(),
            "whatever the timing, nothing is retried"
        );

        let ours: Vec<Value> = s
            .patches_of(&alert)
            .await
            .into_iter()
            .filter(|p| p["body"]["action"] == "REFUND")
            .collect();
        if status != 200 || ours.is_empty() {
            // The timing missed (our PATCH landed first, or the fetch already saw the alert
            // resolved): set the scenario up again with a new alert.
            eprintln!(
                "422 race: attempt {attempt} missed (other party {status}, ours {ours:?}); again"
            );
            continue;
        }
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0]["status"], 422);
        let record = s.alert(&alert).await;
        assert_eq!(results(&record), vec![DecisionResult::Rejected]);
        let detail = record.decisions[0].detail.clone().unwrap_or_default();
        assert!(
            detail.contains("422") && detail.contains("ALERT_ALREADY_RESOLVED"),
            "{detail}"
        );
        assert_eq!(
            record.alert.status.as_str(),
            "RESOLVED",
            "the final state is stored"
        );
        assert_eq!(record.action_queue, None);
        let log = s.event_record(&created).await.unwrap();
        assert_eq!(log.status, EventStatus::Completed);
        assert_eq!(log.outcome.as_deref(), Some("alert_action_rejected"));

        // Redelivered: a duplicate, nothing sent again.
        assert_eq!(
            s.invoke(&[s.msg(&created, &org)]).await,
            Vec::<String>::new()
        );
        let updated = s.event("alert.updated", &alert).await;
        assert_eq!(
            s.invoke(&[s.msg(&updated, &org)]).await,
            Vec::<String>::new()
        );
        let refunds = s
            .patches_of(&alert)
            .await
            .into_iter()
            .filter(|p| p["body"]["action"] == "REFUND")
            .count();
        assert_eq!(refunds, 1);
        return;
    }
    panic!("the 422 race could not be set up in 3 attempts");
}

async fn a_5xx_fails_the_record_and_the_redelivery_applies_it(s: &Stack) {
    let (org, enrolment) = s.enrolled("outage", false).await;
    let alert = s.simulate_alert(&org, &enrolment, 1000).await;
    let created = s.event("alert.created", &alert).await;
    let (_, other_merchant) = s.organisation("outage-other").await;
    let other = s.enrolment(&other_merchant, false).await;
    let other_event = s.event("enrolment.created", &other).await;

    s.cbs
        .faults(json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    let m = s.msg(&created, &org);
    let failed_id = m.id.clone();
    let failed = s.invoke(&[m]).await;
    s.cbs.faults(json!({ "error_rate": 0.0 })).await;
    assert_eq!(
        failed,
        vec![failed_id],
        "only the record that met the outage comes back"
    );
    assert!(
        s.event_record(&created).await.is_none(),
        "the claim was released"
    );
    assert!(
        s.alerts.get(&alert).await.unwrap().is_none(),
        "nothing stored from a failed fetch"
    );

    // The redelivery (and an unrelated record in the same batch) go through.
    let mut again = s.msg(&created, &org);
    again.receive_count = 2;
    assert_eq!(
        s.invoke(&[again, s.msg(&other_event, "g-other")]).await,
        Vec::<String>::new()
    );
    let refunds: Vec<Value> = s.patches_of(&alert).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        results(&s.alert(&alert).await),
        vec![DecisionResult::Applied]
    );
}

async fn an_rdr_alert_is_stored_for_information(s: &Stack) {
    let (org, enrolment) = s.enrolled("rdr", true).await;
    let alert = s.simulate_alert(&org, &enrolment, 1000).await;
    let created = s.event("alert.created", &alert).await;
    let m = s.msg(&created, &org);
    let id = m.id.clone();
    assert_eq!(s.invoke(&[m]).await, Vec::<String>::new());
    let record = s.alert(&alert).await;
    assert!(record.informational);
    assert!(record.decisions.is_empty());
    assert_eq!(record.action_queue, None);
    assert!(
        s.patches_of(&alert).await.is_empty(),
        "RDR alerts are never actioned"
    );
    assert_eq!(s.cost_of(&id).outcome, "alert_informational");
}

async fn poison_messages_go_to_the_dead_letter_queue_at_once_with_their_reason(s: &Stack) {
    // Direct: a wrong-shape and an unparseable record are dead-lettered by the function itself
    // (reported done); the good one in between is applied.
    let (org, merchant) = s.organisation("poison").await;
    let enrolment = s.enrolment(&merchant, false).await;
    let good = s.event("enrolment.created", &enrolment).await;
    let wrong_shape = Msg {
        id: s.new_message_id(),
        body: json!({"id": "evt_no_object", "type": "alert.created", "created_at": "2026-11-24T10:00:00Z",
                     "data": {"object": {"status": "ACTION_REQUIRED"}}})
        .to_string(),
        group: "g-poison-1".into(),
        receive_count: 1,
    };
    let garbage = Msg {
        id: s.new_message_id(),
        body: "{not json".into(),
        group: "g-poison-2".into(),
        receive_count: 1,
    };
    let failed = s.invoke(&[wrong_shape, s.msg(&good, &org), garbage]).await;
    assert_eq!(failed, Vec::<String>::new());
    assert!(s.event_record(&good).await.is_some());
    // The function sent them before it answered.
    let dead = dead_letters(s).await;
    let reason_of = |body: &str| {
        dead.iter()
            .find(|m| m.body.as_deref() == Some(body))
            .and_then(|m| {
                m.message_attributes
                    .as_ref()?
                    .get("reason")?
                    .string_value
                    .clone()
            })
            .unwrap_or_default()
    };
    assert!(reason_of("{not json").contains("not JSON"), "{dead:?}");
    assert!(
        reason_of(&json!({"id": "evt_no_object", "type": "alert.created", "created_at": "2026-11-24T10:00:00Z",
                     "data": {"object": {"status": "ACTION_REQUIRED"}}}).to_string())
        .contains("data.object.id"),
        "{dead:?}"
    );

    // Through the real edge queue: dead-lettered on its first receive, not after
    // maxReceiveCount receives.
    let body = "this is not a ChargebackStop event";
    let sent = s
        .sqs
        .send_message()
        .queue_url(&s.res.edge_queue_url)
        .message_body(body)
        .message_group_id("g-poison-queue")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();
    let message_id = sent.message_id.unwrap();
    let bridge = Bridge::start(
        s.sqs.clone(),
        s.functions.invoker.clone(),
        BridgeOptions {
            wait_time_secs: 1,
            ..BridgeOptions::new(&s.res.edge_queue_url, &s.res.edge_queue_arn, FUNCTION)
        },
    );
    let dead = devstack::wait::until(
        "the poison message in the DLQ",
        Duration::from_secs(90),
        || async {
            let out = s
                .sqs
                .receive_message()
                .queue_url(&s.res.edge_dlq_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .ok()?;
            out.messages
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.body.as_deref() == Some(body))
        },
    )
    .await
    .expect("poison message dead-lettered");
    let deliveries = BridgeStats::get(&bridge.stats.records_delivered);
    let failures = BridgeStats::get(&bridge.stats.records_failed);
    drop(bridge);
    let attributes = dead.message_attributes.clone().unwrap_or_default();
    assert_eq!(
        attributes
            .get("source_message_id")
            .and_then(|a| a.string_value.as_deref()),
        Some(message_id.as_str())
    );
    assert!(attributes["reason"]
        .string_value
        .as_deref()
        .unwrap()
        .contains("not JSON"));

    // Delivered once, reported done; its reason logged at ERROR once.
    assert_eq!((deliveries, failures), (1, 0));
    let reasons: Vec<Value> = s
        .log_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["fields"]["message_id"] == message_id.as_str())
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0]["fields"]["reason"].as_str().unwrap().len() > 5);
}

/// The messages in the dead-letter queue now (received with visibility 0, so left there).
async fn dead_letters(s: &Stack) -> Vec<aws_sdk_sqs::types::Message> {
    s.sqs
        .receive_message()
        .queue_url(&s.res.edge_dlq_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive from the DLQ")
        .messages
        .unwrap_or_default()
}

fn figures(s: &Stack, refunded_first: &str) {
    let lines = s.log_lines();
    let init_ms = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "process-events ready")
        .filter_map(|l| l["fields"]["init_ms"].as_f64())
        .collect::<Vec<_>>();
    let peak_kb = lines
        .iter()
        .filter_map(|l| l["fields"]["peak_rss_kb"].as_u64())
        .max()
        .unwrap_or(0);
    eprintln!("process-events figures (debug build under cargo lambda watch):");
    eprintln!("  init_ms per start: {init_ms:?}; peak RSS {peak_kb} KiB");
    eprintln!(
        "  first auto-refund delivery: {:?}",
        s.cost_of(refunded_first)
    );
    eprintln!(
        "  {:<20} {:<28} {:>5} {:>6} {:>7} {:>8} {:>4} dup",
        "event", "outcome", "reads", "writes", "bk-rds", "bk-wrts", "api"
    );
    for c in s.costs() {
        eprintln!(
            "  {:<20} {:<28} {:>5} {:>6} {:>7} {:>8} {:>4} {}",
            c.event_type,
            c.outcome,
            c.reads,
            c.writes,
            c.bookkeeping_reads,
            c.bookkeeping_writes,
            c.api_calls,
            c.duplicate
        );
    }
    // At most two DynamoDB write requests for every event kind, everything included (archive,
    // event record, alert or enrolment, the matching's index entries, the insights counters: one
    // TransactWriteItems each); a duplicate one (its archive). The bookkeeping writes on their
    // own only when a busy counter refused the transaction, which this calm run never meets.
    for c in s.costs() {
        let most = if c.duplicate { 1 } else { 2 };
        assert!(
            c.writes <= most,
            "{} writes (at most {most}): {c:?}",
            c.writes
        );
        assert_eq!(c.bookkeeping_writes, 0, "{c:?}");
        assert!(c.writes >= 1, "every delivery is archived: {c:?}");
    }
    assert!(!init_ms.is_empty(), "the function logged its start-up");
    assert!(peak_kb > 0, "the function logged its peak memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_events_over_real_parts() {
    let s = Stack::start().await;
    // These scenarios count each call and DynamoDB operation and stage exact races: they need
    // the calm API even when the suite runs under the realistic profile (CBS_SANDBOX_PROFILE).
    s.cbs.faults(json!({ "profile": "none" })).await;
    an_enrolment_reaches_enabled(&s).await;
    let refunded = duplicates_have_no_second_effect(&s).await;
    created_and_updated_in_both_orders(&s).await;
    the_re_fetch_wins_over_a_disagreeing_payload(&s).await;
    a_5xx_fails_the_record_and_the_redelivery_applies_it(&s).await;
    an_rdr_alert_is_stored_for_information(&s).await;
    a_422_on_the_action_is_final(&s).await;
    poison_messages_go_to_the_dead_letter_queue_at_once_with_their_reason(&s).await;
    figures(&s, &refunded);
}
