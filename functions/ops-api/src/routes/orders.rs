//! Order intake and upload status.
//!
//! `POST /api/orders` goes through `shared::domain::order_intake::intake_orders`, the one door
//! into the orders outbox. It is all or nothing here: the whole request is validated first
//! (a dry run of the same intake against an outbox that stores nothing) and if any order is
//! invalid nothing is stored and every offending field is named (`orders[2].order_currency`).
//!
//! `POST /api/orders/{organisation_id}/{reference_id}/requeue` puts a FAILED order back in the
//! upload queue under the same `reference_id`, with body `{}` (as it was) or `{"order": {...}}`
//! (corrected; validated like an intake, problems named `order.<field>`), through
//! `shared::domain::order_intake::requeue_failed_order`.

use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, FieldProblem};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::order_intake::{
    intake_orders, requeue_failed_order, IntakeReport, RequeueAnswer,
};
use shared::models::order::{Order, PatchOrder};
use shared::ports::order_outbox::{
    Enqueued, OrderOutbox, OutboxOrder, PendingPage, Requeued, UpdateQueued, UploadOutcome,
};
use shared::ports::store_error::StoreError;
use std::collections::{HashMap, HashSet};

/// At most this many orders per request (the upload sends them on in batches of 100).
const MAX_ORDERS: usize = 1000;

pub async fn intake(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<IntakeReport>)> {
    let orders = match body {
        serde_json::Value::Array(items) => items,
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::invalid(
                "(body)",
                "must be an order object or an array of orders",
            ))
        }
    };
    if orders.is_empty() {
        return Err(ApiError::invalid("(body)", "no orders in the request"));
    }
    if orders.len() > MAX_ORDERS {
        return Err(ApiError::invalid(
            "(body)",
            format!("at most {MAX_ORDERS} orders per request"),
        ));
    }
    if let Some(i) = orders.iter().position(|o| !o.is_object()) {
        return Err(ApiError::invalid(
            format!("orders[{i}]"),
            "must be an object",
        ));
    }
    let now = state.clock.now();
    // Validate everything first: nothing is stored unless every order is valid.
    let dry = intake_orders(&ValidateOnly, orders.clone(), now).await?;
    if !dry.rejected.is_empty() {
        let problems = dry
            .rejected
            .iter()
            .flat_map(|r| {
                let orders = &orders;
                r.errors.iter().map(move |e| FieldProblem {
                    field: format!(
                        "orders[{}].{}",
                        r.index,
                        field_of(&e.field, orders.get(r.index))
                    ),
                    message: e.message.clone(),
                })
            })
            .collect();
        let mut err = ApiError::problems(problems);
        err.message = format!(
            "{} of {} orders are invalid; nothing was stored: {}",
            dry.rejected.len(),
            orders.len(),
            err.message
        );
        return Err(err);
    }
    let report = intake_orders(state.outbox.as_ref(), orders, now).await?;
    tracing::info!(
        stored = report.stored.len(),
        already_queued = report.already_queued.len(),
        "orders taken in"
    );
    Ok((StatusCode::ACCEPTED, Json(report)))
}

#[derive(Debug, Serialize)]
pub struct UploadView {
    pub organisation_id: String,
    pub reference_id: String,
    pub status: &'static str,
    pub order_id: Option<String>,
    pub error_code: Option<String>,
    pub error_field: Option<String>,
    pub error_message: Option<String>,
    pub last_error: Option<String>,
    pub attempts: u32,
    /// When it is next due for upload (moves later after a transient failure).
    pub queued_at: String,
    /// When it was taken in (or requeued).
    pub enqueued_at: String,
    pub updated_at: String,
}

impl From<&OutboxOrder> for UploadView {
    fn from(o: &OutboxOrder) -> Self {
        Self {
            organisation_id: o.organisation_id.clone(),
            reference_id: o.reference_id.clone(),
            status: o.state.as_str(),
            order_id: o.order_id.clone(),
            error_code: o.error_code.clone(),
            error_field: o.error_field.clone(),
            error_message: o.error_message.clone(),
            last_error: o.last_error.clone(),
            attempts: o.attempts,
            queued_at: o.queued_at.clone(),
            enqueued_at: o.enqueued_at.clone(),
            updated_at: o.updated_at.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UploadPage {
    pub items: Vec<UploadView>,
}

pub async fn upload(
    State(state): State<AppState>,
    Path((organisation_id, reference_id)): Path<(String, String)>,
) -> ApiResult<Json<UploadView>> {
    let order = state
        .outbox
        .get(&organisation_id, &reference_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("order", &format!("{organisation_id}/{reference_id}"))
        })?;
    Ok(Json(UploadView::from(&order)))
}

pub async fn uploads(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<UploadPage>> {
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if ![
            "PENDING",
            "LEASED",
            "CREATED",
            "FAILED",
            "DUPLICATE",
            "RECONCILE",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::invalid(
                "status",
                "must be PENDING, LEASED, CREATED, FAILED, DUPLICATE or RECONCILE",
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    "must be a whole number from 1 to 500",
                ))
            }
        },
    };
    let orgs = match q.get("organisation_id") {
        Some(o) => vec![o.clone()],
        None => state.outbox.organisations().await?,
    };
    let mut items = Vec::new();
    for org in orgs {
        for o in state
            .upload_status
            .orders_of(&org, status.as_deref(), limit)
            .await?
        {
            items.push(UploadView::from(&o));
        }
    }
    // Most recent first: what an operator needs to look at now.
    items.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    items.truncate(limit);
    Ok(Json(UploadPage { items }))
}

