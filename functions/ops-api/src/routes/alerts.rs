//! The alert queue and alert actions, read from our `alerts` table (never a Scan):
//! - `status=ACTION_REQUIRED` queries `deadline-index` (sparse: only Ethoca alerts waiting);
//! - `organisation_id` queries `organisation-index`;
//! - neither: each onboarded customer's organisation is queried through `organisation-index`.
//!
//! Filters, sort and paging then follow `GET /v1/alerts`.
//! An action goes through `shared::domain::decision::apply_action`, the one path every
//! automatic action takes too: it takes the alert's action claim, is re-checked against the API
//! and lands in the audit trail. The route answers 409 without sending anything when a final
//! decision is already recorded here (`already_decided`) or someone else holds the claim
//! (`action_in_progress`); a 422 from ChargebackStop while the alert still waits is 409
//! `action_refused` with the code (the alert stays in the queue, operations are notified).
//!
//! A waiting Ethoca alert without a deadline is listed with `urgency: "no_deadline"` (the
//! deadline-index gives it a sort key before every deadline; see `shared::domain::alert_record`).

use crate::auth::Operator;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::domain::decision::{
    apply_action, ActionRequest, DecisionError, DecisionResult, DecisionSource,
};
use shared::models::alert::AlertAction;
use shared::ports::alert_api::ApiCallError;
use shared::records::alert::AlertRecord;
use std::collections::HashMap;

const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;
/// How many alerts one organisation-index query reads before filtering in memory.
const ORG_READ: i32 = 1000;
const MAX_NOTE: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub status: Option<String>,
    pub organisation_id: Option<String>,
    pub merchant_id: Option<String>,
    pub received_gte: Option<DateTime<Utc>>,
    pub received_lte: Option<DateTime<Utc>>,
    pub sort: String,
    pub limit: usize,
    pub offset: usize,
}

/// The query string, checked field by field like `GET /v1/alerts` does (422 naming the field).
pub fn parse_list_query(q: &HashMap<String, String>) -> ApiResult<ListQuery> {
    let known = [
        "status",
        "organisation_id",
        "merchant_id",
        "alert_received_at_gte",
        "alert_received_at_lte",
        "sort",
        "limit",
        "offset",
    ];
    if let Some(unknown) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.clone(),
            format!("unknown query parameter; allowed: {}", known.join(", ")),
        ));
    }
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !["ACTION_REQUIRED", "RESOLVED", "INVALID"].contains(&s.as_str()) {
            return Err(ApiError::invalid(
                "status",
                "must be ACTION_REQUIRED, RESOLVED or INVALID",
            ));
        }
    }
    let time = |name: &str| -> ApiResult<Option<DateTime<Utc>>> {
        q.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ApiError::invalid(name, "must be an ISO 8601 date-time"))
            })
            .transpose()
    };
    let received_gte = time("alert_received_at_gte")?;
    let received_lte = time("alert_received_at_lte")?;
    if let (Some(a), Some(b)) = (received_gte, received_lte) {
        if a > b {
            return Err(ApiError::invalid(
                "alert_received_at_gte",
                "must be less than or equal to alert_received_at_lte",
            ));
        }
    }
    let sort = q
        .get("sort")
        .cloned()
        .unwrap_or_else(|| "-alert_received_at".into());
    if ![
        "-alert_received_at",
        "alert_received_at",
        "-action_required_deadline",
        "action_required_deadline",
    ]
    .contains(&sort.as_str())
    {
        return Err(ApiError::invalid(
            "sort",
            "must be -alert_received_at, alert_received_at, -action_required_deadline or action_required_deadline",
        ));
    }
    let number = |name: &str, default: usize, min: usize, max: usize| -> ApiResult<usize> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= min && n <= max => Ok(n),
                _ => Err(ApiError::invalid(
                    name,
                    format!("must be a whole number from {min} to {max}"),
                )),
            },
        }
    };
    Ok(ListQuery {
        status,
        organisation_id: q.get("organisation_id").cloned(),
        merchant_id: q.get("merchant_id").cloned(),
        received_gte,
        received_lte,
        sort,
        limit: number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
        offset: number("offset", 0, 0, 1_000_000)?,
    })
}

/// An alert as the API shows it: every stored alert field, plus how long is left.
#[derive(Debug, Serialize)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: shared::models::alert::Alert,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_left_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urgency: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
    pub count: usize,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Serialize)]
