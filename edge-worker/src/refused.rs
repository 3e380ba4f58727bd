//! Deliveries refused for their signature are still kept (`shared::domain::recovery::refused`):
//! the answer stays 401, so ChargebackStop retries as before, but a copy marked `refused` goes
//! on the queue, where the processor archives it without processing it. When `WEBHOOK_SECRET`
//! was wrong for longer than ChargebackStop retries, `cbs events replay --refused` re-verifies
//! the archived bytes with the right secret and replays them; a forged request never verifies.
//!
//! Only what could be ChargebackStop's is kept: a well-formed `X-Signature` whose MAC did not
//! match, or whose `t` was outside the windows, over a readable event envelope. The copy has its
//! own FIFO deduplication id, so the accepted delivery that follows the fix is never taken for
//! a duplicate of it.

use crate::config::Config;
use crate::{enqueue, envelope, message};
use shared::signature::{SignatureError, SignatureHeader};
use shared::sqs_request::{fifo_safe_id, OutgoingMessage, REFUSED_ATTRIBUTE};

/// What became of a refused delivery, for the log line.
pub enum Kept {
    /// On the queue, to be archived.
    Queued,
    /// Not a delivery we keep (no readable signature header or envelope, or keeping is off).
    NotKept,
    /// The queue did not take it (the answer is 401 all the same).
    QueueFailed,
}

impl Kept {
    pub fn label(&self) -> &'static str {
        match self {
            Kept::Queued => "kept_for_replay",
            Kept::NotKept => "not_kept",
            Kept::QueueFailed => "keep_failed",
        }
    }
}

/// The queue message for a refused delivery, or `None` when it is not one we keep.
pub fn refused_message(
    body: &[u8],
    idempotency_key: Option<&str>,
    signature_header: Option<&str>,
    refusal: &SignatureError,
    received_at_ms: u64,
    fifo: bool,
) -> Option<OutgoingMessage> {
    if !matches!(
        refusal,
        SignatureError::Mismatch | SignatureError::Stale { .. }
    ) {
        return None;
    }
    let header = signature_header?;
    let timestamp = SignatureHeader::parse(header).ok()?.timestamp;
    envelope::read(body).ok()?;
    let mut queued = message::for_queue(
        body,
        idempotency_key,
        Some(header),
        timestamp,
        received_at_ms,
        fifo,
    );
    queued.message.attributes.insert(
        REFUSED_ATTRIBUTE.to_string(),
        refusal.code().to_string(),
    );
    if fifo {
        queued.message.deduplication_id = Some(fifo_safe_id(&format!(
            "refused-{}-{}-{}",
            queued.event_id,
            timestamp,
            idempotency_key.unwrap_or("none")
        )));
    }
    Some(queued.message)
}

/// Queues a copy of a refused delivery when it is one we keep (`KEEP_REFUSED`, on unless "off").
pub async fn keep(
    config: &Config,
    body: &[u8],
    idempotency_key: Option<&str>,
    signature_header: Option<&str>,
    refusal: &SignatureError,
    now_ms: u64,
) -> Kept {
    if !config.keep_refused {
        return Kept::NotKept;
    }
    let Some(message) = refused_message(
        body,
        idempotency_key,
        signature_header,
        refusal,
        now_ms,
        config.queue.is_fifo(),
    ) else {
        return Kept::NotKept;
    };
    match enqueue::send(config, &message, now_ms).await {
        Ok(_) => Kept::Queued,
        Err(_) => Kept::QueueFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#"{"id":"evt_1","type":"alert.created","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"netalrt_9"}}}"#;

    fn header() -> String {
        format!("t=1771324200,v1={}", "ab".repeat(64))
    }

    #[test]
    fn a_mismatch_over_an_event_is_kept_marked_and_apart_from_the_accepted_copy() {
        let h = header();
        let m = refused_message(
            EVENT,
            Some("idem-1"),
            Some(&h),
            &SignatureError::Mismatch,
            1_771_324_201_000,
            true,
        )
        .expect("kept");
        assert_eq!(m.attributes[REFUSED_ATTRIBUTE], "signature_mismatch");
        assert_eq!(m.attributes["signature"], h);
        assert_eq!(m.attributes["event_id"], "evt_1");
        assert_eq!(m.attributes["idempotency_key"], "idem-1");
        assert_eq!(m.attributes["signature_timestamp"], "1771324200");
        // The accepted delivery's deduplication id is the event id: the refused copy must never
        // take it, or the delivery accepted after the fix would be dropped as a duplicate.
        let accepted = message::for_queue(EVENT, Some("idem-1"), Some(&h), 1, 0, true);
        assert_ne!(m.deduplication_id, accepted.message.deduplication_id);
        assert_eq!(m.group_id, accepted.message.group_id, "same object, same order");
        let stale = SignatureError::Stale {
            skew_secs: 900,
            tolerance_secs: 300,
        };
        let s = refused_message(EVENT, None, Some(&h), &stale, 0, false).expect("kept");
        assert_eq!(s.attributes[REFUSED_ATTRIBUTE], "signature_stale");
        assert_eq!(s.deduplication_id, None);
    }

    #[test]
    fn what_cannot_be_chargebackstops_is_not_kept() {
        let h = header();
        let m = SignatureError::Mismatch;
        assert!(refused_message(EVENT, None, None, &m, 0, true).is_none());
        assert!(refused_message(EVENT, None, Some("t=1"), &m, 0, true).is_none());
        assert!(refused_message(b"not json", None, Some(&h), &m, 0, true).is_none());
        for other in [
            SignatureError::Missing,
            SignatureError::Malformed("x"),
            SignatureError::NoSecret,
        ] {
            assert!(refused_message(EVENT, None, Some(&h), &other, 0, true).is_none());
        }
    }
}
