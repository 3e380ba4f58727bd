//! v2 enrolments (partner keys only, one organisation, Ethoca descriptors, RDR identifiers),
//! the simulation endpoints (TEST only), and RDR rulesets deciding simulated RDR alerts.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_are_created_pending_with_the_documented_shapes() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Enrol").await;
    let ethoca = h
        .post(
            "/v2/enrolments/",
            PARTNER_KEY,
            json!({ "merchant_ids": [o.merchant_id], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [{ "descriptor": "ACMEFIT", "match_type": "STARTS_WITH" }] } }),
        )
        .await;
    assert_eq!(ethoca.status, 201, "{:?}", ethoca.body);
    let e = &ethoca.body;
    assert!(e["id"].as_str().unwrap().starts_with("enrl_"));
    assert_eq!(e["organisation_id"], o.org_id.as_str());
    assert_eq!(e["status"], "PENDING");
    assert_eq!(e["ethoca_alert"]["descriptors"][0]["status"], "PENDING");
    assert_eq!(e["note"], json!(null));
    assert_eq!(
        e["links"][0]["uri"],
        format!("/v2/enrolments/{}", e["id"].as_str().unwrap())
    );

    let bin_caid = h
        .post(
            "/v2/enrolments",
            PARTNER_KEY,
            json!({ "merchant_ids": [o.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "bin": "424242", "caid": "ACMEFITCAID01" } }),
        )
        .await;
    assert_eq!(bin_caid.status, 201);
    assert_eq!(bin_caid.body["verifi_rdr"]["arns"], json!(null));
    let arns = h
        .post(
            "/v2/enrolments",
            PARTNER_KEY,
            json!({ "merchant_ids": [o.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["74027012345678901234567"] } }),
        )
        .await;
    assert_eq!(arns.status, 201);

    let got = h
        .get(
            &format!("/v2/enrolments/{}", e["id"].as_str().unwrap()),
            PARTNER_KEY,
        )
        .await;
    assert_eq!(got.body["id"], e["id"]);
    let rdr = h.get("/v2/enrolments/?type=VERIFI_RDR", PARTNER_KEY).await;
    assert_eq!(rdr.body["count"], 2);
    assert_eq!(
        h.get("/v2/enrolments/enrl_missing", PARTNER_KEY)
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_enrolments_are_422_naming_the_field() {
    let h = start().await;
    let a = h.onboard(PARTNER_KEY, "A").await;
    let b = h.onboard(PARTNER_KEY, "B").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "merchant_ids": [a.merchant_id, b.merchant_id], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [{ "descriptor": "X", "match_type": "EXACT_MATCH" }] } }),
            "MERCHANTS_DIFFERENT_ORGANISATIONS",
            "merchant_ids",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id, a.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["1"] } }),
            "DUPLICATE_ID",
            "merchant_ids[1]",
        ),
        (
            json!({ "merchant_ids": ["mrch_missing"], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["1"] } }),
            "INVALID_MERCHANT",
            "merchant_ids[0]",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "bin": "424242" } }),
            "BIN_AND_CAID_REQUIRED_TOGETHER",
            "verifi_rdr.caid",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": {} }),
            "RDR_IDENTIFIER_REQUIRED",
            "verifi_rdr",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [{ "descriptor": "X", "match_type": "CONTAINS" }] } }),
            "INVALID_ENUM_VALUE",
            "ethoca_alert.descriptors[0].match_type",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id], "type": "ETHOCA_ALERT", "ethoca_alert": { "descriptors": [] } }),
            "MISSING_FIELD",
            "ethoca_alert.descriptors",
        ),
        (
            json!({ "merchant_ids": [a.merchant_id], "type": "AMEX_ALERT" }),
            "INVALID_ENUM_VALUE",
            "type",
        ),
        (
            json!({ "type": "ETHOCA_ALERT", "ethoca_alert": { "descriptors": [{ "descriptor": "X", "match_type": "EXACT_MATCH" }] } }),
            "MISSING_FIELD",
            "merchant_ids",
        ),
    ];
    for (body, code, field) in cases {
        let r = h.post("/v2/enrolments/", PARTNER_KEY, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert_eq!(r.body["code"], code, "{body}: {:?}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {:?}", r.body);
    }
    // Nothing was created.
    assert_eq!(h.get("/v2/enrolments", PARTNER_KEY).await.body["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_need_a_partner_key_with_the_v2_abilities() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Keys").await;
    let org_key = h
        .key(json!({ "scope": "organisation", "organisation_id": o.org_id }))
        .await;
    let body = json!({ "merchant_ids": [o.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["1"] } });
    assert_eq!(
        h.post("/v2/enrolments/", &org_key, body.clone())
            .await
            .status,
        401
    );
    let read_only = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true, "abilities": ["enrolments_v2:read"] }))
        .await;
    let r = h.post("/v2/enrolments/", &read_only, body).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("enrolments_v2:write"));
    assert_eq!(h.get("/v2/enrolments/", &read_only).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulating_enrolment_status_updates_it_and_its_descriptors() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Sim").await;
    let id = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let got = h
        .get(&format!("/v2/enrolments/{id}"), PARTNER_KEY)
        .await
        .body;
    assert_eq!(got["status"], "ENABLED");
    assert_eq!(got["ethoca_alert"]["descriptors"][0]["status"], "ENABLED");
    let path = format!("/v1/simulate/enrolments/{id}");
    let r = h
        .patch(&path, PARTNER_KEY, json!({ "status": "UNENROLLED" }))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "UNENROLLED");
    let bad = h
        .patch(&path, PARTNER_KEY, json!({ "status": "PAUSED" }))
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["errors"][0]["field"], "status");
    // An alert needs an ENABLED enrolment.
    let alert = h
        .simulate_alert(PARTNER_KEY, &o.org_id, &id, json!({}))
        .await;
    assert_eq!(alert.status, 422);
    assert_eq!(alert.body["code"], "ENROLMENT_NOT_ENABLED");
    assert_eq!(
        h.patch(
            "/v1/simulate/enrolments/enrl_missing",
            PARTNER_KEY,
            json!({ "status": "ENABLED" })
        )
        .await
        .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_organisations_refuse_simulations() {
    let h = start().await;
    let live = h.onboard(LIVE_PARTNER_KEY, "Live").await;
    let id = h
        .ethoca_enrolment(LIVE_PARTNER_KEY, &live.merchant_id, false)
        .await;
    let r = h
        .patch(
            &format!("/v1/simulate/enrolments/{id}"),
            LIVE_PARTNER_KEY,
            json!({ "status": "ENABLED" }),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "TEST_MODE_ONLY");
    let r = h
        .simulate_alert(LIVE_PARTNER_KEY, &live.org_id, &id, json!({}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "TEST_MODE_ONLY");
    let still = h
        .get(&format!("/v2/enrolments/{id}"), LIVE_PARTNER_KEY)
        .await;
    assert_eq!(still.body["status"], "PENDING");
    // And the TEST partner cannot even see the LIVE organisation.
    assert_eq!(
        h.simulate_alert(PARTNER_KEY, &live.org_id, &id, json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulations_need_their_abilities() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Abilities").await;
    let id = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let no_sim = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true, "abilities": ["alerts:read"] }))
        .await;
    let r = h.simulate_alert(&no_sim, &o.org_id, &id, json!({})).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("simulations:alerts"));
    let r = h
        .patch(
            &format!("/v1/simulate/enrolments/{id}"),
            &no_sim,
            json!({ "status": "ENABLED" }),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("simulations:enrollments"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rdr_ruleset_decides_simulated_rdr_alerts() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Rules").await;
    let rdr = h.rdr_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let ruleset = |outcome: &str, rules: Value| {
        json!({ "organisation_id": o.org_id, "enrolment_ids": [rdr], "outcome": outcome,
                "join_operator": "OR", "rules": rules })
    };
    let amount = json!({ "type": "AMOUNT", "parameters": { "operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 10000 } });

    let cancel = h
        .post(
            "/v1/rulesets/",
            PARTNER_KEY,
            ruleset("CANCEL", json!([amount])),
        )
        .await;
    assert_eq!(cancel.status, 422);
    assert_eq!(cancel.body["code"], "INVALID_RDR_OUTCOME");
    let two_amounts = h
        .post(
            "/v1/rulesets/",
            PARTNER_KEY,
            ruleset("ACCEPT_DISPUTE", json!([amount, amount])),
        )
        .await;
    assert_eq!(two_amounts.status, 422);
    assert_eq!(two_amounts.body["errors"][0]["code"], "DUPLICATE_RULE_TYPE");
    let mut eur = amount.clone();
    eur["parameters"]["currency_code"] = json!("EUR");
    let eur = h
        .post(
            "/v1/rulesets/",
            PARTNER_KEY,
            ruleset("ACCEPT_DISPUTE", json!([eur])),
        )
        .await;
    assert_eq!(eur.status, 422);
    assert_eq!(eur.body["errors"][0]["code"], "INVALID_CURRENCY");
    // Rolled back whole: no ruleset exists yet.
    assert_eq!(h.get("/v1/rulesets/", PARTNER_KEY).await.body["count"], 0);

    let created = h
        .post(
            "/v1/rulesets/",
            PARTNER_KEY,
            ruleset("ACCEPT_DISPUTE", json!([amount])),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(created.body["rules"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("resrule_"));
    let big = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &rdr,
            json!({ "amount_in_cents": 20000 }),
        )
        .await;
    assert_eq!(big.body["status"], "RESOLVED");
    assert_eq!(big.body["transaction_refund_outcome"], "NOT_REFUNDED");
    let small = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &rdr,
            json!({ "amount_in_cents": 4900 }),
        )
        .await;
    assert_eq!(small.body["transaction_refund_outcome"], "REFUNDED");

    let id = created.body["id"].as_str().unwrap();
    let with_rules = h
        .patch(
            &format!("/v1/rulesets/{id}"),
            PARTNER_KEY,
            json!({ "rules": [amount] }),
        )
        .await;
    assert_eq!(with_rules.status, 422);
    assert_eq!(with_rules.body["code"], "RULES_NOT_ALLOWED");
    let rule_id = created.body["rules"][0]["id"].as_str().unwrap();
    let moved = h
        .patch(
            &format!("/v1/rulesets/{id}/rules/{rule_id}"),
            PARTNER_KEY,
            json!({ "parameters": { "operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 1000 } }),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let now_small = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &rdr,
            json!({ "amount_in_cents": 4900 }),
        )
        .await;
    assert_eq!(now_small.body["transaction_refund_outcome"], "NOT_REFUNDED");
}