pub struct DecisionView {
    pub at: String,
    pub by: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub reason: String,
    pub result: String,
    /// The policy rule an automatic decision names in its reason (`<policy>/<rule>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The evidence words that decision recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AlertDetail {
    pub alert: AlertView,
    pub decisions: Vec<DecisionView>,
    /// The match to the partner's transaction (status, method, confidence, candidates), its
    /// evidence and the deciding rule, as stored on the alert record; absent until the policy
    /// has looked at the alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching: Option<shared::records::matching::MatchRecord>,
}

fn view(state: &AppState, record: &AlertRecord, now: DateTime<Utc>) -> AlertView {
    let alert = record.alert.clone();
    let waiting = alert.is_actionable();
    let left = alert
        .time_to_deadline(now)
        .filter(|_| waiting)
        .map(|d| d.num_seconds());
    let urgency = match left {
        Some(s) if s < 0 => Some("overdue"),
        Some(s) if s < state.urgent_hours * 3600 => Some("urgent"),
        Some(_) => Some("normal"),
        // Waiting, and nothing tells when it is too late: a person must look now.
        None if waiting && record.waits_without_deadline() => Some("no_deadline"),
        None => None,
    };
    AlertView {
        alert,
        time_left_seconds: left,
        urgency,
    }
}

fn detail(state: &AppState, record: &AlertRecord, now: DateTime<Utc>) -> AlertDetail {
    let decisions = record
        .decisions
        .iter()
        .map(|d| {
            let source = wire(d.source);
            let result = wire(d.result);
            let (rule, evidence) =
                shared::domain::matching::decision_words::rule_and_evidence(&d.reason);
            DecisionView {
                rule,
                evidence,
                at: d.at.clone(),
                by: d.actor.clone(),
                source,
                action: d.action.as_ref().map(|a| a.to_string()),
                note: d.note.clone(),
                reason: d.reason.clone(),
                result: match &d.detail {
                    Some(detail) => format!("{result} ({detail})"),
                    None => result,
                },
            }
        })
        .collect();
    AlertDetail {
        alert: view(state, record, now),
        decisions,
        matching: record.alert_match.clone(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<AlertPage>> {
    let q = parse_list_query(&raw)?;
    let now = state.clock.now();
    let need = q.offset + q.limit;
    let mut records: Vec<AlertRecord> =
        if q.status.as_deref() == Some("ACTION_REQUIRED") && q.organisation_id.is_none() {
            // Everything waiting, whatever the deadline (the far future bounds the range).
            state
                .alerts
                .awaiting_action_until("9999-12-31T23:59:59Z", (need.max(MAX_LIMIT)) as i32)
                .await?
        } else if let Some(org) = &q.organisation_id {
            state.alerts.by_organisation(org, ORG_READ).await?
        } else {
            let mut all = Vec::new();
            for org in crate::routes::enrolments::organisations(&state).await? {
                all.extend(state.alerts.by_organisation(&org, ORG_READ).await?);
            }
            all
        };
    records.retain(|r| {
        let a = &r.alert;
        q.status.as_deref().is_none_or(|s| a.status.as_str() == s)
            && q.merchant_id
                .as_deref()
                .is_none_or(|m| a.merchant_id.as_deref() == Some(m))
            && q.received_gte
                .is_none_or(|t| a.alert_received_at.is_some_and(|r| r >= t))
            && q.received_lte
                .is_none_or(|t| a.alert_received_at.is_some_and(|r| r <= t))
    });
    sort_records(&mut records, &q.sort);
    let count = records.len();
    let items = records
        .iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|r| view(&state, r, now))
        .collect();
    Ok(Json(AlertPage {
        items,
        count,
        limit: q.limit,
        offset: q.offset,
    }))
}

/// Sorts like the API; alerts without the sort field go last either way, then by id.
pub fn sort_records(records: &mut [AlertRecord], sort: &str) {
    let (desc, field) = match sort.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, sort),
    };
    let key = |r: &AlertRecord| match field {
        "action_required_deadline" => r.alert.action_required_deadline,
        _ => r.alert.alert_received_at.or(r.alert.created_at),
    };
    records.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        let ord = match (ka, kb) {
            (Some(x), Some(y)) if desc => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        ord.then_with(|| a.alert_id.cmp(&b.alert_id))
    });
}

