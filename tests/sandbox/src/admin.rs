//! `/_sandbox/*`: the test harness's controls. No auth, loopback callers only, never subject to
//! the fault knobs or rate limits.

use crate::auth::new_key_value;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{parse_datetime, parse_object, Checker};
use crate::model::*;
use crate::state::{Faults, Profile, SharedApp};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;

pub fn router() -> Router<SharedApp> {
    Router::new()
        .route(
            "/_sandbox/health",
            get(|| async { Json(json!({ "ok": true })) }),
        )
        .route("/_sandbox/keys", post(create_key))
        .route("/_sandbox/faults", put(set_faults).get(get_faults))
        .route(
            "/_sandbox/webhooks",
            post(add_webhook).get(list_webhooks).delete(clear_webhooks),
        )
        .route("/_sandbox/webhooks/flush", post(flush_webhooks))
        .route("/_sandbox/webhooks/release", post(release_webhooks))
        .route("/_sandbox/webhooks/secrets", put(set_signing_secrets))
        .route("/_sandbox/deliveries", get(deliveries))
        .route("/_sandbox/events/{event_id}/redeliver", post(redeliver))
        .route("/_sandbox/alerts/{alert_id}", patch(patch_alert))
        .route("/_sandbox/alerts/{alert_id}/expire", post(expire_alert))
        .route("/_sandbox/events", get(events).post(emit_event))
        .route(
            "/_sandbox/enrolments/{enrolment_id}",
            patch(patch_enrolment),
        )
        .route("/_sandbox/alerts/{alert_id}/actions", get(alert_actions))
        .route("/_sandbox/actions", get(all_alert_actions))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/requests/counts", get(request_counts))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/reset", post(reset))
        .route_layer(axum::middleware::from_fn(loopback_only))
}

async fn loopback_only(req: Request, next: Next) -> Response {
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_none_or(|ConnectInfo(addr)| addr.ip().is_loopback());
    if !loopback {
        return ApiError::forbidden("The sandbox admin API answers loopback callers only.")
            .into_response();
    }
    next.run(req).await
}

/// `POST /_sandbox/keys`:
/// `{scope: "partner"|"organisation", mode, organisation_id?, abilities?, admin?, organisation_ids?, expires_at?, key?}`.
/// Abilities default to all of them; `key` picks the key string (else a random `cbs_...`).
async fn create_key(
    State(app): State<SharedApp>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let scope = c.required_enum(&obj, "scope", &["partner", "organisation"]);
    let mode = c.optional_enum(&obj, "mode", &["TEST", "LIVE"]);
    let org_id = c.optional_str(&obj, "organisation_id");
    let admin = c.optional_bool(&obj, "admin").unwrap_or(false);
    let chosen = c.optional_str(&obj, "key").filter(|k| !k.is_empty());
    let expires_at =
        c.optional_str(&obj, "expires_at")
            .and_then(|s| match parse_datetime("expires_at", &s) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.push(e);
                    None
                }
            });
    let strings = |field: &str, c: &mut Checker| -> Option<Vec<String>> {
        match obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(_) => {
                c.push(FieldError::invalid_type(field, "an array of strings"));
                None
            }
        }
    };
    let abilities = strings("abilities", &mut c)
        .unwrap_or_else(|| ALL_ABILITIES.iter().map(|a| a.to_string()).collect());
    let organisation_ids = strings("organisation_ids", &mut c).unwrap_or_default();
    c.finish()?;

    let mut store = app.store();
    let (scope, mode) = match scope.as_deref() {
        Some("organisation") => {
            let org_id =
                org_id.ok_or_else(|| ApiError::from(FieldError::missing("organisation_id")))?;
            let org = store.organisations.get(&org_id).ok_or_else(|| {
                ApiError::unprocessable(
                    "INVALID_ORGANISATION",
                    "organisation_id",
                    format!("organisation {org_id} does not exist"),
                )
            })?;
            let mode = org.mode;
            (
                KeyScope::Organisation {
                    organisation_id: org_id,
                },
                mode,
            )
        }
        _ => {
            let mode = if mode.as_deref() == Some("LIVE") {
                Mode::Live
            } else {
                Mode::Test
            };
            let group_id = if admin {
                format!("{}-admin", mode.as_str().to_lowercase())
            } else {
                new_id("grp")
            };
            (
                KeyScope::Partner {
                    mode,
                    admin,
                    organisation_ids,
                    group_id,
                },
                mode,
            )
        }
    };
    let key = chosen.unwrap_or_else(|| new_key_value(mode));
    if store.keys.iter().any(|k| k.key == key) {
        return Err(ApiError::unprocessable(
            "DUPLICATE_KEY",
            "key",
            "that key already exists",
        ));
    }
    let id = new_id("key");
    store.keys.push(ApiKey {
        id: id.clone(),
        key: key.clone(),
        scope,
        abilities,
        expires_at,
    });
    drop(store);
    app.changed();
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "key": key }))))
}

