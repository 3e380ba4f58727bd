//! `POST /webhooks/chargebackstop`: size limit, signature, envelope, enqueue, answer.

use crate::enqueue::{self, EnqueueError};
use crate::log::DeliveryLog;
use crate::message::{self, QueuedEvent};
use crate::Result;
use crate::{config, envelope};
use crate::{js, refused, reply};
use shared::signature::{self, Freshness, SIGNATURE_HEADER};
use wasm_bindgen::JsValue;
use web_sys::{Request, Response};

pub async fn receive(req: Request, env: &JsValue) -> Result<Response> {
    let settings = config::settings(env);
    let limit = settings.max_body_bytes;
    let headers = req.headers();
    let declared = headers
        .get("content-length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A declared size over the limit is refused without reading; a moderately oversized one is
    // read and dropped by `read_body` first, so the sender sees the 413 instead of a reset.
    if declared.is_some_and(|len| len > limit.max(DISCARD_AT_MOST) as u64) {
        return too_large();
    }
    // A declared length within the limit is read in one piece; the runtime holds the body to that
    // length. Without one (chunked) it is read in chunks so no more than the limit is kept.
    let read = match declared {
        Some(len) if len <= limit as u64 => js::request_bytes(&req).await.map(Some),
        _ => read_body(&req, limit).await,
    };
    let body = match read.map(|body| body.filter(|b| b.len() <= limit)) {
        Ok(Some(body)) => body,
        Ok(None) => return too_large(),
        Err(_) => {
            DeliveryLog {
                outcome: "rejected",
                reason: Some("body_unreadable"),
                ..Default::default()
            }
            .emit();
            return reply::error(400, "body_unreadable");
        }
    };

    let config = match &settings.config {
        Ok(config) => config,
        Err(config::Missing(name)) => {
            // A retryable answer: ChargebackStop redelivers once the binding is fixed.
            DeliveryLog {
                outcome: "not_configured",
                reason: Some(name),
                ..Default::default()
            }
            .emit();
            return reply::error(503, "worker_not_configured");
        }
    };

    let now_ms = js_sys::Date::now() as u64;
    let header = headers.get(SIGNATURE_HEADER)?;
    let verdict = match config.mac_keys.get(&config.secrets).await {
        Ok(keys) => {
            signature::verify_delivery_with(
                header.as_deref(),
                &body,
                keys.as_ref(),
                (now_ms / 1000) as i64,
                config.tolerance,
            )
            .await
        }
        Err(err) => Err(err),
    };
    let verified = match verdict {
        Ok(Ok(verified)) => verified,
        Ok(Err(err)) => {
            // Still 401 (ChargebackStop retries), but a delivery that could be ChargebackStop's
            // is kept for `cbs events replay --refused` (`crate::refused`).
            let idempotency_key = headers.get("x-idempotency-key")?;
            let kept = refused::keep(
                config,
                &body,
                idempotency_key.as_deref(),
                header.as_deref(),
                &err,
                now_ms,
            )
            .await;
            DeliveryLog {
                outcome: "rejected",
                reason: Some(err.code()),
                body_bytes: Some(body.len()),
                refused_copy: Some(kept.label()),
                ..Default::default()
            }
            .emit();
            return reply::error(401, err.code());
        }
        Err(_) => {
            // WebCrypto refused (never expected): no verdict, so a retryable answer.
            DeliveryLog {
                outcome: "not_verified",
                reason: Some("webcrypto_failed"),
                body_bytes: Some(body.len()),
                ..Default::default()
            }
            .emit();
            return reply::error(503, "signature_unavailable");
        }
    };

    // A signature older than the fresh window is accepted only as a retried delivery of a real
    // event: the HMAC is ChargebackStop's, and the body must be a readable envelope whose id the
    // processor dedupes on. A signed body that is not one is kept only when it arrives fresh.
    let retried_age_secs = match verified.freshness {
        Freshness::Fresh => None,
        Freshness::RetriedDelivery { age_secs } => {
            if envelope::read(&body).is_err() {
                DeliveryLog {
                    outcome: "rejected",
                    reason: Some("signature_stale_not_an_event"),
                    signature_age_secs: Some(age_secs),
                    body_bytes: Some(body.len()),
                    ..Default::default()
                }
                .emit();
                return reply::error(401, "signature_stale");
            }
            Some(age_secs)
        }
    };

    let idempotency_key = headers.get("x-idempotency-key")?;
    let QueuedEvent {
        message,
        event_id,
        event_type,
    } = message::for_queue(
        &body,
        idempotency_key.as_deref(),
        header.as_deref(),
        verified.timestamp,
        now_ms,
        config.queue.is_fifo(),
    );
    let log = DeliveryLog {
        event_id: Some(&event_id),
        event_type: Some(&event_type),
        matched_previous_secret: verified.matched_previous_secret,
        retried_delivery: retried_age_secs.is_some(),
        signature_age_secs: retried_age_secs,
        body_bytes: Some(body.len()),
        ..Default::default()
    };

    match enqueue::send(config, &message, now_ms).await {
        Ok(_message_id) => {
            DeliveryLog {
                outcome: "enqueued",
                ..log
            }
            .emit();
            reply::enqueued(&event_id)
        }
        Err(err) => {
            let reason = err.reason();
            DeliveryLog {
                outcome: "queue_failed",
                reason: Some(&reason),
                ..log
            }
            .emit();
            let code = match err {
                EnqueueError::Timeout => "queue_timeout",
                _ => "queue_unavailable",
            };
            reply::error(503, code)
        }
    }
}

fn too_large() -> Result<Response> {
    DeliveryLog {
        outcome: "rejected",
        reason: Some("body_too_large"),
        ..Default::default()
    }
    .emit();
    reply::error(413, "body_too_large")
}

/// How much of an oversized body, at most, is read and thrown away before answering 413.
const DISCARD_AT_MOST: usize = 1 << 20;

/// Reads the raw body once; `None` when it is over `limit`. It never keeps more than `limit`
/// bytes, whatever Content-Length says or omits. Past the limit the rest is read and dropped (up
/// to `DISCARD_AT_MOST`), so the sender gets a clean 413 rather than a connection reset while it
/// is still uploading.
async fn read_body(req: &Request, limit: usize) -> Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut discarded = 0usize;
    js::for_each_chunk(req, |chunk| {
        let len = chunk.length() as usize;
        if discarded == 0 && body.len() + len <= limit {
            let start = body.len();
            body.resize(start + len, 0);
            chunk.copy_to(&mut body[start..]);
            return true;
        }
        // Over the limit: drop what we kept and count the rest, up to DISCARD_AT_MOST.
        discarded += body.len() + len;
        body = Vec::new();
        discarded <= DISCARD_AT_MOST
    })
    .await?;
    Ok((discarded == 0).then_some(body))
}
