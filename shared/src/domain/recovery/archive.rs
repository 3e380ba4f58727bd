//! Archiving one accepted delivery, raw, before anything else happens to it (process-events
//! does it first for every record, whatever its type, poison included).

use super::refused::{REFUSED_ATTRIBUTE, REFUSED_DELIVERY_PREFIX, REFUSED_HEADER};
use crate::event::WebhookEvent;
use crate::ports::event_archive::{ArchivedDelivery, EventArchive};
use crate::ports::event_log::iso;
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The delivery id recorded when the sender sent no `X-Idempotency-Key`.
pub const NO_DELIVERY_ID: &str = "none";

/// A queue message as the edge Worker sent it: the body bytes (already decoded when the Worker
/// sent them as base64) and the message attributes it set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawDelivery {
    pub message_id: String,
    pub body: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
}

/// Builds the archive item. Ids come from the Worker's attributes, then the body, then the
/// queue message id, so that even a body that is not an event is kept and found again.
pub fn archived_from(
    raw: &RawDelivery,
    now: DateTime<Utc>,
    retention_days: u32,
) -> ArchivedDelivery {
    let attr = |name: &str| {
        raw.attributes
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let parsed = WebhookEvent::parse(&raw.body).ok();
    let event_id = attr("event_id")
        .or_else(|| parsed.as_ref().map(|e| e.id.clone()))
        .unwrap_or_else(|| format!("sqs:{}", raw.message_id));
    let event_type = attr("event_type")
        .or_else(|| parsed.as_ref().map(|e| e.event_type.clone()))
        .unwrap_or_else(|| "unparseable".to_string());
    let object_id = parsed
        .as_ref()
        .and_then(|e| e.object_id().map(str::to_string));
    let organisation_id = parsed.as_ref().and_then(|e| {
        e.data
            .object
            .get("organisation_id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    let received_at = attr("received_at")
        .and_then(|r| r.parse::<DateTime<Utc>>().ok())
        .unwrap_or(now);
    let signature_timestamp = attr("signature_timestamp").and_then(|t| t.parse().ok());
    let refused = attr(REFUSED_ATTRIBUTE);
    let mut delivery_id = attr("idempotency_key").unwrap_or_else(|| NO_DELIVERY_ID.to_string());
    if refused.is_some() {
        // Apart from an accepted copy of the same delivery (a retry after the fix).
        delivery_id = format!("{REFUSED_DELIVERY_PREFIX}{delivery_id}");
    }
    // The headers the edge used, as the Worker forwards them: the delivery id and the whole
    // `X-Signature` it verified (an older Worker forwarded only its timestamp).
    let mut headers = BTreeMap::new();
    if let Some(key) = attr("idempotency_key") {
        headers.insert("X-Idempotency-Key".to_string(), key);
    }
    match (attr("signature"), signature_timestamp) {
        (Some(signature), _) => {
            headers.insert("X-Signature".to_string(), signature);
        }
        (None, Some(t)) => {
            headers.insert("X-Signature".to_string(), format!("t={t}"));
        }
        (None, None) => {}
    }
    if let Some(code) = refused {
        headers.insert(REFUSED_HEADER.to_string(), code);
    }
    for name in ["envelope_error", "body_encoding"] {
        if let Some(v) = attr(name) {
            headers.insert(format!("x-edge-{}", name.replace('_', "-")), v);
        }
    }
    ArchivedDelivery {
        event_id,
        delivery_id,
        event_type,
        object_id,
        organisation_id,
        received_at: iso(received_at),
        signature_timestamp,
        headers,
        body: raw.body.clone(),
        archived_at: iso(now),
        expires_at: (received_at + chrono::Duration::days(i64::from(retention_days))).timestamp(),
    }
}

/// The refusal code when the Worker queued this delivery only to keep it (its signature did not
/// verify, `domain::recovery::refused`): archived, never processed.
pub fn refused_at_edge(raw: &RawDelivery) -> Option<&str> {
    raw.attributes
        .get(REFUSED_ATTRIBUTE)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Archives the delivery; `Ok(false)` when it was archived before (a redelivery, a redrive).
pub async fn archive_delivery(
    archive: &dyn EventArchive,
    raw: &RawDelivery,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<bool, StoreError> {
    archive.put(&archived_from(raw, now, retention_days)).await
}
