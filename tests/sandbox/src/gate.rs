//! What every /v1 and /v2 request passes through before its handler, in this order:
//! record it (GET /_sandbox/requests) and count it per route template, refuse an undocumented
//! path form (`strict_paths`), apply the fault knobs, authenticate (401), rate-limit (429).
//! Afterwards the answer is shaped by the knobs where the docs are silent: `Retry-After` or
//! not, error codes or `detail` only. The `strict` knob is visible to handlers through
//! [`strict`].

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::{ErrorBody, Profile, RequestRecord, SharedApp, REQUEST_LOG_LIMIT};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

tokio::task_local! {
    /// The `strict` knob as it was when the request being handled arrived.
    static STRICT: bool;
}

/// Whether the request being handled runs under the `strict` knob (false outside a request).
pub fn strict() -> bool {
    STRICT.try_with(|s| *s).unwrap_or(false)
}

/// Collections the seeds write with a trailing slash (`POST /v1/orders/`,
/// `GET /v1/organisations/?limit=10`, base URL `/v1/alerts/`); single objects, nested rule
/// routes and simulations they write without one (`/v1/alerts/{alert_id}`,
/// `/v1/simulate/alerts`).
pub const SLASHED_COLLECTIONS: &[&str] = &[
    "/v1/organisations",
    "/v1/memberships",
    "/v1/merchants",
    "/v1/integrations",
    "/v2/enrolments",
    "/v1/orders",
    "/v1/alerts",
    "/v1/rulesets",
];

/// Whether a matched route template is the form the docs write.
pub fn is_documented_form(template: &str) -> bool {
    let slash = template.len() > 1 && template.ends_with('/');
    let bare = template.trim_end_matches('/');
    if SLASHED_COLLECTIONS.contains(&bare) {
        slash
    } else {
        !slash
    }
}

/// `GET /v1/alerts/{alert_id}`: the method and the route template without a trailing slash, so
/// `/v1/orders/` and `/v1/orders` share one count and one rate-limit pool.
pub fn route_key(method: &str, template: &str) -> String {
    let template = if template.len() > 1 {
        template.trim_end_matches('/')
    } else {
        template
    };
    format!("{method} {template}")
}

pub async fn api_gate(State(app): State<SharedApp>, req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let route = route_key(req.method().as_str(), &template);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body too large",
            )
            .into_response()
        }
    };
    let seq = record_request(&app, &parts, &route, &bytes);
    let (strict, strict_paths, retry_after_header, error_codes) = {
        let rt = app.runtime();
        let f = &rt.faults;
        (
            f.strict,
            f.strict_paths,
            f.retry_after_header,
            f.error_codes,
        )
    };
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = if strict_paths && !is_documented_form(&template) {
        ApiError::not_found("Route").into_response()
    } else {
        STRICT
            .scope(strict, async {
                match gated(&app, &route, seq, &mut req).await {
                    Ok(()) => next.run(req).await,
                    Err(r) => r,
                }
            })
            .await
    };
    let response = shape_answer(response, retry_after_header, error_codes).await;
    let status = response.status().as_u16();
    update_request_record(&app, seq, |r| r.status = Some(status));
    response
}

/// The knobs that change how an answer looks, not what it says: no `Retry-After` on a 429,
/// and 4xx bodies reduced to `{"detail": ...}` (no code the docs do not show).
async fn shape_answer(
    mut response: Response,
    retry_after_header: bool,
    error_codes: bool,
) -> Response {
    if !retry_after_header && response.status() == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().remove(header::RETRY_AFTER);
    }
    if error_codes || !response.status().is_client_error() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (parts.status, "").into_response();
    };
    let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("detail").cloned())
        .unwrap_or(serde_json::Value::Null);
    let body = serde_json::to_vec(&serde_json::json!({ "detail": detail })).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Fill in what was learnt about a logged request after it was recorded. The log is bounded,
/// so a record pushed out meanwhile by newer requests is simply not updated.
fn update_request_record(app: &SharedApp, seq: u64, update: impl FnOnce(&mut RequestRecord)) {
    if let Some(r) = app
        .runtime()
        .requests
        .iter_mut()
        .rev()
        .find(|r| r.seq == seq)
    {
        update(r);
    }
}

/// Bodies above this are refused (100 orders are far below it).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

fn record_request(
    app: &SharedApp,
    parts: &axum::http::request::Parts,
    route: &str,
    bytes: &[u8],
) -> u64 {
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        })
    };
    let mut rt = app.runtime();
    *rt.request_counts.entry(route.to_string()).or_default() += 1;
    rt.next_request_seq += 1;
    let seq = rt.next_request_seq;
    rt.requests.push_back(RequestRecord {
        seq,
        at: crate::model::ts::format(&chrono::Utc::now()),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        route: route.to_string(),
        body,
        key_id: None,
        status: None,
        injected: false,
    });
    while rt.requests.len() > REQUEST_LOG_LIMIT {
        rt.requests.pop_front();
    }
    seq
}

