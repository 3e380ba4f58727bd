//! `GET /v1/alerts/` filters and `PATCH /v1/alerts/{alert_id}`.

use super::{blank, Collector, ValidationErrors, INVALID_DATE_RANGE, INVALID_VALUE, MISSING_FIELD};
use crate::models::{AlertQuery, UpdateAlert};

/// `GET /v1/alerts` filters: `alert_received_at_gte <= alert_received_at_lte` when both are
/// given, a positive `limit`.
pub fn validate_alert_query(query: &AlertQuery) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if let (Some(gte), Some(lte)) = (query.alert_received_at_gte, query.alert_received_at_lte) {
        if gte > lte {
            c.push(
                "alert_received_at_gte".into(),
                INVALID_DATE_RANGE,
                format!(
                    "{} is after alert_received_at_lte {}",
                    gte.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    lte.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            );
        }
    }
    if query.limit == Some(0) {
        c.push("limit".into(), INVALID_VALUE, "must be at least 1");
    }
    c.finish()
}

/// `PATCH /v1/alerts/{id}`: an action and/or a note, and a known action.
pub fn validate_update_alert(update: &UpdateAlert) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if update.action.is_none() && blank(&update.note) {
        c.push(String::new(), MISSING_FIELD, "give an action and/or a note");
    }
    if let Some(action) = &update.action {
        if !action.is_known() {
            c.push(
                "action".into(),
                INVALID_VALUE,
                format!("{action} is not one of REFUND, CANCEL, REFUND_AND_CANCEL, ACCEPT_DISPUTE"),
            );
        }
    }
    c.finish()
}
