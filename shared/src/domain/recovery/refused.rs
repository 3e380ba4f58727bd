//! Deliveries the edge refused, kept so a misconfiguration loses nothing.
//!
//! When the Worker cannot verify a delivery's signature (a wrong or rotated `WEBHOOK_SECRET`, a
//! retry window set too short) it still answers 401, so ChargebackStop retries, but it also
//! queues the delivery marked `refused` with the reason. The processor never processes such a
//! message: it archives it under its own delivery id (`refused:<X-Idempotency-Key>`, apart from
//! any accepted copy of the same delivery), counts it, and tells operations of the first one and
//! of every 100th after it. Once the configuration is fixed, `cbs events replay --refused`
//! re-verifies each one with the signing secret as it is now, at the time the edge received it,
//! and replays only those that verify: a forged request, kept like any other refused one, never
//! gets through.
//!
//! Only what could be ChargebackStop's is queued: a well-formed `X-Signature` header and a
//! readable event envelope. A missing or malformed header is refused and dropped as before.

use super::archive::{archive_delivery, refused_at_edge, RawDelivery};
use super::dlq::notify_due;
use crate::ports::event_archive::{ArchivedDelivery, EventArchive, REFUSED_COUNTER_PREFIX};
use crate::ports::event_log::iso;
use crate::ports::notifier::OpsNotification;
use crate::ports::store_error::StoreError;
use crate::signature::{self, SignatureError, Tolerance, WebhookSecrets};
use chrono::{DateTime, Utc};

/// The queue message attribute the Worker sets on a refused delivery: the refusal's code
/// (`signature_mismatch`, `signature_stale`).
pub use crate::sqs_request::REFUSED_ATTRIBUTE;
/// The archive header that marks a refused delivery, with its code.
pub const REFUSED_HEADER: &str = "x-edge-refused";
/// The prefix of a refused delivery's archive delivery id.
pub const REFUSED_DELIVERY_PREFIX: &str = "refused:";
/// The counter of the deliveries refused on `day` (UTC), `refused:2026-12-01`: the first
/// refusal of each day tells operations, then every 100th that day. Nothing drains refused
/// deliveries (they are archived, not queued), so a per-day counter is what lets a new
/// incident, or a long one, be heard again; a DLQ drain leaves it alone.
pub fn refused_counter(day: chrono::NaiveDate) -> String {
    format!("{REFUSED_COUNTER_PREFIX}{}", day.format("%Y-%m-%d"))
}

/// Deliveries the edge refused today and yesterday (UTC), for the operations page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RefusedCounts {
    pub today: u64,
    pub yesterday: u64,
}

/// Reads today's and yesterday's counters.
pub async fn refused_counts(
    archive: &dyn EventArchive,
    now: DateTime<Utc>,
) -> Result<RefusedCounts, StoreError> {
    let today = now.date_naive();
    let yesterday = today - chrono::Duration::days(1);
    Ok(RefusedCounts {
        today: archive.dead_letter_count(&refused_counter(today)).await?,
        yesterday: archive
            .dead_letter_count(&refused_counter(yesterday))
            .await?,
    })
}

/// What `keep_refused` did with a refused delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRefused {
    /// The refusal code the Worker gave.
    pub code: String,
    /// `false` when this delivery was archived before (a redelivery of the queue message).
    pub newly_archived: bool,
    /// The notification to send, when this one is due (the first of the day, every 100th).
    pub notify: Option<OpsNotification>,
}

