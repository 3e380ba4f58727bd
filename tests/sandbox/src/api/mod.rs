//! The ChargebackStop API routes (/v1, /v2). Every route is registered with and without a
//! trailing slash; `gate::api_gate` (which every request passes first) refuses the form the docs
//! do not write when the `strict_paths` knob is on.

pub mod alerts;
pub mod enrolments;
pub mod listing;
pub mod onboarding;
pub mod orders;
pub mod rulesets;
pub mod simulate;

use crate::state::SharedApp;
use axum::routing::{get, patch, post, MethodRouter};
use axum::Router;

pub fn router(app: SharedApp) -> Router<SharedApp> {
    let routes: Vec<(&str, MethodRouter<SharedApp>)> = vec![
        (
            "/v1/organisations",
            post(onboarding::create_organisation).get(onboarding::list_organisations),
        ),
        (
            "/v1/organisations/{organisation_id}",
            get(onboarding::get_organisation),
        ),
        (
            "/v1/memberships",
            post(onboarding::create_membership).get(onboarding::list_memberships),
        ),
        (
            "/v1/merchants",
            post(onboarding::create_merchant).get(onboarding::list_merchants),
        ),
        ("/v1/merchants/{merchant_id}", get(onboarding::get_merchant)),
        (
            "/v1/integrations",
            post(onboarding::create_integration).get(onboarding::list_integrations),
        ),
        (
            "/v1/integrations/{integration_id}",
            get(onboarding::get_integration),
        ),
        (
            "/v2/enrolments",
            post(enrolments::create).get(enrolments::list),
        ),
        ("/v2/enrolments/{enrolment_id}", get(enrolments::get)),
        ("/v1/orders", post(orders::create).get(orders::list)),
        (
            "/v1/orders/{order_id}",
            get(orders::get).patch(orders::update),
        ),
        ("/v1/alerts", get(alerts::list)),
        (
            "/v1/alerts/{alert_id}",
            get(alerts::get).patch(alerts::update),
        ),
        ("/v1/rulesets", post(rulesets::create).get(rulesets::list)),
        (
            "/v1/rulesets/{ruleset_id}",
            get(rulesets::get).patch(rulesets::update),
        ),
        (
            "/v1/rulesets/{ruleset_id}/rules/{rule_id}",
            patch(rulesets::update_rule),
        ),
        (
            "/v1/simulate/enrolments/{enrolment_id}",
            patch(simulate::enrolment_status),
        ),
        ("/v1/simulate/alerts", post(simulate::alert)),
    ];
    let mut r = Router::new();
    for (path, methods) in routes {
        r = r
            .route(path, methods.clone())
            .route(&format!("{path}/"), methods);
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        app,
        crate::gate::api_gate,
    ))
}
