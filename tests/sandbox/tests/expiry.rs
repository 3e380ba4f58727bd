//! Alert expiry: past `action_required_deadline` an Ethoca alert leaves ACTION_REQUIRED, an
//! `alert.updated` goes out unasked, and a late action gets the "resolved alert cannot be
//! actioned" 422. What it becomes is the sandbox's choice (knob `expiry_outcome`).

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

fn in_ms(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn with_receiver(receiver: &Receiver) -> Harness {
    let mut config = config();
    config.webhook_urls = vec![receiver.url.clone()];
    start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_resolves_the_alert_sends_alert_updated_and_refuses_a_late_action() {
    let receiver = Receiver::start(vec![]).await;
    let h = with_receiver(&receiver).await;
    let o = h.onboard(PARTNER_KEY, "Expiry").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let alert = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &e,
            json!({ "action_required_deadline": in_ms(300) }),
        )
        .await
        .body;
    let id = alert["id"].as_str().unwrap().to_string();
    assert_eq!(alert["status"], "ACTION_REQUIRED");

    // Nobody asks: the ticker expires it and the webhook goes out.
    let updated = eventually(|| {
        receiver.received().into_iter().find(|r| {
            r.json["type"] == "alert.updated" && r.json["data"]["object"]["id"] == id.as_str()
        })
    })
    .await
    .expect("alert.updated after the deadline");
    let object = &updated.json["data"]["object"];
    assert_eq!(object["status"], "RESOLVED");
    assert_eq!(object["transaction_refund_outcome"], "NOT_REFUNDED");
    assert_eq!(
        updated.json["data"]["previous_attributes"]["status"],
        "ACTION_REQUIRED"
    );

    let path = format!("/v1/alerts/{id}");
    let late = h
        .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    assert_eq!(late.status, 422, "{:?}", late.body);
    assert!(late.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Resolved alert cannot be actioned"));
    let listed = h
        .get("/v1/alerts/?status=ACTION_REQUIRED", PARTNER_KEY)
        .await;
    assert_eq!(listed.body["count"], 0);
    // Exactly one alert.updated for the expiry.
    let expiries = receiver
        .received()
        .iter()
        .filter(|r| r.json["type"] == "alert.updated")
        .count();
    assert_eq!(expiries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_sees_an_alert_past_its_deadline_as_actionable() {
    let h = start().await;
    // A slow ticker cannot hide it: the lazy check on access expires it first.
    let o = h.onboard(PARTNER_KEY, "Lazy").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let alert = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &e,
            json!({ "action_required_deadline": in_ms(50) }),
        )
        .await
        .body;
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let late = h
        .patch(&path, PARTNER_KEY, json!({ "action": "ACCEPT_DISPUTE" }))
        .await;
    assert_eq!(late.status, 422, "{:?}", late.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_expiry_off_an_alert_waits_past_its_deadline() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Off").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    h.faults(json!({ "alert_expiry": false })).await;
    let c = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &e,
            json!({ "action_required_deadline": in_ms(20) }),
        )
        .await
        .body;
    let path = format!("/v1/alerts/{}", c["id"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        h.get(&path, PARTNER_KEY).await.body["status"],
        "ACTION_REQUIRED"
    );
    let acted = h
        .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    assert_eq!(acted.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_outcome_is_applied_exactly() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Exact").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    for (knob, status, outcome) in [
        ("resolved_not_refunded", "RESOLVED", json!("NOT_REFUNDED")),
        ("resolved_no_outcome", "RESOLVED", json!(null)),
        ("invalid", "INVALID", json!(null)),
    ] {
        h.faults(json!({ "expiry_outcome": knob })).await;
        let a = h
            .simulate_alert(PARTNER_KEY, &o.org_id, &e, json!({}))
            .await
            .body;
        let id = a["id"].as_str().unwrap();
        let expired = h
            .admin(Method::POST, &format!("/_sandbox/alerts/{id}/expire"), None)
            .await;
        assert_eq!(expired.status, 200, "{:?}", expired.body);
        assert_eq!(expired.body["status"], status, "{knob}");
        assert_eq!(
            expired.body["transaction_refund_outcome"], outcome,
            "{knob}"
        );
    }
}

/// A deadline set in the past describes an overdue alert ChargebackStop has not processed yet:
/// it stays ACTION_REQUIRED (tests of overdue queues rely on that) until expired explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_set_in_the_past_is_overdue_until_expired_explicitly() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Overdue").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let a = h
        .simulate_alert(PARTNER_KEY, &o.org_id, &e, json!({}))
        .await
        .body;
    let id = a["id"].as_str().unwrap();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    h.admin(
        Method::PATCH,
        &format!("/_sandbox/alerts/{id}"),
        Some(json!({ "action_required_deadline": past })),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let now = h.get(&format!("/v1/alerts/{id}"), PARTNER_KEY).await.body;
    assert_eq!(now["status"], "ACTION_REQUIRED");
    // Moved back into the future, it is watched again and expires when it passes.
    h.admin(
        Method::PATCH,
        &format!("/_sandbox/alerts/{id}"),
        Some(json!({ "action_required_deadline": in_ms(100) })),
    )
    .await;
    let expired = eventually(|| {
        let store = h.sandbox.app.store();
        (store.alerts[id].status != "ACTION_REQUIRED").then_some(())
    })
    .await;
    assert!(expired.is_some(), "expired once its new deadline passed");
}
