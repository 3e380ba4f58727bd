//! Webhooks: signed envelopes with X-Idempotency-Key, retries on the scaled schedule, and the
//! delivery controls other suites rely on (duplicate, hold/release out of order, drop, redeliver).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use shared::secret::Secret;
use shared::signature::{verify, SignatureError, WebhookSecrets};

fn secrets(secret: &str) -> WebhookSecrets {
    WebhookSecrets::new(Secret::new(secret), None)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A sandbox whose webhooks go to `receiver`.
async fn with_receiver(receiver: &Receiver) -> Harness {
    let mut config = config();
    config.webhook_urls = vec![receiver.url.clone()];
    start_with(config).await
}

fn types(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.json["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_flow_sends_four_signed_events_in_order() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    let Alerted {
        enrolment_id: enrolment,
        alert,
        ..
    } = h.onboard_with_alert(PARTNER_KEY, "Hooks").await;
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    let r = h
        .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    assert_eq!(r.status, 200);

    let got = receiver.wait_for(4).await;
    assert_eq!(
        types(&got),
        vec![
            "enrolment.created",
            "enrolment.updated",
            "alert.created",
            "alert.updated"
        ]
    );
    let mut keys = Vec::new();
    for r in &got {
        // Signed over the raw bytes with the configured secret, and fresh.
        let verified = verify(
            r.signature.as_deref(),
            &r.body,
            &secrets(WEBHOOK_SECRET),
            now(),
            300,
        )
        .expect("a valid X-Signature");
        assert!((now() - verified.timestamp).abs() <= 300);
        assert_eq!(
            verify(
                r.signature.as_deref(),
                &r.body,
                &secrets("whsec_other"),
                now(),
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert!(r
            .signature
            .as_deref()
            .unwrap()
            .split(',')
            .any(|p| p.starts_with("v1=") && p.len() == 3 + 128));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let key = r.idempotency_key.clone().expect("X-Idempotency-Key");
        assert!(!keys.contains(&key), "one key per event");
        keys.push(key);
        // The envelope.
        for field in ["id", "type", "created_at", "data", "api_version"] {
            assert!(r.json.get(field).is_some(), "missing {field}");
        }
        assert!(r.json["id"].as_str().unwrap().starts_with("evt_"));
    }
    let enrolment_updated = &got[1].json;
    assert_eq!(enrolment_updated["api_version"], "v2");
    assert_eq!(
        enrolment_updated["data"]["object"]["id"],
        enrolment.as_str()
    );
    assert_eq!(enrolment_updated["data"]["object"]["status"], "ENABLED");
    assert_eq!(
        enrolment_updated["data"]["previous_attributes"]["status"],
        "PENDING"
    );
    let alert_updated = &got[3].json;
    assert_eq!(alert_updated["data"]["object"]["status"], "RESOLVED");
    assert_eq!(
        alert_updated["data"]["object"]["transaction_refund_outcome"],
        "REFUNDED"
    );
    assert_eq!(
        alert_updated["data"]["previous_attributes"]["status"],
        "ACTION_REQUIRED"
    );
    // Every event is also listed by the admin API, in emission order.
    let events = h.admin(Method::GET, "/_sandbox/events", None).await.body;
    let ids: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    let sent: Vec<&Value> = got.iter().map(|r| &r.json["id"]).collect();
    assert_eq!(ids, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_with_the_same_key_and_a_fresh_signature() {
    let receiver = Receiver::start(vec![500, 503]).await;
    let h = with_receiver(&receiver).await;
    let o = h.onboard(PARTNER_KEY, "Retry").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;

    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == got[0].body), "same event body");
    assert!(got
        .iter()
        .all(|r| r.idempotency_key == got[0].idempotency_key));
    for r in &got {
        verify(
            r.signature.as_deref(),
            &r.body,
            &secrets(WEBHOOK_SECRET),
            now(),
            300,
        )
        .expect("each attempt is signed");
    }
    // Waits at least the scaled schedule (time factor 0.0002: 12 ms, then 60 ms).
    assert!(got[1].at - got[0].at >= std::time::Duration::from_millis(12));
    assert!(got[2].at - got[1].at >= std::time::Duration::from_millis(60));

    let deliveries =
        eventually_deliveries(&h, |d| d.iter().any(|a| a["outcome"] == "delivered")).await;
    let outcomes: Vec<(u64, &str)> = deliveries
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![(1, "retrying"), (2, "retrying"), (3, "delivered")]
    );
    assert_eq!(deliveries[0]["status_code"], 500);
    assert_eq!(deliveries[1]["status_code"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_gives_up_after_the_fifth_retry() {
    let receiver = Receiver::start(vec![500; 10]).await;
    let mut config = config();
    config.webhook_urls = vec![receiver.url.clone()];
    config.time_factor = 0.00001; // 0.6 ms, 3 ms, 18 ms, 72 ms, 432 ms
    let h = start_with(config).await;
    let o = h.onboard(PARTNER_KEY, "GiveUp").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let deliveries =
        eventually_deliveries(&h, |d| d.iter().any(|a| a["outcome"] == "gave_up")).await;
    let attempts: Vec<u64> = deliveries
        .iter()
        .map(|d| d["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(deliveries[5]["outcome"], "gave_up");
    assert_eq!(receiver.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_recorded_as_a_connection_failure() {
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut config = config();
    config.webhook_urls = vec![format!("http://{closed}/hook")];
    let h = start_with(config).await;
    let o = h.onboard(PARTNER_KEY, "Unreachable").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let deliveries = eventually_deliveries(&h, |d| !d.is_empty()).await;
    assert_eq!(deliveries[0]["outcome"], "retrying");
    assert_eq!(deliveries[0]["status_code"], json!(null));
    assert_eq!(deliveries[0]["error"], "connection failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duplicate_knob_sends_every_event_twice_with_one_key() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    h.faults(json!({ "duplicate_deliveries": true })).await;
    let o = h.onboard(PARTNER_KEY, "Dup").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].idempotency_key, got[1].idempotency_key);
    let deliveries = eventually_deliveries(&h, |d| d.len() >= 2).await;
    let outcomes: Vec<&str> = deliveries
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["delivered", "duplicate"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_events_are_released_in_reverse_or_in_a_chosen_order() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    h.faults(json!({ "hold_webhooks": true })).await;
    let Alerted { alert, .. } = h.onboard_with_alert(PARTNER_KEY, "Hold").await;
    let held = eventually_held(&h, 3).await;
    assert!(
        receiver.received().is_empty(),
        "nothing goes out while held"
    );

    // The alert.created first, on its own; the other two stay held.
    let r = h
        .admin(
            Method::POST,
            "/_sandbox/webhooks/release",
            Some(json!({ "event_ids": [held[2]] })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["released"], json!([held[2]]));
    assert_eq!(
        receiver.received().len(),
        1,
        "release waits for the delivery"
    );
    assert_eq!(
        receiver.received()[0].json["data"]["object"]["id"],
        alert["id"]
    );
    // Then the rest reversed: enrolment.updated before enrolment.created.
    let r = h
        .admin(
            Method::POST,
            "/_sandbox/webhooks/release",
            Some(json!({ "order": "reverse" })),
        )
        .await;
    assert_eq!(r.body["released"], json!([held[1], held[0]]));
    let got = receiver.received();
    assert_eq!(
        types(&got),
        vec!["alert.created", "enrolment.updated", "enrolment.created"]
    );
    let unknown = h
        .admin(
            Method::POST,
            "/_sandbox/webhooks/release",
            Some(json!({ "event_ids": ["evt_nope"] })),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.body["code"], "NOT_HELD");

    // Turning the hold off sends anything still held, in emission order.
    h.patch(
        &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()),
        PARTNER_KEY,
        json!({ "note": "held note" }),
    )
    .await;
    eventually_held(&h, 1).await;
    h.faults(json!({ "hold_webhooks": false })).await;
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].json["type"], "alert.updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_out_of_order_knob_reverses_a_batch() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    // Pairs, with a window far longer than the test: the order cannot depend on timing.
    h.faults(
        json!({ "out_of_order": true, "out_of_order_batch": 2, "out_of_order_window_ms": 600000 }),
    )
    .await;
    let o = h.onboard(PARTNER_KEY, "Reverse").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(types(&got), vec!["enrolment.updated", "enrolment.created"]);

    // A lone event waits for the window or a flush; turning the knob off flushes it too.
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    h.admin(Method::POST, "/_sandbox/webhooks/flush", None)
        .await;
    h.faults(json!({ "out_of_order": false })).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].json["type"], "enrolment.created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_is_recorded_and_can_be_redelivered_later() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    h.faults(json!({ "drop_next": 1 })).await;
    let o = h.onboard(PARTNER_KEY, "Drop").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(types(&got), vec!["enrolment.updated"]);
    assert_eq!(h.faults(json!({})).await["drop_next"], 0, "counts down");

    let events = h.admin(Method::GET, "/_sandbox/events", None).await.body;
    let created = events[0]["id"].as_str().unwrap().to_string();
    let dropped = h
        .admin(
            Method::GET,
            &format!("/_sandbox/deliveries?event_id={created}"),
            None,
        )
        .await
        .body;
    assert_eq!(dropped[0]["outcome"], "dropped");
    assert_eq!(dropped[0]["attempt"], 0);
    let dropped_key = dropped[0]["idempotency_key"].as_str().unwrap().to_string();

    let r = h
        .admin(
            Method::POST,
            &format!("/_sandbox/events/{created}/redeliver"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let got = receiver.received();
    assert_eq!(types(&got), vec!["enrolment.updated", "enrolment.created"]);
    assert_eq!(
        got[1].idempotency_key.as_deref(),
        Some(dropped_key.as_str())
    );

    // Redelivering a delivered event: the same key (a retry), or a new one if asked.
    let updated = events[1]["id"].as_str().unwrap().to_string();
    h.admin(
        Method::POST,
        &format!("/_sandbox/events/{updated}/redeliver"),
        None,
    )
    .await;
    h.admin(
        Method::POST,
        &format!("/_sandbox/events/{updated}/redeliver"),
        Some(json!({ "new_idempotency_key": true })),
    )
    .await;
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[2].body, got[0].body);
    assert_eq!(got[2].idempotency_key, got[0].idempotency_key);
    assert_eq!(got[3].body, got[0].body);
    assert_ne!(got[3].idempotency_key, got[0].idempotency_key);
    let redelivered = h
        .admin(
            Method::GET,
            &format!("/_sandbox/deliveries?event_id={updated}"),
            None,
        )
        .await
        .body;
    assert_eq!(redelivered[1]["redelivery"], true);

    let missing = h
        .admin(Method::POST, "/_sandbox/events/evt_nope/redeliver", None)
        .await;
    assert_eq!(missing.status, 404);

    // drop_webhooks: nothing goes out at all.
    h.faults(json!({ "drop_webhooks": true })).await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let all = eventually_deliveries(&h, |d| {
        d.iter().filter(|a| a["outcome"] == "dropped").count() == 2
    })
    .await;
    assert_eq!(all.last().unwrap()["type"], "enrolment.created");
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_actions_are_recorded_for_the_harness() {
    let h = start().await;
    let Alerted { alert, .. } = h.onboard_with_alert(PARTNER_KEY, "Actions").await;
    let id = alert["id"].as_str().unwrap();
    let path = format!("/v1/alerts/{id}");
    h.patch(
        &path,
        PARTNER_KEY,
        json!({ "action": "CANCEL", "note": "n" }),
    )
    .await;
    h.patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    let actions = h
        .admin(Method::GET, &format!("/_sandbox/alerts/{id}/actions"), None)
        .await
        .body;
    let actions = actions.as_array().unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0]["action"], "CANCEL");
    assert_eq!(actions[0]["note"], "n");
    assert_eq!(actions[0]["accepted"], true);
    assert_eq!(actions[0]["status"], "RESOLVED");
    assert_eq!(actions[0]["transaction_refund_outcome"], "NOT_REFUNDED");
    // No payment processor integration: nothing to cancel.
    assert_eq!(actions[0]["subscription_cancel_outcome"], json!(null));
    assert!(actions[0]["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(actions[1]["action"], "REFUND");
    assert_eq!(actions[1]["accepted"], false);
    assert_eq!(actions[1]["error_code"], "ALERT_ALREADY_RESOLVED");
    assert_eq!(actions[1]["transaction_refund_outcome"], "NOT_REFUNDED");
    let all = h.admin(Method::GET, "/_sandbox/actions", None).await.body;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        h.admin(Method::GET, "/_sandbox/alerts/netalrt_nope/actions", None)
            .await
            .status,
        404
    );
}

#[test]
fn the_retry_schedule_is_the_documented_one_scaled() {
    use std::time::Duration;
    assert_eq!(
        cbs_sandbox::webhooks::retry_delays(1.0),
        vec![
            Duration::from_secs(60),
            Duration::from_secs(300),
            Duration::from_secs(1800),
            Duration::from_secs(7200),
            Duration::from_secs(43200),
        ]
    );
    assert_eq!(
        cbs_sandbox::webhooks::retry_delays(0.001),
        vec![
            Duration::from_millis(60),
            Duration::from_millis(300),
            Duration::from_millis(1800),
            Duration::from_millis(7200),
            Duration::from_millis(43200),
        ]
    );
}

async fn eventually_deliveries(h: &Harness, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..400 {
        let d = h.deliveries().await;
        if done(&d) {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "deliveries never reached the expected state: {:?}",
        h.deliveries().await
    );
}

/// The held event ids once there are `n` of them.
async fn eventually_held(h: &Harness, n: usize) -> Vec<String> {
    for _ in 0..400 {
        let r = h.admin(Method::GET, "/_sandbox/webhooks", None).await;
        let held: Vec<String> = r.body["held"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        if held.len() >= n {
            return held;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("never held {n} events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_each_secret_signs_one_v1_entry() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    let r = h
        .admin(
            Method::PUT,
            "/_sandbox/webhooks/secrets",
            Some(json!({ "secrets": ["whsec_new", WEBHOOK_SECRET] })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({ "active_secrets": 2 }));
    let o = h.onboard(PARTNER_KEY, "Rotate").await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let hook = receiver.wait_for(1).await[0].clone();
    let header = hook.signature.clone().unwrap();
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    for secret in ["whsec_new", WEBHOOK_SECRET] {
        verify(Some(&header), &hook.body, &secrets(secret), now(), 300)
            .unwrap_or_else(|e| panic!("{secret}: {e:?}"));
    }
    assert!(verify(Some(&header), &hook.body, &secrets("whsec_x"), now(), 300).is_err());

    // Back to the configured secret alone.
    h.admin(
        Method::PUT,
        "/_sandbox/webhooks/secrets",
        Some(json!({ "secrets": [] })),
    )
    .await;
    h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
    let hook = receiver.wait_for(2).await[1].clone();
    assert_eq!(hook.signature.as_deref().unwrap().matches("v1=").count(), 1);
    verify(
        hook.signature.as_deref(),
        &hook.body,
        &secrets(WEBHOOK_SECRET),
        now(),
        300,
    )
    .unwrap();
    let bad = h
        .admin(
            Method::PUT,
            "/_sandbox/webhooks/secrets",
            Some(json!({ "secrets": "whsec_new" })),
        )
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_scenarios_get_their_deadline_in_the_webhooks() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    let o = h.onboard(PARTNER_KEY, "Deadline").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let alert = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &e,
            json!({ "action_required_deadline": "2030-01-01T00:00:00Z" }),
        )
        .await
        .body;
    assert_eq!(
        alert["action_required_deadline"],
        "2030-01-01T00:00:00.000Z"
    );
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].json["type"], "alert.created");
    assert_eq!(
        got[2].json["data"]["object"]["action_required_deadline"],
        "2030-01-01T00:00:00.000Z"
    );
    let bad = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &e,
            json!({ "action_required_deadline": "soon" }),
        )
        .await;
    assert_eq!(bad.status, 422);

    // The admin API can move it (silently, or with an alert.updated) and set a status.
    let id = alert["id"].as_str().unwrap();
    let silent = h
        .admin(
            Method::PATCH,
            &format!("/_sandbox/alerts/{id}"),
            Some(json!({ "action_required_deadline": "2029-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(silent.status, 200);
    let loud = h
        .admin(
            Method::PATCH,
            &format!("/_sandbox/alerts/{id}"),
            Some(json!({ "status": "INVALID", "notify": true })),
        )
        .await;
    assert_eq!(loud.body["status"], "INVALID");
    let got = receiver.wait_for(4).await;
    assert_eq!(got.len(), 4, "the silent change sent nothing");
    assert_eq!(got[3].json["type"], "alert.updated");
    assert_eq!(got[3].json["data"]["object"]["status"], "INVALID");
    assert_eq!(
        got[3].json["data"]["object"]["action_required_deadline"],
        "2029-01-01T00:00:00.000Z"
    );
    assert_eq!(
        got[3].json["data"]["previous_attributes"]["status"],
        "ACTION_REQUIRED"
    );
    let action = h
        .patch(
            &format!("/v1/alerts/{id}"),
            PARTNER_KEY,
            json!({ "action": "REFUND" }),
        )
        .await;
    assert_eq!(action.status, 422);
    assert_eq!(action.body["code"], "ALERT_ALREADY_RESOLVED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_moves_an_enrolment_through_any_status_with_a_note() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    let live = h.onboard(LIVE_PARTNER_KEY, "Live").await;
    let id = h
        .ethoca_enrolment(LIVE_PARTNER_KEY, &live.merchant_id, false)
        .await;
    let path = format!("/_sandbox/enrolments/{id}");
    let moved = h
        .admin(
            Method::PATCH,
            &path,
            Some(json!({ "status": "ACTION_REQUIRED", "note": "Descriptor does not match statements" })),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["status"], "ACTION_REQUIRED");
    assert_eq!(
        moved.body["ethoca_alert"]["descriptors"][0]["status"],
        "ACTION_REQUIRED"
    );
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json["type"], "enrolment.updated");
    assert_eq!(got[1].json["api_version"], "v2");
    assert_eq!(
        got[1].json["data"]["object"]["note"],
        "Descriptor does not match statements"
    );
    assert_eq!(
        got[1].json["data"]["previous_attributes"]["status"],
        "PENDING"
    );
    assert_eq!(
        got[1].json["data"]["previous_attributes"]["note"],
        json!(null)
    );
    let api = h
        .get(&format!("/v2/enrolments/{id}"), LIVE_PARTNER_KEY)
        .await;
    assert_eq!(api.body["status"], "ACTION_REQUIRED");
    let bad = h
        .admin(Method::PATCH, &path, Some(json!({ "status": "LIVE" })))
        .await;
    assert_eq!(bad.status, 422);
    // Silently, when asked.
    h.admin(
        Method::PATCH,
        &path,
        Some(json!({ "status": "ENABLED", "notify": false })),
    )
    .await;
    h.admin(Method::PATCH, &path, Some(json!({ "status": "PAUSED" })))
        .await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].json["data"]["object"]["status"], "PAUSED");
    assert_eq!(
        got[2].json["data"]["previous_attributes"]["status"],
        "ENABLED"
    );
}
