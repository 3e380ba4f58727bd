//! Knobs for what the docs leave open: each setting answers as a plausible ChargebackStop
//! would, so our code can be tested against every one (tests/sandbox/README.md, "Assumptions
//! where the docs are silent").

mod common;

use cbs_sandbox::Config;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn with_receiver(receiver: &Receiver, time_factor: f64) -> Harness {
    let mut config = config();
    config.webhook_urls = vec![receiver.url.clone()];
    config.time_factor = time_factor;
    start_with(config).await
}

fn signature_t(header: &str) -> i64 {
    header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap()
}

/// A retry at least 1.2 s after the first attempt (time factor 0.02 of 60 s): `fresh` signs it
/// with a later `t`; `original` repeats the first attempt's header byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_carry_a_fresh_or_the_original_signature() {
    for (knob, same) in [("fresh", false), ("original", true)] {
        let receiver = Receiver::start(vec![500]).await;
        let h = with_receiver(&receiver, 0.02).await;
        h.faults(json!({ "retry_signature": knob })).await;
        h.onboard(PARTNER_KEY, "Sig").await;
        let o = h.onboard(PARTNER_KEY, "Sig2").await;
        h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
        let got = receiver.wait_for(2).await;
        let (first, retry) = (&got[0], &got[1]);
        assert_eq!(first.body, retry.body);
        assert_eq!(first.idempotency_key, retry.idempotency_key);
        let (a, b) = (
            first.signature.clone().unwrap(),
            retry.signature.clone().unwrap(),
        );
        if same {
            assert_eq!(a, b, "{knob}");
        } else {
            assert!(signature_t(&b) > signature_t(&a), "{knob}: {a} then {b}");
        }
        // Either way the header verifies against the body with the secret.
        let secret = shared::secret::Secret::new(WEBHOOK_SECRET);
        for header in [&a, &b] {
            let t = signature_t(header);
            assert_eq!(shared::signature::sign(&secret, t, &retry.body), *header);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_or_without_retry_after() {
    let h = start().await;
    h.faults(json!({ "burst_429": 1 })).await;
    let with = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(with.status, 429);
    assert_eq!(with.headers["retry-after"], "1");
    h.faults(json!({ "burst_429": 1, "retry_after_header": false }))
        .await;
    let without = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(without.status, 429);
    assert!(without.headers.get("retry-after").is_none());
    assert_eq!(without.body["code"], "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_answer_json_html_or_nothing() {
    let h = start().await;
    h.faults(json!({ "error_rate": 1.0, "error_status": 502, "error_body": "html" }))
        .await;
    let html = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(html.status, 502);
    assert_eq!(html.headers["content-type"], "text/html");
    assert!(html
        .body
        .as_str()
        .unwrap()
        .contains("<h1>502 Bad Gateway</h1>"));
    h.faults(json!({ "error_status": 503, "error_body": "empty" }))
        .await;
    let empty = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(empty.status, 503);
    assert_eq!(empty.body, json!(""));
    h.faults(json!({ "error_body": "json" })).await;
    let json_body = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(json_body.body["code"], "SERVICE_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_can_carry_only_the_detail() {
    let h = start().await;
    let Alerted { alert, .. } = h.onboard_with_alert(PARTNER_KEY, "Codes").await;
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    h.patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    h.faults(json!({ "error_codes": false })).await;
    let again = h
        .patch(&path, PARTNER_KEY, json!({ "action": "REFUND" }))
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(
        again.body,
        json!({ "detail": "Resolved alert cannot be actioned (status RESOLVED)." })
    );
    let missing = h.get("/v1/alerts/netalrt_nope", PARTNER_KEY).await;
    assert_eq!(missing.body, json!({ "detail": "Alert not found." }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_errors_with_or_without_the_reference_id_echo() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Echo").await;
    let bad = json!([{ "type": "COMPLETE", "organisation_id": o.org_id,
                       "integration_id": "int_unknown", "reference_id": "order-echo" }]);
    let with = h.post("/v1/orders/", PARTNER_KEY, bad.clone()).await;
    assert_eq!(with.body["errors"][0]["reference_id"], "order-echo");
    assert_eq!(with.body["errors"][0]["index"], 0);
    h.faults(json!({ "order_error_reference_id": false })).await;
    let without = h.post("/v1/orders/", PARTNER_KEY, bad).await;
    let error = without.body["errors"][0].as_object().unwrap();
    assert!(!error.contains_key("reference_id"), "{error:?}");
    assert_eq!(error["index"], 0);
    assert_eq!(error["code"], "INVALID_INTEGRATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_enrolment_answers_the_enrolment_an_empty_200_or_204() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Sim").await;
    for (knob, status, empty) in [
        ("enrolment", 200, false),
        ("empty200", 200, true),
        ("no_content", 204, true),
    ] {
        h.faults(json!({ "simulate_enrolment_response": knob }))
            .await;
        let id = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, false).await;
        let r = h
            .patch(
                &format!("/v1/simulate/enrolments/{id}"),
                PARTNER_KEY,
                json!({ "status": "ENABLED" }),
            )
            .await;
        assert_eq!(r.status, status, "{knob}");
        assert_eq!(r.body == json!(""), empty, "{knob}: {:?}", r.body);
        // Whatever the answer, the enable happened.
        let now = h.get(&format!("/v2/enrolments/{id}"), PARTNER_KEY).await;
        assert_eq!(now.body["status"], "ENABLED", "{knob}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_paths_answer_only_the_documented_form() {
    let h = start().await;
    let Alerted { alert, o, .. } = h.onboard_with_alert(PARTNER_KEY, "Paths").await;
    let id = alert["id"].as_str().unwrap();
    // Default: both forms answer.
    for path in ["/v1/alerts", "/v1/alerts/"] {
        assert_eq!(h.get(path, PARTNER_KEY).await.status, 200, "{path}");
    }
    h.faults(json!({ "strict_paths": true })).await;
    let documented = [
        "/v1/organisations/".to_string(),
        "/v1/merchants/".into(),
        "/v1/integrations/".into(),
        "/v1/memberships/".into(),
        "/v2/enrolments/".into(),
        "/v1/orders/".into(),
        "/v1/alerts/".into(),
        "/v1/rulesets/".into(),
        format!("/v1/alerts/{id}"),
        format!("/v1/organisations/{}", o.org_id),
    ];
    for path in &documented {
        assert_eq!(h.get(path, PARTNER_KEY).await.status, 200, "{path}");
    }
    for path in [
        "/v1/organisations".to_string(),
        "/v1/orders".into(),
        "/v2/enrolments".into(),
        "/v1/alerts".into(),
        format!("/v1/alerts/{id}/"),
    ] {
        assert_eq!(h.get(&path, PARTNER_KEY).await.status, 404, "{path}");
    }
    let simulate = h
        .post(
            "/v1/simulate/alerts/",
            PARTNER_KEY,
            json!({ "organisation_id": o.org_id }),
        )
        .await;
    assert_eq!(simulate.status, 404);
}

/// The closed lists are knob-only: the docs name merchant and integration types, roles and
/// card schemes by example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_values_are_open_lists_unless_strict() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Lists").await;
    let merchant = json!({ "organisation_id": o.org_id, "name": "M", "type": "SQUARE" });
    let integration = json!({ "organisation_id": o.org_id, "name": "I", "type": "SQUARE",
                              "status": "ENABLED", "merchant_ids": [o.merchant_id] });
    let membership = json!({ "organisation_id": o.org_id, "email": "a@b.example",
                             "first_name": "A", "last_name": "B", "role": "BILLING" });
    let e = h.ethoca_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let alert = json!({ "organisation_id": o.org_id, "enrolment_id": e, "card_scheme": "JCB" });
    let calls: [(&str, &Value); 4] = [
        ("/v1/merchants/", &merchant),
        ("/v1/integrations/", &integration),
        ("/v1/memberships/", &membership),
        ("/v1/simulate/alerts", &alert),
    ];
    for (path, body) in calls {
        let r = h.post(path, PARTNER_KEY, body.clone()).await;
        assert_eq!(r.status, 201, "{path}: {:?}", r.body);
    }
    h.faults(json!({ "strict": true })).await;
    for (path, body) in calls {
        let r = h.post(path, PARTNER_KEY, body.clone()).await;
        assert_eq!(r.status, 422, "{path} under strict: {:?}", r.body);
        assert_eq!(r.body["code"], "INVALID_ENUM_VALUE", "{path}");
    }
}

/// The realistic profile is seeded: the same seed gives the same answers to the same requests,
/// and over a few hundred requests both 5xx and 429 appear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realistic_profile_is_seeded_and_faults_some_requests() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        // Far above the real rate limit: only the profile's 429s count here.
        let h = start_with(Config {
            rate_limit: 100_000,
            ..config()
        })
        .await;
        let knobs = h
            .faults(json!({ "profile": "realistic", "seed": 42, "latency_ms": 0 }))
            .await;
        assert_eq!(knobs["profile"], "realistic");
        assert_eq!(knobs["out_of_order"], true);
        let mut statuses = Vec::new();
        for _ in 0..300 {
            statuses.push(h.get("/v1/alerts/?limit=1", PARTNER_KEY).await.status);
        }
        runs.push(statuses);
        let off = h.faults(json!({ "profile": "none" })).await;
        assert_eq!(off["error_rate"], 0.0);
        assert_eq!(off["out_of_order"], false);
    }
    assert_eq!(runs[0], runs[1], "same seed, same answers");
    let count = |s: u16| runs[0].iter().filter(|x| **x == s).count();
    assert!(count(503) > 0 && count(429) > 0, "{:?}", runs[0]);
    assert!(count(200) > 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rdr_ruleset_takes_refund_and_cancel_and_an_empty_ruleset_unless_strict() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "RdrRac").await;
    let rdr = h.rdr_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let amount = json!({ "type": "AMOUNT", "parameters": { "operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 100 } });
    let created = h
        .post(
            "/v1/rulesets/",
            PARTNER_KEY,
            json!({ "organisation_id": o.org_id, "enrolment_ids": [rdr], "outcome": "REFUND_AND_CANCEL",
                    "join_operator": "AND", "rules": [amount] }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Published to Verifi as REFUND: a matching RDR alert is refunded, nothing cancelled.
    let alert = h
        .simulate_alert(
            PARTNER_KEY,
            &o.org_id,
            &rdr,
            json!({ "amount_in_cents": 5000 }),
        )
        .await
        .body;
    assert_eq!(alert["transaction_refund_outcome"], "REFUNDED");
    assert_eq!(alert["subscription_cancel_outcome"], json!(null));

    let other = h.rdr_enrolment(PARTNER_KEY, &o.merchant_id, true).await;
    let empty = json!({ "organisation_id": o.org_id, "enrolment_ids": [other],
                        "outcome": "ACCEPT_DISPUTE", "rules": [] });
    h.faults(json!({ "strict": true })).await;
    let refused = h.post("/v1/rulesets/", PARTNER_KEY, empty.clone()).await;
    assert_eq!(refused.status, 422);
    h.faults(json!({ "strict": false })).await;
    let accepted = h.post("/v1/rulesets/", PARTNER_KEY, empty).await;
    assert_eq!(accepted.status, 201, "{:?}", accepted.body);
    // It matches nothing: RDR alerts keep the default refund.
    let alert = h
        .simulate_alert(PARTNER_KEY, &o.org_id, &other, json!({}))
        .await
        .body;
    assert_eq!(alert["transaction_refund_outcome"], "REFUNDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_knobs_are_listed_with_their_defaults() {
    let h = start().await;
    let knobs = h.admin(Method::GET, "/_sandbox/faults", None).await.body;
    for (knob, default) in [
        ("retry_signature", json!("fresh")),
        ("retry_after_header", json!(true)),
        ("error_body", json!("json")),
        ("error_codes", json!(true)),
        ("order_error_reference_id", json!(true)),
        ("simulate_enrolment_response", json!("enrolment")),
        ("strict_paths", json!(false)),
        ("strict", json!(false)),
        ("alert_expiry", json!(true)),
        ("expiry_outcome", json!("resolved_not_refunded")),
        ("match_orders", json!(true)),
        ("profile", json!("none")),
    ] {
        assert_eq!(knobs[knob], default, "{knob}");
    }
}

/// `--profile realistic` (CBS_SANDBOX_PROFILE): a whole test suite runs under production's
/// faults. The profile is on from the start and a reset returns to it, not to the calm defaults;
/// `{"profile": "none"}` is the explicit way out.
#[tokio::test]
async fn a_sandbox_started_realistic_stays_realistic_across_resets() {
    let h = start_with(Config {
        profile: cbs_sandbox::Profile::Realistic,
        seed: Some(9),
        ..config()
    })
    .await;
    let knobs = h.admin(Method::GET, "/_sandbox/faults", None).await.body;
    assert_eq!(knobs["profile"], "realistic", "{knobs}");
    assert_eq!(knobs["seed"], 9, "{knobs}");
    assert!(knobs["error_rate"].as_f64().unwrap() > 0.0, "{knobs}");
    let r = h.admin(Method::POST, "/_sandbox/reset", None).await;
    assert_eq!(r.status, 200);
    let knobs = h.admin(Method::GET, "/_sandbox/faults", None).await.body;
    assert_eq!(
        knobs["profile"], "realistic",
        "reset keeps the start profile: {knobs}"
    );
    let calm = h.faults(json!({ "profile": "none" })).await;
    assert_eq!(calm["profile"], "none");
    assert_eq!(calm["error_rate"], 0.0);

    // The default start is the documented behaviour.
    let h = start().await;
    let knobs = h.admin(Method::GET, "/_sandbox/faults", None).await.body;
    assert_eq!(knobs["profile"], "none", "{knobs}");
}
