//! Insights: the counters of `shared::domain::insights`, per organisation (shown by its
//! customer's name) and across all. Reads O(days) items per scope, never a table scan; the
//! all-customers gauges come from month items (a few small items per customer).
//!
//! - `GET /api/insights?organisation_id=&days=90`: the charts' data for one organisation or all,
//!   the card scheme gauges (current and previous month) of every organisation in view, the
//!   enrolments with their customers' names, and what is counted and what is not;
//! - `GET /api/insights/alerts.csv?organisation_id=&limit=`: alerts with their final decision
//!   and match (our verdict, the order matched, the method and the policy rule), newest first
//!   (the `organisation-index`), as CSV (`shared::domain::insights::export`).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use shared::domain::insights::export::{alert_csv_row, ALERTS_CSV_HEADER};
use shared::domain::insights::gauges::scheme_gauges;
use shared::domain::insights::report::{
    build_view, current_and_previous_month, scheme_month, InsightsView, SchemeMonth,
};
use shared::ports::insights_store::ALL_ORGANISATIONS;
use std::collections::{BTreeMap, HashMap};

const MAX_CUSTOMERS: usize = 1000;
const MAX_DAYS: i64 = 400;
const MAX_CSV_ROWS: i32 = 20_000;

/// What the page says is counted and what is not (shown as is).
pub const COUNTED: &[&str] = &[
    "Days are the day an alert was received (UTC); an alert counts in the outcome it ended with, once.",
    "Deadline performance: Ethoca alerts with a deadline, from received to our accepted action (or to the resolution seen, for alerts nobody here actioned) against the time the deadline allowed. A miss is an action after the deadline or an alert that expired.",
    "Visa VAMP cases: Visa alerts received in the month, less RDR alerts resolved with a refund (RDR-resolved cases do not count toward Visa's ratio). Ratio over SETTLED Visa card transactions in the orders uploaded for that month. Excessive at 1.5 % with more than 1,500 cases.",
    "Mastercard chargebacks: Mastercard alerts whose dispute went ahead (accepted, cancelled, expired), over SETTLED Mastercard transactions uploaded for the month. Excessive (ECM): 100–299 and 1.5 %; High Excessive: 300 or more and 3 %.",
    "Order feed: orders taken into the outbox and their upload outcome per day; identifiers counted over their card transactions.",
];
pub const NOT_COUNTED: &[&str] = &[
    "Disputes and fraud reports that never raised an alert here (TC40/SAFE reports without an alert, chargebacks filed directly) are not counted: the scheme's own figure can be higher.",
    "Card transactions not uploaded as orders are not in the denominators.",
    "Alerts still waiting are counted as received, not in any outcome.",
    "Rate-limited upload attempts before the insights counters existed are only partly rebuilt by the backfill.",
];

#[derive(Debug, Serialize)]
pub struct Organisation {
    pub organisation_id: String,
    pub customer: String,
}

#[derive(Debug, Serialize)]
pub struct Gauges {
    pub organisation_id: String,
    pub customer: String,
    pub current: SchemeMonth,
    pub previous: SchemeMonth,
    /// Over a scheme threshold in the current or the previous month.
    pub flagged: bool,
}

#[derive(Debug, Serialize)]
pub struct EnrolmentRow {
    pub customer: String,
    pub organisation_id: String,
    pub enrolment_id: String,
    #[serde(rename = "type")]
    pub enrolment_type: String,
    pub status: String,
    pub live: bool,
}

#[derive(Debug, Serialize)]
pub struct InsightsPage {
    /// The organisation in view, or `ALL`.
    pub scope: String,
    pub organisations: Vec<Organisation>,
    pub view: InsightsView,
    pub gauges: Vec<Gauges>,
    pub enrolments: Vec<EnrolmentRow>,
    pub counted: Vec<String>,
    pub not_counted: Vec<String>,
}

