//! `/v1/simulate/*`: TEST organisations only (a LIVE one gets 403 TEST_MODE_ONLY).
//! Enabling an enrolment sends `enrolment.updated`; a simulated alert sends `alert.created`.
//! Ethoca alerts arrive ACTION_REQUIRED with a 72 h deadline; RDR alerts arrive already RESOLVED
//! (refunded unless an enabled ruleset on the enrolment says ACCEPT_DISPUTE) or INVALID.
//! With the `match_orders` knob (default on) a simulated alert is matched to uploaded COMPLETE
//! orders as the Orders guide describes (`crate::matching`).

use crate::api::alerts::ALERT_STATUSES;
use crate::api::listing::find_visible;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{looks_like_currency, parse_datetime, parse_object, Checker};
use crate::model::*;
use crate::state::{SharedApp, SimulateEnrolmentResponse, Store};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{Duration, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};

pub const SIMULATED_ENROLMENT_STATUSES: &[&str] = &["ENABLED", "UNENROLLED"];
pub const CARD_SCHEMES: &[&str] = &["VISA", "MASTERCARD", "AMEX", "DISCOVER"];
/// How long a simulated Ethoca alert gives the merchant to act.
pub const ETHOCA_ACTION_WINDOW_HOURS: i64 = 72;

fn test_mode_only(org: &Organisation) -> ApiResult<()> {
    if org.mode == Mode::Test {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "TEST_MODE_ONLY",
            "Simulation endpoints are only available for TEST organisations.",
        ))
    }
}

/// The answer of `PATCH /v1/simulate/enrolments/{id}` under the `simulate_enrolment_response`
/// knob (the docs show none): the enrolment, an empty 200, or 204.
fn simulate_answer(app: &SharedApp, object: Value) -> Response {
    match app.runtime().faults.simulate_enrolment_response {
        SimulateEnrolmentResponse::Enrolment => Json(object).into_response(),
        SimulateEnrolmentResponse::Empty200 => StatusCode::OK.into_response(),
        SimulateEnrolmentResponse::NoContent => StatusCode::NO_CONTENT.into_response(),
    }
}

pub async fn enrolment_status(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require("simulations:enrollments")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let status = c.required_enum(&obj, "status", SIMULATED_ENROLMENT_STATUSES);
    c.finish()?;
    let status = status.unwrap_or_default();

    let mut store = app.store();
    let enrolment = find_visible(&store, &caller, &store.enrolments, &id, "Enrolment")?.clone();
    test_mode_only(&store.organisations[&enrolment.organisation_id])?;
    if enrolment.status == status {
        drop(store);
        return Ok(simulate_answer(&app, json!(enrolment)));
    }
    let mut updated = enrolment.clone();
    updated.status = status.clone();
    if let Some(ethoca) = &mut updated.ethoca_alert {
        for d in &mut ethoca.descriptors {
            d.status = status.clone();
        }
    }
    updated.updated_at = Utc::now();
    store.enrolments.insert(id, updated.clone());
    let object = json!(updated);
    let previous =
        json!({ "status": enrolment.status, "updated_at": ts::format(&enrolment.updated_at) });
    app.emit(
        &mut store,
        "enrolment.updated",
        "v2",
        object.clone(),
        previous,
    );
    drop(store);
    app.changed();
    Ok(simulate_answer(&app, object))
}

struct AlertRequest {
    organisation_id: String,
    enrolment_id: String,
    status: Option<String>,
    card_scheme: String,
    amount_in_cents: i64,
    currency_code: String,
    arn: Option<String>,
    authorisation_code: Option<String>,
    descriptor: Option<String>,
    card_bin: Option<String>,
    card_last4: Option<String>,
    merchant_id: Option<String>,
    /// Sandbox extension: the deadline to give an ACTION_REQUIRED alert instead of now + 72 h, so
    /// deadline scenarios get it in `alert.created` (the real simulator takes no such field).
    deadline: Option<chrono::DateTime<Utc>>,
    /// Sandbox extension: when the transaction was authorised (default 7 days ago), for BIN +
    /// last 4 + amount + currency + date matching.
    authorised_at: Option<chrono::DateTime<Utc>>,
    /// Sandbox extension: a subscription is associated with the alert.
    subscription: bool,
}

