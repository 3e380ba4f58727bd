//! Keys, scopes, abilities, rate limits and the API fault knobs.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_expired_keys_get_401_with_the_error_shape() {
    let h = start().await;
    let missing = h.call(Method::GET, "/v1/alerts", None, None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body["code"], "UNAUTHORISED");
    assert!(missing.body["detail"].is_string());
    assert!(missing.body.get("errors").is_none(), "errors only on 422");

    assert_eq!(h.get("/v1/alerts", "cbs_test_nope").await.status, 401);

    let expired = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true, "expires_at": "2020-01-01T00:00:00Z" }))
        .await;
    assert_eq!(h.get("/v1/alerts", &expired).await.status, 401);
    let valid = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true, "expires_at": "2999-01-01T00:00:00Z" }))
        .await;
    assert_eq!(h.get("/v1/alerts", &valid).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ability_is_403() {
    let h = start().await;
    let read_only = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true, "abilities": ["alerts:read"] }))
        .await;
    assert_eq!(h.get("/v1/alerts", &read_only).await.status, 200);
    let r = h
        .post("/v1/organisations/", &read_only, json!({ "name": "x" }))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "FORBIDDEN");
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("organisations:write"));
    let r = h
        .patch(
            "/v1/alerts/netalrt_x",
            &read_only,
            json!({ "action": "REFUND" }),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_partner_organisations_are_test_and_prefixed_live_ones_are_live() {
    let h = start().await;
    let test = h
        .post(
            "/v1/organisations/",
            PARTNER_KEY,
            json!({ "name": "Acme Fitness" }),
        )
        .await;
    assert_eq!(test.status, 201);
    assert_eq!(test.body["name"], "[TEST] Acme Fitness");
    assert_eq!(test.body["mode"], "TEST");
    assert!(test.body["id"].as_str().unwrap().starts_with("org_"));
    let live = h
        .post(
            "/v1/organisations",
            LIVE_PARTNER_KEY,
            json!({ "name": "Acme Fitness" }),
        )
        .await;
    assert_eq!(live.body["name"], "Acme Fitness");
    assert_eq!(live.body["mode"], "LIVE");
    // Each partner sees only its own organisations.
    let list = h
        .get("/v1/organisations/?limit=10&offset=0", PARTNER_KEY)
        .await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["items"][0]["id"], test.body["id"]);
    let other = format!("/v1/organisations/{}", live.body["id"].as_str().unwrap());
    assert_eq!(h.get(&other, PARTNER_KEY).await.status, 404);
    let missing_name = h.post("/v1/organisations/", PARTNER_KEY, json!({})).await;
    assert_eq!(missing_name.status, 422);
    assert_eq!(missing_name.body["errors"][0]["field"], "name");
    assert_eq!(missing_name.body["errors"][0]["code"], "MISSING_FIELD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_keys_see_their_organisation_only_and_get_401_on_partner_endpoints() {
    let h = start().await;
    let a = h.onboard(PARTNER_KEY, "A").await;
    let b = h.onboard(PARTNER_KEY, "B").await;
    let ea = h.ethoca_enrolment(PARTNER_KEY, &a.merchant_id, true).await;
    let eb = h.ethoca_enrolment(PARTNER_KEY, &b.merchant_id, true).await;
    let alert_a = h
        .simulate_alert(PARTNER_KEY, &a.org_id, &ea, json!({}))
        .await
        .body;
    let alert_b = h
        .simulate_alert(PARTNER_KEY, &b.org_id, &eb, json!({}))
        .await
        .body;

    let org_key = h
        .key(json!({ "scope": "organisation", "organisation_id": a.org_id }))
        .await;
    let list = h.get("/v1/alerts", &org_key).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["items"][0]["id"], alert_a["id"]);
    let other = format!("/v1/alerts/{}", alert_b["id"].as_str().unwrap());
    assert_eq!(h.get(&other, &org_key).await.status, 404);
    assert_eq!(
        h.patch(&other, &org_key, json!({ "action": "REFUND" }))
            .await
            .status,
        404
    );

    // v2 enrolments: 401 for an organisation key (documented). Merchants, integrations,
    // memberships, organisations: served within its own organisation, unless `strict`.
    let merchants = h.get("/v1/merchants/", &org_key).await;
    assert_eq!(merchants.status, 200, "{:?}", merchants.body);
    assert_eq!(merchants.body["count"], 1);
    assert_eq!(
        merchants.body["items"][0]["organisation_id"],
        a.org_id.as_str()
    );
    let orgs = h.get("/v1/organisations/", &org_key).await;
    assert_eq!(orgs.body["count"], 1);
    let own = h
        .post(
            "/v1/merchants/",
            &org_key,
            json!({ "organisation_id": a.org_id, "name": "Second", "type": "GENERIC" }),
        )
        .await;
    assert_eq!(own.status, 201, "{:?}", own.body);
    let foreign = h
        .post(
            "/v1/merchants/",
            &org_key,
            json!({ "organisation_id": b.org_id, "name": "Theirs", "type": "GENERIC" }),
        )
        .await;
    assert_eq!(foreign.status, 422, "{:?}", foreign.body);
    let new_org = h
        .post("/v1/organisations/", &org_key, json!({ "name": "Mine" }))
        .await;
    assert_eq!(
        new_org.status, 403,
        "only an admin partner key creates organisations"
    );
    assert_eq!(h.get("/v2/enrolments/", &org_key).await.status, 401);
    let enrol = h
        .post("/v2/enrolments/", &org_key, json!({ "merchant_ids": [a.merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["1"] } }))
        .await;
    assert_eq!(enrol.status, 401);
    h.admin(
        Method::PUT,
        "/_sandbox/faults",
        Some(json!({ "strict": true })),
    )
    .await;
    for path in [
        "/v1/merchants/",
        "/v1/organisations/",
        "/v1/integrations/",
        "/v1/memberships/",
    ] {
        assert_eq!(
            h.get(path, &org_key).await.status,
            401,
            "{path} under strict"
        );
    }
    h.admin(
        Method::PUT,
        "/_sandbox/faults",
        Some(json!({ "strict": false })),
    )
    .await;

    // A non-admin partner key sees only its assigned organisations.
    let group = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": false, "organisation_ids": [b.org_id] }))
        .await;
    let list = h.get("/v1/alerts", &group).await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["items"][0]["id"], alert_b["id"]);
    let merchants = h.get("/v1/merchants", &group).await;
    assert_eq!(merchants.body["count"], 1);
    assert_eq!(merchants.body["items"][0]["id"], b.merchant_id.as_str());
    let org_a = format!("/v1/organisations/{}", a.org_id);
    assert_eq!(h.get(&org_a, &group).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_per_endpoint_and_answers_429_with_retry_after() {
    let mut config = config();
    config.rate_limit = 3;
    config.rate_window = std::time::Duration::from_secs(30);
    let h = start_with(config).await;
    for _ in 0..3 {
        assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);
    }
    // The trailing-slash form is the same endpoint and pool.
    let limited = h.get("/v1/alerts/", PARTNER_KEY).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["code"], "RATE_LIMITED");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // Another endpoint has its own pool.
    assert_eq!(h.get("/v1/organisations", PARTNER_KEY).await.status, 200);
    // Another partner group has its own pool.
    let other_group = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": false }))
        .await;
    assert_eq!(h.get("/v1/alerts", &other_group).await.status, 200);
    // Admin keys of one partner share one group.
    let second_admin = h
        .key(json!({ "scope": "partner", "mode": "TEST", "admin": true }))
        .await;
    assert_eq!(h.get("/v1/alerts", &second_admin).await.status, 429);
    // The admin API is never limited.
    assert_eq!(
        h.admin(Method::GET, "/_sandbox/requests", None)
            .await
            .status,
        200
    );
}

