//! The whole flow over the real local stack (`devstack::Stack`, the same one `bin/dev` runs):
//! the ChargebackStop sandbox signs webhooks to the edge Worker (the built wasm under workerd),
//! which sends them to the FIFO edge queue in moto (created from infra/template.yaml); the bridge
//! feeds the queue to `process-events` like an event source mapping; the functions run as Lambda
//! functions behind `cargo lambda watch`; operators use the ops API.
//!
//! Each test starts its own stack on free ports and onboards its own TEST customer through the
//! ops API. The tests take turns (one stack at a time): two cores, and each stack runs eight
//! processes. Needs every debug binary (`bin/test` builds them first) and the built Worker
//! (`bin/setup`).

use devstack::scenario::{operator_refunds_an_ethoca_alert, status};
use devstack::stack::customer_spec;
use devstack::{resources, scheduler, Customer, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::secret::Secret;
use shared::signature::sign;

/// One stack at a time (a tokio mutex: it does not poison when a test fails).
static ONE_STACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(label: &str) -> Stack {
    Stack::start(StackOptions {
        table_prefix: Some(resources::unique_prefix(label)),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"))
}

async fn onboard(stack: &Stack, spec: Value) -> Customer {
    stack
        .onboard_spec(spec)
        .await
        .unwrap_or_else(|e| panic!("onboarding failed: {e:#}"))
}

async fn set_faults(stack: &Stack, faults: Value) {
    stack
        .sandbox_admin_ok(Method::PUT, "faults", Some(faults))
        .await;
}

/// What ChargebackStop recorded of PATCHes to this alert (accepted or refused).
async fn actions_at_chargebackstop(stack: &Stack, alert_id: &str) -> Vec<Value> {
    stack
        .sandbox_admin_ok(Method::GET, &format!("alerts/{alert_id}/actions"), None)
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The decisions of our stored alert.
fn decisions(stored: &Value) -> Vec<Value> {
    stored["decisions"].as_array().cloned().unwrap_or_default()
}

async fn run_deadline_sweep(stack: &Stack) -> Value {
    stack
        .functions
        .invoke(
            "deadline-sweep",
            scheduler::scheduled_event("deadline-sweep"),
        )
        .await
        .unwrap_or_else(|e| panic!("deadline-sweep failed: {e:#}"))
}

async fn queues_drained(stack: &Stack) {
    stack
        .eventually("the edge queue to drain", || async {
            matches!(stack.queue_depths().await, Ok((0, _))).then_some(())
        })
        .await
        .unwrap();
    let (_, dead) = stack.queue_depths().await.unwrap();
    assert_eq!(dead, 0, "nothing may reach the dead-letter queue");
}

fn iso_in(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// -------------------------------------------------------------------------------------------
// 1. An Ethoca alert: webhook -> Worker -> SQS -> process-events -> DynamoDB, then an operator
//    refunds it through the ops API; ChargebackStop shows it RESOLVED / REFUNDED.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn ethoca_alert_refunded_by_an_operator_is_resolved_at_chargebackstop() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = start("wf-operator").await;
    let customer = onboard(&stack, customer_spec("wf-operator")).await;

    let run = operator_refunds_an_ethoca_alert(&stack, &customer, |_| {})
        .await
        .unwrap_or_else(|e| panic!("scenario: {e:#}"));

    // While it waited, it was in the sweep's sparse index; the policy left it to a person.
    assert_eq!(status(&run.stored_before), "ACTION_REQUIRED");
    assert!(
        run.stored_before["action_queue"].is_string(),
        "waiting alert not in the deadline-index: {}",
        run.stored_before
    );
    assert!(
        decisions(&run.stored_before)
            .iter()
            .all(|d| d["result"] == "LEFT_FOR_PERSON"),
        "nothing may be actioned before the operator: {}",
        run.stored_before
    );
    // ChargebackStop: resolved, refunded, by exactly one accepted PATCH.
    assert_eq!(status(&run.cbs_after), "RESOLVED");
    assert_eq!(run.cbs_after["transaction_refund_outcome"], "REFUNDED");
    let actions = actions_at_chargebackstop(&stack, &run.alert_id).await;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["action"], "REFUND");
    assert_eq!(actions[0]["accepted"], true);
    // Ours: resolved, out of the deadline-index, the operator's decision in the audit trail.
    assert!(
        run.stored_after["action_queue"].is_null(),
        "{}",
        run.stored_after
    );
    let by_operator: Vec<Value> = decisions(&run.stored_after)
        .into_iter()
        .filter(|d| d["source"] == "OPERATOR")
        .collect();
    assert_eq!(by_operator.len(), 1, "{}", run.stored_after);
    assert_eq!(by_operator[0]["action"], "REFUND");
    assert_eq!(by_operator[0]["result"], "APPLIED");
    assert_eq!(by_operator[0]["actor"], devstack::stack::OPERATOR);
    queues_drained(&stack).await;
}

// -------------------------------------------------------------------------------------------
// 1b. Nobody decides: the deadline sweep actions the alert at the cutoff, with the action the
//     customer's policy names for it.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn ethoca_alert_nobody_decided_is_refunded_by_the_sweep_at_the_cutoff() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = start("wf-sweep").await;
    let mut spec = customer_spec("wf-sweep");
    spec["decision_policy"] = json!({
        "name": "wf-sweep-policy",
        "cutoff_action": "REFUND",
        "cutoff_minutes_before_deadline": 120,
    });
    let customer = onboard(&stack, spec).await;

    // Bring the deadline inside the cutoff before the webhook leaves ChargebackStop, so the
    // alert we fetch and store is already due (a simulated alert gets 72 hours).
    set_faults(&stack, json!({ "hold_webhooks": true })).await;
    let alert = stack
        .simulate_alert(
            &customer.organisation_id,
            &customer.ethoca_enrolment_id,
            7300,
        )
        .await
        .unwrap();
    let alert_id = alert["id"].as_str().unwrap().to_string();
    let deadline = iso_in(60);
    stack
        .sandbox_admin_ok(
            Method::PATCH,
            &format!("alerts/{alert_id}"),
            Some(json!({ "action_required_deadline": deadline })),
        )
        .await;
    set_faults(&stack, json!({ "hold_webhooks": false })).await;

    let stored = stack
        .wait_stored_alert(&alert_id, "the due alert stored", |a| {
            status(a) == "ACTION_REQUIRED"
        })
        .await
        .unwrap();
    assert!(stored["action_queue"].is_string(), "{stored}");
    assert!(
        actions_at_chargebackstop(&stack, &alert_id)
            .await
            .is_empty(),
        "no one has acted yet"
    );

    let report = run_deadline_sweep(&stack).await;

    let cbs = stack
        .eventually(
            "ChargebackStop to show the swept alert RESOLVED",
            || async {
                stack
                    .cbs_alert(&alert_id)
                    .await
                    .ok()
                    .filter(|a| status(a) == "RESOLVED")
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; sweep said {report}"));
    assert_eq!(cbs["transaction_refund_outcome"], "REFUNDED", "{cbs}");
    let actions = actions_at_chargebackstop(&stack, &alert_id).await;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["action"], "REFUND");
    let stored = stack
        .wait_stored_alert(&alert_id, "the sweep's decision stored", |a| {
            decisions(a).iter().any(|d| d["source"] == "SWEEP")
        })
        .await
        .unwrap();
    let swept: Vec<Value> = decisions(&stored)
        .into_iter()
        .filter(|d| d["source"] == "SWEEP")
        .collect();
    assert_eq!(swept.len(), 1, "{stored}");
    assert_eq!(swept[0]["action"], "REFUND");
    assert_eq!(swept[0]["result"], "APPLIED");

    // A second run finds nothing left to do: the alert left the deadline-index.
    run_deadline_sweep(&stack).await;
    assert_eq!(actions_at_chargebackstop(&stack, &alert_id).await.len(), 1);
    queues_drained(&stack).await;
}

// -------------------------------------------------------------------------------------------
// 2. A Verifi RDR alert is resolved at the network: stored for information, never actioned.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn rdr_alert_is_stored_and_never_actioned() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = start("wf-rdr").await;
    // A policy that would refund anything at once, and a sweep action: neither may touch RDR.
    let mut spec = customer_spec("wf-rdr");
    spec["decision_policy"] = json!({
        "name": "refund-everything",
        "refund_at_or_below_cents": 1_000_000,
        "cutoff_action": "REFUND",
    });
    let customer = onboard(&stack, spec).await;

    let alert = stack
        .simulate_alert(&customer.organisation_id, &customer.rdr_enrolment_id, 2500)
        .await
        .unwrap();
    let alert_id = alert["id"].as_str().unwrap().to_string();
    let stored = stack
        .wait_stored_alert(&alert_id, "the RDR alert stored", |_| true)
        .await
        .unwrap();
    assert_eq!(stored["enrolment_type"], "VERIFI_RDR");
    assert_eq!(
        stored["status"], alert["status"],
        "stored as ChargebackStop sent it"
    );
    assert_eq!(stored["informational"], true, "{stored}");
    assert!(
        stored["action_queue"].is_null(),
        "RDR in the deadline-index: {stored}"
    );
    assert!(
        decisions(&stored).iter().all(|d| d["result"] != "APPLIED"),
        "{stored}"
    );

    // The sweep passes it by; an operator cannot action it either.
    run_deadline_sweep(&stack).await;
    let (code, body) = stack
        .ops(
            Method::POST,
            &format!("api/alerts/{alert_id}/action"),
            Some(json!({ "action": "REFUND" })),
        )
        .await
        .unwrap();
    assert!(
        !code.is_success(),
        "an RDR alert was actionable: {code} {body}"
    );

    let requests_to_alert = |method: &'static str| {
        let path = format!("requests?method={method}&path=/v1/alerts/{alert_id}/");
        let stack = &stack;
        async move {
            stack
                .sandbox_admin_ok(Method::GET, &path, None)
                .await
                .as_array()
                .cloned()
                .expect("the sandbox lists requests as an array")
        }
    };
    // The processor fetched it (so the request log does see this alert) but never patched it.
    assert!(!requests_to_alert("GET").await.is_empty());
    assert_eq!(
        requests_to_alert("PATCH").await,
        Vec::<Value>::new(),
        "no PATCH may reach ChargebackStop"
    );
    assert!(actions_at_chargebackstop(&stack, &alert_id)
        .await
        .is_empty());
    queues_drained(&stack).await;
}

// -------------------------------------------------------------------------------------------
// 3. An enrolment PENDING -> ENABLED whose two webhooks arrive twice each and newest first
//    ends ENABLED and live.
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn enrolment_enabled_with_duplicated_reordered_webhooks_ends_enabled_and_live() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = start("wf-enrol").await;
    let customer = onboard(&stack, customer_spec("wf-enrol")).await;
    queues_drained(&stack).await;

    set_faults(
        &stack,
        json!({ "hold_webhooks": true, "duplicate_deliveries": true }),
    )
    .await;
    let (code, merchant) = stack
        .cbs_api(
            Method::POST,
            "/v1/merchants/",
            Some(json!({
                "organisation_id": customer.organisation_id,
                "name": "Acme second shop",
                "type": "GENERIC",
                "external_id": "mid-wf-enrol-2",
            })),
        )
        .await
        .unwrap();
    assert!(code.is_success(), "{code} {merchant}");
    let (code, enrolment) = stack
        .cbs_api(
            Method::POST,
            "/v2/enrolments/",
            Some(json!({
                "merchant_ids": [merchant["id"]],
                "type": "ETHOCA_ALERT",
                "ethoca_alert": { "descriptors": [
                    { "descriptor": "ACME*SECOND", "match_type": "STARTS_WITH" }
                ]},
            })),
        )
        .await
        .unwrap();
    assert!(code.is_success(), "{code} {enrolment}");
    assert_eq!(enrolment["status"], "PENDING");
    let enrolment_id = enrolment["id"].as_str().unwrap().to_string();
    let (code, enabled) = stack
        .cbs_api(
            Method::PATCH,
            &format!("/v1/simulate/enrolments/{enrolment_id}/"),
            Some(json!({ "status": "ENABLED" })),
        )
        .await
        .unwrap();
    assert!(code.is_success(), "{code} {enabled}");

    // Both events (created: PENDING, updated: ENABLED) are held; release them newest first.
    let events = stack.sandbox_admin_ok(Method::GET, "events", None).await;
    let ours: Vec<Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["object"]["id"] == enrolment_id.as_str())
        .cloned()
        .collect();
    assert_eq!(ours.len(), 2, "created and updated: {ours:?}");
    // The sandbox's delivery task puts an event on hold shortly after emitting it.
    stack
        .eventually("both events held", || async {
            let held = stack.sandbox_admin_ok(Method::GET, "webhooks", None).await["held"].clone();
            let held = held.as_array().cloned().unwrap_or_default();
            ours.iter().all(|e| held.contains(&e["id"])).then_some(())
        })
        .await
        .unwrap();
    stack
        .sandbox_admin_ok(
            Method::POST,
            "webhooks/release",
            Some(json!({ "order": "reverse" })),
        )
        .await;
    set_faults(
        &stack,
        json!({ "hold_webhooks": false, "duplicate_deliveries": false }),
    )
    .await;

    let stored = stack
        .wait_stored_enrolment(&enrolment_id, "the enrolment stored ENABLED", |e| {
            e["status"] == "ENABLED"
        })
        .await
        .unwrap();
    // Every copy of both events was delivered and accepted by the Worker.
    for e in &ours {
        let event_id = e["id"].as_str().unwrap();
        let deliveries = stack.sandbox_deliveries(event_id).await.unwrap();
        let accepted = deliveries
            .iter()
            .filter(|d| {
                d["status_code"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
            })
            .count();
        assert!(accepted >= 2, "{event_id} delivered once: {deliveries:?}");
        // Processed exactly once, whatever the copies.
        let record = stack
            .eventually("the event's idempotency record", || async {
                stack
                    .stored_event(event_id)
                    .await
                    .ok()
                    .flatten()
                    .filter(|r| r["status"] == "COMPLETED")
            })
            .await
            .unwrap();
        assert_eq!(record["event_id"], event_id);
    }
    queues_drained(&stack).await;
    // The last word is ENABLED although the PENDING event came last.
    let stored = stack
        .stored_enrolment(&enrolment_id)
        .await
        .unwrap()
        .unwrap_or(stored);
    assert_eq!(stored["status"], "ENABLED", "{stored}");
    assert_eq!(stored["live"], true, "{stored}");
    let (code, detail) = stack
        .ops(Method::GET, &format!("api/enrolments/{enrolment_id}"), None)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::OK, "{detail}");
    assert_eq!(detail["stored"]["status"], "ENABLED", "{detail}");
}