async fn customers(state: &AppState) -> ApiResult<Vec<Organisation>> {
    let mut by_org: BTreeMap<String, String> = BTreeMap::new();
    for c in state.customers.list(MAX_CUSTOMERS).await? {
        if let Some(org) = c.organisation_id {
            by_org.entry(org).or_insert(c.organisation_name);
        }
    }
    let mut orgs: Vec<Organisation> = by_org
        .into_iter()
        .map(|(organisation_id, customer)| Organisation {
            organisation_id,
            customer,
        })
        .collect();
    orgs.sort_by(|a, b| a.customer.cmp(&b.customer));
    Ok(orgs)
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn flagged(m: &SchemeMonth) -> bool {
    m.visa.level == "above"
        || m.mastercard.level != "below" && m.mastercard.level != "no_settled_transactions"
}

pub async fn overview(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<InsightsPage>> {
    let days: i64 = match q.get("days") {
        None => 90,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::invalid("days", format!("a number of days, 1 to {MAX_DAYS}"))
            })?,
    };
    let organisations = customers(&state).await?;
    let scope = match q.get("organisation_id").filter(|o| !o.is_empty()) {
        Some(org) => {
            if !organisations.iter().any(|o| &o.organisation_id == org) {
                return Err(ApiError::not_found("organisation", org));
            }
            org.clone()
        }
        None => ALL_ORGANISATIONS.to_string(),
    };
    let today = state.clock.now().date_naive();
    let from = today - Duration::days(days - 1);
    let (current, previous) = current_and_previous_month(today);
    let stored = state
        .insights
        .days(&scope, &day(from.min(previous)), &day(today))
        .await?;
    let view = build_view(&scope, from, today, &stored);

    let in_view: Vec<&Organisation> = organisations
        .iter()
        .filter(|o| scope == ALL_ORGANISATIONS || o.organisation_id == scope)
        .collect();
    // One customer: its gauges from the days read above. All customers: from the month items
    // (batched reads that grow with the customers, not with customers x days).
    let mut by_org = if scope == ALL_ORGANISATIONS {
        let ids: Vec<String> = in_view.iter().map(|o| o.organisation_id.clone()).collect();
        scheme_gauges(state.insights.as_ref(), &ids, today).await?
    } else {
        BTreeMap::from([(
            scope.clone(),
            (
                scheme_month(current, &stored),
                scheme_month(previous, &stored),
            ),
        )])
    };
    let mut gauges = Vec::new();
    let mut enrolments = Vec::new();
    for org in &in_view {
        let Some((current, previous)) = by_org.remove(&org.organisation_id) else {
            continue;
        };
        gauges.push(Gauges {
            organisation_id: org.organisation_id.clone(),
            customer: org.customer.clone(),
            flagged: flagged(&current) || flagged(&previous),
            current,
            previous,
        });
        for r in state
            .enrolments
            .by_organisation(&org.organisation_id)
            .await?
        {
            enrolments.push(EnrolmentRow {
                customer: org.customer.clone(),
                organisation_id: org.organisation_id.clone(),
                enrolment_id: r.enrolment_id.clone(),
                enrolment_type: r.enrolment.enrolment_type.to_string(),
                status: r.enrolment.status.to_string(),
                live: r.live,
            });
        }
    }
    gauges.sort_by(|a, b| b.flagged.cmp(&a.flagged).then(a.customer.cmp(&b.customer)));
    Ok(Json(InsightsPage {
        scope,
        organisations,
        view,
        gauges,
        enrolments,
        counted: COUNTED.iter().map(|s| s.to_string()).collect(),
        not_counted: NOT_COUNTED.iter().map(|s| s.to_string()).collect(),
    }))
}

pub async fn alerts_csv(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<impl IntoResponse> {
    let limit: i32 = match q.get("limit") {
        None => 5000,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|l| (1..=MAX_CSV_ROWS).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("1 to {MAX_CSV_ROWS}")))?,
    };
    let organisations = customers(&state).await?;
    let names: HashMap<&str, &str> = organisations
        .iter()
        .map(|o| (o.organisation_id.as_str(), o.customer.as_str()))
        .collect();
    let orgs: Vec<String> = match q.get("organisation_id").filter(|o| !o.is_empty()) {
        Some(org) => vec![org.clone()],
        None => organisations
            .iter()
            .map(|o| o.organisation_id.clone())
            .collect(),
    };
    let mut out = format!("{ALERTS_CSV_HEADER}\n");
    for org in orgs {
        let customer = names.get(org.as_str()).copied().unwrap_or("");
        for r in state.alerts.by_organisation(&org, limit).await? {
            out.push_str(&alert_csv_row(customer, &r));
            out.push('\n');
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"alerts-with-decisions.csv\"",
            ),
        ],
        out,
    ))
}