async fn get_faults(State(app): State<SharedApp>) -> Json<Value> {
    Json(json!(app.runtime().faults))
}

/// `PUT /_sandbox/faults`: the fields given replace the current ones; answers the current knobs.
async fn set_faults(State(app): State<SharedApp>, body: Bytes) -> ApiResult<Json<Value>> {
    let obj = parse_object(&body)?;
    let before = app.runtime().faults.clone();
    let merge = |base: &Faults| -> ApiResult<Faults> {
        let mut current = serde_json::to_value(base).unwrap_or(json!({}));
        for (k, v) in &obj {
            current[k] = v.clone();
        }
        serde_json::from_value(current).map_err(|e| {
            ApiError::from(FieldError::new(
                "body",
                "INVALID_TYPE",
                format!("bad fault knobs: {e}"),
            ))
        })
    };
    let mut faults = merge(&before)?;
    // Switching the profile sets its knobs first; the fields given in this call still win.
    if faults.profile != before.profile {
        let base = match faults.profile {
            Profile::Realistic => before.clone().realistic(),
            Profile::None => Faults::normal(),
        };
        faults = merge(&base)?;
    }
    if !(0.0..=1.0).contains(&faults.error_rate) {
        return Err(ApiError::unprocessable(
            "INVALID_VALUE",
            "error_rate",
            "error_rate must be between 0 and 1",
        ));
    }
    if ![500, 502, 503].contains(&faults.error_status) {
        return Err(ApiError::unprocessable(
            "INVALID_VALUE",
            "error_status",
            "error_status must be 500, 502 or 503",
        ));
    }
    let release_held = !faults.out_of_order;
    let release_hold = !faults.hold_webhooks;
    {
        let mut rt = app.runtime();
        if faults.seed != rt.faults.seed {
            rt.dice = None;
        }
        rt.faults = faults.clone();
    }
    if release_held {
        app.flush.notify_waiters();
    }
    if release_hold && !app.runtime().held.is_empty() {
        // Turning the hold off sends what it kept, in emission order.
        let _ = crate::webhooks::release(&app, None, false).await;
    }
    Ok(Json(json!(faults)))
}

async fn add_webhook(
    State(app): State<SharedApp>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let url = c.required_str(&obj, "url");
    c.finish()?;
    let url = url.unwrap_or_default();
    if reqwest::Url::parse(&url).is_err() {
        return Err(ApiError::unprocessable(
            "INVALID_VALUE",
            "url",
            "url must be an absolute URL",
        ));
    }
    let mut store = app.store();
    if !store.webhook_endpoints.contains(&url) {
        store.webhook_endpoints.push(url);
    }
    let endpoints = store.webhook_endpoints.clone();
    drop(store);
    app.changed();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "webhook_endpoints": endpoints })),
    ))
}

async fn list_webhooks(State(app): State<SharedApp>) -> Json<Value> {
    let held: Vec<String> = app
        .runtime()
        .held
        .iter()
        .map(|o| o.id().to_string())
        .collect();
    Json(json!({ "webhook_endpoints": app.store().webhook_endpoints, "held": held }))
}

/// `PUT /_sandbox/webhooks/secrets` `{"secrets": ["whsec_new", "whsec_old"]}`: sign every later
/// attempt with each of them (one `v1=` entry per secret, in this order); `[]` goes back to the
/// configured `--webhook-secret`. Answers how many are active, never the secrets.
async fn set_signing_secrets(State(app): State<SharedApp>, body: Bytes) -> ApiResult<Json<Value>> {
    let obj = parse_object(&body)?;
    let secrets: Vec<shared::secret::Secret> = match obj.get("secrets") {
        Some(Value::Array(items))
            if items
                .iter()
                .all(|v| v.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(shared::secret::Secret::new)
                .collect()
        }
        _ => {
            return Err(FieldError::invalid_type("secrets", "an array of non-empty strings").into())
        }
    };
    let active = secrets.len().max(1);
    app.runtime().signing_secrets = secrets;
    Ok(Json(json!({ "active_secrets": active })))
}

