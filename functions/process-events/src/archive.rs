//! Every record is archived raw (`shared::domain::recovery::archive`): the body bytes as the
//! Worker verified them (decoded when it sent base64), the attributes it forwarded. Idempotent by
//! event id + delivery id, so a redelivery or a redrive stores nothing new. An event is archived
//! in the same write as its idempotency record (`EventProcessor::process_delivery`), a message
//! that is not one on its own (`keep`). A record that cannot be archived is not processed: it
//! comes back after its backoff.
//!
//! The same table counts dead letters, so operations hear of the first one of each kind since
//! the DLQ was last drained and of every 100th after it, not of each.

use aws_lambda_events::event::sqs::SqsMessage;
use base64::Engine;
use chrono::{DateTime, Utc};
use shared::domain::recovery::archive::{archive_delivery, archived_from, RawDelivery};
use shared::domain::recovery::dlq::count_and_decide;
use shared::ports::event_archive::ArchivedDelivery;
use shared::ports::event_archive::EventArchive;
use shared::ports::store_error::StoreError;
use std::sync::Arc;

pub struct Archiver {
    pub store: Arc<dyn EventArchive>,
    /// `ARCHIVE_RETENTION_DAYS` (400).
    pub retention_days: u32,
}

/// The record's body bytes and string attributes. A body marked base64 that does not decode is
/// kept as it came (the processor dead-letters it as poison; the archive still has it).
pub fn raw_from(record: &SqsMessage) -> RawDelivery {
    let attributes: std::collections::BTreeMap<String, String> = record
        .message_attributes
        .iter()
        .filter_map(|(k, v)| v.string_value.clone().map(|s| (k.clone(), s)))
        .collect();
    let text = record.body.clone().unwrap_or_default();
    let body = match attributes.get("body_encoding").map(String::as_str) {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap_or_else(|_| text.clone().into_bytes()),
        _ => text.into_bytes(),
    };
    RawDelivery {
        message_id: record.message_id.clone().unwrap_or_default(),
        body,
        attributes,
    }
}

impl Archiver {
    /// Archives the record; `Ok(false)` when it was archived before.
    pub async fn keep(&self, record: &SqsMessage, now: DateTime<Utc>) -> Result<bool, StoreError> {
        archive_delivery(&*self.store, &raw_from(record), now, self.retention_days).await
    }

    /// The archive item of the record, for the processor to write with the event.
    pub fn delivery(&self, record: &SqsMessage, now: DateTime<Utc>) -> ArchivedDelivery {
        archived_from(&raw_from(record), now, self.retention_days)
    }

    /// Counts a dead letter of `reason`'s kind; whether operations should be told of this one.
    pub async fn notify_due(&self, reason: &str) -> bool {
        count_and_decide(&*self.store, reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;
    use shared::adapters::memory_recovery::MemoryArchive;

    fn attribute(v: &str) -> SqsMessageAttribute {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(v.into());
        a.data_type = Some("String".into());
        a
    }

    fn record(body: &str, attrs: &[(&str, &str)]) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some("m-1".into());
        r.body = Some(body.into());
        for (k, v) in attrs {
            r.message_attributes.insert(k.to_string(), attribute(v));
        }
        r
    }

    #[tokio::test]
    async fn base64_bodies_are_archived_as_the_bytes_the_worker_verified() {
        let bytes = b"{\"id\":\"evt_1\"}\x00\xff";
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let store = Arc::new(MemoryArchive::default());
        let a = Archiver {
            store: store.clone(),
            retention_days: 400,
        };
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let r = record(
            &b64,
            &[
                ("body_encoding", "base64"),
                ("event_id", "evt_1"),
                ("event_type", "unparseable"),
                ("idempotency_key", "idem-1"),
                ("signature_timestamp", "1771324200"),
                ("received_at", "2026-11-24T09:59:59.123Z"),
            ],
        );
        assert!(a.keep(&r, now).await.unwrap());
        assert!(
            !a.keep(&r, now).await.unwrap(),
            "a redelivery stores nothing new"
        );
        let all = store.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].body, bytes.to_vec());
        assert_eq!(all[0].delivery_id, "idem-1");
        assert_eq!(
            all[0].headers["X-Signature"], "t=1771324200",
            "an older Worker forwarded only the timestamp"
        );
        assert_eq!(all[0].received_at, "2026-11-24T09:59:59.123Z");
        let expected_expiry: DateTime<Utc> = "2027-12-29T09:59:59.123Z".parse().unwrap();
        assert_eq!(all[0].expires_at, expected_expiry.timestamp());
    }

    #[tokio::test]
    async fn the_whole_signature_header_the_edge_verified_is_archived() {
        let store = Arc::new(MemoryArchive::default());
        let a = Archiver {
            store: store.clone(),
            retention_days: 400,
        };
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let header = format!("t=1771324200,v1={}", "ab".repeat(64));
        let r = record(
            r#"{"id":"evt_2","type":"alert.created","data":{"object":{"id":"netalrt_1"}}}"#,
            &[
                ("event_id", "evt_2"),
                ("event_type", "alert.created"),
                ("idempotency_key", "idem-2"),
                ("signature_timestamp", "1771324200"),
                ("signature", header.as_str()),
            ],
        );
        assert!(a.keep(&r, now).await.unwrap());
        assert_eq!(store.all()[0].headers["X-Signature"], header);
    }
}
