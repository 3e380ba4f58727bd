//! What goes on the queue for a verified delivery: the raw body and attributes the processor
//! reads without parsing the body. Pure, so it is the same on every run.

use crate::envelope;
use sha2::{Digest, Sha256};
use shared::event::EventParseError;
use shared::sqs_request::{fifo_safe_id, sqs_accepts, OutgoingMessage};
use std::collections::BTreeMap;

/// The event type recorded for a signed body whose envelope could not be read; the processor
/// dead-letters such messages with `envelope_error` as the reason.
pub const UNPARSEABLE_TYPE: &str = "unparseable";

/// Longer `X-Signature` values (many `v1=` during a rotation) are not forwarded; the timestamp
/// still is. The verifier has already refused anything that is not its grammar.
const MAX_SIGNATURE_ATTRIBUTE: usize = 1024;

pub struct QueuedEvent {
    pub message: OutgoingMessage,
    pub event_id: String,
    pub event_type: String,
}

/// Builds the message for a body whose signature was verified.
///
/// A signed body that is not a readable envelope is still enqueued (nothing is lost), with the
/// `X-Idempotency-Key` or a hash of the body as its id so redeliveries still collapse.
pub fn for_queue(
    body: &[u8],
    idempotency_key: Option<&str>,
    signature_header: Option<&str>,
    signature_timestamp: i64,
    received_at_ms: u64,
    fifo: bool,
) -> QueuedEvent {
    let idempotency_key = idempotency_key.map(str::trim).filter(|k| !k.is_empty());
    let mut attributes = BTreeMap::new();
    let (event_id, event_type, group) = match envelope::read(body) {
        Ok(event) => {
            let group = event.object_id.as_deref().unwrap_or(&event.id).to_string();
            (event.id.into_owned(), event.event_type.into_owned(), group)
        }
        Err(err) => {
            attributes.insert(
                "envelope_error".to_string(),
                envelope_error_code(&err).to_string(),
            );
            let id = match idempotency_key {
                Some(key) => key.to_string(),
                None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
            };
            (id.clone(), UNPARSEABLE_TYPE.to_string(), id)
        }
    };

    let message_body = match std::str::from_utf8(body) {
        Ok(text) if sqs_accepts(text) => text.to_string(),
        // SQS message bodies are Unicode text from a restricted set; anything else travels as
        // base64 and says so.
        _ => {
            attributes.insert("body_encoding".to_string(), "base64".to_string());
            base64_encode(body)
        }
    };

    attributes.insert("event_id".to_string(), event_id.clone());
    attributes.insert("event_type".to_string(), event_type.clone());
    if let Some(key) = idempotency_key {
        attributes.insert("idempotency_key".to_string(), key.to_string());
    }
    attributes.insert(
        "signature_timestamp".to_string(),
        signature_timestamp.to_string(),
    );
    // The whole `X-Signature` as verified (`t=...,v1=...`): the archive keeps the headers the
    // edge used, so an archived body can be re-verified later. Not a secret: a MAC of the body.
    if let Some(header) = signature_header
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.len() <= MAX_SIGNATURE_ATTRIBUTE)
    {
        attributes.insert("signature".to_string(), header.to_string());
    }
    attributes.insert(
        "received_at".to_string(),
        crate::time::iso8601_millis(received_at_ms),
    );

    let message = OutgoingMessage {
        body: message_body,
        attributes,
        deduplication_id: fifo.then(|| fifo_safe_id(&event_id)),
        group_id: fifo.then(|| fifo_safe_id(&group)),
    };
    QueuedEvent {
        message,
        event_id,
        event_type,
    }
}

fn envelope_error_code(err: &EventParseError) -> &'static str {
    // The codes only: serde's messages may quote parts of the payload.
    match err {
        EventParseError::NotJson(_) => "not_json",
        EventParseError::NotAnEnvelope(_) => "not_an_envelope",
        EventParseError::EmptyId => "empty_id",
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#"{"id":"evt_1","type":"alert.created","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"netalrt_9"}}}"#;

    #[test]
    fn a_readable_event_is_keyed_by_its_id_and_grouped_by_its_object() {
        let q = for_queue(
            EVENT,
            Some("idem-1"),
            Some(" t=1771324200,v1=ab12 "),
            1_771_324_200,
            1_771_324_201_500,
            true,
        );
        assert_eq!(q.event_id, "evt_1");
        assert_eq!(q.message.body.as_bytes(), EVENT);
        assert_eq!(q.message.deduplication_id.as_deref(), Some("evt_1"));
        assert_eq!(q.message.group_id.as_deref(), Some("netalrt_9"));
        assert_eq!(
            q.message.attributes["received_at"],
            "2026-02-17T10:30:01.500Z"
        );
        assert_eq!(q.message.attributes["idempotency_key"], "idem-1");
        assert_eq!(q.message.attributes["signature_timestamp"], "1771324200");
        assert_eq!(q.message.attributes["signature"], "t=1771324200,v1=ab12");
        assert!(!q.message.attributes.contains_key("envelope_error"));
    }

    #[test]
    fn a_standard_queue_gets_no_fifo_ids() {
        let q = for_queue(EVENT, None, None, 1, 0, false);
        assert_eq!(q.message.deduplication_id, None);
        assert_eq!(q.message.group_id, None);
        assert!(!q.message.attributes.contains_key("idempotency_key"));
    }

    #[test]
    fn an_unreadable_signed_body_is_kept_with_a_stable_id() {
        let a = for_queue(b"not json", None, None, 1, 0, true);
        let b = for_queue(b"not json", None, None, 1, 0, true);
        assert_eq!(a.event_id, b.event_id);
        assert!(a.event_id.starts_with("sha256:"));
        assert_eq!(a.event_type, UNPARSEABLE_TYPE);
        assert_eq!(a.message.attributes["envelope_error"], "not_json");
        let keyed = for_queue(b"not json", Some("idem-7"), None, 1, 0, true);
        assert_eq!(keyed.event_id, "idem-7");
        let binary = for_queue(&[0xff, 0x00, 0x01], None, None, 1, 0, false);
        assert_eq!(binary.message.body, "/wAB");
        assert_eq!(binary.message.attributes["body_encoding"], "base64");
    }
}
