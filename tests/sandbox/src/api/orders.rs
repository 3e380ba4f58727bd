//! `/v1/orders`: POST an array of at most 100 orders. Schema problems (not an array, too many,
//! wrong field types or enum values) reject the whole batch with 422; after that each order
//! succeeds or fails on its own (DUPLICATE_ORDER, INVALID_ORDER_TYPE, INVALID_INTEGRATION,
//! MISSING_FIELD) and the answer is `{created, failed, results, errors}`.

use crate::api::listing::{find_visible, visible, PageRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{looks_like_currency, parse_datetime, parse_json, parse_object};
use crate::model::*;
use crate::state::{SharedApp, Store};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

pub const MAX_ORDERS_PER_REQUEST: usize = 100;
pub const ORDER_TYPES: &[&str] = &["COMPLETE", "PARTIAL"];
pub const ORDER_STATUSES: &[&str] = &[
    "OPEN_PENDING",
    "OPEN_PENDING_RETURN",
    "CLOSED_COMPLETE",
    "CLOSED_CANCELLED",
    "OTHER",
];
/// Required for a COMPLETE order (orders guide), after `type`, `organisation_id` and
/// `integration_id`, which every order needs.
pub const COMPLETE_ORDER_FIELDS: &[&str] = &[
    "reference_id",
    "order_datetime",
    "order_number",
    "order_subtotal_amount_in_cents",
    "order_currency",
    "order_total_amount_in_cents",
    "order_status",
];
pub const TRANSACTION_FIELDS: &[&str] = &[
    "reference_id",
    "amount_in_cents",
    "currency",
    "payment_method_type",
    "authorisation_status",
    "payment_method_reference_id",
    "authorised_at",
];
pub const CARD_TRANSACTION_FIELDS: &[&str] =
    &["payment_method_card_brand", "payment_method_card_last_4"];
/// Fields that cannot change after create.
const IMMUTABLE: &[&str] = &[
    "id",
    "type",
    "organisation_id",
    "integration_id",
    "reference_id",
    "created_at",
];
const INTEGER_FIELDS: &[&str] = &[
    "order_subtotal_amount_in_cents",
    "order_total_amount_in_cents",
    "order_tax_amount_in_cents",
    "order_shipping_amount_in_cents",
    "order_discount_amount_in_cents",
    "amount_in_cents",
];
const CURRENCY_FIELDS: &[&str] = &["order_currency", "currency"];
const DATETIME_FIELDS: &[&str] = &[
    "order_datetime",
    "authorised_at",
    "refund_datetime",
    "dispute_datetime",
];
const LIST_FIELDS: &[&str] = &[
    "transactions",
    "refunds",
    "disputes",
    "deliveries",
    "items",
    "subscriptions",
    "communications",
];

/// Type checks that reject a whole request (the "422 schema validation" of the guide).
fn schema_errors(obj: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for (key, value) in obj {
        let at = format!("{path}.{key}");
        if value.is_null() {
            continue;
        }
        if INTEGER_FIELDS.contains(&key.as_str()) && value.as_i64().is_none_or(|v| v < 0) {
            errors.push(FieldError::invalid_type(at, "a non-negative integer"));
        } else if CURRENCY_FIELDS.contains(&key.as_str())
            && !value.as_str().is_some_and(looks_like_currency)
        {
            errors.push(FieldError::new(
                at,
                "INVALID_CURRENCY",
                format!("{key} must be an ISO 4217 code"),
            ));
        } else if DATETIME_FIELDS.contains(&key.as_str()) {
            match value.as_str() {
                Some(s) => {
                    if let Err(e) = parse_datetime(&at, s) {
                        errors.push(e);
                    }
                }
                None => errors.push(FieldError::invalid_type(at, "an ISO 8601 datetime string")),
            }
        } else if key == "order_status"
            && !value.as_str().is_some_and(|s| ORDER_STATUSES.contains(&s))
        {
            errors.push(FieldError::invalid_enum(at, ORDER_STATUSES));
        } else if LIST_FIELDS.contains(&key.as_str()) {
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_object() {
                            Some(o) => schema_errors(o, &format!("{at}[{i}]"), errors),
                            None => errors
                                .push(FieldError::invalid_type(format!("{at}[{i}]"), "an object")),
                        }
                    }
                }
                None => errors.push(FieldError::invalid_type(at, "an array")),
            }
        } else if ["type", "organisation_id", "integration_id", "reference_id"]
            .contains(&key.as_str())
            && !value.is_string()
        {
            errors.push(FieldError::invalid_type(at, "a string"));
        }
    }
}