/// Archives a delivery the edge refused (never processes it) and counts it. `Ok(None)` when
/// the delivery is not a refused one (process it as usual). An archive that cannot be written
/// is an error: the message must come back, nothing is dropped.
pub async fn keep_refused(
    archive: &dyn EventArchive,
    raw: &RawDelivery,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<Option<KeptRefused>, StoreError> {
    let Some(code) = refused_at_edge(raw).map(str::to_string) else {
        return Ok(None);
    };
    let newly_archived = archive_delivery(archive, raw, now, retention_days).await?;
    if !newly_archived {
        return Ok(Some(KeptRefused {
            code,
            newly_archived,
            notify: None,
        }));
    }
    let kind = refused_counter(now.date_naive());
    let count = match archive.count_dead_letter(&kind).await {
        Ok(n) => Some(n),
        Err(e) => {
            // Errs on the side of telling.
            tracing::warn!(error = %e, "refused-delivery counter unavailable; notifying");
            None
        }
    };
    let notify = match count {
        Some(n) if !notify_due(n) => None,
        _ => {
            let event_id = raw
                .attributes
                .get("event_id")
                .cloned()
                .unwrap_or_else(|| raw.message_id.clone());
            Some(OpsNotification {
                kind: "webhook.refused_at_edge".into(),
                subject: format!("ChargebackStop webhooks are being refused at the edge ({code})"),
                organisation_id: None,
                object_id: event_id,
                status: Some("REFUSED".into()),
                note: Some(refused_notice(&code, count.unwrap_or(1))),
                at: iso(now),
            })
        }
    };
    Ok(Some(KeptRefused {
        code,
        newly_archived,
        notify,
    }))
}

/// The refusal code when this archived delivery is one the edge refused.
pub fn refused_reason(delivery: &ArchivedDelivery) -> Option<&str> {
    delivery.headers.get(REFUSED_HEADER).map(String::as_str)
}

/// The `X-Idempotency-Key` a refused delivery was sent with (its archive id without the prefix).
pub fn original_delivery_id(delivery_id: &str) -> &str {
    delivery_id
        .strip_prefix(REFUSED_DELIVERY_PREFIX)
        .unwrap_or(delivery_id)
}

/// Verifies an archived refused delivery again with `secrets`, as the edge would have at the
/// moment it received it (the default windows: 5 minutes either way, 50 hours back for a retry
/// that kept its first signature). The MAC over the archived bytes is what proves the body is
/// ChargebackStop's; the body must also be a readable event (the edge queues nothing else).
pub fn verify_again(
    delivery: &ArchivedDelivery,
    secrets: &WebhookSecrets,
) -> Result<(), SignatureError> {
    let received_at = delivery
        .received_at
        .parse::<chrono::DateTime<chrono::Utc>>()
        .map_err(|_| SignatureError::Malformed("the archived receipt time is unreadable"))?;
    let header = delivery
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(signature::SIGNATURE_HEADER))
        .map(|(_, v)| v.as_str());
    signature::verify_delivery(
        header,
        &delivery.body,
        secrets,
        received_at.timestamp(),
        Tolerance::default(),
    )?;
    crate::event::WebhookEvent::parse(&delivery.body)
        .map(|_| ())
        .map_err(|_| SignatureError::Malformed("the body is not an event"))
}

