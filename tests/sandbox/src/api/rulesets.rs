//! `/v1/rulesets` (developer preview): one ruleset per enrolment, enrolments of one type and one
//! organisation, one rule per type, RDR outcomes REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL
//! (the Orders guide: published to Verifi as REFUND; never CANCEL), AMOUNT rules in USD for RDR.
//! Everything is validated before anything is stored, so an invalid rule rolls the whole create
//! back. Rules change only through `/rules/{rule_id}`. A ruleset with no rules is accepted (it
//! matches nothing); the `strict` knob refuses it.

use crate::api::listing::{find_visible, visible, PageRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::fields::{looks_like_currency, parse_object, Checker};
use crate::model::*;
use crate::state::{SharedApp, Store};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const OUTCOMES: &[&str] = &["REFUND", "CANCEL", "REFUND_AND_CANCEL", "ACCEPT_DISPUTE"];
pub const RDR_OUTCOMES: &[&str] = &["REFUND", "ACCEPT_DISPUTE", "REFUND_AND_CANCEL"];
pub const JOIN_OPERATORS: &[&str] = &["AND", "OR"];
pub const RULE_TYPES: &[&str] = &["AMOUNT", "DESCRIPTOR"];
pub const AMOUNT_OPERATORS: &[&str] = &[
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "EQUAL",
];
pub const DESCRIPTOR_MATCH_TYPES: &[&str] = &["STARTS_WITH", "EXACT_MATCH"];

/// Check one rule's parameters; returns them normalised (only the known keys).
fn read_parameters(
    c: &mut Checker,
    kind: &str,
    params: Option<&Value>,
    path: &str,
    enrolment_type: &str,
) -> Option<Value> {
    let Some(p) = params.and_then(Value::as_object) else {
        c.push(FieldError::missing(format!("{path}.parameters")));
        return None;
    };
    match kind {
        "AMOUNT" => {
            let operator = c.required_enum_at(
                p,
                "operator",
                &format!("{path}.parameters.operator"),
                AMOUNT_OPERATORS,
            );
            let currency = c.required_str_at(
                p,
                "currency_code",
                &format!("{path}.parameters.currency_code"),
            );
            let amount = match p.get("amount_in_cents").and_then(Value::as_i64) {
                Some(a) if a >= 0 => Some(a),
                _ => {
                    c.push(FieldError::invalid_type(
                        format!("{path}.parameters.amount_in_cents"),
                        "a non-negative integer",
                    ));
                    None
                }
            };
            if let Some(cur) = &currency {
                let ok = if enrolment_type == VERIFI_RDR {
                    cur == "USD"
                } else {
                    looks_like_currency(cur)
                };
                if !ok {
                    c.push(FieldError::new(
                        format!("{path}.parameters.currency_code"),
                        "INVALID_CURRENCY",
                        "AMOUNT rules for Verifi RDR must use USD",
                    ));
                    return None;
                }
            }
            Some(
                json!({ "operator": operator?, "currency_code": currency?, "amount_in_cents": amount? }),
            )
        }
        "DESCRIPTOR" => {
            let Some(list) = p
                .get("descriptors")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
            else {
                c.push(FieldError::missing(format!(
                    "{path}.parameters.descriptors"
                )));
                return None;
            };
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let at = format!("{path}.parameters.descriptors[{i}]");
                let Some(d) = d.as_object() else {
                    c.push(FieldError::invalid_type(at, "an object"));
                    continue;
                };
                let value = c.required_str_at(d, "value", &format!("{at}.value"));
                let match_type = c.required_enum_at(
                    d,
                    "match_type",
                    &format!("{at}.match_type"),
                    DESCRIPTOR_MATCH_TYPES,
                );
                if let (Some(value), Some(match_type)) = (value, match_type) {
                    out.push(json!({ "value": value, "match_type": match_type }));
                }
            }
            Some(json!({ "descriptors": out }))
        }
        _ => None,
    }
}

