//! `/v1/alerts`: list with filters, sort and paging; get; PATCH a note and/or an action.
//! Actioning follows the alerts reference: REFUND and REFUND_AND_CANCEL give REFUNDED, CANCEL
//! and ACCEPT_DISPUTE give NOT_REFUNDED. A subscription is cancelled (CANCEL,
//! REFUND_AND_CANCEL) only when the merchant has a payment processor integration and the alert
//! a subscription; otherwise REFUND_AND_CANCEL falls back to refund only and CANCEL cancels
//! nothing. The alert becomes RESOLVED and cannot be actioned again; RDR alerts arrive resolved,
//! so they get the same "resolved alert cannot be actioned" 422. Before any alert route runs,
//! alerts whose deadline has passed expire (`crate::expiry`).

use crate::api::listing::{find_visible, visible, PageRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{parse_datetime, parse_object, Checker};
use crate::model::*;
use crate::state::{SharedApp, Store};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const ALERT_STATUSES: &[&str] = &["ACTION_REQUIRED", "RESOLVED", "INVALID"];
pub const ALERT_SORTS: &[&str] = &[
    "-alert_received_at",
    "alert_received_at",
    "-action_required_deadline",
    "action_required_deadline",
];
pub const ALERT_ACTIONS: &[&str] = &["REFUND", "CANCEL", "REFUND_AND_CANCEL", "ACCEPT_DISPUTE"];

pub async fn list(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.require("alerts:read")?;
    let page = PageRequest::from_query(&q)?;
    let qv: Map<String, Value> = q.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut c = Checker::new();
    let status = c.optional_enum(&qv, "status", ALERT_STATUSES);
    let sort = c
        .optional_enum(&qv, "sort", ALERT_SORTS)
        .unwrap_or_else(|| "-alert_received_at".into());
    let mut bound = |field: &str| {
        q.get(field).and_then(|v| match parse_datetime(field, v) {
            Ok(t) => Some(t),
            Err(e) => {
                c.push(e);
                None
            }
        })
    };
    let gte = bound("alert_received_at_gte");
    let lte = bound("alert_received_at_lte");
    c.finish()?;
    if let (Some(gte), Some(lte)) = (gte, lte) {
        if gte > lte {
            return Err(ApiError::unprocessable(
                "INVALID_DATE_RANGE",
                "alert_received_at_gte",
                "alert_received_at_gte must be less than or equal to alert_received_at_lte",
            ));
        }
    }

    let mut store = app.store();
    crate::expiry::expire_due(&app, &mut store);
    let store = store;
    let mut items: Vec<&Alert> = visible(&store, &caller, &q, store.alerts.values())
        .filter(|a| status.as_ref().is_none_or(|s| s == &a.status))
        .filter(|a| q.get("merchant_id").is_none_or(|m| m == &a.merchant_id))
        .filter(|a| gte.is_none_or(|t| a.alert_received_at >= t))
        .filter(|a| lte.is_none_or(|t| a.alert_received_at <= t))
        .collect();
    let descending = sort.starts_with('-');
    items.sort_by(|a, b| {
        let ord = if sort.ends_with("action_required_deadline") {
            // Alerts without a deadline go last whichever the direction.
            match (a.action_required_deadline, b.action_required_deadline) {
                (Some(x), Some(y)) if descending => y.cmp(&x),
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        } else if descending {
            b.alert_received_at.cmp(&a.alert_received_at)
        } else {
            a.alert_received_at.cmp(&b.alert_received_at)
        };
        ord.then(a.id.cmp(&b.id))
    });
    Ok(page.of(items))
}

pub async fn get(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("alerts:read")?;
    let mut store = app.store();
    crate::expiry::expire_due(&app, &mut store);
    let alert = find_visible(&store, &caller, &store.alerts, &id, "Alert")?;
    Ok(Json(json!(alert)))
}

/// What ChargebackStop can do for an alert's merchant besides telling the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantContext {
    /// The merchant is in an ENABLED payment processor integration (any type but
    /// CUSTOM_ORDERS): refunds and cancellations can be made for it.
    pub processor: bool,
    /// A subscription is associated with the alert (the simulate extension `subscription`, or
    /// a matched order with `subscriptions`).
    pub subscription: bool,
}

impl MerchantContext {
    pub fn of(store: &Store, alert: &Alert) -> Self {
        let processor = store.integrations.values().any(|i| {
            i.status == "ENABLED"
                && i.kind != "CUSTOM_ORDERS"
                && i.merchant_ids.contains(&alert.merchant_id)
        });
        Self {
            processor,
            subscription: store.subscribed_alerts.contains(&alert.id),
        }
    }

    /// Whether a cancelling action can cancel the subscription.
    pub fn can_cancel(self) -> bool {
        self.processor && self.subscription
    }
}

/// The outcomes an action gives: (transaction_refund_outcome, subscription_cancel_outcome).
pub fn outcome_of(action: &str, context: MerchantContext) -> (&'static str, Option<&'static str>) {
    let cancelled = context.can_cancel().then_some("CANCELLED");
    match action {
        "REFUND" => ("REFUNDED", None),
        // Combined when available, else refund only.
        "REFUND_AND_CANCEL" => ("REFUNDED", cancelled),
        "CANCEL" => ("NOT_REFUNDED", cancelled),
        _ => ("NOT_REFUNDED", None),
    }
}

/// The 422 of the alerts reference's Example 9, "resolved alert cannot be actioned", for every
/// alert that is not ACTION_REQUIRED (RESOLVED, an RDR alert, INVALID, expired).
pub fn resolved_alert_error(status: &str) -> ApiError {
    ApiError::unprocessable(
        "ALERT_ALREADY_RESOLVED",
        "action",
        format!("Resolved alert cannot be actioned (status {status})."),
    )
}

pub async fn update(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("alerts:write")?;
    let obj = parse_object(&body)?;
    // Read before taking the store lock (never both at once).
    let refused =
        obj.contains_key("action") && app.runtime().faults.refuse_alert_actions.contains(&id);
    let mut store = app.store();
    crate::expiry::expire_due(&app, &mut store);
    let alert = find_visible(&store, &caller, &store.alerts, &id, "Alert")?.clone();
    let context = MerchantContext::of(&store, &alert);
    let requested = |field: &str| obj.get(field).and_then(Value::as_str).map(str::to_string);
    let mut record = AlertAction {
        alert_id: id.clone(),
        action: requested("action"),
        note: requested("note"),
        key_id: caller.key_id.clone(),
        accepted: false,
        error_code: None,
        status: alert.status.clone(),
        transaction_refund_outcome: alert.transaction_refund_outcome.clone(),
        subscription_cancel_outcome: alert.subscription_cancel_outcome.clone(),
        at: Utc::now(),
    };
    let outcome = if refused {
        Err(ApiError::unprocessable(
            "ACTION_NOT_AVAILABLE",
            "action",
            "this action is not available for the alert (injected sandbox fault)",
        ))
    } else {
        apply(&alert, &obj, context)
    };
    match outcome {
        Err(e) => {
            record.error_code = Some(e.code.clone());
            store.alert_actions.push(record);
            drop(store);
            app.changed();
            Err(e)
        }
        Ok(None) => {
            record.accepted = true;
            store.alert_actions.push(record);
            drop(store);
            app.changed();
            Ok(Json(json!(alert)))
        }
        Ok(Some((updated, previous))) => {
            record.accepted = true;
            record.status = updated.status.clone();
            record.transaction_refund_outcome = updated.transaction_refund_outcome.clone();
            record.subscription_cancel_outcome = updated.subscription_cancel_outcome.clone();
            store.alert_actions.push(record);
            if updated.status != "ACTION_REQUIRED" {
                store.expiry_watch.remove(&id);
            }
            store.alerts.insert(id, updated.clone());
            let object = json!(updated);
            app.emit(
                &mut store,
                "alert.updated",
                "v1",
                object.clone(),
                Value::Object(previous),
            );
            drop(store);
            app.changed();
            Ok(Json(object))
        }
    }
}

/// The alert after a PATCH body and its `previous_attributes`, None when nothing changes, or
/// the 422 the reference documents (invalid enum value, resolved alert).
fn apply(
    alert: &Alert,
    obj: &Map<String, Value>,
    context: MerchantContext,
) -> ApiResult<Option<(Alert, Map<String, Value>)>> {
    let mut c = Checker::new();
    let action = c.optional_enum(obj, "action", ALERT_ACTIONS);
    let note = c.optional_str(obj, "note");
    c.finish()?;
    let mut updated = alert.clone();
    let mut previous = Map::new();

    if let Some(action) = &action {
        // RDR alerts arrive RESOLVED (or INVALID): the same answer as any resolved alert.
        if alert.status != "ACTION_REQUIRED" || alert.enrolment_type == VERIFI_RDR {
            return Err(resolved_alert_error(&alert.status));
        }
        let (refund, cancel) = outcome_of(action, context);
        previous.insert("status".into(), json!(alert.status));
        previous.insert(
            "transaction_refund_outcome".into(),
            json!(alert.transaction_refund_outcome),
        );
        updated.status = "RESOLVED".into();
        updated.transaction_refund_outcome = Some(refund.into());
        if let Some(cancel) = cancel {
            previous.insert(
                "subscription_cancel_outcome".into(),
                json!(alert.subscription_cancel_outcome),
            );
            updated.subscription_cancel_outcome = Some(cancel.into());
        }
    }
    if let Some(note) = note {
        if alert.note.as_deref() != Some(note.as_str()) {
            previous.insert("note".into(), json!(alert.note));
            updated.note = Some(note);
        }
    }
    if previous.is_empty() {
        return Ok(None);
    }
    updated.updated_at = Utc::now();
    previous.insert("updated_at".into(), json!(ts::format(&alert.updated_at)));
    Ok(Some((updated, previous)))
}

/// Validation errors the admin API shares with the alert PATCH.
pub fn bad_datetime(field: &str) -> FieldError {
    FieldError::new(
        field,
        "INVALID_DATETIME",
        format!("{field} must be an ISO 8601 datetime"),
    )
}