fn present(obj: &Map<String, Value>, field: &str) -> bool {
    match obj.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// The first required field a COMPLETE order lacks, as a path.
fn first_missing(order: &Map<String, Value>) -> Option<String> {
    if let Some(f) = COMPLETE_ORDER_FIELDS.iter().find(|f| !present(order, f)) {
        return Some(f.to_string());
    }
    let transactions = order.get("transactions").and_then(Value::as_array);
    for (i, t) in transactions.into_iter().flatten().enumerate() {
        let t = t.as_object()?;
        if let Some(f) = TRANSACTION_FIELDS.iter().find(|f| !present(t, f)) {
            return Some(format!("transactions[{i}].{f}"));
        }
        if t.get("payment_method_type").and_then(Value::as_str) == Some("CARD") {
            if let Some(f) = CARD_TRANSACTION_FIELDS.iter().find(|f| !present(t, f)) {
                return Some(format!("transactions[{i}].{f}"));
            }
        }
    }
    None
}

struct OrderFailure {
    code: &'static str,
    field: Option<String>,
    detail: String,
}

fn fail(code: &'static str, field: Option<&str>, detail: impl Into<String>) -> OrderFailure {
    OrderFailure {
        code,
        field: field.map(str::to_string),
        detail: detail.into(),
    }
}

/// Decide one order against the store; `batch_refs` holds the references created earlier in the
/// same request.
fn check_order(
    store: &Store,
    caller: &Caller,
    order: &Map<String, Value>,
    batch_refs: &HashSet<(String, String)>,
) -> Result<(), OrderFailure> {
    for f in ["type", "organisation_id", "integration_id"] {
        if !present(order, f) {
            return Err(fail("MISSING_FIELD", Some(f), format!("{f} is required")));
        }
    }
    let kind = order["type"].as_str().unwrap_or_default();
    if !ORDER_TYPES.contains(&kind) {
        return Err(fail(
            "INVALID_ORDER_TYPE",
            Some("type"),
            "type must be COMPLETE or PARTIAL",
        ));
    }
    let org_id = order["organisation_id"].as_str().unwrap_or_default();
    let integration_id = order["integration_id"].as_str().unwrap_or_default();
    let integration = store
        .integrations
        .get(integration_id)
        .filter(|i| i.organisation_id == org_id && caller.can_see_org_id(store, org_id))
        .ok_or_else(|| {
            fail(
                "INVALID_INTEGRATION",
                Some("integration_id"),
                format!("integration {integration_id} does not exist in organisation {org_id} or is not accessible"),
            )
        })?;
    if integration.status != "ENABLED" {
        return Err(fail(
            "INVALID_INTEGRATION",
            Some("integration_id"),
            format!("integration {integration_id} is {}", integration.status),
        ));
    }
    match (kind, integration.kind.as_str()) {
        ("COMPLETE", "CUSTOM_ORDERS") => {}
        ("COMPLETE", other) => {
            return Err(fail(
                "INVALID_ORDER_TYPE",
                Some("type"),
                format!("COMPLETE orders must use a CUSTOM_ORDERS integration, not {other}"),
            ))
        }
        ("PARTIAL", "CUSTOM_ORDERS") => {
            return Err(fail(
                "INVALID_ORDER_TYPE",
                Some("type"),
                "PARTIAL orders enrich a processor integration, not CUSTOM_ORDERS",
            ))
        }
        _ => {}
    }
    if kind == "COMPLETE" {
        if let Some(field) = first_missing(order) {
            return Err(fail(
                "MISSING_FIELD",
                Some(&field),
                format!("{field} is required"),
            ));
        }
    } else if !present(order, "reference_id") {
        return Err(fail(
            "MISSING_FIELD",
            Some("reference_id"),
            "reference_id is required",
        ));
    }
    let reference = order["reference_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = (org_id.to_string(), reference.clone());
    if store.order_refs.contains_key(&key) || batch_refs.contains(&key) {
        return Err(fail(
            "DUPLICATE_ORDER",
            Some("reference_id"),
            format!("an order with reference_id {reference} already exists"),
        ));
    }
    Ok(())
}

pub async fn create(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("orders:write")?;
    let Value::Array(orders) = parse_json(&body)? else {
        return Err(FieldError::invalid_type("body", "a JSON array of orders").into());
    };
    if orders.is_empty() {
        return Err(ApiError::unprocessable(
            "EMPTY_BATCH",
            "body",
            "send at least one order",
        ));
    }
    if orders.len() > MAX_ORDERS_PER_REQUEST {
        return Err(ApiError::unprocessable(
            "TOO_MANY_ORDERS",
            "body",
            format!(
                "at most {MAX_ORDERS_PER_REQUEST} orders per request, got {}",
                orders.len()
            ),
        ));
    }
    let mut schema = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        match order.as_object() {
            Some(o) => schema_errors(o, &format!("[{i}]"), &mut schema),
            None => schema.push(FieldError::invalid_type(format!("[{i}]"), "an object")),
        }
    }
    if !schema.is_empty() {
        return Err(ApiError::validation(schema));
    }

    let echo_reference = app.runtime().faults.order_error_reference_id;
    let mut store = app.store();
    let now = Utc::now();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    let mut batch_refs = HashSet::new();
    let mut created = Vec::new();
    for (index, order) in orders.into_iter().enumerate() {
        let Value::Object(mut order) = order else {
            continue;
        };
        match check_order(&store, &caller, &order, &batch_refs) {
            Ok(()) => {
                let id = new_id("ord");
                order.insert("id".into(), json!(id));
                order.insert("created_at".into(), json!(ts::format(&now)));
                order.insert("updated_at".into(), json!(ts::format(&now)));
                order.insert("links".into(), json!(self_link(format!("/v1/orders/{id}"))));
                let key = (
                    order["organisation_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    order["reference_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                batch_refs.insert(key.clone());
                created.push((key, id.clone(), Value::Object(order.clone())));
                results.push(Value::Object(order));
            }
            Err(f) => {
                let mut error = json!({
                    "index": index,
                    "code": f.code,
                    "field": f.field,
                    "message": f.detail,
                    "detail": f.detail,
                });
                // The docs show no error item; with the knob off only `index` says which
                // order it is about.
                if echo_reference {
                    error["reference_id"] =
                        order.get("reference_id").cloned().unwrap_or(Value::Null);
                }
                errors.push(error)
            }
        }
    }
    for (key, id, order) in created {
        store.order_refs.insert(key, id.clone());
        store.orders.insert(id, order);
    }
    drop(store);
    app.changed();
    Ok(Json(json!({
        "created": results.len(),
        "failed": errors.len(),
        "results": results,
        "errors": errors,
    })))
}

fn visible_order(store: &Store, caller: &Caller, id: &str) -> ApiResult<Value> {
    find_visible(store, caller, &store.orders, id, "Order").cloned()
}

pub async fn list(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.require("orders:read")?;
    let page = PageRequest::from_query(&q)?;
    let store = app.store();
    let items: Vec<&Value> = visible(&store, &caller, &q, store.orders.values())
        .filter(|o| {
            q.get("reference_id")
                .is_none_or(|r| o["reference_id"].as_str() == Some(r))
        })
        .filter(|o| {
            q.get("integration_id")
                .is_none_or(|r| o["integration_id"].as_str() == Some(r))
        })
        .collect();
    Ok(page.newest_first(items))
}

pub async fn get(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("orders:read")?;
    Ok(Json(visible_order(&app.store(), &caller, &id)?))
}

/// PATCH merges: list fields (refunds, disputes, ...) are merged by `reference_id` (same
/// reference updates, a new one is appended); other fields are replaced.
pub async fn update(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("orders:update")?;
    let patch = parse_object(&body)?;
    let mut store = app.store();
    let Value::Object(mut order) = visible_order(&store, &caller, &id)? else {
        return Err(ApiError::not_found("Order"));
    };
    let mut errors = Vec::new();
    schema_errors(&patch, "", &mut errors);
    for f in IMMUTABLE {
        if let Some(v) = patch.get(*f) {
            if order.get(*f) != Some(v) {
                errors.push(FieldError::new(
                    *f,
                    "IMMUTABLE_FIELD",
                    format!("{f} cannot be changed"),
                ));
            }
        }
    }
    for list in LIST_FIELDS {
        for (i, item) in patch
            .get(*list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !item.as_object().is_some_and(|o| present(o, "reference_id")) {
                errors.push(FieldError::missing(format!("{list}[{i}].reference_id")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    for (key, value) in patch {
        if LIST_FIELDS.contains(&key.as_str()) {
            let existing = order.entry(key).or_insert_with(|| json!([]));
            if !existing.is_array() {
                *existing = json!([]);
            }
            let items = existing.as_array_mut().expect("made an array above");
            for new in value.as_array().cloned().unwrap_or_default() {
                let reference = new["reference_id"].clone();
                match items.iter_mut().find(|o| o["reference_id"] == reference) {
                    Some(old) => *old = new,
                    None => items.push(new),
                }
            }
        } else if !IMMUTABLE.contains(&key.as_str()) {
            order.insert(key, value);
        }
    }
    order.insert("updated_at".into(), json!(ts::format(&Utc::now())));
    let order = Value::Object(order);
    store.orders.insert(id, order.clone());
    drop(store);
    app.changed();
    Ok(Json(order))
}