pub async fn get(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
) -> ApiResult<Json<AlertDetail>> {
    let record = state
        .alerts
        .get(&alert_id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert", &alert_id))?;
    Ok(Json(detail(&state, &record, state.clock.now())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: String,
    #[serde(default)]
    pub note: Option<String>,
}

pub async fn action(
    State(state): State<AppState>,
    Extension(operator): Extension<Operator>,
    Path(alert_id): Path<String>,
    JsonBody(body): JsonBody<ActionBody>,
) -> ApiResult<(StatusCode, Json<AlertDetail>)> {
    let action = AlertAction::from_wire(&body.action);
    if !action.is_known() {
        return Err(ApiError::invalid(
            "action",
            "must be REFUND, CANCEL, REFUND_AND_CANCEL or ACCEPT_DISPUTE",
        ));
    }
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(ApiError::invalid(
            "note",
            format!("must be at most {MAX_NOTE} characters"),
        ));
    }
    // Only alerts we know about: the queue is built from our table. A final decision recorded
    // here is checked again under the claim (`apply_action`); this answers the common case
    // without a call to ChargebackStop.
    let Some(known) = state.alerts.get(&alert_id).await? else {
        return Err(ApiError::not_found("alert", &alert_id));
    };
    if let Some(d) = known.final_decision() {
        return Err(already_decided(&alert_id, d.result, &d.actor, &d.at));
    }
    let request = ActionRequest {
        alert_id: alert_id.clone(),
        action: action.clone(),
        note,
        source: DecisionSource::Operator,
        actor: operator.0.clone(),
        reason: "operator action in the ops API".into(),
    };
    let report = apply_action(
        state.alert_api.as_ref(),
        state.alerts.as_ref(),
        state.notifier.as_ref(),
        state.clock.as_ref(),
        request,
    )
    .await
    .map_err(|e| match e {
        DecisionError::Api(ApiCallError::NotFound { .. }) => {
            ApiError::not_found("alert (at ChargebackStop)", &alert_id)
        }
        DecisionError::Api(api) => {
            tracing::warn!(alert_id = %alert_id, error = %api, "action not sent");
            ApiError::upstream(format!(
                "{api}; nothing was recorded, the alert is still waiting: try again"
            ))
        }
        DecisionError::Store(s) => s.into(),
        DecisionError::Notify(n) => {
            tracing::error!(alert_id = %alert_id, error = %n, "refusal not notified");
            ApiError::upstream(format!(
                "ChargebackStop refused the action and operations could not be notified ({n}); nothing was recorded, the alert is still waiting: try again"
            ))
        }
        DecisionError::AlreadyDecided {
            result, actor, at, ..
        } => already_decided(&alert_id, result, &actor, &at),
        DecisionError::ClaimHeld {
            holder,
            actor,
            until,
            ..
        } => ApiError::conflict(
            "action_in_progress",
            format!(
                "alert {alert_id} is being actioned by {actor} ({}) right now: nothing sent; look again after {until}",
                wire(holder)
            ),
        ),
    })?;
    tracing::info!(alert_id = %alert_id, action = %action, operator = %operator.0,
        result = ?report.result, "operator action");
    let record = match report.record {
        Some(r) => r,
        None => state
            .alerts
            .get(&alert_id)
            .await?
            .ok_or_else(|| ApiError::not_found("alert", &alert_id))?,
    };
    let now = state.clock.now();
    match report.result {
        DecisionResult::Applied => Ok((StatusCode::OK, Json(detail(&state, &record, now)))),
        DecisionResult::NotActionable => Err(ApiError::conflict(
            "not_actionable",
            format!(
                "alert {alert_id} is {} {} at ChargebackStop: no action sent (recorded in its history)",
                record.alert.enrolment_type, record.alert.status
            ),
        )),
        DecisionResult::Rejected => Err(ApiError::conflict(
            "action_rejected",
            format!(
                "ChargebackStop refused the action on {alert_id} (recorded in its history); it is now {}",
                record.alert.status
            ),
        )),
        DecisionResult::RefusedStillWaiting => {
            let why = record
                .decisions
                .last()
                .and_then(|d| d.detail.clone())
                .unwrap_or_default();
            Err(ApiError::conflict(
                "action_refused",
                format!(
                    "ChargebackStop refused {action} on {alert_id} ({why}); the alert still waits for a decision and stays in the queue (recorded in its history, operations notified)"
                ),
            ))
        }
        other => Err(ApiError::internal(format!(
            "unexpected decision result {other:?} for {alert_id}"
        ))),
    }
}

/// A decision's source or result as it is written on the wire (`OPERATOR`, `APPLIED`).
fn wire<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn already_decided(alert_id: &str, result: DecisionResult, actor: &str, at: &str) -> ApiError {
    ApiError::conflict(
        "already_decided",
        format!(
            "alert {alert_id} already has a final decision ({} by {actor} at {at}): nothing sent",
            wire(result)
        ),
    )
}