/// The enrolments' common type, checking they exist in `org_id`, share a type, and (for a
/// create or a move) are not already in another ruleset.
fn enrolments_type(
    store: &Store,
    org_id: &str,
    ids: &[String],
    this_ruleset: Option<&str>,
) -> ApiResult<String> {
    let mut kind: Option<String> = None;
    for (i, id) in ids.iter().enumerate() {
        let field = format!("enrolment_ids[{i}]");
        let e = store
            .enrolments
            .get(id)
            .filter(|e| e.organisation_id == org_id)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "INVALID_ENROLMENT",
                    &field,
                    format!("enrolment {id} does not exist in organisation {org_id}"),
                )
            })?;
        match &kind {
            None => kind = Some(e.kind.clone()),
            Some(k) if k != &e.kind => {
                return Err(ApiError::unprocessable(
                    "ENROLMENTS_DIFFERENT_TYPES",
                    "enrolment_ids",
                    "a ruleset's enrolments must all be of one type",
                ))
            }
            Some(_) => {}
        }
        let taken = store
            .rulesets
            .values()
            .any(|r| Some(r.id.as_str()) != this_ruleset && r.enrolment_ids.contains(id));
        if taken {
            return Err(ApiError::unprocessable(
                "ENROLMENT_ALREADY_HAS_RULESET",
                &field,
                format!("enrolment {id} already has a ruleset"),
            ));
        }
    }
    Ok(kind.unwrap_or_default())
}

fn check_outcome(kind: &str, outcome: &str) -> ApiResult<()> {
    if kind == VERIFI_RDR && !RDR_OUTCOMES.contains(&outcome) {
        return Err(ApiError::unprocessable(
            "INVALID_RDR_OUTCOME",
            "outcome",
            "Verifi RDR rulesets take outcome REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL (published as REFUND)",
        ));
    }
    Ok(())
}

pub async fn create(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("rulesets:write")?;
    let obj = parse_object(&body)?;
    let mut c = Checker::new();
    let org_id = c.required_str(&obj, "organisation_id");
    let enrolment_ids = c.required_id_list(&obj, "enrolment_ids");
    let outcome = c.required_enum(&obj, "outcome", OUTCOMES);
    let join = c
        .optional_enum(&obj, "join_operator", JOIN_OPERATORS)
        .unwrap_or_else(|| "AND".into());
    let enabled = c.optional_bool(&obj, "is_enabled").unwrap_or(true);
    let rules = match obj.get("rules") {
        Some(Value::Array(r)) if !r.is_empty() || !crate::gate::strict() => r.clone(),
        None | Some(Value::Null) if !crate::gate::strict() => Vec::new(),
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            c.push(FieldError::new(
                "rules",
                "MISSING_FIELD",
                "rules must list at least one rule",
            ));
            Vec::new()
        }
        Some(_) => {
            c.push(FieldError::invalid_type("rules", "an array"));
            Vec::new()
        }
    };
    c.finish()?;
    let (org_id, enrolment_ids, outcome) = (
        org_id.unwrap_or_default(),
        enrolment_ids.unwrap_or_default(),
        outcome.unwrap_or_default(),
    );

    let mut store = app.store();
    if !caller.can_see_org_id(&store, &org_id) {
        return Err(ApiError::unprocessable(
            "INVALID_ORGANISATION",
            "organisation_id",
            format!("organisation {org_id} does not exist or is not accessible"),
        ));
    }
    let kind = enrolments_type(&store, &org_id, &enrolment_ids, None)?;
    check_outcome(&kind, &outcome)?;

    let now = Utc::now();
    let mut c = Checker::new();
    let mut seen: Vec<String> = Vec::new();
    let mut built = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        let Some(rule) = rule.as_object() else {
            c.push(FieldError::invalid_type(path, "an object"));
            continue;
        };
        let Some(rule_type) = c.required_enum_at(rule, "type", &format!("{path}.type"), RULE_TYPES)
        else {
            continue;
        };
        if seen.contains(&rule_type) {
            c.push(FieldError::new(
                format!("{path}.type"),
                "DUPLICATE_RULE_TYPE",
                format!("only one {rule_type} rule is allowed per ruleset"),
            ));
            continue;
        }
        seen.push(rule_type.clone());
        if let Some(parameters) =
            read_parameters(&mut c, &rule_type, rule.get("parameters"), &path, &kind)
        {
            built.push(Rule {
                id: new_id("resrule"),
                kind: rule_type,
                parameters,
                created_at: now,
                updated_at: now,
            });
        }
    }
    c.finish()?;

    let id = new_id("rset");
    let ruleset = Ruleset {
        links: self_link(format!("/v1/rulesets/{id}")),
        id: id.clone(),
        organisation_id: org_id,
        enrolment_ids,
        outcome,
        join_operator: join,
        is_enabled: enabled,
        rules: built,
        created_at: now,
        updated_at: now,
    };
    store.rulesets.insert(id, ruleset.clone());
    drop(store);
    app.changed();
    Ok((StatusCode::CREATED, Json(json!(ruleset))))
}

