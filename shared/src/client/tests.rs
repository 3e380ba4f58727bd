//! Unit tests of the client that need no server: URLs, query encoding, error mapping.

use super::*;
use crate::models::{AlertAction, AlertQuery, AlertSort, AlertStatus, UpdateAlert};
use std::time::Duration;

fn client(base: &str) -> ChargebackStop {
    ChargebackStop::new(ClientConfig::new(
        base,
        Secret::new("cbs_test_key_do_not_print"),
    ))
    .unwrap()
}

#[test]
fn urls_keep_a_base_path_and_encode_ids() {
    let api = client("http://127.0.0.1:9/prefix/");
    assert_eq!(
        api.url(&["v1", "organisations"], true).as_str(),
        "http://127.0.0.1:9/prefix/v1/organisations/"
    );
    assert_eq!(
        api.url(&["v1", "alerts", "a/b c"], false).as_str(),
        "http://127.0.0.1:9/prefix/v1/alerts/a%2Fb%20c"
    );
}

#[test]
fn alert_query_encodes_every_filter() {
    let q = AlertQuery {
        status: Some(AlertStatus::ActionRequired),
        organisation_id: Some("org_1".into()),
        merchant_id: Some("mrch_1".into()),
        alert_received_at_gte: Some("2026-02-01T00:00:00Z".parse().unwrap()),
        alert_received_at_lte: Some("2026-02-02T00:00:00Z".parse().unwrap()),
        sort: Some(AlertSort::DeadlineSoonestFirst),
        limit: Some(10),
        offset: Some(20),
    };
    let api = client("http://127.0.0.1:9");
    let url = api
        .http
        .get(api.url(&["v1", "alerts"], false))
        .query(&q)
        .build()
        .unwrap()
        .url()
        .clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("status"), Some("ACTION_REQUIRED"));
    assert_eq!(get("organisation_id"), Some("org_1"));
    assert_eq!(get("merchant_id"), Some("mrch_1"));
    assert_eq!(get("alert_received_at_gte"), Some("2026-02-01T00:00:00Z"));
    assert_eq!(get("alert_received_at_lte"), Some("2026-02-02T00:00:00Z"));
    assert_eq!(get("sort"), Some("action_required_deadline"));
    assert_eq!(get("limit"), Some("10"));
    assert_eq!(get("offset"), Some("20"));
}

#[test]
fn debug_never_shows_the_key() {
    let api = client("http://127.0.0.1:9");
    assert!(!format!("{api:?}").contains("cbs_test_key"));
}

// --- retry planning ---------------------------------------------------------------------------

fn get_call() -> Call {
    Call {
        method: "GET",
        path: "/v1/alerts".into(),
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_total: Duration::from_secs(10),
    }
}

fn server_error() -> ApiError {
    ApiError::Server {
        call: get_call(),
        status: 503,
        detail: String::new(),
        retry_after: None,
    }
}

#[test]
fn safe_calls_retry_retryable_errors_with_bounded_jittered_backoff() {
    let p = policy();
    for attempt in 1..4 {
        let wait = plan_retry(&p, Repeat::Safe, &server_error(), attempt, Duration::ZERO).unwrap();
        let ceiling = p.backoff_ceiling(attempt);
        assert!(
            wait >= ceiling / 2 && wait <= ceiling,
            "attempt {attempt}: {wait:?}"
        );
        assert!(wait <= p.max_delay);
    }
    // The fourth attempt was the last.
    assert_eq!(
        plan_retry(&p, Repeat::Safe, &server_error(), 4, Duration::ZERO),
        None
    );
    for e in [
        ApiError::Timeout { call: get_call() },
        ApiError::Transport {
            call: get_call(),
            reason: "reset".into(),
        },
        ApiError::RateLimited {
            call: get_call(),
            retry_after: None,
        },
    ] {
        assert!(
            plan_retry(&p, Repeat::Safe, &e, 1, Duration::ZERO).is_some(),
            "{e}"
        );
    }
}