/// `POST /_sandbox/webhooks/release` `{"event_ids": [...]}` or `{"order": "emitted"|"reverse"}`
/// (default emitted): deliver held events one after another, each first attempt finished before
/// the next starts, and answer `{"released": [ids in delivery order]}`.
async fn release_webhooks(State(app): State<SharedApp>, body: Bytes) -> ApiResult<Json<Value>> {
    let obj = if body.is_empty() {
        serde_json::Map::new()
    } else {
        parse_object(&body)?
    };
    let mut c = Checker::new();
    let order = c.optional_enum(&obj, "order", &["emitted", "reverse"]);
    let event_ids = match obj.get("event_ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        ),
        Some(_) => {
            c.push(FieldError::invalid_type(
                "event_ids",
                "an array of event ids",
            ));
            None
        }
    };
    c.finish()?;
    let reverse = order.as_deref() == Some("reverse");
    match crate::webhooks::release(&app, event_ids, reverse).await {
        Ok(sent) => Ok(Json(json!({ "released": sent }))),
        Err(missing) => Err(ApiError::unprocessable(
            "NOT_HELD",
            "event_ids",
            format!("not held: {}", missing.join(", ")),
        )),
    }
}

/// `POST /_sandbox/events/{event_id}/redeliver` `{"new_idempotency_key": false}`: send the event
/// again now (first attempt awaited), bypassing the hold and drop knobs.
async fn redeliver(
    State(app): State<SharedApp>,
    Path(event_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = if body.is_empty() {
        serde_json::Map::new()
    } else {
        parse_object(&body)?
    };
    let mut c = Checker::new();
    let new_key = c
        .optional_bool(&obj, "new_idempotency_key")
        .unwrap_or(false);
    c.finish()?;
    crate::webhooks::redeliver(&app, &event_id, new_key)
        .await
        .ok_or_else(|| ApiError::not_found("Event"))?;
    Ok(Json(json!({ "redelivered": event_id })))
}

async fn clear_webhooks(State(app): State<SharedApp>) -> Json<Value> {
    app.store().webhook_endpoints.clear();
    app.changed();
    Json(json!({ "webhook_endpoints": [] }))
}

async fn flush_webhooks(State(app): State<SharedApp>) -> Json<Value> {
    app.flush.notify_waiters();
    Json(json!({ "flushed": true }))
}

/// Every delivery attempt; `?event_id=` narrows to one event.
async fn deliveries(
    State(app): State<SharedApp>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let store = app.store();
    let items: Vec<&DeliveryAttempt> = store
        .deliveries
        .iter()
        .filter(|d| q.get("event_id").is_none_or(|e| e == &d.event_id))
        .collect();
    Json(json!(items))
}

async fn events(State(app): State<SharedApp>) -> Json<Value> {
    Json(json!(app.store().events))
}

/// Move an alert's deadline or received time, or set its status (e.g. what the network did after
/// a missed deadline). No webhook goes out unless `"notify": true`, which sends `alert.updated`
/// with the previous values.
async fn patch_alert(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = parse_object(&body)?;
    let mut store = app.store();
    let before = store
        .alerts
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Alert"))?;
    let mut alert = before.clone();
    let mut errors = Vec::new();
    if let Some(v) = obj.get("action_required_deadline") {
        match v {
            Value::Null => alert.action_required_deadline = None,
            Value::String(s) => match parse_datetime("action_required_deadline", s) {
                Ok(t) => alert.action_required_deadline = Some(t),
                Err(e) => errors.push(e),
            },
            _ => errors.push(FieldError::invalid_type(
                "action_required_deadline",
                "a datetime or null",
            )),
        }
    }
    if let Some(v) = obj.get("alert_received_at") {
        match v.as_str().map(|s| parse_datetime("alert_received_at", s)) {
            Some(Ok(t)) => alert.alert_received_at = t,
            Some(Err(e)) => errors.push(e),
            None => errors.push(FieldError::invalid_type("alert_received_at", "a datetime")),
        }
    }
    let mut c = Checker::new();
    if let Some(status) = c.optional_enum(&obj, "status", crate::api::alerts::ALERT_STATUSES) {
        alert.status = status;
    }
    let notify = c.optional_bool(&obj, "notify").unwrap_or(false);
    errors.extend(c.errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let deadline_or_status_set =
        obj.contains_key("action_required_deadline") || obj.contains_key("status");
    let object = json!(alert);
    if notify {
        alert.updated_at = chrono::Utc::now();
        let after = json!(alert);
        let old = json!(before);
        let mut previous = serde_json::Map::new();
        for field in [
            "status",
            "action_required_deadline",
            "alert_received_at",
            "updated_at",
        ] {
            if after[field] != old[field] {
                previous.insert(field.into(), old[field].clone());
            }
        }
        store.alerts.insert(id.clone(), alert);
        if deadline_or_status_set {
            crate::expiry::rearm(&mut store, &id);
        }
        app.emit(
            &mut store,
            "alert.updated",
            "v1",
            after.clone(),
            Value::Object(previous),
        );
        drop(store);
        app.changed();
        return Ok(Json(after));
    }
    store.alerts.insert(id.clone(), alert);
    if deadline_or_status_set {
        crate::expiry::rearm(&mut store, &id);
    }
    drop(store);
    app.changed();
    Ok(Json(object))
}

/// `POST /_sandbox/alerts/{id}/expire`: expire an ACTION_REQUIRED alert now, whatever its
/// deadline, as the expiry ticker would (`alert.updated`, knob `expiry_outcome`). Answers the
/// alert; an alert that is not ACTION_REQUIRED is left as it is.
async fn expire_alert(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    crate::expiry::expire_now(&app, &id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Alert"))
}

/// Event families the webhooks page lists beside `alert.*` and `enrolment.*`; the sandbox has
/// no API for their objects, so `POST /_sandbox/events` emits them.
pub const OTHER_EVENT_FAMILIES: &[(&str, &str)] = &[
    ("representment", "rep"),
    ("scheme_notice", "schntc"),
    ("lookup", "lkp"),
];

/// `POST /_sandbox/events` `{type, object?, previous_attributes?, api_version?}`: emit a
/// `representment.*`, `scheme_notice.*` or `lookup.*` event (`.created` or `.updated`), signed
/// and delivered like every other. `object` defaults to `{id, organisation_id?, created_at,
/// updated_at}` with the family's id prefix. Answers 201 with the event as sent.
async fn emit_event(
    State(app): State<SharedApp>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let kind = c.required_str(&obj, "type");
    let organisation_id = c.optional_str(&obj, "organisation_id");
    let api_version = c
        .optional_str(&obj, "api_version")
        .unwrap_or_else(|| "v1".into());
    c.finish()?;
    let kind = kind.unwrap_or_default();
    let prefix = kind.split_once('.').and_then(|(family, action)| {
        let prefix = OTHER_EVENT_FAMILIES
            .iter()
            .find(|(f, _)| *f == family)
            .map(|(_, p)| *p)?;
        ["created", "updated"].contains(&action).then_some(prefix)
    });
    let Some(prefix) = prefix else {
        return Err(ApiError::unprocessable(
            "INVALID_VALUE",
            "type",
            "type must be representment.*, scheme_notice.* or lookup.* (.created or .updated)",
        ));
    };
    let now = ts::format(&chrono::Utc::now());
    let object = match obj.get("object") {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        None | Some(Value::Null) => json!({
            "id": new_id(prefix),
            "organisation_id": organisation_id,
            "created_at": now,
            "updated_at": now,
        }),
        Some(_) => return Err(FieldError::invalid_type("object", "a JSON object").into()),
    };
    let previous = obj
        .get("previous_attributes")
        .cloned()
        .unwrap_or(Value::Null);
    let mut store = app.store();
    app.emit(&mut store, &kind, &api_version, object, previous);
    let event = store.events.last().cloned().unwrap_or(Value::Null);
    drop(store);
    app.changed();
    Ok((StatusCode::CREATED, Json(event)))
}

/// Move an enrolment to any documented status (IN_PROGRESS, ACTION_REQUIRED with a `note`,
/// FAILED, PAUSED, ...), as ChargebackStop's staff or the provider would, in TEST or LIVE.
/// Sends `enrolment.updated` unless `"notify": false`. Ethoca descriptors follow the status.
async fn patch_enrolment(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let status = c.optional_enum(&obj, "status", crate::api::enrolments::ENROLMENT_STATUSES);
    let note_given = obj.contains_key("note");
    let note = c.optional_str(&obj, "note");
    let notify = c.optional_bool(&obj, "notify").unwrap_or(true);
    c.finish()?;
    let mut store = app.store();
    let before = store
        .enrolments
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Enrolment"))?;
    let mut enrolment = before.clone();
    let mut previous = serde_json::Map::new();
    if let Some(status) = status.filter(|s| s != &before.status) {
        previous.insert("status".into(), json!(before.status));
        if let Some(ethoca) = &mut enrolment.ethoca_alert {
            for d in &mut ethoca.descriptors {
                d.status = status.clone();
            }
        }
        enrolment.status = status;
    }
    if note_given && note != before.note {
        previous.insert("note".into(), json!(before.note));
        enrolment.note = note;
    }
    if previous.is_empty() {
        return Ok(Json(json!(before)));
    }
    previous.insert("updated_at".into(), json!(ts::format(&before.updated_at)));
    enrolment.updated_at = chrono::Utc::now();
    store.enrolments.insert(id, enrolment.clone());
    let object = json!(enrolment);
    if notify {
        app.emit(
            &mut store,
            "enrolment.updated",
            "v2",
            object.clone(),
            Value::Object(previous),
        );
    }
    drop(store);
    app.changed();
    Ok(Json(object))
}

/// Every API request received (oldest first), with method, path, query, route template, body,
/// key id and answered status. Filters: `?method=POST&path=/v1/orders/&route=POST /v1/orders`
/// (`path` ignores a trailing slash) and `?since=<seq>` (only requests after that sequence number).
async fn requests(
    State(app): State<SharedApp>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let since = match q.get("since") {
        None => 0,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::unprocessable("INVALID_VALUE", "since", "since must be a sequence number")
        })?,
    };
    let trim = |p: &str| p.trim_end_matches('/').to_string();
    let rt = app.runtime();
    let items: Vec<&crate::state::RequestRecord> = rt
        .requests
        .iter()
        .filter(|r| r.seq > since)
        .filter(|r| {
            q.get("method")
                .is_none_or(|m| m.eq_ignore_ascii_case(&r.method))
        })
        .filter(|r| q.get("path").is_none_or(|p| trim(p) == trim(&r.path)))
        .filter(|r| q.get("route").is_none_or(|t| t == &r.route))
        .collect();
    Ok(Json(json!(items)))
}

async fn clear_requests(State(app): State<SharedApp>) -> Json<Value> {
    let mut rt = app.runtime();
    rt.requests.clear();
    rt.request_counts.clear();
    Json(json!({ "cleared": true }))
}

/// `{"GET /v1/alerts/{alert_id}": 3, ...}`: requests per route template since start or reset.
async fn request_counts(State(app): State<SharedApp>) -> Json<Value> {
    Json(json!(app.runtime().request_counts))
}

/// Every PATCH of this alert through the API, accepted or refused, oldest first.
async fn alert_actions(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = app.store();
    if !store.alerts.contains_key(&id) {
        return Err(ApiError::not_found("Alert"));
    }
    let items: Vec<&AlertAction> = store
        .alert_actions
        .iter()
        .filter(|a| a.alert_id == id)
        .collect();
    Ok(Json(json!(items)))
}

async fn all_alert_actions(State(app): State<SharedApp>) -> Json<Value> {
    Json(json!(app.store().alert_actions))
}

/// The whole store, key strings redacted.
async fn state(State(app): State<SharedApp>) -> Json<Value> {
    let mut snapshot = json!(*app.store());
    if let Some(keys) = snapshot.get_mut("keys").and_then(Value::as_array_mut) {
        for k in keys {
            let redacted = k["key"]
                .as_str()
                .map(|s| format!("{}...", &s[..s.len().min(9)]));
            k["key"] = json!(redacted);
        }
    }
    Json(snapshot)
}

async fn reset(State(app): State<SharedApp>) -> Json<Value> {
    app.store().reset();
    {
        let mut rt = app.runtime();
        rt.faults = app.settings.start_faults.clone();
        rt.rate_windows.clear();
        rt.request_counts.clear();
        rt.requests.clear();
        rt.held.clear();
        rt.signing_secrets.clear();
    }
    app.flush.notify_waiters();
    app.changed();
    Json(json!({ "reset": true }))
}