fn read_alert_request(obj: &Map<String, Value>) -> ApiResult<AlertRequest> {
    let mut c = Checker::new();
    let organisation_id = c.required_str(obj, "organisation_id");
    let enrolment_id = c.required_str(obj, "enrolment_id");
    let status = c.optional_enum(obj, "status", ALERT_STATUSES);
    let card_scheme = c.optional_listed(obj, "card_scheme", CARD_SCHEMES);
    let amount_in_cents = c.optional_amount(obj, "amount_in_cents");
    let currency_code = c.optional_str(obj, "currency_code");
    if let Some(cur) = &currency_code {
        if !looks_like_currency(cur) {
            c.push(FieldError::new(
                "currency_code",
                "INVALID_CURRENCY",
                "currency_code must be an ISO 4217 code",
            ));
        }
    }
    let arn = c.optional_str(obj, "transaction_acquirer_reference_number");
    let authorisation_code = c.optional_str(obj, "transaction_authorisation_code");
    let descriptor = c
        .optional_str(obj, "transaction_statement_descriptor")
        .or_else(|| c.optional_str(obj, "descriptor"));
    let card_bin = c.optional_str(obj, "transaction_card_bin");
    let card_last4 = c.optional_str(obj, "transaction_card_last4");
    let merchant_id = c.optional_str(obj, "merchant_id");
    let deadline =
        c.optional_str(obj, "action_required_deadline")
            .and_then(|v| match parse_datetime("action_required_deadline", &v) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.push(e);
                    None
                }
            });
    let authorised_at = c
        .optional_str(obj, "transaction_authorised_at")
        .and_then(|v| match parse_datetime("transaction_authorised_at", &v) {
            Ok(t) => Some(t),
            Err(e) => {
                c.push(e);
                None
            }
        });
    let subscription = c.optional_bool(obj, "subscription").unwrap_or(false);
    c.finish()?;
    Ok(AlertRequest {
        organisation_id: organisation_id.unwrap_or_default(),
        enrolment_id: enrolment_id.unwrap_or_default(),
        status,
        card_scheme: card_scheme.unwrap_or_else(|| "VISA".into()),
        amount_in_cents: amount_in_cents.unwrap_or(4900),
        currency_code: currency_code.unwrap_or_else(|| "USD".into()),
        arn,
        authorisation_code,
        descriptor,
        card_bin,
        card_last4,
        merchant_id,
        deadline,
        authorised_at,
        subscription,
    })
}

pub async fn alert(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("simulations:alerts")?;
    let req = read_alert_request(&parse_object(&body)?)?;

    let mut store = app.store();
    let org = store
        .organisations
        .get(&req.organisation_id)
        .filter(|o| caller.can_see(o))
        .cloned()
        .ok_or_else(|| ApiError::not_found("Organisation"))?;
    test_mode_only(&org)?;
    let enrolment = store
        .enrolments
        .get(&req.enrolment_id)
        .filter(|e| e.organisation_id == org.id)
        .cloned()
        .ok_or_else(|| {
            ApiError::unprocessable(
                "INVALID_ENROLMENT",
                "enrolment_id",
                format!(
                    "enrolment {} does not exist in organisation {}",
                    req.enrolment_id, org.id
                ),
            )
        })?;
    if enrolment.status != "ENABLED" {
        return Err(ApiError::unprocessable(
            "ENROLMENT_NOT_ENABLED",
            "enrolment_id",
            format!(
                "enrolment {} is {}, not ENABLED",
                enrolment.id, enrolment.status
            ),
        ));
    }
    let merchant_id = match &req.merchant_id {
        Some(m) if enrolment.merchant_ids.contains(m) => m.clone(),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "INVALID_MERCHANT",
                "merchant_id",
                "merchant_id is not one of the enrolment's merchants",
            ))
        }
        None => enrolment.merchant_ids.first().cloned().unwrap_or_default(),
    };

    let now = Utc::now();
    let is_rdr = enrolment.kind == VERIFI_RDR;
    let descriptor = req.descriptor.clone().or_else(|| {
        enrolment
            .ethoca_alert
            .as_ref()
            .and_then(|e| e.descriptors.first())
            .map(|d| d.descriptor.clone())
    });
    // RDR alerts never wait for an action: ask for ACTION_REQUIRED and you get RESOLVED.
    let status = match (is_rdr, req.status.as_deref()) {
        (_, Some("INVALID")) => "INVALID",
        (true, _) => "RESOLVED",
        (false, Some("RESOLVED")) => "RESOLVED",
        (false, _) => "ACTION_REQUIRED",
    };
    let refund_outcome = match (is_rdr, status) {
        (true, "RESOLVED") => Some(rdr_outcome(
            &store,
            &enrolment.id,
            req.amount_in_cents,
            &req.currency_code,
            descriptor.as_deref(),
        )),
        _ => None,
    };
    let id = new_id("netalrt");
    let match_orders = app.runtime().faults.match_orders;
    let mut alert = Alert {
        links: self_link(format!("/v1/alerts/{id}")),
        id: id.clone(),
        alert_network_id: format!("SIM{:06}", rand::rng().random_range(0..1_000_000)),
        organisation_id: org.id.clone(),
        merchant_id,
        enrolment_id: enrolment.id.clone(),
        enrolment_type: enrolment.kind.clone(),
        status: status.into(),
        transaction_amount_in_cents: req.amount_in_cents,
        transaction_currency_code: req.currency_code,
        transaction_authorised_at: Some(req.authorised_at.unwrap_or(now - Duration::days(7))),
        action_required_deadline: (status == "ACTION_REQUIRED").then(|| {
            req.deadline
                .unwrap_or(now + Duration::hours(ETHOCA_ACTION_WINDOW_HOURS))
        }),
        transaction_authorisation_code: req.authorisation_code,
        transaction_acquirer_reference_number: req.arn,
        transaction_statement_descriptor: descriptor,
        transaction_card_bin: Some(req.card_bin.unwrap_or_else(|| "400000".into())),
        transaction_card_last4: Some(req.card_last4.unwrap_or_else(|| "1234".into())),
        transaction_card_scheme: req.card_scheme,
        transaction_card_issuer: Some("Bank of America".into()),
        transaction_refund_outcome: refund_outcome.map(str::to_string),
        subscription_cancel_outcome: None,
        note: None,
        integration_id: None,
        integration_transaction_id: None,
        alert_received_at: now,
        created_at: now,
        updated_at: now,
    };
    let mut subscription = req.subscription;
    if match_orders {
        if let Some(found) = crate::matching::find_transaction(&store, &alert) {
            alert.integration_id = Some(found.integration_id);
            alert.integration_transaction_id = Some(found.transaction_reference_id);
            subscription |= found.order_has_subscription;
        }
    }
    if subscription {
        store.subscribed_alerts.insert(id.clone());
    }
    store.alerts.insert(id.clone(), alert.clone());
    crate::expiry::rearm(&mut store, &id);
    let object = json!(alert);
    app.emit(
        &mut store,
        "alert.created",
        "v1",
        object.clone(),
        Value::Null,
    );
    drop(store);
    app.changed();
    Ok((StatusCode::CREATED, Json(object)))
}

