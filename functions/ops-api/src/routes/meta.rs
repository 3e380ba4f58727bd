//! Health, the OpenAPI document and the page shell with its assets.
//!
//! The page and its assets are served without a key (they hold no data; the page asks for the
//! key and sends it with every API call). `/openapi.json` needs a key like every other route.

use crate::state::AppState;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const INSIGHTS_JS: &str = include_str!("../../assets/insights.js");
const INSIGHTS_CSS: &str = include_str!("../../assets/insights.css");
const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");

/// Scripts and styles only from this function; no inline script, so an alert field that
/// somehow carried markup could not run.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "mode": state.mode }))
}

pub async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

pub async fn index() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

pub async fn app_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

pub async fn app_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
        .into_response()
}

pub async fn insights_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        INSIGHTS_JS,
    )
        .into_response()
}

pub async fn insights_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        INSIGHTS_CSS,
    )
        .into_response()
}

/// Who the key belongs to; the page calls this first to check the key.
pub async fn me(
    State(state): State<AppState>,
    axum::extract::Extension(operator): axum::extract::Extension<crate::auth::Operator>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "operator": operator.0,
        "mode": state.mode,
        "urgent_hours": state.urgent_hours,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_is_json_and_lists_the_api() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/health",
            "/api/alerts",
            "/api/alerts/{alert_id}",
            "/api/alerts/{alert_id}/action",
            "/api/enrolments",
            "/api/orders",
            "/api/orders/uploads",
            "/api/onboarding",
            "/api/customers/{customer_id}",
            "/api/insights",
            "/api/insights/alerts.csv",
            "/api/escalations.csv",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}
