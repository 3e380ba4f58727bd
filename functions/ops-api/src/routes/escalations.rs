//! `GET /api/escalations.csv?organisation_id=&since=&limit=`: the escalation records of
//! unmatched and ambiguous alerts (`shared::domain::escalation`: the fields the Orders guide
//! asks for when escalating to ChargebackStop), as CSV; the same rows as
//! `cbs escalations export`. One organisation (`organisation_id`, or `organisation`), or every
//! onboarded customer's; each read through the `organisation-index`, never a scan.
//! An organisation with neither a customer nor a stored alert is 404.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use shared::domain::escalation::{escalations, to_csv};
use shared::domain::matching::dry_run::organisation_known;
use std::collections::HashMap;

const MAX_ROWS: i32 = 20_000;
const DEFAULT_ROWS: i32 = 5_000;

fn since(raw: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| ApiError::invalid("since", "must be an ISO 8601 date or date-time"))
}

pub async fn csv(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<impl IntoResponse> {
    let known = ["organisation_id", "organisation", "since", "limit"];
    if let Some(unknown) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.clone(),
            format!("unknown query parameter; allowed: {}", known.join(", ")),
        ));
    }
    let limit: i32 = match q.get("limit") {
        None => DEFAULT_ROWS,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|l| (1..=MAX_ROWS).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("1 to {MAX_ROWS}")))?,
    };
    let since = q.get("since").map(|s| since(s)).transpose()?;
    let organisation = q
        .get("organisation_id")
        .or_else(|| q.get("organisation"))
        .filter(|o| !o.is_empty());
    let orgs = match organisation {
        Some(org) => {
            if !organisation_known(&*state.customers, &*state.alerts, org).await? {
                return Err(ApiError::not_found("organisation", org));
            }
            vec![org.clone()]
        }
        None => crate::routes::enrolments::organisations(&state).await?,
    };
    let mut records = Vec::new();
    for org in &orgs {
        records.extend(escalations(&*state.alerts, org, since, limit).await?);
    }
    let name = match organisation {
        Some(org) => format!("escalations-{}.csv", sanitised(org)),
        None => "escalations.csv".to_string(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        to_csv(&records),
    ))
}

/// An organisation id fit for a file name in a header.
fn sanitised(org: &str) -> String {
    org.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .take(64)
        .collect()
}
