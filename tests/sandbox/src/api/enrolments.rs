//! `/v2/enrolments`: partner-level keys only (an organisation key gets 401); every merchant in one
//! organisation (422 MERCHANTS_DIFFERENT_ORGANISATIONS); Ethoca by descriptor, RDR by BIN + CAID
//! together or at least one ARN. Created PENDING; `enrolment.created` goes out.

use crate::api::listing::{find_visible, visible, PageRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{parse_object, Checker};
use crate::model::*;
use crate::state::{SharedApp, Store};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const ENROLMENT_TYPES: &[&str] = &[ETHOCA_ALERT, VERIFI_RDR];
pub const ENROLMENT_STATUSES: &[&str] = &[
    "PENDING",
    "IN_PROGRESS",
    "ACTION_REQUIRED",
    "ENABLED",
    "FAILED",
    "CANCELLED",
    "PAUSED",
    "UNENROLLED",
];
pub const MATCH_TYPES: &[&str] = &["STARTS_WITH", "EXACT_MATCH"];

pub async fn create(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.partner_only()?;
    caller.require("enrolments_v2:write")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let merchant_ids = c.required_id_list(&obj, "merchant_ids");
    let kind = c.required_enum(&obj, "type", ENROLMENT_TYPES);
    let note = c.optional_str(&obj, "note");
    let mut ethoca = None;
    let mut rdr = None;
    match kind.as_deref() {
        Some(ETHOCA_ALERT) => ethoca = read_ethoca(&mut c, &obj),
        Some(VERIFI_RDR) => rdr = read_rdr(&mut c, &obj),
        _ => {}
    }
    c.finish()?;
    let merchant_ids = merchant_ids.unwrap_or_default();

    let mut store = app.store();
    let org_id = merchants_organisation(&store, &caller, &merchant_ids)?;
    let now = Utc::now();
    let id = new_id("enrl");
    let enrolment = Enrolment {
        links: self_link(format!("/v2/enrolments/{id}")),
        id: id.clone(),
        organisation_id: org_id,
        merchant_ids,
        kind: kind.unwrap_or_default(),
        status: "PENDING".into(),
        ethoca_alert: ethoca,
        verifi_rdr: rdr,
        created_at: now,
        updated_at: now,
        note,
    };
    store.enrolments.insert(id, enrolment.clone());
    let object = json!(enrolment);
    app.emit(
        &mut store,
        "enrolment.created",
        "v2",
        object.clone(),
        Value::Null,
    );
    drop(store);
    app.changed();
    Ok((StatusCode::CREATED, Json(object)))
}

fn read_ethoca(c: &mut Checker, obj: &Map<String, Value>) -> Option<EthocaAlert> {
    let Some(section) = obj.get("ethoca_alert").and_then(Value::as_object) else {
        c.push(FieldError::missing("ethoca_alert"));
        return None;
    };
    let Some(list) = section
        .get("descriptors")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    else {
        c.push(FieldError::new(
            "ethoca_alert.descriptors",
            "MISSING_FIELD",
            "ethoca_alert.descriptors must list at least one descriptor",
        ));
        return None;
    };
    let mut descriptors = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let Some(d) = d.as_object() else {
            c.push(FieldError::invalid_type(
                format!("ethoca_alert.descriptors[{i}]"),
                "an object",
            ));
            continue;
        };
        let descriptor = c.required_str_at(
            d,
            "descriptor",
            &format!("ethoca_alert.descriptors[{i}].descriptor"),
        );
        let match_type = c.required_enum_at(
            d,
            "match_type",
            &format!("ethoca_alert.descriptors[{i}].match_type"),
            MATCH_TYPES,
        );
        if let (Some(descriptor), Some(match_type)) = (descriptor, match_type) {
            descriptors.push(EthocaDescriptor {
                descriptor,
                match_type,
                status: "PENDING".into(),
            });
        }
    }
    Some(EthocaAlert { descriptors })
}

