//! The ChargebackStop API routes (/v1, /v2). Every route answers with and without a trailing
//! slash (the guides use both), and passes through `gate::api_gate` first.

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

fn both(
    router: Router<SharedApp>,
    path: &str,
    methods: MethodRouter<SharedApp>,
) -> Router<SharedApp> {
    router
        .route(path, methods.clone())
        .route(&format!("{path}/"), methods)
}

pub fn router(app: SharedApp) -> Router<SharedApp> {
    let mut r = Router::new();
    r = both(
        r,
        "/v1/organisations",
        post(onboarding::create_organisation).get(onboarding::list_organisations),
    );
    r = both(
        r,
        "/v1/organisations/{organisation_id}",
        get(onboarding::get_organisation),
    );
    r = both(
        r,
        "/v1/memberships",
        post(onboarding::create_membership).get(onboarding::list_memberships),
    );
    r = both(
        r,
        "/v1/merchants",
        post(onboarding::create_merchant).get(onboarding::list_merchants),
    );
    r = both(
        r,
        "/v1/merchants/{merchant_id}",
        get(onboarding::get_merchant),
    );
    r = both(
        r,
        "/v1/integrations",
        post(onboarding::create_integration).get(onboarding::list_integrations),
    );
    r = both(
        r,
        "/v1/integrations/{integration_id}",
        get(onboarding::get_integration),
    );
    r = both(
        r,
        "/v2/enrolments",
        post(enrolments::create).get(enrolments::list),
    );
    r = both(r, "/v2/enrolments/{enrolment_id}", get(enrolments::get));
    r = both(r, "/v1/orders", post(orders::create).get(orders::list));
    r = both(
        r,
        "/v1/orders/{order_id}",
        get(orders::get).patch(orders::update),
    );
    r = both(r, "/v1/alerts", get(alerts::list));
    r = both(
        r,
        "/v1/alerts/{alert_id}",
        get(alerts::get).patch(alerts::update),
    );
    r = both(
        r,
        "/v1/rulesets",
        post(rulesets::create).get(rulesets::list),
    );
    r = both(
        r,
        "/v1/rulesets/{ruleset_id}",
        get(rulesets::get).patch(rulesets::update),
    );
    r = both(
        r,
        "/v1/rulesets/{ruleset_id}/rules/{rule_id}",
        patch(rulesets::update_rule),
    );
    r = both(
        r,
        "/v1/simulate/enrolments/{enrolment_id}",
        patch(simulate::enrolment_status),
    );
    r = both(r, "/v1/simulate/alerts", post(simulate::alert));
    r.route_layer(axum::middleware::from_fn_with_state(
        app,
        crate::gate::api_gate,
    ))
}