#[test]
fn creates_are_repeated_after_a_429_only() {
    let p = policy();
    // A 429 refused the request before anything was created: safe to send again.
    let limited = ApiError::RateLimited {
        call: get_call(),
        retry_after: Some(Duration::from_secs(1)),
    };
    assert_eq!(
        plan_retry(&p, Repeat::Never, &limited, 1, Duration::ZERO),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        plan_retry(&p, Repeat::Never, &limited, 4, Duration::ZERO),
        None,
        "still bounded"
    );
    // A 5xx or a timeout may have created it: never sent twice.
    for e in [
        server_error(),
        ApiError::Timeout { call: get_call() },
        ApiError::Transport {
            call: get_call(),
            reason: "reset".into(),
        },
    ] {
        assert_eq!(
            plan_retry(&p, Repeat::Never, &e, 1, Duration::ZERO),
            None,
            "{e}"
        );
    }
}

#[test]
fn final_errors_are_not_retried() {
    let p = policy();
    for e in [
        ApiError::Unauthorized {
            call: get_call(),
            detail: String::new(),
        },
        ApiError::Forbidden {
            call: get_call(),
            detail: String::new(),
        },
        ApiError::NotFound {
            call: get_call(),
            detail: String::new(),
        },
        ApiError::Unprocessable {
            call: get_call(),
            detail: String::new(),
            codes: vec![],
            fields: vec![],
        },
        ApiError::UnexpectedStatus {
            call: get_call(),
            status: 400,
            detail: String::new(),
        },
        ApiError::Decode {
            call: get_call(),
            reason: String::new(),
        },
    ] {
        assert_eq!(
            plan_retry(&p, Repeat::Safe, &e, 1, Duration::ZERO),
            None,
            "{e}"
        );
    }
}

#[test]
fn retry_after_wins_over_backoff_but_not_over_the_total_budget() {
    let p = policy();
    let limited = ApiError::RateLimited {
        call: get_call(),
        retry_after: Some(Duration::from_secs(3)),
    };
    assert_eq!(
        plan_retry(&p, Repeat::Safe, &limited, 1, Duration::ZERO),
        Some(Duration::from_secs(3))
    );
    // 8 s spent + 3 s asked > 10 s budget: give up with the 429 rather than overrun.
    assert_eq!(
        plan_retry(&p, Repeat::Safe, &limited, 1, Duration::from_secs(8)),
        None
    );
    // Same for a backoff that would cross the budget.
    assert_eq!(
        plan_retry(
            &p,
            Repeat::Safe,
            &server_error(),
            1,
            Duration::from_secs(10)
        ),
        None
    );
}

// --- status mapping -----------------------------------------------------------------------------

fn mapped(status: u16, body: &str, retry_after: Option<Duration>) -> ApiError {
    status_error(
        StatusCode::from_u16(status).unwrap(),
        body.as_bytes(),
        retry_after,
        &get_call(),
    )
}

