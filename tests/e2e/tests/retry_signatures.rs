//! Webhook retries that carry their first attempt's signature (the sandbox's
//! `retry_signature: original` knob; the docs do not say whether ChargebackStop re-signs a
//! retry), over the real local stack: moto, the sandbox, the Worker (the built wasm under
//! workerd), the bridge and `process-events`, `cbs reconcile`.
//!
//! The Worker's fresh window is 2 s here (`SIGNATURE_TOLERANCE_SECS`; 300 s in production) and
//! the sandbox's retry schedule is scaled 12.5 times down (the 1-minute retry after 4.8 s), so every
//! retry arrives with a signature older than the fresh window, as a retry after a minute does in
//! production. The first attempts fail because the Worker cannot reach SQS (a TCP gate in front
//! of moto, closed), so it answers 503 and ChargebackStop retries.
//!
//! 1. Retried deliveries are accepted (`SIGNATURE_RETRY_WINDOW_SECS`, the longer window for a
//!    retry of a real event): the alert and the enrolment events are each processed exactly once,
//!    though every event reached the Worker twice (two endpoints, two retries with old
//!    signatures): one action at ChargebackStop, one decision, the enrolment stored ENABLED.
//! 2. Retried deliveries refused (the window 0, a second Worker): every retry is answered 401,
//!    the events never reach us, and `cbs reconcile` recovers both the alert and the enrolment
//!    from the API (GET /v1/alerts/, GET /v2/enrolments/): nothing is lost either way.
//!
//! Needs the debug binaries (`cargo build --workspace --bins`) and the built Worker.

