//! Builders for unit tests of the domain.

use crate::models::alert::Alert;
use crate::models::enrolment::Enrolment;
use chrono::{DateTime, Utc};

pub fn ts(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

/// An alert as the API returns it, with a deadline and an ARN.
pub fn alert(id: &str, kind: &str, status: &str, amount_in_cents: i64) -> Alert {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "organisation_id": "org_1",
        "merchant_id": "mrch_1",
        "enrolment_id": "enrl_1",
        "enrolment_type": kind,
        "status": status,
        "transaction_amount_in_cents": amount_in_cents,
        "transaction_currency_code": "USD",
        "action_required_deadline": "2026-11-26T10:00:00Z",
        "alert_received_at": "2026-11-24T09:00:00Z",
        "transaction_acquirer_reference_number": "74027012345678901234567",
    }))
    .expect("alert")
}

pub fn enrolment(id: &str, status: &str, updated_at: &str, note: Option<&str>) -> Enrolment {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "organisation_id": "org_1",
        "merchant_ids": ["mrch_1"],
        "type": "ETHOCA_ALERT",
        "status": status,
        "created_at": "2026-11-24T08:00:00Z",
        "updated_at": updated_at,
        "note": note,
    }))
    .expect("enrolment")
}