fn read_rdr(c: &mut Checker, obj: &Map<String, Value>) -> Option<VerifiRdr> {
    let Some(section) = obj.get("verifi_rdr").and_then(Value::as_object) else {
        c.push(FieldError::missing("verifi_rdr"));
        return None;
    };
    let bin = c.optional_str(section, "bin").filter(|s| !s.is_empty());
    let caid = c.optional_str(section, "caid").filter(|s| !s.is_empty());
    let arns: Option<Vec<String>> = match section.get("arns") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let arns: Vec<String> = items
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            if arns.len() != items.len() || arns.iter().any(String::is_empty) {
                c.push(FieldError::invalid_type(
                    "verifi_rdr.arns",
                    "an array of strings",
                ));
            }
            Some(arns).filter(|a| !a.is_empty())
        }
        Some(_) => {
            c.push(FieldError::invalid_type(
                "verifi_rdr.arns",
                "an array of strings",
            ));
            None
        }
    };
    if bin.is_some() != caid.is_some() {
        let missing = if bin.is_some() {
            "verifi_rdr.caid"
        } else {
            "verifi_rdr.bin"
        };
        c.push(FieldError::new(
            missing,
            "BIN_AND_CAID_REQUIRED_TOGETHER",
            "verifi_rdr needs bin and caid together",
        ));
    } else if bin.is_none() && arns.is_none() {
        c.push(FieldError::new(
            "verifi_rdr",
            "RDR_IDENTIFIER_REQUIRED",
            "verifi_rdr needs both bin and caid, or at least one arn",
        ));
    }
    if let Some(bin) = &bin {
        if !(6..=8).contains(&bin.len()) || !bin.chars().all(|ch| ch.is_ascii_digit()) {
            c.push(FieldError::new(
                "verifi_rdr.bin",
                "INVALID_VALUE",
                "verifi_rdr.bin must be 6 to 8 digits",
            ));
        }
    }
    Some(VerifiRdr { bin, caid, arns })
}

/// The one organisation all merchants belong to, checking each is visible to the caller.
fn merchants_organisation(
    store: &Store,
    caller: &Caller,
    merchant_ids: &[String],
) -> ApiResult<String> {
    let mut org: Option<&str> = None;
    for (i, id) in merchant_ids.iter().enumerate() {
        let merchant = store
            .merchants
            .get(id)
            .filter(|m| caller.can_see_org_id(store, &m.organisation_id))
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "INVALID_MERCHANT",
                    &format!("merchant_ids[{i}]"),
                    format!("merchant {id} does not exist or is not accessible"),
                )
            })?;
        match org {
            None => org = Some(&merchant.organisation_id),
            Some(o) if o != merchant.organisation_id => {
                return Err(ApiError::unprocessable(
                    "MERCHANTS_DIFFERENT_ORGANISATIONS",
                    "merchant_ids",
                    "all merchant_ids must belong to the same organisation",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(org.unwrap_or_default().to_string())
}

pub async fn list(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.partner_only()?;
    caller.require("enrolments_v2:read")?;
    let page = PageRequest::from_query(&q)?;
    let mut c = Checker::new();
    let qv: Map<String, Value> = q.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let status = c.optional_enum(&qv, "status", ENROLMENT_STATUSES);
    let kind = c.optional_enum(&qv, "type", ENROLMENT_TYPES);
    c.finish()?;
    let store = app.store();
    let items: Vec<&Enrolment> = visible(&store, &caller, &q, store.enrolments.values())
        .filter(|e| {
            q.get("merchant_id")
                .is_none_or(|m| e.merchant_ids.contains(m))
        })
        .filter(|e| status.as_ref().is_none_or(|s| s == &e.status))
        .filter(|e| kind.as_ref().is_none_or(|k| k == &e.kind))
        .collect();
    Ok(page.newest_first(items))
}

pub async fn get(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.partner_only()?;
    caller.require("enrolments_v2:read")?;
    let store = app.store();
    let enrolment = find_visible(&store, &caller, &store.enrolments, &id, "Enrolment")?;
    Ok(Json(json!(enrolment)))
}
