//! /v1/alerts: filters, sort and their 422s; actioning outcomes; resolved and RDR alerts.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// The alerts reference: CANCEL and REFUND_AND_CANCEL cancel the subscription only when the
/// merchant is integrated with a payment provider and a subscription is associated with the
/// alert; REFUND_AND_CANCEL falls back to refund only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_gives_its_outcomes_and_resolves_once() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Actions").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    // (action, subscription on the alert, refund outcome, cancel outcome), with only the
    // CUSTOM_ORDERS integration: nothing can be cancelled.
    let orders_only = [
        ("REFUND", false, "REFUNDED", None),
        ("REFUND_AND_CANCEL", false, "REFUNDED", None),
        ("REFUND_AND_CANCEL", true, "REFUNDED", None),
        ("CANCEL", true, "NOT_REFUNDED", None),
        ("ACCEPT_DISPUTE", false, "NOT_REFUNDED", None),
    ];
    check_actions(&h, &o, &e, &orders_only).await;

    // A payment processor integration over the merchant: cancelling works where a
    // subscription is associated, and only there.
    let processor = h
        .post(
            "/v1/integrations/",
            PARTNER_KEY,
            json!({ "organisation_id": o.org_id, "name": "Stripe", "type": "STRIPE",
                    "status": "ENABLED", "merchant_ids": [o.merchant_id] }),
        )
        .await;
    assert_eq!(processor.status, 201, "{:?}", processor.body);
    let with_processor = [
        ("REFUND", true, "REFUNDED", None),
        ("REFUND_AND_CANCEL", true, "REFUNDED", Some("CANCELLED")),
        ("REFUND_AND_CANCEL", false, "REFUNDED", None),
        ("CANCEL", true, "NOT_REFUNDED", Some("CANCELLED")),
        ("CANCEL", false, "NOT_REFUNDED", None),
        ("ACCEPT_DISPUTE", true, "NOT_REFUNDED", None),
    ];
    check_actions(&h, &o, &e, &with_processor).await;
}

