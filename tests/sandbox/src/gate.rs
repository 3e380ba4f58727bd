//! What every /v1 and /v2 request passes through before its handler, in this order:
//! record it (GET /_sandbox/requests) and count it per route template, apply the fault knobs,
//! authenticate (401), rate-limit (429).

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::{RequestRecord, SharedApp, REQUEST_LOG_LIMIT};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::time::Duration;

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
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = gated(&app, &route, seq, &mut req).await;
    let response = match response {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    };
    let status = response.status().as_u16();
    update_request_record(&app, seq, |r| r.status = Some(status));
    response
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
        let faults = &mut rt.faults;
        let fault = if faults.burst_429 > 0 {
            faults.burst_429 -= 1;
            Some(ApiError::rate_limited(1))
        } else if faults.error_rate > 0.0 && rand::rng().random::<f64>() < faults.error_rate {
            let status = StatusCode::from_u16(faults.error_status)
                .ok()
                .filter(|s| s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(ApiError::fault(status))
        } else {
            None
        };
        (faults.latency_ms, fault)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(error) = fault {
        return Err(error.into_response());
    }

    let caller = authenticate(&app.store(), req.headers()).map_err(|e| e.into_response())?;
    update_request_record(app, seq, |r| r.key_id = Some(caller.key_id.clone()));

    if let Some(retry_after) = over_limit(app, route, &caller.pool()) {
        return Err(ApiError::rate_limited(retry_after).into_response());
    }

    req.extensions_mut().insert(caller);
    Ok(())
}

/// A fixed window per (endpoint, pool). Returns the seconds to wait when over the limit.
fn over_limit(app: &SharedApp, route: &str, pool: &str) -> Option<u64> {
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
    use super::route_key;

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