use devstack::gate::Gate;
use devstack::stack::customer_spec;
use devstack::{resources, AwsCaller, AwsEndpointVia, Stack, StackOptions, Worker, WorkerOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The Worker's fresh window (2 s, so a first attempt on a loaded machine is still fresh): a
/// retry 4.8 s after its first attempt is past it.
const FRESH_SECS: i64 = 2;
/// The sandbox's retry schedule scaled: 1 min -> 4.8 s, 5 min -> 24 s.
const TIME_FACTOR: f64 = 0.08;
/// Refunds at once whatever the alert: the one action at ChargebackStop shows it was processed
/// once.
const POLICY_REFUND_BELOW_CENTS: i64 = 100_000;

async fn api(stack: &Stack, method: Method, path: &str, body: Value) -> Value {
    let (code, value) = stack
        .cbs_api(method, path, Some(body))
        .await
        .expect("ChargebackStop API");
    assert!(code.is_success(), "{path}: {code} {value}");
    value
}

/// Every event ChargebackStop emitted so far.
async fn event_ids(stack: &Stack) -> BTreeSet<String> {
    stack
        .sandbox_admin_ok(Method::GET, "events", None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn deliveries(stack: &Stack, event_id: &str) -> Vec<Value> {
    stack
        .sandbox_deliveries(event_id)
        .await
        .expect("the sandbox's deliveries")
}

/// Points the sandbox's webhooks at `urls` only.
async fn webhook_endpoints(stack: &Stack, urls: &[String]) {
    stack
        .sandbox_admin_ok(Method::DELETE, "webhooks", None)
        .await;
    for url in urls {
        stack
            .sandbox_admin_ok(Method::POST, "webhooks", Some(json!({ "url": url })))
            .await;
    }
}

/// A new Ethoca enrolment for the merchant, then enabled: `enrolment.created` and
/// `enrolment.updated`. Its id.
async fn new_enabled_enrolment(stack: &Stack, merchant_id: &str, descriptor: &str) -> String {
    let created = api(
        stack,
        Method::POST,
        "/v2/enrolments/",
        json!({
            "type": "ETHOCA_ALERT",
            "merchant_ids": [merchant_id],
            "ethoca_alert": { "descriptors": [
                { "descriptor": descriptor, "match_type": "STARTS_WITH" }
            ]}
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    api(
        stack,
        Method::PATCH,
        &format!("/v1/simulate/enrolments/{id}"),
        json!({ "status": "ENABLED" }),
    )
    .await;
    id
}

/// Waits until every endpoint's first attempt of each event failed (the Worker answered 503:
/// it could not reach SQS).
async fn first_attempts_failed(stack: &Stack, events: &BTreeSet<String>, endpoints: usize) {
    stack
        .eventually("the first attempts to fail", || async {
            for event in events {
                let failed = deliveries(stack, event)
                    .await
                    .iter()
                    .filter(|d| d["attempt"] == 1 && d["outcome"] == "retrying")
                    .count();
                if failed < endpoints {
                    return None;
                }
            }
            Some(())
        })
        .await
        .unwrap();
    for event in events {
        for d in deliveries(stack, event).await {
            if d["attempt"] == 1 {
                assert_eq!(d["status_code"], 503, "{d}");
            }
        }
    }
}

/// The Worker's JSON log lines about `event_id`.
fn worker_log(worker: &Worker, event_id: &str) -> Vec<Value> {
    worker
        .process
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["event_id"] == event_id)
        .collect()
}

#[tokio::test]
async fn no_event_is_lost_whether_retries_are_accepted_or_refused() {
    let edge_gate = Arc::new(Gate::bind("edge-sqs").await.expect("gate"));
    let gate = edge_gate.clone();
    let stack = Stack::start(StackOptions {
        table_prefix: Some(resources::unique_prefix("retrysig")),
        sandbox_time_factor: TIME_FACTOR,
        aws_endpoint_via: Some(AwsEndpointVia(Arc::new(
            move |caller, moto: &str| match caller {
                AwsCaller::Worker => {
                    gate.set_upstream(moto).expect("gate upstream");
                    gate.url()
                }
                AwsCaller::Functions => moto.to_string(),
            },
        ))),
        worker_vars: vec![("SIGNATURE_TOLERANCE_SECS".into(), FRESH_SECS.to_string())],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"));
    let mut spec = customer_spec("retry-sig");
    spec["decision_policy"] = json!({
        "name": "retry-sig-policy",
        "refund_at_or_below_cents": POLICY_REFUND_BELOW_CENTS,
    });
    let customer = stack.onboard_spec(spec).await.expect("onboarding");
    let org = customer.organisation_id.clone();
    stack
        .sandbox_admin_ok(
            Method::PUT,
            "faults",
            // The calm API even when the suite runs under the realistic profile
            // (CBS_SANDBOX_PROFILE): this test counts each delivery attempt of each event.
            Some(json!({ "retry_signature": "original", "profile": "none" })),
        )
        .await;

    // ---------------------------------------------------------------------------------------
    // 1. Retries accepted. Two endpoints (the same Worker), so every event arrives twice.
    // ---------------------------------------------------------------------------------------
    let url = stack.worker.webhook_url();
    webhook_endpoints(&stack, &[url.clone(), format!("{url}?endpoint=second")]).await;
    let before = event_ids(&stack).await;
    edge_gate.close();
    let enrolment = new_enabled_enrolment(&stack, &customer.merchant_id, "RETRYSIG ONE").await;
    let alert = stack
        .simulate_alert(&org, &customer.ethoca_enrolment_id, 1500)
        .await
        .unwrap();
    let alert_id = alert["id"].as_str().unwrap().to_string();
    let events: BTreeSet<String> = event_ids(&stack)
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(
        events.len(),
        3,
        "created, updated, alert.created: {events:?}"
    );
    first_attempts_failed(&stack, &events, 2).await;
    edge_gate.open();

    let stored_enrolment = stack
        .wait_stored_enrolment(&enrolment, "the enrolment stored ENABLED", |e| {
            e["status"] == "ENABLED"
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; worker: {}", stack.worker.process.stdout()));
    assert_eq!(stored_enrolment["organisation_id"], org.as_str());
    let stored = stack
        .wait_stored_alert(&alert_id, "the alert refunded by the policy", |a| {
            a["status"] == "RESOLVED" && a["decisions"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await
        .unwrap();
    for event in &events {
        stack
            .eventually("the event COMPLETED", || async {
                stack
                    .stored_event(event)
                    .await
                    .ok()
                    .flatten()
                    .filter(|e| e["status"] == "COMPLETED")
            })
            .await
            .unwrap();
        // Each endpoint: the first attempt refused (503), a retry delivered; the Worker took
        // that retry with its first attempt's signature, past the fresh window.
        let by_endpoint = deliveries(&stack, event).await;
        let delivered: Vec<&Value> = by_endpoint
            .iter()
            .filter(|d| d["outcome"] == "delivered")
            .collect();
        assert_eq!(delivered.len(), 2, "{by_endpoint:?}");
        assert!(
            delivered.iter().all(|d| d["attempt"].as_u64() > Some(1)),
            "{by_endpoint:?}"
        );
        let accepted: Vec<Value> = worker_log(&stack.worker, event)
            .into_iter()
            .filter(|l| l["outcome"] == "enqueued")
            .collect();
        assert_eq!(accepted.len(), 2, "{accepted:?}");
        for line in &accepted {
            assert_eq!(line["retried_delivery"], true, "{line}");
            assert!(
                line["signature_age_secs"].as_i64() > Some(FRESH_SECS),
                "{line}"
            );
        }
    }
    // Processed once: one action at ChargebackStop, one decision of ours.
    let actions = stack
        .sandbox_admin_ok(Method::GET, &format!("alerts/{alert_id}/actions"), None)
        .await;
    assert_eq!(actions.as_array().unwrap().len(), 1, "{actions}");
    let decisions = stored["decisions"].as_array().cloned().unwrap_or_default();
    assert_eq!(decisions.len(), 1, "{stored}");

    // ---------------------------------------------------------------------------------------
    // 2. Retries refused: a Worker whose retry window is 0. Nothing reaches us by webhook;
    //    reconciliation recovers the alert and the enrolment.
    // ---------------------------------------------------------------------------------------
    let mut strict_opts = WorkerOptions::new(
        &edge_gate.url(),
        &stack.resources.edge_queue_url,
        stack.webhook_secret.expose(),
    );
    strict_opts.extra_vars = vec![
        ("SIGNATURE_TOLERANCE_SECS".into(), FRESH_SECS.to_string()),
        ("SIGNATURE_RETRY_WINDOW_SECS".into(), "0".into()),
    ];
    let strict = Worker::start_built(&strict_opts)
        .await
        .expect("the second Worker");
    webhook_endpoints(&stack, &[strict.webhook_url()]).await;
    let before = event_ids(&stack).await;
    edge_gate.close();
    let lost_enrolment = new_enabled_enrolment(&stack, &customer.merchant_id, "RETRYSIG TWO").await;
    let lost_alert = stack
        .simulate_alert(&org, &customer.ethoca_enrolment_id, 1700)
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events: BTreeSet<String> = event_ids(&stack)
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    first_attempts_failed(&stack, &events, 1).await;
    edge_gate.open();
    for event in &events {
        stack
            .eventually("the first retry refused", || async {
                deliveries(&stack, event)
                    .await
                    .iter()
                    .any(|d| d["attempt"] == 2 && d["status_code"] == 401)
                    .then_some(())
            })
            .await
            .unwrap();
    }
    let stale = strict
        .process
        .stdout()
        .lines()
        .filter(|l| l.contains("\"signature_stale\""))
        .count();
    assert!(stale >= events.len(), "{}", strict.process.stdout());
    assert!(stack.stored_alert(&lost_alert).await.unwrap().is_none());
    assert!(stack
        .stored_enrolment(&lost_enrolment)
        .await
        .unwrap()
        .is_none());

    let out = stack
        .cbs(&["reconcile", "--organisation", &org, "--since", "1d"])
        .await
        .expect("cbs reconcile");
    assert!(out.contains("alerts recovered       1"), "{out}");
    assert!(out.contains(&lost_alert), "{out}");
    assert!(out.contains("enrolments recovered   1"), "{out}");
    assert!(out.contains(&lost_enrolment), "{out}");
    let recovered = stack
        .stored_alert(&lost_alert)
        .await
        .unwrap()
        .expect("the alert recovered");
    assert_eq!(recovered["organisation_id"], org.as_str());
    let recovered = stack
        .stored_enrolment(&lost_enrolment)
        .await
        .unwrap()
        .expect("the enrolment recovered");
    assert_eq!(recovered["status"], "ENABLED", "{recovered}");
    // The alert of part 1 was held already: nothing else recovered, nothing acted twice.
    assert_eq!(
        stack
            .sandbox_admin_ok(Method::GET, &format!("alerts/{alert_id}/actions"), None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