/// RDR decisioning: refund by default; an enabled ruleset on the enrolment whose rules match
/// applies its outcome instead (ACCEPT_DISPUTE gives NOT_REFUNDED).
fn rdr_outcome(
    store: &Store,
    enrolment_id: &str,
    amount: i64,
    currency: &str,
    descriptor: Option<&str>,
) -> &'static str {
    let ruleset = store
        .rulesets
        .values()
        .find(|r| r.is_enabled && r.enrolment_ids.iter().any(|e| e == enrolment_id));
    let Some(ruleset) = ruleset else {
        return "REFUNDED";
    };
    let results: Vec<bool> = ruleset
        .rules
        .iter()
        .map(|rule| rule_matches(rule, amount, currency, descriptor))
        .collect();
    let matched = if ruleset.join_operator == "OR" {
        results.iter().any(|m| *m)
    } else {
        !results.is_empty() && results.iter().all(|m| *m)
    };
    match (matched, ruleset.outcome.as_str()) {
        (true, "ACCEPT_DISPUTE") => "NOT_REFUNDED",
        _ => "REFUNDED",
    }
}

fn rule_matches(rule: &Rule, amount: i64, currency: &str, descriptor: Option<&str>) -> bool {
    let p = &rule.parameters;
    match rule.kind.as_str() {
        "AMOUNT" => {
            let limit = p["amount_in_cents"].as_i64().unwrap_or(0);
            if p["currency_code"].as_str() != Some(currency) {
                return false;
            }
            match p["operator"].as_str().unwrap_or_default() {
                "GREATER_THAN" => amount > limit,
                "GREATER_THAN_OR_EQUAL" => amount >= limit,
                "LESS_THAN" => amount < limit,
                "LESS_THAN_OR_EQUAL" => amount <= limit,
                "EQUAL" => amount == limit,
                _ => false,
            }
        }
        "DESCRIPTOR" => {
            let Some(descriptor) = descriptor else {
                return false;
            };
            p["descriptors"].as_array().into_iter().flatten().any(|d| {
                let value = d["value"].as_str().unwrap_or_default();
                match d["match_type"].as_str() {
                    Some("EXACT_MATCH") => descriptor == value,
                    _ => descriptor.starts_with(value),
                }
            })
        }
        _ => false,
    }
}
