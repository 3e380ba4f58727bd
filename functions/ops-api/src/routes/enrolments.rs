//! The enrolment board: every onboarded customer's enrolments from our `enrolments` table
//! (`organisation-index`), with the `live` flag and the customer-facing note.
//! `GET /api/enrolments/{id}?refresh=true` also fetches `GET /v2/enrolments/{id}`, the source of
//! truth the guide says to check before showing an enrolment live or blocked.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use shared::domain::enrolment_lifecycle::{EnrolmentRecord, StatusChange};
use shared::ports::alert_api::ApiCallError;
use std::collections::{BTreeSet, HashMap};

/// Customers read for the board and the cross-organisation alert list.
const MAX_CUSTOMERS: usize = 1000;

#[derive(Debug, Serialize)]
pub struct EnrolmentView {
    pub enrolment_id: String,
    pub organisation_id: String,
    #[serde(rename = "type")]
    pub enrolment_type: String,
    pub status: String,
    pub live: bool,
    pub note: Option<String>,
    pub merchant_ids: Vec<String>,
    pub updated_at: Option<String>,
    pub fetched_at: String,
    pub status_history: Vec<StatusChange>,
}

impl From<&EnrolmentRecord> for EnrolmentView {
    fn from(r: &EnrolmentRecord) -> Self {
        let e = &r.enrolment;
        Self {
            enrolment_id: r.enrolment_id.clone(),
            organisation_id: e.organisation_id.clone(),
            enrolment_type: e.enrolment_type.to_string(),
            status: e.status.to_string(),
            live: r.live,
            note: e.note.clone(),
            merchant_ids: e.merchant_ids.clone(),
            updated_at: e.updated_at.map(|t| t.to_rfc3339()),
            fetched_at: r.fetched_at.clone(),
            status_history: r.status_history.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EnrolmentPage {
    pub items: Vec<EnrolmentView>,
}

/// The organisations we serve: every onboarded customer's.
pub async fn organisations(state: &AppState) -> ApiResult<Vec<String>> {
    let orgs: BTreeSet<String> = state
        .customers
        .list(MAX_CUSTOMERS)
        .await?
        .into_iter()
        .filter_map(|c| c.organisation_id)
        .collect();
    Ok(orgs.into_iter().collect())
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<EnrolmentPage>> {
    let orgs = match q.get("organisation_id") {
        Some(org) => vec![org.clone()],
        None => organisations(&state).await?,
    };
    let mut items = Vec::new();
    for org in orgs {
        for r in state.enrolments.by_organisation(&org).await? {
            if q.get("status")
                .is_none_or(|s| r.enrolment.status.as_str() == s)
            {
                items.push(EnrolmentView::from(&r));
            }
        }
    }
    items.sort_by(|a, b| {
        (&a.organisation_id, &a.enrolment_id).cmp(&(&b.organisation_id, &b.enrolment_id))
    });
    Ok(Json(EnrolmentPage { items }))
}

#[derive(Debug, Serialize)]
pub struct EnrolmentDetail {
    pub stored: Option<EnrolmentView>,
    /// The enrolment as ChargebackStop returns it now (with `refresh=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<shared::models::enrolment::Enrolment>,
}

pub async fn get(
    State(state): State<AppState>,
    Path(enrolment_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<EnrolmentDetail>> {
    let stored = state.enrolments.get(&enrolment_id).await?;
    let refresh = matches!(
        q.get("refresh").map(String::as_str),
        Some("true") | Some("1")
    );
    let current = if refresh {
        match state.enrolment_api.get_enrolment(&enrolment_id).await {
            Ok(e) => Some(e),
            Err(ApiCallError::NotFound { .. }) if stored.is_none() => {
                return Err(ApiError::not_found("enrolment", &enrolment_id))
            }
            Err(ApiCallError::NotFound { .. }) => None,
            Err(e) => return Err(ApiError::upstream(e.to_string())),
        }
    } else {
        None
    };
    if stored.is_none() && current.is_none() {
        return Err(ApiError::not_found("enrolment", &enrolment_id));
    }
    Ok(Json(EnrolmentDetail {
        stored: stored.as_ref().map(EnrolmentView::from),
        current,
    }))
}
