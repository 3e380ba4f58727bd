//! Event types we do not interpret (`representment.*`, `scheme_notice.*`, `lookup.*`, and any
//! type ChargebackStop adds later) over the real local stack: the sandbox emits them
//! (`POST /_sandbox/events`), signs and delivers them to the Worker in workerd; the Worker sends
//! them to SQS in moto and `process-events` keeps each one, raw, in the events table.
//! ChargebackStop's side must show every delivery answered 2xx, never a 4xx, and nothing may
//! reach the dead-letter queue.

use devstack::stack::customer_spec;
use devstack::{resources, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::secret::Secret;
use shared::signature::sign;

static ONE_STACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the event is COMPLETED in our events table and returns the record.
async fn kept(stack: &Stack, event_id: &str) -> Value {
    stack
        .eventually(&format!("{event_id} kept as COMPLETED"), || async {
            match stack.stored_event(event_id).await {
                Ok(Some(item)) if item["status"] == "COMPLETED" => Some(item),
                _ => None,
            }
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn representment_scheme_notice_lookup_and_unknown_types_are_accepted_and_kept() {
    let _turn = ONE_STACK_AT_A_TIME.lock().await;
    let stack = Stack::start(StackOptions {
        table_prefix: Some(resources::unique_prefix("other-types")),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"));
    let customer = stack
        .onboard_spec(customer_spec("other-types"))
        .await
        .unwrap_or_else(|e| panic!("onboarding failed: {e:#}"));
    let org = customer.organisation_id.as_str();

    // 1. The documented families ChargebackStop sends beside alerts and enrolments, emitted by
    //    the sandbox with its own ids, signatures and retries.
    let mut emitted = Vec::new();
    for (kind, object) in [
        ("representment.created", None),
        (
            "representment.updated",
            Some(json!({
                "id": "rep_e2e_1", "organisation_id": org, "status": "WON",
                "amount": 4200, "currency": "EUR", "nested": {"evidence": ["a", "b"]},
            })),
        ),
        ("scheme_notice.created", None),
        ("scheme_notice.updated", None),
        ("lookup.created", None),
        ("lookup.updated", None),
    ] {
        let mut body = json!({ "type": kind, "organisation_id": org });
        if let Some(o) = object {
            body["object"] = o;
        }
        let (code, event) = stack
            .sandbox_admin(Method::POST, "events", Some(body))
            .await
            .unwrap();
        assert_eq!(code, StatusCode::CREATED, "{kind}: {event}");
        emitted.push(event);
    }

    // 2. A type nobody has documented yet, signed like ChargebackStop signs, straight at the
    //    Worker: still accepted, still kept.
    let future_id = format!(
        "evt_future_{}",
        resources::unique_prefix("x").replace('-', "")
    );
    let future = json!({
        "id": future_id,
        "type": "dispute_evidence.requested",
        "api_version": "v3",
        "created_at": chrono::Utc::now().to_rfc3339(),
        "data": { "object": { "id": "dev_1", "anything": [1, 2, 3] } },
    });
    let raw = serde_json::to_vec(&future).unwrap();
    let secret = Secret::new(stack.webhook_secret.expose());
    let resp = stack
        .http
        .post(stack.worker.webhook_url())
        .header("content-type", "application/json")
        .header("X-Idempotency-Key", format!("idem_{future_id}"))
        .header(
            "X-Signature",
            sign(&secret, chrono::Utc::now().timestamp(), &raw),
        )
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "an unknown event type must be accepted, got {}",
        resp.status()
    );

    // Each one is kept, raw: the body we stored is the event ChargebackStop sent.
    for event in &emitted {
        let id = event["id"].as_str().unwrap();
        let record = kept(&stack, id).await;
        assert_eq!(record["event_type"], event["type"], "{record}");
        let payload: Value = serde_json::from_str(
            record["raw_payload"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no raw payload kept: {record}")),
        )
        .unwrap();
        assert_eq!(&payload, event, "{id}: the kept payload differs");
    }
    let record = kept(&stack, &future_id).await;
    assert_eq!(record["event_type"], "dispute_evidence.requested");
    assert_eq!(
        record["raw_payload"].as_str().map(str::as_bytes),
        Some(raw.as_slice()),
        "the unknown event's body must be kept byte for byte"
    );

    // ChargebackStop's side: every attempt at each emitted event answered 2xx, none retried.
    for event in &emitted {
        let id = event["id"].as_str().unwrap();
        let attempts = stack.sandbox_deliveries(id).await.unwrap();
        assert!(!attempts.is_empty(), "{id} was never delivered");
        for a in attempts {
            let code = a["status_code"].as_u64().unwrap_or(0);
            assert!(
                (200..300).contains(&code),
                "{id}: an attempt was answered {code}: {a}"
            );
        }
    }
    stack
        .eventually("the edge queue to drain", || async {
            matches!(stack.queue_depths().await, Ok((0, _))).then_some(())
        })
        .await
        .unwrap();
    let (_, dead) = stack.queue_depths().await.unwrap();
    assert_eq!(dead, 0, "nothing may reach the dead-letter queue");
}
