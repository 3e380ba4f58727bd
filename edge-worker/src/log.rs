//! One JSON log line per delivery: event id, type, outcome. Never a secret, a signature or the
//! payload (Workers Logs / `wrangler tail` pick these up).

use serde::Serialize;

#[derive(Serialize, Default)]
pub struct DeliveryLog<'a> {
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<&'a str>,
    /// Why it was refused or failed, as a short code (`signature_stale`, `QueueDoesNotExist`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// True when the previous (rotating-out) webhook secret matched: time to finish the rotation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub matched_previous_secret: bool,
    /// True when the signature was older than the fresh window and accepted as a retried
    /// delivery carrying its first attempt's signature (`signature_age_secs` says how old).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retried_delivery: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_age_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<usize>,
}

impl DeliveryLog<'_> {
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            worker::console_log!("{line}");
        }
    }
}