/// Where the docs are silent (is `GET /v1/orders/` the same endpoint as `POST /v1/orders/`?),
/// both readings: by default a method and a path are one endpoint; `--rate-limit-per path`
/// makes the methods of one path share its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_endpoint_counts_a_method_and_path_or_the_path_alone() {
    for per_path in [false, true] {
        let mut config = config();
        config.rate_limit = 2;
        config.rate_window = std::time::Duration::from_secs(30);
        config.rate_limit_per_path = per_path;
        let h = start_with(config).await;
        for _ in 0..2 {
            assert_eq!(h.get("/v1/orders/", PARTNER_KEY).await.status, 200);
        }
        // A POST of the same path: its own limit, or the path's spent one.
        let post = h.post("/v1/orders/", PARTNER_KEY, json!([])).await;
        if per_path {
            assert_eq!(post.status, 429, "{:?}", post.body);
        } else {
            assert_ne!(post.status, 429, "{:?}", post.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_limit_is_100_requests_per_minute_per_endpoint() {
    let h = start().await;
    for i in 0..100 {
        let r = h.get("/v1/alerts", PARTNER_KEY).await;
        assert_eq!(r.status, 200, "request {i}");
    }
    let limited = h.get("/v1/alerts", PARTNER_KEY).await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The 101st on another endpoint of the same pool is fine.
    assert_eq!(h.get("/v2/enrolments", PARTNER_KEY).await.status, 200);
    // An organisation key counts in its organisation's pool, not the partner group's.
    let o = h.onboard(PARTNER_KEY, "Pool").await;
    let org_key = h
        .key(json!({ "scope": "organisation", "organisation_id": o.org_id }))
        .await;
    assert_eq!(h.get("/v1/alerts", &org_key).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_window_resets() {
    let mut config = config();
    config.rate_limit = 1;
    config.rate_window = std::time::Duration::from_millis(1000);
    let h = start_with(config).await;
    // Until two requests land in one window (the first try, unless the machine is very slow).
    let mut limited = None;
    for _ in 0..20 {
        let r = h.get("/v1/alerts", PARTNER_KEY).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200);
    }
    let limited = limited.expect("a second request in one window is limited");
    assert_eq!(limited.headers["retry-after"], "1");
    let mut ok = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if h.get("/v1/alerts", PARTNER_KEY).await.status == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "a new window admits requests again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_knobs_burst_429_and_error_rate_apply_to_the_api_only() {
    let h = start().await;
    let faults = h.faults(json!({ "burst_429": 2 })).await;
    assert_eq!(faults["burst_429"], 2);
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 429);
    let second = h.get("/v1/alerts", PARTNER_KEY).await;
    assert_eq!(second.status, 429);
    assert!(second.headers.contains_key("retry-after"));
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);

    // A certain 5xx burst, after the 429s: the next two answer error_status, then normal.
    h.faults(json!({ "burst_429": 1, "burst_5xx": 2, "error_status": 502 }))
        .await;
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 429);
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 502);
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 502);
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);

    h.faults(json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    let r = h.get("/v1/alerts", PARTNER_KEY).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["code"], "SERVICE_UNAVAILABLE");
    // Even without a key: faults come before auth.
    assert_eq!(
        h.call(Method::GET, "/v2/enrolments", None, None)
            .await
            .status,
        503
    );
    assert_eq!(
        h.admin(Method::GET, "/_sandbox/state", None).await.status,
        200
    );
    let bad = h
        .admin(
            Method::PUT,
            "/_sandbox/faults",
            Some(json!({ "error_status": 418 })),
        )
        .await;
    assert_eq!(bad.status, 422);
    h.faults(json!({ "error_rate": 0.0 })).await;
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_per_route_template() {
    let h = start().await;
    h.get("/v1/alerts/netalrt_a", PARTNER_KEY).await;
    h.get("/v1/alerts/netalrt_b", PARTNER_KEY).await;
    h.get("/v1/alerts/", PARTNER_KEY).await;
    h.call(Method::GET, "/v1/alerts", None, None).await;
    let counts = h
        .admin(Method::GET, "/_sandbox/requests/counts", None)
        .await
        .body;
    assert_eq!(counts["GET /v1/alerts/{alert_id}"], 2);
    assert_eq!(counts["GET /v1/alerts"], 2);
    h.admin(Method::POST, "/_sandbox/reset", None).await;
    let counts = h
        .admin(Method::GET, "/_sandbox/requests/counts", None)
        .await
        .body;
    assert_eq!(counts, json!({}));
    // Reset keeps keys.
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_logged_with_method_path_body_key_and_status() {
    let h = start().await;
    let o = h.onboard(PARTNER_KEY, "Log").await;
    let before = h.admin(Method::GET, "/_sandbox/requests", None).await.body;
    let last_seq = before.as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    h.post(
        "/v1/orders/",
        PARTNER_KEY,
        json!([{ "type": "COMPLETE", "organisation_id": o.org_id }]),
    )
    .await;
    h.call(
        Method::GET,
        "/v1/alerts?status=RESOLVED",
        Some("cbs_bad"),
        None,
    )
    .await;
    let log = h
        .admin(
            Method::GET,
            &format!("/_sandbox/requests?since={last_seq}"),
            None,
        )
        .await
        .body;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["path"], "/v1/orders/");
    assert_eq!(log[0]["route"], "POST /v1/orders");
    assert_eq!(log[0]["body"][0]["organisation_id"], o.org_id.as_str());
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(log[1]["query"], "status=RESOLVED");
    assert_eq!(log[1]["status"], 401);
    assert_eq!(log[1]["key_id"], json!(null));
    // No key string anywhere in the log.
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(PARTNER_KEY) && !text.contains("cbs_bad"));

    let orders = h
        .admin(
            Method::GET,
            "/_sandbox/requests?method=post&path=/v1/orders",
            None,
        )
        .await
        .body;
    assert_eq!(orders.as_array().unwrap().len(), 1);
    h.admin(Method::DELETE, "/_sandbox/requests", None).await;
    let empty = h.admin(Method::GET, "/_sandbox/requests", None).await.body;
    assert_eq!(empty, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_in_the_error_shape() {
    let h = start().await;
    let r = h.get("/v1/nothing-here", PARTNER_KEY).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_knob_delays_api_requests_only() {
    let h = start().await;
    h.faults(json!({ "latency_ms": 300 })).await;
    let started = std::time::Instant::now();
    assert_eq!(h.get("/v1/alerts", PARTNER_KEY).await.status, 200);
    // A lower bound only: the knob waits at least this long.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    h.faults(json!({ "latency_ms": 0 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_422_on_body() {
    let h = start().await;
    let r = h
        .http
        .post(format!("{}/v1/organisations/", h.base))
        .bearer_auth(PARTNER_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_BODY");
    assert_eq!(body["errors"][0]["field"], "body");
    // The request log keeps a body that is not JSON as a string.
    let log = h.admin(Method::GET, "/_sandbox/requests", None).await.body;
    assert_eq!(log[0]["body"], "{not json");
}