#[test]
fn statuses_map_to_typed_errors_with_the_bodys_detail() {
    let e = mapped(
        401,
        r#"{"detail": "Invalid API key.", "code": "UNAUTHENTICATED"}"#,
        None,
    );
    assert!(
        matches!(&e, ApiError::Unauthorized { detail, .. } if detail == "Invalid API key."),
        "{e:?}"
    );
    let e = mapped(403, r#"{"detail": "Missing ability alerts:write."}"#, None);
    assert!(
        matches!(&e, ApiError::Forbidden { detail, .. } if detail.contains("alerts:write")),
        "{e:?}"
    );
    assert!(mapped(404, r#"{"detail": "Not found."}"#, None).is_not_found());
    let e = mapped(429, "", Some(Duration::from_secs(2)));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    // A 503 may say when to come back too.
    let e = mapped(503, "{}", Some(Duration::from_secs(4)));
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    assert!(
        matches!(mapped(502, "<html>bad gateway</html>", None), ApiError::Server { status: 502, ref detail, .. } if detail.contains("bad gateway"))
    );
    assert!(matches!(
        mapped(409, "{}", None),
        ApiError::UnexpectedStatus { status: 409, .. }
    ));
}

#[test]
fn unprocessable_keeps_detail_codes_and_fields() {
    let body = r#"{"detail": "Validation failed", "code": "VALIDATION_ERROR",
        "errors": [{"code": "INVALID_DATE_RANGE", "field": "alert_received_at_gte", "message": "must be <= lte"}]}"#;
    let e = mapped(422, body, None);
    assert_eq!(e.status(), Some(422));
    assert_eq!(e.codes(), ["VALIDATION_ERROR", "INVALID_DATE_RANGE"]);
    assert_eq!(e.fields(), ["alert_received_at_gte"]);
    let detail = e.detail().unwrap();
    assert!(
        detail.contains("Validation failed") && detail.contains("must be <= lte"),
        "{detail}"
    );
    // Schema-validator shape: `detail` is the list, the field is a path.
    let e = mapped(
        422,
        r#"{"detail": [{"loc": ["body", "action"], "msg": "bad value", "type": "enum"}]}"#,
        None,
    );
    assert_eq!(e.codes(), ["enum"]);
    assert_eq!(e.fields(), ["body.action"]);
}

#[test]
fn an_echoed_key_is_scrubbed_from_errors() {
    let key = Secret::new("cbs_secret_value_123");
    let e = mapped(
        401,
        r#"{"detail": "key cbs_secret_value_123 is expired"}"#,
        None,
    );
    let e = redact(e, &key);
    assert!(!e.to_string().contains("cbs_secret_value_123"), "{e}");
    assert!(e.to_string().contains("<redacted>"));
}

// --- port mapping -------------------------------------------------------------------------------

#[test]
fn alert_and_enrolment_ports_sort_errors_by_what_to_do() {
    use crate::ports::alert_api::ApiCallError;
    let transient = call_error("get alert", "netalrt_1", mapped(429, "", None));
    assert!(transient.is_retryable());
    assert!(call_error("get alert", "netalrt_1", server_error()).is_retryable());
    assert!(call_error(
        "get alert",
        "netalrt_1",
        ApiError::Timeout { call: get_call() }
    )
    .is_retryable());
    assert!(matches!(
        call_error("get alert", "netalrt_1", mapped(404, "{}", None)),
        ApiCallError::NotFound { ref id, .. } if id == "netalrt_1"
    ));
    match call_error(
        "update alert",
        "netalrt_1",
        mapped(
            422,
            r#"{"detail": "Alert is already resolved.", "code": "ALERT_ALREADY_RESOLVED"}"#,
            None,
        ),
    ) {
        ApiCallError::Unprocessable { code, message, .. } => {
            assert_eq!(code, "ALERT_ALREADY_RESOLVED");
            assert_eq!(message, "Alert is already resolved.");
        }
        other => panic!("{other:?}"),
    }
    for status in [401, 403, 400] {
        match call_error("get alert", "netalrt_1", mapped(status, "{}", None)) {
            ApiCallError::Refused { status: s, .. } => assert_eq!(s, status),
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[test]
fn order_port_separates_rate_limits_retries_rejections_and_fatal() {
    use crate::ports::order_api::OrderApiError;
    assert!(matches!(
        order_error(mapped(429, "", Some(Duration::from_secs(5)))),
        OrderApiError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(5)
    ));
    assert!(matches!(
        order_error(server_error()),
        OrderApiError::Retryable(_)
    ));
    assert!(matches!(
        order_error(ApiError::Timeout { call: get_call() }),
        OrderApiError::Retryable(_)
    ));
    match order_error(mapped(
        422,
        r#"{"detail": "bad", "errors": [{"code": "MISSING_FIELD", "field": "0.order_currency", "message": "required"}]}"#,
        None,
    )) {
        OrderApiError::Rejected {
            status,
            code,
            field,
            ..
        } => {
            assert_eq!(status, 422);
            assert_eq!(code, "MISSING_FIELD");
            assert_eq!(field.as_deref(), Some("0.order_currency"));
        }
        other => panic!("{other:?}"),
    }
    for status in [401, 403, 404] {
        assert!(
            matches!(order_error(mapped(status, "{}", None)), OrderApiError::Fatal { status: s, .. } if s == status),
            "{status}"
        );
    }
}

#[test]
fn onboarding_failures_keep_status_code_and_field() {
    let f = onboarding_failure(mapped(
        422,
        r#"{"detail": "invalid", "errors": [{"code": "INVALID_CHOICE", "field": "type", "message": "unknown"}]}"#,
        None,
    ));
    assert_eq!(f.status, Some(422));
    assert_eq!(f.code.as_deref(), Some("INVALID_CHOICE"));
    assert_eq!(f.field.as_deref(), Some("type"));
    let f = onboarding_failure(ApiError::Timeout { call: get_call() });
    assert_eq!(f.status, None);
    assert!(f.message.contains("timed out"));
}

#[test]
fn refused_before_sending_maps_to_final_errors_in_every_port() {
    use crate::ports::alert_api::ApiCallError;
    use crate::ports::order_api::OrderApiError;
    let query = AlertQuery {
        alert_received_at_gte: Some("2026-03-01T00:00:00Z".parse().unwrap()),
        alert_received_at_lte: Some("2026-02-01T00:00:00Z".parse().unwrap()),
        ..Default::default()
    };
    let api = client("http://127.0.0.1:9");
    let url = api.url(&["v1", "alerts"], false);
    let invalid = || {
        checked(
            &Method::GET,
            &url,
            crate::validation::validate_alert_query(&query),
        )
        .unwrap_err()
    };
    let e = invalid();
    assert!(!e.is_retryable());
    assert!(
        e.to_string()
            .starts_with("GET /v1/alerts: not sent, invalid request: alert_received_at_gte"),
        "{e}"
    );
    match call_error("list alerts", "org_1", invalid()) {
        ApiCallError::Unprocessable { code, .. } => assert_eq!(code, "INVALID_DATE_RANGE"),
        other => panic!("{other:?}"),
    }
    match order_error(invalid()) {
        OrderApiError::Rejected { code, field, .. } => {
            assert_eq!(code, "INVALID_DATE_RANGE");
            assert_eq!(field.as_deref(), Some("alert_received_at_gte"));
        }
        other => panic!("{other:?}"),
    }
    let f = onboarding_failure(invalid());
    assert_eq!(
        (f.status, f.field.as_deref()),
        (None, Some("alert_received_at_gte"))
    );
}

// --- over HTTP, against a scripted local server ---------------------------------------------
//
// A unit-test fake (the sandbox e2e tests cover the real API shapes): answers each request with
// the next scripted response and records what it was asked, so the tests can count repeats.

mod scripted {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    pub struct Server {
        pub base: String,
        pub seen: Arc<Mutex<Vec<String>>>,
    }

    /// `(status, extra headers, body)` per request, in order; 500 once the script runs out.
    pub async fn start(script: Vec<(u16, &'static str, String)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut request_line = String::new();
                        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            read.read_line(&mut line).await.unwrap();
                            if line == "\r\n" || line.is_empty() {
                                break;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        read.read_exact(&mut body).await.unwrap();
                        let mut parts = request_line.split_whitespace();
                        let (method, path) =
                            (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                        log.lock().unwrap().push(format!("{method} {path}"));
                        let (status, headers, body) = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or((500, "", "{}".to_owned()));
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
                            body.len()
                        );
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Server { base, seen }
    }
}

fn scripted_client(base: &str) -> ChargebackStop {
    ChargebackStop::new(
        ClientConfig::new(base, Secret::new("cbs_test_scripted")).with_retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total: Duration::from_secs(30),
        }),
    )
    .unwrap()
}

fn alert_json(status: &str, outcome: Option<&str>, note: Option<&str>) -> String {
    serde_json::json!({
        "id": "netalrt_1", "organisation_id": "org_1", "enrolment_type": "ETHOCA_ALERT",
        "status": status, "transaction_refund_outcome": outcome, "note": note
    })
    .to_string()
}

const RESOLVED_422: &str =
    r#"{"detail": "Alert is already resolved.", "code": "ALERT_ALREADY_RESOLVED"}"#;

#[tokio::test]
async fn a_get_is_retried_a_create_is_not_and_retry_after_is_read() {
    let server = scripted::start(vec![
        (503, "", "{}".into()),
        (429, "retry-after: 0\r\n", "{}".into()),
        (200, "", alert_json("ACTION_REQUIRED", None, None)),
        // The create: rate limited (sent again), then a 503 (it may have landed: not again).
        (429, "retry-after: 0\r\n", "{}".into()),
        (503, "", "{}".into()),
    ])
    .await;
    let api = scripted_client(&server.base);
    assert_eq!(api.get_alert("netalrt_1").await.unwrap().id, "netalrt_1");
    let err = api
        .simulate_alert(&crate::models::SimulateAlert {
            organisation_id: "org_1".into(),
            enrolment_id: "enrl_1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(
        *server.seen.lock().unwrap(),
        [
            "GET /v1/alerts/netalrt_1",
            "GET /v1/alerts/netalrt_1",
            "GET /v1/alerts/netalrt_1",
            "POST /v1/simulate/alerts",
            "POST /v1/simulate/alerts"
        ]
    );
}

#[tokio::test]
async fn a_repeated_action_refused_as_already_resolved_is_our_own_when_the_alert_shows_it() {
    // First PATCH: a 503 (it may have landed); the repeat: 422 already resolved; the alert
    // then shows REFUNDED with our note: success.
    let server = scripted::start(vec![
        (503, "", "{}".into()),
        (422, "", RESOLVED_422.into()),
        (
            200,
            "",
            alert_json("RESOLVED", Some("REFUNDED"), Some("refunded in our system")),
        ),
    ])
    .await;
    let api = scripted_client(&server.base);
    let update = UpdateAlert::action(AlertAction::Refund).with_note("refunded in our system");
    let alert = api.update_alert("netalrt_1", &update).await.unwrap();
    assert_eq!(alert.status, AlertStatus::Resolved);
    assert_eq!(server.seen.lock().unwrap().len(), 3);

    // Same, but the alert was resolved the other way: the 422 stands.
    let server = scripted::start(vec![
        (503, "", "{}".into()),
        (422, "", RESOLVED_422.into()),
        (200, "", alert_json("RESOLVED", Some("NOT_REFUNDED"), None)),
    ])
    .await;
    let err = scripted_client(&server.base)
        .update_alert("netalrt_1", &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap_err();
    assert_eq!(err.codes(), ["ALERT_ALREADY_RESOLVED"]);

    // A 422 on the first attempt is never second-guessed: no GET follows.
    let server = scripted::start(vec![(422, "", RESOLVED_422.into())]).await;
    let err = scripted_client(&server.base)
        .update_alert("netalrt_1", &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unprocessable { .. }));
    assert_eq!(*server.seen.lock().unwrap(), ["PATCH /v1/alerts/netalrt_1"]);
}

#[test]
fn what_an_update_leaves_on_an_alert() {
    let alert = |status: &str, outcome: Option<&str>, note: Option<&str>| -> crate::models::Alert {
        serde_json::from_str(&alert_json(status, outcome, note)).unwrap()
    };
    let refund = UpdateAlert::action(AlertAction::Refund);
    assert!(alerts::shows_update(
        &alert("RESOLVED", Some("REFUNDED"), None),
        &refund
    ));
    assert!(!alerts::shows_update(
        &alert("RESOLVED", Some("NOT_REFUNDED"), None),
        &refund
    ));
    assert!(!alerts::shows_update(
        &alert("ACTION_REQUIRED", None, None),
        &refund
    ));
    let accept = UpdateAlert::action(AlertAction::AcceptDispute).with_note("n");
    assert!(alerts::shows_update(
        &alert("RESOLVED", Some("NOT_REFUNDED"), Some("n")),
        &accept
    ));
    assert!(!alerts::shows_update(
        &alert("RESOLVED", Some("NOT_REFUNDED"), Some("other")),
        &accept
    ));
    assert!(alerts::shows_update(
        &alert("RESOLVED", None, Some("n")),
        &UpdateAlert::note("n")
    ));
}

// --- answers the docs do not pin down --------------------------------------------------------

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\r\n</html>\r\n";

#[test]
fn html_and_empty_error_bodies_get_a_short_detail_and_stay_retryable() {
    let html = mapped(502, HTML_502, None);
    assert!(html.is_retryable());
    assert_eq!(html.detail(), Some("HTML page: 502 Bad Gateway"));
    let empty = mapped(503, "", None);
    assert!(empty.is_retryable());
    assert_eq!(empty.detail(), Some("(empty body)"));
    let text = mapped(500, "upstream connect error", None);
    assert_eq!(text.detail(), Some("upstream connect error"));
    assert_eq!(
        describe_unparsed_body(b"<html><body><h1>502</h1> bad   gateway</body></html>"),
        "HTML page: 502 bad gateway"
    );
    let long = describe_unparsed_body("x".repeat(1000).as_bytes());
    assert_eq!(long.len(), 300);
    // A 422 whose body carries no code: the codes are empty, nothing is invented.
    let bare = mapped(
        422,
        r#"{"detail": "Resolved alert cannot be actioned."}"#,
        None,
    );
    assert!(bare.codes().is_empty());
    assert_eq!(bare.detail(), Some("Resolved alert cannot be actioned."));
}

#[tokio::test]
async fn a_get_survives_an_html_502_an_empty_503_and_a_429_without_retry_after() {
    let server = scripted::start(vec![
        (502, "", HTML_502.into()),
        (503, "", String::new()),
        (429, "", "{}".into()),
        (200, "", alert_json("ACTION_REQUIRED", None, None)),
    ])
    .await;
    let api = ChargebackStop::new(
        ClientConfig::new(&server.base, Secret::new("cbs_test_scripted")).with_retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total: Duration::from_secs(30),
        }),
    )
    .unwrap();
    assert_eq!(api.get_alert("netalrt_1").await.unwrap().id, "netalrt_1");
    assert_eq!(server.seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn the_alert_list_uses_the_documented_path_with_its_slash() {
    let server = scripted::start(vec![(200, "", r#"{"items": [], "count": 0}"#.into())]).await;
    let api = scripted_client(&server.base);
    api.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(*server.seen.lock().unwrap(), ["GET /v1/alerts/"]);
}

fn enrolment_json(status: &str) -> String {
    serde_json::json!({
        "id": "enrl_1", "organisation_id": "org_1", "merchant_ids": ["mrch_1"],
        "type": "ETHOCA_ALERT", "status": status,
        "ethoca_alert": {"descriptors": [{"descriptor": "ACME", "match_type": "STARTS_WITH"}]},
        "created_at": "2026-02-17T10:03:00Z", "updated_at": "2026-02-17T10:03:00Z", "note": null
    })
    .to_string()
}

/// `PATCH /v1/simulate/enrolments/{id}` may answer the enrolment, an empty 200 or a 204: the
/// client's answer is the enrolment either way (fetched when the PATCH said nothing), and the
/// onboarding port reports the enable as done even when that fetch fails.
#[tokio::test]
async fn simulating_an_enrolment_status_survives_every_answer() {
    use crate::domain::onboarding::OnboardingApi;
    use crate::models::EnrolmentStatus;
    for (answer, body) in [
        (200, enrolment_json("ENABLED")),
        (200, String::new()),
        (204, String::new()),
    ] {
        let mut script = vec![(answer, "", body.clone())];
        if body.is_empty() {
            script.push((200, "", enrolment_json("ENABLED")));
        }
        let server = scripted::start(script).await;
        let api = scripted_client(&server.base);
        let enrolment = api
            .simulate_enrolment_status("enrl_1", EnrolmentStatus::Enabled)
            .await
            .unwrap();
        assert_eq!(
            enrolment.status,
            EnrolmentStatus::Enabled,
            "{answer} {body:?}"
        );
        let expected: &[&str] = if body.is_empty() {
            &[
                "PATCH /v1/simulate/enrolments/enrl_1",
                "GET /v2/enrolments/enrl_1",
            ]
        } else {
            &["PATCH /v1/simulate/enrolments/enrl_1"]
        };
        assert_eq!(*server.seen.lock().unwrap(), expected);
    }
    // The port: an empty answer and a failing look-up (404 is final, no retries).
    let server = scripted::start(vec![(204, "", String::new()), (404, "", "{}".into())]).await;
    let api = scripted_client(&server.base);
    assert_eq!(
        OnboardingApi::simulate_enable(&api, "enrl_1")
            .await
            .unwrap(),
        None
    );
    let server = scripted::start(vec![
        (200, "", String::new()),
        (200, "", enrolment_json("ENABLED")),
    ])
    .await;
    let api = scripted_client(&server.base);
    assert_eq!(
        OnboardingApi::simulate_enable(&api, "enrl_1")
            .await
            .unwrap()
            .as_deref(),
        Some("ENABLED")
    );
    // A refused PATCH is still a failure.
    let server = scripted::start(vec![(403, "", r#"{"detail": "TEST only"}"#.into())]).await;
    let api = scripted_client(&server.base);
    let failure = OnboardingApi::simulate_enable(&api, "enrl_1")
        .await
        .unwrap_err();
    assert_eq!(failure.status, Some(403));
}
