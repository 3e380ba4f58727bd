//! Organisations, memberships, merchants and integrations, as in the partner API integration
//! guide. Organisation keys are served within their own organisation (only an admin partner
//! key creates organisations); under the `strict` knob they get 401 everywhere here. Merchant
//! and integration types and membership roles are named by example in the docs, so any
//! non-empty value is taken unless `strict`.

use crate::api::listing::{find_visible, visible, PageRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{parse_object, Checker};
use crate::model::*;
use crate::state::SharedApp;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const MERCHANT_TYPES: &[&str] = &[
    "GENERIC",
    "STRIPE",
    "ADYEN",
    "SHOPIFY",
    "AUTHORIZE_NET",
    "BRAINTREE",
    "CHECKOUT_COM",
    "PAYPAL",
    "WORLDPAY",
    "NMI",
];
pub const INTEGRATION_TYPES: &[&str] = &[
    "CUSTOM_ORDERS",
    "STRIPE",
    "ADYEN",
    "SHOPIFY",
    "AUTHORIZE_NET",
    "BRAINTREE",
    "CHECKOUT_COM",
    "PAYPAL",
];
pub const INTEGRATION_STATUSES: &[&str] = &["ENABLED", "DISABLED"];
pub const MEMBERSHIP_ROLES: &[&str] = &["ADMIN", "MEMBER", "VIEWER"];

type Q = Query<HashMap<String, String>>;

/// An organisation the caller can see, else 404 (or 422 naming `field` for ids in a body).
pub fn visible_org(
    app: &SharedApp,
    caller: &Caller,
    org_id: &str,
    field: Option<&str>,
) -> ApiResult<Organisation> {
    let store = app.store();
    match store.organisations.get(org_id) {
        Some(org) if caller.can_see(org) => Ok(org.clone()),
        _ => Err(match field {
            Some(f) => ApiError::unprocessable(
                "INVALID_ORGANISATION",
                f,
                format!("organisation {org_id} does not exist or is not accessible"),
            ),
            None => ApiError::not_found("Organisation"),
        }),
    }
}

pub async fn create_organisation(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.partner_only_when_strict()?;
    caller.require("organisations:write")?;
    if !caller.is_admin_partner() {
        return Err(ApiError::forbidden(
            "Only admin partner-group keys can create organisations.",
        ));
    }
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let name = c.required_str(&obj, "name");
    c.finish()?;
    let mode = caller.partner_mode().unwrap_or(Mode::Test);
    let mut name = name.unwrap_or_default();
    if mode == Mode::Test && !name.starts_with("[TEST] ") {
        name = format!("[TEST] {name}");
    }
    let now = Utc::now();
    let id = new_id("org");
    let org = Organisation {
        links: self_link(format!("/v1/organisations/{id}")),
        id: id.clone(),
        name,
        mode,
        created_at: now,
        updated_at: now,
    };
    app.store().organisations.insert(id, org.clone());
    app.changed();
    Ok((StatusCode::CREATED, Json(json!(org))))
}

pub async fn list_organisations(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("organisations:read")?;
    let page = PageRequest::from_query(&q)?;
    let store = app.store();
    let mut orgs: Vec<&Organisation> = store
        .organisations
        .values()
        .filter(|o| caller.can_see(o))
        .filter(|o| {
            q.get("name")
                .is_none_or(|n| o.name.to_lowercase().contains(&n.to_lowercase()))
        })
        .collect();
    orgs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(page.of(orgs))
}

pub async fn get_organisation(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("organisations:read")?;
    Ok(Json(json!(visible_org(&app, &caller, &id, None)?)))
}

pub async fn create_membership(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.partner_only_when_strict()?;
    caller.require("organisations:write")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let org_id = c.required_str(&obj, "organisation_id");
    let email = c.required_str(&obj, "email");
    let role = c.required_listed(&obj, "role", MEMBERSHIP_ROLES);
    let first_name = c.optional_str(&obj, "first_name");
    let last_name = c.optional_str(&obj, "last_name");
    let flags: Vec<bool> = [
        "is_alert_action_required_email_enabled",
        "is_alert_resolved_email_enabled",
        "is_alert_dismissed_email_enabled",
        "is_evidence_requested_email_enabled",
    ]
    .iter()
    .map(|f| c.optional_bool(&obj, f).unwrap_or(true))
    .collect();
    if let Some(e) = &email {
        if !e.contains('@') {
            c.push(FieldError::new(
                "email",
                "INVALID_VALUE",
                "email must be an email address",
            ));
        }
    }
    c.finish()?;
    let org = visible_org(
        &app,
        &caller,
        &org_id.unwrap_or_default(),
        Some("organisation_id"),
    )?;
    let now = Utc::now();
    let id = new_id("mem");
    let membership = Membership {
        links: self_link(format!("/v1/memberships/{id}")),
        id: id.clone(),
        organisation_id: org.id,
        user_id: new_id("usr"),
        first_name,
        last_name,
        email: email.unwrap_or_default(),
        role: role.unwrap_or_default(),
        is_alert_action_required_email_enabled: flags[0],
        is_alert_resolved_email_enabled: flags[1],
        is_alert_dismissed_email_enabled: flags[2],
        is_evidence_requested_email_enabled: flags[3],
        created_at: now,
        updated_at: now,
    };
    app.store().memberships.insert(id, membership.clone());
    app.changed();
    Ok((StatusCode::CREATED, Json(json!(membership))))
}

pub async fn list_memberships(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("organisations:read")?;
    let page = PageRequest::from_query(&q)?;
    let store = app.store();
    let items: Vec<&Membership> =
        visible(&store, &caller, &q, store.memberships.values()).collect();
    Ok(page.newest_first(items))
}

pub async fn create_merchant(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.partner_only_when_strict()?;
    caller.require("merchants:write")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let org_id = c.required_str(&obj, "organisation_id");
    let name = c.required_str(&obj, "name");
    let kind = c.required_listed(&obj, "type", MERCHANT_TYPES);
    let external_id = c.optional_str(&obj, "external_id");
    let service = c.optional_str(&obj, "default_representment_service_type");
    c.finish()?;
    let org = visible_org(
        &app,
        &caller,
        &org_id.unwrap_or_default(),
        Some("organisation_id"),
    )?;
    let now = Utc::now();
    let id = new_id("mrch");
    let merchant = Merchant {
        links: self_link(format!("/v1/merchants/{id}")),
        id: id.clone(),
        organisation_id: org.id,
        name: name.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        external_id,
        default_representment_service_type: service,
        created_at: now,
        updated_at: now,
    };
    app.store().merchants.insert(id, merchant.clone());
    app.changed();
    Ok((StatusCode::CREATED, Json(json!(merchant))))
}

const MERCHANT_SORTS: &[&str] = &[
    "name",
    "-name",
    "type",
    "-type",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
];

pub async fn list_merchants(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("merchants:read")?;
    let page = PageRequest::from_query(&q)?;
    let sort = q.get("sort").map(String::as_str).unwrap_or("-created_at");
    if !MERCHANT_SORTS.contains(&sort) {
        return Err(FieldError::invalid_enum("sort", MERCHANT_SORTS).into());
    }
    let store = app.store();
    let mut items: Vec<&Merchant> = visible(&store, &caller, &q, store.merchants.values())
        .filter(|m| q.get("type").is_none_or(|t| t == &m.kind))
        .filter(|m| {
            q.get("external_id")
                .is_none_or(|e| Some(e) == m.external_id.as_ref())
        })
        .filter(|m| {
            q.get("name")
                .is_none_or(|n| m.name.to_lowercase().contains(&n.to_lowercase()))
        })
        .collect();
    let field = sort.trim_start_matches('-');
    items.sort_by(|a, b| {
        let ord = match field {
            "name" => a.name.cmp(&b.name),
            "type" => a.kind.cmp(&b.kind),
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then(a.id.cmp(&b.id));
        if sort.starts_with('-') {
            ord.reverse()
        } else {
            ord
        }
    });
    Ok(page.of(items))
}

pub async fn get_merchant(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("merchants:read")?;
    let store = app.store();
    let merchant = find_visible(&store, &caller, &store.merchants, &id, "Merchant")?;
    Ok(Json(json!(merchant)))
}

pub async fn create_integration(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.partner_only_when_strict()?;
    caller.require("integrations:write")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let org_id = c.required_str(&obj, "organisation_id");
    let name = c.required_str(&obj, "name");
    let kind = c.required_listed(&obj, "type", INTEGRATION_TYPES);
    let status = c
        .optional_enum(&obj, "status", INTEGRATION_STATUSES)
        .unwrap_or_else(|| "ENABLED".into());
    let merchant_ids = c.required_id_list(&obj, "merchant_ids");
    c.finish()?;
    let org = visible_org(
        &app,
        &caller,
        &org_id.unwrap_or_default(),
        Some("organisation_id"),
    )?;
    let merchant_ids = merchant_ids.unwrap_or_default();
    {
        let store = app.store();
        for (i, m) in merchant_ids.iter().enumerate() {
            if store
                .merchants
                .get(m)
                .is_none_or(|m| m.organisation_id != org.id)
            {
                return Err(ApiError::unprocessable(
                    "INVALID_MERCHANT",
                    &format!("merchant_ids[{i}]"),
                    format!("merchant {m} does not exist in organisation {}", org.id),
                ));
            }
        }
    }
    let now = Utc::now();
    let id = new_id("int");
    let integration = Integration {
        links: self_link(format!("/v1/integrations/{id}")),
        id: id.clone(),
        organisation_id: org.id,
        name: name.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        status,
        merchant_ids,
        created_at: now,
        updated_at: now,
    };
    app.store().integrations.insert(id, integration.clone());
    app.changed();
    Ok((StatusCode::CREATED, Json(json!(integration))))
}

pub async fn list_integrations(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("integrations:read")?;
    let page = PageRequest::from_query(&q)?;
    let store = app.store();
    let items: Vec<&Integration> = visible(&store, &caller, &q, store.integrations.values())
        .filter(|i| q.get("type").is_none_or(|t| t == &i.kind))
        .collect();
    Ok(page.newest_first(items))
}

pub async fn get_integration(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.partner_only_when_strict()?;
    caller.require("integrations:read")?;
    let store = app.store();
    let integration = find_visible(&store, &caller, &store.integrations, &id, "Integration")?;
    Ok(Json(json!(integration)))
}