/// Faults, authentication and the rate limit; Err is the response to send instead.
async fn gated(app: &SharedApp, route: &str, seq: u64, req: &mut Request) -> Result<(), Response> {
    let (latency, fault) = {
        let mut rt = app.runtime();
        let realistic = rt.faults.profile == Profile::Realistic;
        let fault = if rt.faults.burst_429 > 0 {
            rt.faults.burst_429 -= 1;
            Some(ApiError::rate_limited(1).into_response())
        } else if rt.faults.burst_5xx > 0
            || (rt.faults.error_rate > 0.0 && rt.roll() < rt.faults.error_rate)
        {
            rt.faults.burst_5xx = rt.faults.burst_5xx.saturating_sub(1);
            let status = StatusCode::from_u16(rt.faults.error_status)
                .ok()
                .filter(|s| s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(server_fault(status, rt.faults.error_body))
        } else if realistic && rt.roll() < REALISTIC_429_SHARE {
            Some(ApiError::rate_limited(1).into_response())
        } else {
            None
        };
        let mut latency = rt.faults.latency_ms;
        if realistic && latency > 0 {
            // Between half and twice the configured latency.
            latency = (latency as f64 * (0.5 + 1.5 * rt.roll())) as u64;
        }
        (latency, fault)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(response) = fault {
        update_request_record(app, seq, |r| r.injected = true);
        return Err(response);
    }

    let caller = authenticate(&app.store(), req.headers()).map_err(|e| e.into_response())?;
    update_request_record(app, seq, |r| r.key_id = Some(caller.key_id.clone()));

    if let Some(retry_after) = over_limit(app, route, &caller.pool()) {
        return Err(ApiError::rate_limited(retry_after).into_response());
    }

    req.extensions_mut().insert(caller);
    Ok(())
}

/// Share of requests the `realistic` profile answers 429 (besides the real rate limit).
pub const REALISTIC_429_SHARE: f64 = 0.02;

/// An injected 5xx: the API's JSON error, a proxy's HTML page, or nothing at all.
pub fn server_fault(status: StatusCode, body: ErrorBody) -> Response {
    match body {
        ErrorBody::Json => ApiError::fault(status).into_response(),
        ErrorBody::Html => (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            format!(
                "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                code = status.as_u16(),
                reason = status.canonical_reason().unwrap_or("Error"),
            ),
        )
            .into_response(),
        ErrorBody::Empty => status.into_response(),
    }
}

/// A fixed window per (endpoint, pool). Returns the seconds to wait when over the limit. An
/// endpoint is a method and a path, or the path alone with `--rate-limit-per path`.
fn over_limit(app: &SharedApp, route: &str, pool: &str) -> Option<u64> {
    let route = if app.settings.rate_limit_per_path {
        route.split_once(' ').map_or(route, |(_, path)| path)
    } else {
        route
    };
    let limit = app.settings.rate_limit;
    let window_ms = (app.settings.rate_window.as_millis() as i64).max(1);
    let now = chrono::Utc::now().timestamp_millis();
    let mut rt = app.runtime();
    let entry = rt
        .rate_windows
        .entry((route.to_string(), pool.to_string()))
        .or_insert((now, 0));
    if now - entry.0 >= window_ms {
        *entry = (now, 0);
    }
    if entry.1 >= limit {
        let left_ms = (entry.0 + window_ms - now).max(0) as u64;
        return Some(left_ms.div_ceil(1000).max(1));
    }
    entry.1 += 1;
    None
}

#[cfg(test)]
mod tests {
    use super::{is_documented_form, route_key};

    #[test]
    fn documented_forms_follow_the_seeds() {
        for documented in [
            "/v1/organisations/",
            "/v1/orders/",
            "/v2/enrolments/",
            "/v1/alerts/",
            "/v1/alerts/{alert_id}",
            "/v1/orders/{order_id}",
            "/v1/simulate/alerts",
            "/v1/simulate/enrolments/{enrolment_id}",
            "/v1/rulesets/{ruleset_id}/rules/{rule_id}",
        ] {
            assert!(is_documented_form(documented), "{documented}");
        }
        for other in [
            "/v1/organisations",
            "/v1/orders",
            "/v2/enrolments",
            "/v1/alerts",
            "/v1/alerts/{alert_id}/",
            "/v1/simulate/alerts/",
        ] {
            assert!(!is_documented_form(other), "{other}");
        }
    }

    #[test]
    fn trailing_slashes_share_a_route_key() {
        assert_eq!(route_key("POST", "/v1/orders/"), "POST /v1/orders");
        assert_eq!(route_key("POST", "/v1/orders"), "POST /v1/orders");
        assert_eq!(
            route_key("GET", "/v1/alerts/{alert_id}"),
            "GET /v1/alerts/{alert_id}"
        );
    }
}