async fn check_actions(
    h: &Harness,
    o: &Onboarded,
    e: &str,
    cases: &[(&str, bool, &str, Option<&str>)],
) {
    for &(action, subscription, refund, cancel) in cases {
        let alert = h
            .simulate_alert(
                PARTNER_KEY,
                &o.org_id,
                e,
                json!({ "subscription": subscription }),
            )
            .await
            .body;
        assert_eq!(alert["status"], "ACTION_REQUIRED");
        let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
        let r = h
            .patch(
                &path,
                PARTNER_KEY,
                json!({ "action": action, "note": "done in our platform" }),
            )
            .await;
        assert_eq!(r.status, 200, "{action}: {:?}", r.body);
        assert_eq!(r.body["status"], "RESOLVED");
        assert_eq!(r.body["transaction_refund_outcome"], refund, "{action}");
        assert_eq!(
            r.body["subscription_cancel_outcome"],
            json!(cancel),
            "{action} subscription={subscription}"
        );
        assert_eq!(r.body["note"], "done in our platform");
        assert!(r.body["updated_at"].as_str().unwrap() >= alert["updated_at"].as_str().unwrap());

        let again = h
            .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
            .await;
        assert_eq!(again.status, 422);
        assert_eq!(again.body["code"], "ALERT_ALREADY_RESOLVED");
        assert_eq!(again.body["errors"][0]["field"], "action");
        // A note alone is still accepted on a resolved alert.
        let note = h
            .patch(&path, PARTNER_KEY, json!({ "note": "later note" }))
            .await;
        assert_eq!(note.status, 200);
        assert_eq!(note.body["note"], "later note");
        assert_eq!(note.body["status"], "RESOLVED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_action_is_422_and_changes_nothing() {
    let h = start().await;
    let Alerted { alert, .. } = h.onboard_with_alert(PARTNER_KEY, "Invalid").await;
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    let r = h
        .patch(
            &path,
            PARTNER_KEY,
            json!({ "action": "REFUND_PLEASE", "note": "x" }),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "INVALID_ENUM_VALUE");
    assert_eq!(r.body["errors"][0]["field"], "action");
    let now = h.get(&path, PARTNER_KEY).await.body;
    assert_eq!(now["status"], "ACTION_REQUIRED");
    assert_eq!(now["note"], json!(null));
    assert_eq!(
        h.get("/v1/alerts/netalrt_missing", PARTNER_KEY)
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdr_alerts_arrive_resolved_and_are_not_actionable() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "RDR").await;
    let rdr = h.rdr_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let alert = h
        .simulate_alert(PARTNER_KEY, &o.org_id, &rdr, json!({}))
        .await;
    assert_eq!(alert.status, 201, "{:?}", alert.body);
    assert_eq!(alert.body["status"], "RESOLVED");
    assert_eq!(alert.body["enrolment_type"], "VERIFI_RDR");
    assert_eq!(alert.body["transaction_refund_outcome"], "REFUNDED");
    assert_eq!(alert.body["action_required_deadline"], json!(null));
    let path = format!("/v1/alerts/{}", alert.body["id"].as_str().unwrap());
    let r = h
        .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    // The docs' case for it: "resolved alert cannot be actioned", nothing invented.
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "ALERT_ALREADY_RESOLVED");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Resolved alert cannot be actioned"),
        "{:?}",
        r.body
    );
    let invalid = h
        .simulate_alert(PARTNER_KEY, &o.org_id, &rdr, json!({ "status": "INVALID" }))
        .await;
    assert_eq!(invalid.body["status"], "INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_sorts_and_pages() {
    let h = start().await;
    let a = h.onboard(PARTNER_KEY, "A").await;
    let b = h.onboard(PARTNER_KEY, "B").await;
    let ea = h.ethoca_enrolment(PARTNER_KEY, &a.merchant_id, true).await;
    let eb = h.ethoca_enrolment(PARTNER_KEY, &b.merchant_id, true).await;
    let mut ids = Vec::new();
    for (i, (org, e)) in [(&a, &ea), (&a, &ea), (&b, &eb)].into_iter().enumerate() {
        let alert = h
            .simulate_alert(PARTNER_KEY, &org.org_id, e, json!({}))
            .await
            .body;
        let id = alert["id"].as_str().unwrap().to_string();
        // Spread received times and deadlines so every sort has one right answer.
        let r = h
            .admin(
                Method::PATCH,
                &format!("/_sandbox/alerts/{id}"),
                Some(json!({
                    "alert_received_at": format!("2026-03-0{}T10:00:00Z", i + 1),
                    "action_required_deadline": format!("2026-03-1{}T10:00:00Z", 3 - i),
                })),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        ids.push(id);
    }
    let order = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = h.get("/v1/alerts", PARTNER_KEY).await.body;
    assert_eq!(
        order(&all),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()],
        "default is newest first"
    );
    let asc = h
        .get("/v1/alerts?sort=alert_received_at", PARTNER_KEY)
        .await
        .body;
    assert_eq!(order(&asc), ids);
    let deadline = h
        .get("/v1/alerts?sort=action_required_deadline", PARTNER_KEY)
        .await
        .body;
    assert_eq!(
        order(&deadline),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let by_org = h
        .get(
            &format!("/v1/alerts?organisation_id={}", a.org_id),
            PARTNER_KEY,
        )
        .await
        .body;
    assert_eq!(by_org["count"], 2);
    let by_merchant = h
        .get(
            &format!("/v1/alerts?merchant_id={}", b.merchant_id),
            PARTNER_KEY,
        )
        .await
        .body;
    assert_eq!(order(&by_merchant), vec![ids[2].clone()]);
    let window = h
        .get("/v1/alerts?alert_received_at_gte=2026-03-02T00:00:00Z&alert_received_at_lte=2026-03-02T23:59:59Z", PARTNER_KEY)
        .await
        .body;
    assert_eq!(order(&window), vec![ids[1].clone()]);
    let paged = h.get("/v1/alerts?limit=1&offset=1", PARTNER_KEY).await.body;
    assert_eq!(paged["count"], 3);
    assert_eq!(order(&paged), vec![ids[1].clone()]);
    h.patch(
        &format!("/v1/alerts/{}", ids[0]),
        PARTNER_KEY,
        json!({ "action": "REFUND" }),
    )
    .await;
    let open = h
        .get("/v1/alerts?status=ACTION_REQUIRED", PARTNER_KEY)
        .await
        .body;
    assert_eq!(open["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_parameters_are_422() {
    let h = start().await;
    let range = h
        .get("/v1/alerts?alert_received_at_gte=2026-03-02T00:00:00Z&alert_received_at_lte=2026-03-01T00:00:00Z", PARTNER_KEY)
        .await;
    assert_eq!(range.status, 422);
    assert_eq!(range.body["code"], "INVALID_DATE_RANGE");
    let sort = h.get("/v1/alerts?sort=created_at", PARTNER_KEY).await;
    assert_eq!(sort.status, 422);
    assert_eq!(sort.body["code"], "INVALID_ENUM_VALUE");
    assert_eq!(sort.body["errors"][0]["field"], "sort");
    let status = h.get("/v1/alerts?status=OPEN", PARTNER_KEY).await;
    assert_eq!(status.status, 422);
    let date = h
        .get("/v1/alerts?alert_received_at_gte=yesterday", PARTNER_KEY)
        .await;
    assert_eq!(date.status, 422);
    assert_eq!(date.body["errors"][0]["field"], "alert_received_at_gte");
}

/// The docs give `limit` no bounds and dates as "ISO 8601": leniently a limit is capped into
/// 1..=1000 and ISO 8601 forms beyond RFC 3339 are read; the `strict` knob refuses both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_capped_and_iso_8601_dates_read_unless_strict() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Lenient").await;
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    for _ in 0..2 {
        h.simulate_alert(PARTNER_KEY, &o.org_id, &e, json!({}))
            .await;
    }
    let zero = h.get("/v1/alerts/?limit=0", PARTNER_KEY).await;
    assert_eq!(zero.status, 200, "{:?}", zero.body);
    assert_eq!(zero.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(zero.body["count"], 2);
    let huge = h.get("/v1/alerts/?limit=5000", PARTNER_KEY).await;
    assert_eq!(huge.status, 200);
    assert_eq!(huge.body["items"].as_array().unwrap().len(), 2);
    for date in [
        "2020-01-01",
        "2020-01-01T00:00:00",
        "2020-01-01T00:00:00%2B0000",
    ] {
        let r = h
            .get(
                &format!("/v1/alerts/?alert_received_at_gte={date}"),
                PARTNER_KEY,
            )
            .await;
        assert_eq!(r.status, 200, "{date}: {:?}", r.body);
        assert_eq!(r.body["count"], 2, "{date}");
    }

    h.admin(
        Method::PUT,
        "/_sandbox/faults",
        Some(json!({ "strict": true })),
    )
    .await;
    assert_eq!(h.get("/v1/alerts/?limit=0", PARTNER_KEY).await.status, 422);
    assert_eq!(
        h.get("/v1/alerts/?limit=1001", PARTNER_KEY).await.status,
        422
    );
    let date = h
        .get("/v1/alerts/?alert_received_at_gte=2020-01-01", PARTNER_KEY)
        .await;
    assert_eq!(date.status, 422);
    assert_eq!(date.body["code"], "INVALID_DATETIME");
    let rfc = h
        .get(
            "/v1/alerts/?alert_received_at_gte=2020-01-01T00:00:00Z",
            PARTNER_KEY,
        )
        .await;
    assert_eq!(rfc.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_ethoca_alert_has_the_example_fields_and_a_72_hour_deadline() {
    let h = start().await;
    let Alerted { o, alert: a, .. } = h.onboard_with_alert(PARTNER_KEY, "Fields").await;
    for field in [
        "id",
        "alert_network_id",
        "organisation_id",
        "merchant_id",
        "enrolment_id",
        "enrolment_type",
        "status",
        "transaction_amount_in_cents",
        "transaction_currency_code",
        "transaction_authorised_at",
        "action_required_deadline",
        "transaction_authorisation_code",
        "transaction_acquirer_reference_number",
        "transaction_statement_descriptor",
        "transaction_card_bin",
        "transaction_card_last4",
        "transaction_card_scheme",
        "transaction_card_issuer",
        "transaction_refund_outcome",
        "subscription_cancel_outcome",
        "note",
        "integration_id",
        "integration_transaction_id",
        "alert_received_at",
        "updated_at",
    ] {
        assert!(a.get(field).is_some(), "missing {field}");
    }
    assert!(a["id"].as_str().unwrap().starts_with("netalrt_"));
    assert_eq!(a["merchant_id"], o.merchant_id.as_str());
    assert_eq!(
        a["transaction_acquirer_reference_number"],
        "74027012345678901234567"
    );
    assert_eq!(a["transaction_statement_descriptor"], "ACMEFIT");
    let received =
        chrono::DateTime::parse_from_rfc3339(a["alert_received_at"].as_str().unwrap()).unwrap();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(a["action_required_deadline"].as_str().unwrap())
            .unwrap();
    assert_eq!((deadline - received).num_hours(), 72);
}
