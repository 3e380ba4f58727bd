//! One JSON log line per delivery: event id, type, outcome. Never a secret, a signature or the
//! payload (Workers Logs / `wrangler tail` pick these up).

use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
}

/// An error no handler turned into an answer (the shim's 500): its JavaScript name only, which
/// never carries a secret or the payload.
pub fn internal_error(error: &JsValue) {
    let name = crate::js::error_name(error).unwrap_or_else(|| "unknown".to_string());
    DeliveryLog {
        outcome: "internal_error",
        reason: Some(&name),
        ..Default::default()
    }
    .emit();
}

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
    /// For a delivery refused for its signature: whether a copy was queued to be archived
    /// (`kept_for_replay`, `not_kept`, `keep_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_copy: Option<&'a str>,
}

impl DeliveryLog<'_> {
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            console_log(&line);
        }
    }
}
