//! The operations API and the alert queue page: one axum router, run by `lambda_http` in
//! Lambda and under `cargo lambda watch`, and servable in-process for tests.

pub mod auth;
pub mod body;
pub mod error;
pub mod routes;
pub mod state;
pub mod upload_status;
pub mod wiring;

use axum::routing::{get, post};
use axum::Router;
use state::AppState;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(routes::meta::openapi))
        .route("/api/me", get(routes::meta::me))
        .route("/api/alerts", get(routes::alerts::list))
        .route("/api/alerts/{alert_id}", get(routes::alerts::get))
        .route(
            "/api/alerts/{alert_id}/action",
            post(routes::alerts::action),
        )
        .route("/api/enrolments", get(routes::enrolments::list))
        .route(
            "/api/enrolments/{enrolment_id}",
            get(routes::enrolments::get),
        )
        .route("/api/orders", post(routes::orders::intake))
        .route("/api/orders/uploads", get(routes::orders::uploads))
        .route(
            "/api/orders/{organisation_id}/{reference_id}",
            get(routes::orders::upload),
        )
        .route(
            "/api/orders/{organisation_id}/{reference_id}/requeue",
            post(routes::orders::requeue),
        )
        .route("/api/insights", get(routes::insights::overview))
        .route(
            "/api/insights/alerts.csv",
            get(routes::insights::alerts_csv),
        )
        .route("/api/escalations.csv", get(routes::escalations::csv))
        .route("/api/onboarding", post(routes::onboarding::onboard))
        .route(
            "/api/customers/{customer_id}",
            get(routes::onboarding::customer),
        )
        .route(
            "/api/events/{event_id}/replay",
            post(routes::recovery::replay),
        )
        .route("/api/dlq", get(routes::recovery::dlq_summary))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_operator,
        ));
    Router::new()
        .route("/health", get(routes::meta::health))
        .route("/", get(routes::meta::index))
        .route("/assets/app.js", get(routes::meta::app_js))
        .route("/assets/app.css", get(routes::meta::app_css))
        .route("/assets/dlq.js", get(routes::recovery::dlq_js))
        .route("/assets/insights.js", get(routes::meta::insights_js))
        .route("/assets/insights.css", get(routes::meta::insights_css))
        .merge(api)
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no_such_route",
                "no such route; see /openapi.json",
            )
        })
        .with_state(state)
}