fn visible_ruleset(store: &Store, caller: &Caller, id: &str) -> ApiResult<Ruleset> {
    find_visible(store, caller, &store.rulesets, id, "Ruleset").cloned()
}

pub async fn list(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.require("rulesets:read")?;
    let page = PageRequest::from_query(&q)?;
    let store = app.store();
    let items: Vec<&Ruleset> = visible(&store, &caller, &q, store.rulesets.values())
        .filter(|r| {
            q.get("enrolment_id")
                .is_none_or(|e| r.enrolment_ids.contains(e))
        })
        .collect();
    Ok(page.newest_first(items))
}

pub async fn get(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require("rulesets:read")?;
    Ok(Json(json!(visible_ruleset(&app.store(), &caller, &id)?)))
}

pub async fn update(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("rulesets:write")?;
    let obj = parse_object(&body)?;
    if obj.contains_key("rules") {
        return Err(ApiError::unprocessable(
            "RULES_NOT_ALLOWED",
            "rules",
            "update rules with PATCH /v1/rulesets/{ruleset_id}/rules/{rule_id}",
        ));
    }
    let mut c = Checker::new();
    let enrolment_ids = if obj.get("enrolment_ids").is_some_and(|v| !v.is_null()) {
        c.required_id_list(&obj, "enrolment_ids")
    } else {
        None
    };
    let outcome = c.optional_enum(&obj, "outcome", OUTCOMES);
    let join = c.optional_enum(&obj, "join_operator", JOIN_OPERATORS);
    let enabled = c.optional_bool(&obj, "is_enabled");
    c.finish()?;

    let mut store = app.store();
    let mut ruleset = visible_ruleset(&store, &caller, &id)?;
    let ids = enrolment_ids.unwrap_or_else(|| ruleset.enrolment_ids.clone());
    let kind = enrolments_type(&store, &ruleset.organisation_id, &ids, Some(&id))?;
    let outcome = outcome.unwrap_or_else(|| ruleset.outcome.clone());
    check_outcome(&kind, &outcome)?;
    ruleset.enrolment_ids = ids;
    ruleset.outcome = outcome;
    if let Some(join) = join {
        ruleset.join_operator = join;
    }
    if let Some(enabled) = enabled {
        ruleset.is_enabled = enabled;
    }
    ruleset.updated_at = Utc::now();
    store.rulesets.insert(id, ruleset.clone());
    drop(store);
    app.changed();
    Ok(Json(json!(ruleset)))
}

pub async fn update_rule(
    State(app): State<SharedApp>,
    Extension(caller): Extension<Caller>,
    Path((id, rule_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require("rulesets:write")?;
    let obj: Map<String, Value> = parse_object(&body)?;
    let mut store = app.store();
    let mut ruleset = visible_ruleset(&store, &caller, &id)?;
    let index = ruleset
        .rules
        .iter()
        .position(|r| r.id == rule_id)
        .ok_or_else(|| ApiError::not_found("Rule"))?;
    let kind = ruleset
        .enrolment_ids
        .first()
        .and_then(|e| store.enrolments.get(e))
        .map(|e| e.kind.clone())
        .unwrap_or_default();
    let mut c = Checker::new();
    let rule_type = c
        .optional_enum(&obj, "type", RULE_TYPES)
        .unwrap_or_else(|| ruleset.rules[index].kind.clone());
    c.finish()?;
    if ruleset
        .rules
        .iter()
        .enumerate()
        .any(|(i, r)| i != index && r.kind == rule_type)
    {
        return Err(ApiError::unprocessable(
            "DUPLICATE_RULE_TYPE",
            "type",
            format!("only one {rule_type} rule is allowed per ruleset"),
        ));
    }
    let mut c = Checker::new();
    let params = obj
        .get("parameters")
        .or(Some(&ruleset.rules[index].parameters))
        .cloned();
    let parameters = read_parameters(&mut c, &rule_type, params.as_ref(), "rule", &kind);
    c.finish()?;
    let now = Utc::now();
    let rule = &mut ruleset.rules[index];
    rule.kind = rule_type;
    rule.parameters = parameters.unwrap_or(Value::Null);
    rule.updated_at = now;
    let rule = rule.clone();
    ruleset.updated_at = now;
    store.rulesets.insert(id, ruleset);
    drop(store);
    app.changed();
    Ok(Json(json!(rule)))
}