/// What operations are told when refused deliveries pile up (the first, then every 100th).
pub fn refused_notice(code: &str, count: u64) -> String {
    format!(
        "The edge refused {count} ChargebackStop deliver{ies} today (UTC) so far \
         (latest: {code}). Check WEBHOOK_SECRET (and WEBHOOK_SECRET_PREVIOUS during a rotation) \
         and SIGNATURE_RETRY_WINDOW_SECS on the Worker. Every refused delivery is archived: once \
         fixed, `cbs events replay --refused --since <when it started>` re-verifies each with the \
         current secret and replays those that verify.",
        ies = if count == 1 { "y" } else { "ies" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::collections::BTreeMap;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"alert.created","created_at":"2026-11-24T10:00:00Z","data":{"object":{"id":"netalrt_1"}}}"#;
    const RECEIVED: &str = "2026-11-24T10:00:01.000Z";

    fn refused(signature: String) -> ArchivedDelivery {
        let mut headers = BTreeMap::new();
        headers.insert("X-Signature".to_string(), signature);
        headers.insert(REFUSED_HEADER.to_string(), "signature_mismatch".to_string());
        ArchivedDelivery {
            event_id: "evt_1".into(),
            delivery_id: "refused:idem-1".into(),
            event_type: "alert.created".into(),
            object_id: Some("netalrt_1".into()),
            organisation_id: None,
            received_at: RECEIVED.into(),
            signature_timestamp: None,
            headers,
            body: BODY.to_vec(),
            archived_at: RECEIVED.into(),
            expires_at: 0,
        }
    }

    fn secrets(s: &str) -> WebhookSecrets {
        WebhookSecrets::new(Secret::new(s), None)
    }

    fn t_received() -> i64 {
        RECEIVED
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn a_delivery_signed_with_the_right_secret_verifies_at_the_time_it_was_received() {
        let right = Secret::new("whsec_right");
        // Signed a second before the edge received it, re-verified days later: still good.
        let d = refused(signature::sign(&right, t_received() - 1, BODY));
        assert_eq!(refused_reason(&d), Some("signature_mismatch"));
        assert_eq!(verify_again(&d, &secrets("whsec_right")), Ok(()));
        // A retry that kept its first attempt's signature (two hours old when received).
        let kept = refused(signature::sign(&right, t_received() - 7200, BODY));
        assert_eq!(verify_again(&kept, &secrets("whsec_right")), Ok(()));
    }

    #[test]
    fn a_forged_or_altered_or_too_old_delivery_never_verifies() {
        let right = Secret::new("whsec_right");
        let forged = refused(signature::sign(
            &Secret::new("whsec_attacker"),
            t_received(),
            BODY,
        ));
        assert_eq!(
            verify_again(&forged, &secrets("whsec_right")),
            Err(SignatureError::Mismatch)
        );
        let mut altered = refused(signature::sign(&right, t_received(), BODY));
        altered.body = BODY
            .iter()
            .map(|b| if *b == b'1' { b'2' } else { *b })
            .collect();
        assert_eq!(
            verify_again(&altered, &secrets("whsec_right")),
            Err(SignatureError::Mismatch)
        );
        let ancient = refused(signature::sign(&right, t_received() - 60 * 3600, BODY));
        assert!(matches!(
            verify_again(&ancient, &secrets("whsec_right")),
            Err(SignatureError::Stale { .. })
        ));
        let mut unsigned = refused(String::new());
        unsigned.headers.remove("X-Signature");
        assert_eq!(
            verify_again(&unsigned, &secrets("whsec_right")),
            Err(SignatureError::Missing)
        );
    }

    fn raw(message_id: &str, refused: Option<&str>) -> RawDelivery {
        let mut attributes = BTreeMap::new();
        attributes.insert("event_id".to_string(), "evt_1".to_string());
        attributes.insert("idempotency_key".to_string(), message_id.to_string());
        attributes.insert(
            "signature".to_string(),
            format!("t=1,v1={}", "ab".repeat(64)),
        );
        attributes.insert("received_at".to_string(), RECEIVED.to_string());
        if let Some(code) = refused {
            attributes.insert(REFUSED_ATTRIBUTE.to_string(), code.to_string());
        }
        RawDelivery {
            message_id: message_id.into(),
            body: BODY.to_vec(),
            attributes,
        }
    }

    #[tokio::test]
    async fn a_refused_delivery_is_archived_apart_counted_per_day_and_told_first_and_every_100th() {
        use crate::adapters::memory_recovery::MemoryArchive;
        let archive = MemoryArchive::default();
        let day1: DateTime<Utc> = "2026-11-24T10:00:02Z".parse().unwrap();
        // Not a refused one: left for the processor.
        assert!(matches!(
            keep_refused(&archive, &raw("m", None), day1, 400).await,
            Ok(None)
        ));
        assert!(archive.all().is_empty());

        let mut told = Vec::new();
        for i in 1..=101 {
            let kept = keep_refused(
                &archive,
                &raw(&format!("idem-{i}"), Some("signature_mismatch")),
                day1,
                400,
            )
            .await
            .unwrap()
            .unwrap();
            assert!(kept.newly_archived);
            if let Some(n) = kept.notify {
                told.push((i, n));
            }
        }
        assert_eq!(
            told.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![1, 101]
        );
        assert_eq!(told[0].1.kind, "webhook.refused_at_edge");
        assert!(told[1]
            .1
            .note
            .as_deref()
            .unwrap()
            .contains("101 ChargebackStop deliveries"));

        // The same queue message again: archived once, not counted again.
        let again = keep_refused(
            &archive,
            &raw("idem-1", Some("signature_mismatch")),
            day1,
            400,
        )
        .await
        .unwrap()
        .unwrap();
        assert!(!again.newly_archived && again.notify.is_none());
        assert_eq!(archive.all().len(), 101);
        let first = archive
            .all()
            .into_iter()
            .find(|d| d.delivery_id == "refused:idem-1")
            .expect("archived under its own delivery id");
        assert_eq!(refused_reason(&first), Some("signature_mismatch"));
        assert_eq!(original_delivery_id(&first.delivery_id), "idem-1");

        // The page's counts; a DLQ drain resets the DLQ's counters, not these.
        archive.count_dead_letter("poison").await.unwrap();
        archive.reset_dead_letter_counts().await.unwrap();
        assert_eq!(archive.dead_letter_count("poison").await.unwrap(), 0);
        let counts = refused_counts(&archive, day1).await.unwrap();
        assert_eq!(
            counts,
            RefusedCounts {
                today: 101,
                yesterday: 0
            }
        );

        // A new day: the first refusal is told again.
        let day2: DateTime<Utc> = "2026-11-25T00:00:01Z".parse().unwrap();
        let next = keep_refused(&archive, &raw("idem-x", Some("signature_stale")), day2, 400)
            .await
            .unwrap()
            .unwrap();
        assert!(next.notify.is_some());
        let counts = refused_counts(&archive, day2).await.unwrap();
        assert_eq!(
            counts,
            RefusedCounts {
                today: 1,
                yesterday: 101
            }
        );
    }

    #[tokio::test]
    async fn a_refused_delivery_that_cannot_be_archived_is_an_error_so_it_comes_back() {
        use crate::adapters::memory_recovery::MemoryArchive;
        let archive = MemoryArchive::default();
        *archive.refuse_puts.lock().unwrap() = 1;
        let now: DateTime<Utc> = "2026-11-24T10:00:02Z".parse().unwrap();
        assert!(keep_refused(
            &archive,
            &raw("idem-1", Some("signature_mismatch")),
            now,
            400
        )
        .await
        .is_err());
    }

    #[test]
    fn the_notice_says_what_to_check_and_what_to_run() {
        let one = refused_notice("signature_mismatch", 1);
        assert!(one.contains("refused 1 ChargebackStop delivery "), "{one}");
        assert!(one.contains("WEBHOOK_SECRET"));
        assert!(one.contains("cbs events replay --refused"));
        assert!(refused_notice("signature_stale", 101).contains("101 ChargebackStop deliveries"));
    }
}