/// Requeues a FAILED order (see the module docs). 202 with the order's upload status.
pub async fn requeue(
    State(state): State<AppState>,
    Path((organisation_id, reference_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<UploadView>)> {
    let serde_json::Value::Object(mut body) = body else {
        return Err(ApiError::invalid(
            "(body)",
            "must be an object: {} or {\"order\": {...}}",
        ));
    };
    if let Some(key) = body.keys().find(|k| *k != "order") {
        return Err(ApiError::invalid(
            key.clone(),
            "unknown field; the only field is order",
        ));
    }
    let corrected = match body.remove("order") {
        None | Some(serde_json::Value::Null) => None,
        Some(order @ serde_json::Value::Object(_)) => Some(order),
        Some(_) => return Err(ApiError::invalid("order", "must be an order object")),
    };
    let raw = corrected.clone();
    let now = state.clock.now();
    match requeue_failed_order(
        state.outbox.as_ref(),
        &organisation_id,
        &reference_id,
        corrected,
        now,
    )
    .await?
    {
        RequeueAnswer::Requeued => {}
        RequeueAnswer::Invalid(problems) => {
            let mut err = ApiError::problems(
                problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: format!("order.{}", field_of(&p.field, raw.as_ref())),
                        message: p.message,
                    })
                    .collect(),
            );
            err.message = format!(
                "the corrected order is invalid; nothing changed: {}",
                err.message
            );
            return Err(err);
        }
        RequeueAnswer::UnknownOrder => {
            return Err(ApiError::not_found(
                "order",
                &format!("{organisation_id}/{reference_id}"),
            ))
        }
        RequeueAnswer::NotFailed(state) => {
            return Err(ApiError::conflict(
                "order_not_failed",
                format!(
                "order {organisation_id}/{reference_id} is {}; only a FAILED order can be requeued",
                state.as_str()
            ),
            )
            .with_field("state"))
        }
    }
    tracing::info!(organisation_id = %organisation_id, reference_id = %reference_id, corrected = raw.is_some(), "failed order requeued");
    let order = state
        .outbox
        .get(&organisation_id, &reference_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("order", &format!("{organisation_id}/{reference_id}"))
        })?;
    Ok((StatusCode::ACCEPTED, Json(UploadView::from(&order))))
}

/// The field a problem is about. The intake names `(order)` when the order did not even
/// deserialise (a wrong type); the JSON path of the offending value is more use to the caller.
fn field_of(field: &str, raw: Option<&serde_json::Value>) -> String {
    if field != "(order)" {
        return field.to_owned();
    }
    raw.and_then(|order| serde_path_to_error::deserialize::<_, Order>(order.clone()).err())
        .map(|e| e.path().to_string())
        .filter(|p| !p.is_empty() && p != ".")
        .unwrap_or_else(|| field.to_owned())
}

/// The intake's dry run: accepts every valid order without storing anything. Only `enqueue` is
/// reached by `intake_orders`; the rest answer "nothing".
struct ValidateOnly;

#[async_trait::async_trait]
impl OrderOutbox for ValidateOnly {
    async fn enqueue(
        &self,
        orders: &[Order],
        _now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        Ok(orders.iter().map(|_| Enqueued::Stored).collect())
    }
    async fn existing(&self, _o: &str, _r: &[String]) -> Result<HashSet<String>, StoreError> {
        Ok(HashSet::new())
    }
    async fn queue_update(
        &self,
        _o: &str,
        _r: &str,
        _u: &str,
        _p: &PatchOrder,
        _n: DateTime<Utc>,
    ) -> Result<UpdateQueued, StoreError> {
        Ok(UpdateQueued::UnknownOrder)
    }
    async fn organisations(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn pending(
        &self,
        _o: &str,
        _a: Option<&str>,
        _l: usize,
    ) -> Result<PendingPage, StoreError> {
        Ok(PendingPage::default())
    }
    async fn lease(
        &self,
        _o: &[OutboxOrder],
        _w: &str,
        _n: DateTime<Utc>,
        _u: DateTime<Utc>,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        Ok(Vec::new())
    }
    async fn record(
        &self,
        _o: &str,
        _w: &str,
        _x: &[(String, UploadOutcome)],
        _n: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }
    async fn record_patch(
        &self,
        _o: &str,
        _r: &str,
        _w: &str,
        _u: &[String],
        _e: Option<&str>,
        _n: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get(&self, _o: &str, _r: &str) -> Result<Option<OutboxOrder>, StoreError> {
        Ok(None)
    }
    async fn requeue(
        &self,
        _o: &str,
        _r: &str,
        _order: Option<&Order>,
        _n: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        Ok(Requeued::UnknownOrder)
    }
}