// -------------------------------------------------------------------------------------------
// 4. A forged webhook is refused at the edge and leaves no trace in any table but the archive,
//    where the copies that could pass for ChargebackStop's are kept marked refused (never
//    processed, `cbs events replay --refused` re-verifies them); the genuine delivery of the
//    same alert, let through afterwards, is stored (the check could fail).
// -------------------------------------------------------------------------------------------
#[tokio::test]
async fn forged_webhook_is_refused_at_the_edge_and_leaves_no_trace() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = start("wf-forged").await;
    let customer = onboard(&stack, customer_spec("wf-forged")).await;
    queues_drained(&stack).await;

    set_faults(&stack, json!({ "hold_webhooks": true })).await;
    let alert = stack
        .simulate_alert(
            &customer.organisation_id,
            &customer.ethoca_enrolment_id,
            4200,
        )
        .await
        .unwrap();
    let alert_id = alert["id"].as_str().unwrap().to_string();
    let events = stack.sandbox_admin_ok(Method::GET, "events", None).await;
    let genuine = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["object"]["id"] == alert_id.as_str())
        .cloned()
        .expect("the alert.created event");
    // The same event under a new id, so any trace of it would be told apart from the genuine one.
    let forged_id = format!(
        "evt_forged_{}",
        resources::unique_prefix("x").replace('-', "")
    );
    let mut forged = genuine.clone();
    forged["id"] = json!(forged_id);
    let body = serde_json::to_vec(&forged).unwrap();
    let now = chrono::Utc::now().timestamp();
    let right = Secret::new(stack.webhook_secret.expose());
    let wrong = Secret::new("whsec_not_the_one_chargebackstop_has");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let attempts: Vec<(&str, Option<String>, Vec<u8>)> = vec![
        ("wrong secret", Some(sign(&wrong, now, &body)), body.clone()),
        ("no signature", None, body.clone()),
        // Retried deliveries may carry their first signature, so a correctly signed `t` is
        // accepted up to the retry window (50 h, edge-worker/README.md); past it, never.
        (
            "timestamp older than the retried-delivery window",
            Some(sign(&right, now - 51 * 3600, &body)),
            body.clone(),
        ),
        (
            "timestamp an hour in the future",
            Some(sign(&right, now + 3600, &body)),
            body.clone(),
        ),
        (
            "body changed after signing",
            Some(sign(&right, now, &body)),
            tampered,
        ),
        ("malformed header", Some("v1=deadbeef".into()), body.clone()),
    ];
    let delivered_before = devstack::BridgeStats::get(&stack.bridge.stats.records_delivered);
    for (what, signature, payload) in attempts {
        let mut req = stack
            .http
            .post(stack.worker.webhook_url())
            .header("content-type", "application/json")
            .header("X-Idempotency-Key", format!("idem_{forged_id}"))
            .body(payload);
        if let Some(s) = signature {
            req = req.header("X-Signature", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // A forged signature over a readable event is kept, marked: one archive item for the one
    // delivery id, refused, and nothing else reached the processor. The missing and the
    // malformed header are not kept at all.
    let kept = stack
        .eventually("the refused copies archived", || async {
            let kept: Vec<Value> = stack
                .scan("archive")
                .await
                .unwrap()
                .into_iter()
                .filter(|i| i["event_id"] == forged_id.as_str())
                .collect();
            (!kept.is_empty() && stack.queue_depths().await.unwrap() == (0, 0)).then_some(kept)
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["delivery_id"], format!("refused:idem_{forged_id}"));
    assert!(kept[0]["headers"]["x-edge-refused"]
        .as_str()
        .is_some_and(|c| c.starts_with("signature_")));
    // At most one copy per attempt that could pass for ChargebackStop's (wrong secret, too
    // old, from the future, changed body), none for the other two; all archived, none processed
    // (the tables below hold no trace).
    let reached =
        devstack::BridgeStats::get(&stack.bridge.stats.records_delivered) - delivered_before;
    assert!(
        (1..=4).contains(&reached),
        "{reached} records reached the processor"
    );

    // Now let the genuine delivery through: it must be stored, so the pipeline was live.
    set_faults(&stack, json!({ "hold_webhooks": false })).await;
    stack
        .wait_stored_alert(&alert_id, "the genuine delivery stored", |_| true)
        .await
        .unwrap();
    queues_drained(&stack).await;
    let genuine_id = genuine["id"].as_str().unwrap();
    assert!(stack.stored_event(genuine_id).await.unwrap().is_some());
    for table in [
        "events",
        "alerts",
        "enrolments",
        "orders",
        "customers",
        "operators",
    ] {
        let items = stack.scan(table).await.unwrap();
        for item in items {
            let text = item.to_string();
            assert!(
                !text.contains(&forged_id) && !text.contains("idem_evt_forged"),
                "{table} holds a trace of the forged webhook: {text}"
            );
        }
    }
}
