//! POST /v1/orders/: at most 100 per request, schema 422 for the whole batch, then partial
//! success with per-order errors; GET by reference_id; PATCH merges refunds and disputes.

mod common;

use common::*;
use serde_json::{json, Value};

fn order(o: &Onboarded, reference: &str) -> Value {
    json!({
        "type": "COMPLETE",
        "organisation_id": o.org_id,
        "integration_id": o.integration_id,
        "reference_id": reference,
        "order_datetime": "2026-02-17T09:59:00Z",
        "order_number": format!("AF-{reference}"),
        "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD",
        "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE",
        "customer_email": "casey@example.com",
        "transactions": [{
            "reference_id": format!("txn-{reference}"),
            "amount_in_cents": 4900,
            "currency": "USD",
            "payment_method_type": "CARD",
            "authorisation_status": "SETTLED",
            "payment_method_reference_id": "pi_1",
            "authorised_at": "2026-02-17T09:59:05Z",
            "payment_method_card_brand": "VISA",
            "payment_method_card_last_4": "4242",
            "acquirer_reference_number": "74027012345678901234567"
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_succeeds_partially_with_each_error_code() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Orders").await;
    let stripe = h
        .post(
            "/v1/integrations/",
            PARTNER_KEY,
            json!({ "organisation_id": o.org_id, "name": "stripe", "type": "STRIPE", "merchant_ids": [o.merchant_id] }),
        )
        .await;
    let stripe_id = stripe.body["id"].as_str().unwrap();

    let first = h
        .post("/v1/orders/", PARTNER_KEY, json!([order(&o, "order-1")]))
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["created"], 1);
    assert!(first.body["results"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("ord_"));

    let mut wrong_type = order(&o, "order-3");
    wrong_type["integration_id"] = json!(stripe_id);
    let mut bad_integration = order(&o, "order-4");
    bad_integration["integration_id"] = json!("int_missing");
    let mut missing = order(&o, "order-5");
    missing.as_object_mut().unwrap().remove("order_number");
    let mut missing_card = order(&o, "order-6");
    missing_card["transactions"][0]
        .as_object_mut()
        .unwrap()
        .remove("payment_method_card_last_4");

    let batch = json!([
        order(&o, "order-2"),
        order(&o, "order-1"),
        wrong_type,
        bad_integration,
        missing,
        missing_card,
        order(&o, "order-2"),
    ]);
    let r = h.post("/v1/orders/", PARTNER_KEY, batch).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created"], 1);
    assert_eq!(r.body["failed"], 6);
    assert_eq!(r.body["results"][0]["reference_id"], "order-2");
    let codes: Vec<(u64, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "DUPLICATE_ORDER"),
            (2, "INVALID_ORDER_TYPE"),
            (3, "INVALID_INTEGRATION"),
            (4, "MISSING_FIELD"),
            (5, "MISSING_FIELD"),
            (6, "DUPLICATE_ORDER"),
        ]
    );
    assert_eq!(r.body["errors"][3]["field"], "order_number");
    assert_eq!(
        r.body["errors"][4]["field"],
        "transactions[0].payment_method_card_last_4"
    );
    assert_eq!(r.body["errors"][0]["reference_id"], "order-1");

    // The duplicate is reconciled by reference_id.
    let found = h.get("/v1/orders/?reference_id=order-1", PARTNER_KEY).await;
    assert_eq!(found.body["count"], 1);
    assert_eq!(found.body["items"][0]["id"], first.body["results"][0]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_problems_reject_the_whole_batch() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Schema").await;
    let too_many: Vec<Value> = (0..101).map(|i| order(&o, &format!("o-{i}"))).collect();
    let r = h.post("/v1/orders/", PARTNER_KEY, json!(too_many)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "TOO_MANY_ORDERS");

    let hundred: Vec<Value> = (0..100).map(|i| order(&o, &format!("o-{i}"))).collect();
    let r = h.post("/v1/orders/", PARTNER_KEY, json!(hundred)).await;
    assert_eq!(r.body["created"], 100);

    let not_array = h.post("/v1/orders/", PARTNER_KEY, order(&o, "x")).await;
    assert_eq!(not_array.status, 422);

    let mut bad_amount = order(&o, "bad-amount");
    bad_amount["order_total_amount_in_cents"] = json!("49.00");
    let mut bad_status = order(&o, "bad-status");
    bad_status["order_status"] = json!("DONE");
    let r = h
        .post(
            "/v1/orders/",
            PARTNER_KEY,
            json!([order(&o, "fine"), bad_amount, bad_status]),
        )
        .await;
    assert_eq!(r.status, 422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["[1].order_total_amount_in_cents", "[2].order_status"]
    );
    // Nothing was processed.
    let fine = h.get("/v1/orders/?reference_id=fine", PARTNER_KEY).await;
    assert_eq!(fine.body["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_need_the_order_abilities_and_an_accessible_organisation() {
    let h = start().await;
    let a = h.onboard(PARTNER_KEY, "A").await;
    let b = h.onboard(PARTNER_KEY, "B").await;
    let org_key = h
        .key(json!({ "scope": "organisation", "organisation_id": a.org_id, "abilities": ["orders:write", "orders:read"] }))
        .await;
    let r = h
        .post(
            "/v1/orders",
            &org_key,
            json!([order(&a, "mine"), order(&b, "theirs")]),
        )
        .await;
    assert_eq!(r.body["created"], 1);
    assert_eq!(r.body["errors"][0]["code"], "INVALID_INTEGRATION");
    let created = r.body["results"][0]["id"].as_str().unwrap();
    let r = h
        .patch(
            &format!("/v1/orders/{created}"),
            &org_key,
            json!({ "refunds": [] }),
        )
        .await;
    assert_eq!(r.status, 403, "orders:update is its own ability");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_merges_refunds_and_disputes_by_reference() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Patch").await;
    let r = h
        .post("/v1/orders/", PARTNER_KEY, json!([order(&o, "order-9")]))
        .await;
    let id = r.body["results"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/orders/{id}");
    let refund = json!({
        "reference_id": "refund-1", "amount_in_cents": 4900, "currency": "USD", "status": "PENDING",
        "original_transaction_reference_id": "txn-order-9", "refund_datetime": "2026-02-17T11:20:00Z"
    });
    let r = h
        .patch(&path, PARTNER_KEY, json!({ "refunds": [refund] }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut succeeded = refund.clone();
    succeeded["status"] = json!("SUCCEEDED");
    let dispute = json!({ "reference_id": "dp-1", "amount_in_cents": 4900, "currency": "USD", "status": "OPEN" });
    let r = h
        .patch(
            &path,
            PARTNER_KEY,
            json!({ "refunds": [succeeded], "disputes": [dispute] }),
        )
        .await;
    assert_eq!(r.body["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["refunds"][0]["status"], "SUCCEEDED");
    assert_eq!(r.body["disputes"][0]["reference_id"], "dp-1");
    let got = h.get(&path, PARTNER_KEY).await;
    assert_eq!(got.body["refunds"][0]["status"], "SUCCEEDED");

    let immutable = h
        .patch(&path, PARTNER_KEY, json!({ "reference_id": "other" }))
        .await;
    assert_eq!(immutable.status, 422);
    assert_eq!(immutable.body["errors"][0]["field"], "reference_id");
    let no_ref = h
        .patch(
            &path,
            PARTNER_KEY,
            json!({ "refunds": [{ "amount_in_cents": 1 }] }),
        )
        .await;
    assert_eq!(no_ref.status, 422);
    assert_eq!(
        h.get("/v1/orders/ord_missing", PARTNER_KEY).await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_integration_is_invalid_and_partial_orders_need_a_processor_integration() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Disabled").await;
    let disabled = h
        .post(
            "/v1/integrations/",
            PARTNER_KEY,
            json!({ "organisation_id": o.org_id, "name": "off", "type": "CUSTOM_ORDERS", "status": "DISABLED", "merchant_ids": [o.merchant_id] }),
        )
        .await;
    assert_eq!(disabled.status, 201, "{:?}", disabled.body);
    let mut off = order(&o, "off-1");
    off["integration_id"] = disabled.body["id"].clone();
    let mut partial = order(&o, "partial-1");
    partial["type"] = json!("PARTIAL");
    let mut unknown_type = order(&o, "weird-1");
    unknown_type["type"] = json!("SUMMARY");
    let r = h
        .post(
            "/v1/orders/",
            PARTNER_KEY,
            json!([off, partial, unknown_type]),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created"], 0);
    let codes: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "INVALID_INTEGRATION",
            "INVALID_ORDER_TYPE",
            "INVALID_ORDER_TYPE"
        ]
    );
    assert!(r.body["errors"][0]["message"].is_string());
}
