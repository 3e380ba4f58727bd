//! Webhook delivery, as ChargebackStop does it: POST the event to every configured endpoint with
//! `X-Signature` (re-signed with the current time at every attempt, or with the `retry_signature:
//! original` knob the first attempt's header on every retry) and `X-Idempotency-Key` (the
//! delivery id, the same across retries); retry a non-2xx or a failed request after 1 m, 5 m,
//! 30 m, 2 h and 12 h (scaled by `--time-factor`), then give up. Every attempt is recorded.
//!
//! Events go out one after another per sandbox (first attempts in order; retries on their own
//! timers). Knobs change that: `hold_webhooks` keeps events until the admin API releases them
//! (in any order), `out_of_order` sends each short batch reversed, `duplicate_deliveries` sends
//! every first attempt twice, `drop_next`/`drop_webhooks` send nothing.

use crate::model::{ts, DeliveryAttempt};
use crate::state::{Profile, RetrySignature, SharedApp};
use axum::body::Bytes;
use chrono::Utc;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Share of first attempts the `realistic` profile sends twice.
pub const REALISTIC_DUPLICATE_SHARE: f64 = 0.1;

/// The documented retry schedule, in seconds, before scaling.
pub const RETRY_SCHEDULE_SECS: [f64; 5] = [60.0, 300.0, 1800.0, 7200.0, 43200.0];
/// ChargebackStop expects a 2xx within 20 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event: Value,
}

impl Outgoing {
    pub fn id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }
}

pub fn retry_delays(time_factor: f64) -> Vec<Duration> {
    RETRY_SCHEDULE_SECS
        .iter()
        .map(|s| Duration::from_secs_f64((s * time_factor).max(0.0)))
        .collect()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .expect("a plain reqwest client builds")
}

/// Runs until the sandbox stops: takes events in emission order and delivers them.
pub async fn dispatch(app: SharedApp, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let client = client();
    while let Some(first) = rx.recv().await {
        let (hold, out_of_order, window, batch_size) = {
            let rt = app.runtime();
            (
                rt.faults.hold_webhooks,
                rt.faults.out_of_order,
                Duration::from_millis(rt.faults.out_of_order_window_ms),
                rt.faults.out_of_order_batch as usize,
            )
        };
        if hold {
            app.runtime().held.push(first);
            continue;
        }
        if !out_of_order {
            deliver_event(&app, &client, first).await;
            continue;
        }
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        while batch_size == 0 || batch.len() < batch_size {
            // Register for a flush before looking at the knob, so turning `out_of_order` off
            // (which notifies after changing it) always ends the batch, whatever the timing.
            let flushed = app.flush.notified();
            tokio::pin!(flushed);
            flushed.as_mut().enable();
            if !app.runtime().faults.out_of_order {
                break;
            }
            tokio::select! {
                next = rx.recv() => match next {
                    Some(e) => batch.push(e),
                    None => break,
                },
                _ = &mut deadline => break,
                _ = &mut flushed => break,
            }
        }
        tracing::info!(
            events = batch.len(),
            "delivering a held batch in reverse order"
        );
        for outgoing in batch.into_iter().rev() {
            deliver_event(&app, &client, outgoing).await;
        }
    }
}

/// Deliver held events (the `hold_webhooks` knob) one after another: `event_ids` in that order
/// (the others stay held), else all of them, `reverse` or in emission order. Returns the ids sent,
/// or the ids asked for that are not held.
pub async fn release(
    app: &SharedApp,
    event_ids: Option<Vec<String>>,
    reverse: bool,
) -> Result<Vec<String>, Vec<String>> {
    let batch = {
        let mut rt = app.runtime();
        match event_ids {
            Some(ids) => {
                let missing: Vec<String> = ids
                    .iter()
                    .filter(|id| !rt.held.iter().any(|o| o.id() == id.as_str()))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    return Err(missing);
                }
                let mut picked = Vec::new();
                for id in &ids {
                    if let Some(i) = rt.held.iter().position(|o| o.id() == id.as_str()) {
                        picked.push(rt.held.remove(i));
                    }
                }
                picked
            }
            None => {
                let mut all = std::mem::take(&mut rt.held);
                if reverse {
                    all.reverse();
                }
                all
            }
        }
    };
    let client = client();
    let mut sent = Vec::new();
    for outgoing in batch {
        sent.push(outgoing.id().to_string());
        deliver_event(app, &client, outgoing).await;
    }
    Ok(sent)
}

/// Send an already emitted event again to every endpoint, whatever the knobs say (a duplicate
/// delivery, or a dropped one arriving late). The same `X-Idempotency-Key` as its first delivery
/// unless `new_idempotency_key`. Failed attempts are retried on the schedule. None: no such event.
pub async fn redeliver(app: &SharedApp, event_id: &str, new_idempotency_key: bool) -> Option<()> {
    let event = app
        .store()
        .events
        .iter()
        .find(|e| e["id"].as_str() == Some(event_id))
        .cloned()?;
    let client = client();
    send_to_all(
        app,
        &client,
        &Outgoing { event },
        Send {
            duplicate: false,
            redelivery: true,
            new_idempotency_key,
        },
    )
    .await;
    Some(())
}

#[derive(Clone, Copy)]
struct Send {
    duplicate: bool,
    redelivery: bool,
    new_idempotency_key: bool,
}

/// First attempt to every endpoint (concurrently); failures go on to their own retry timers.
/// The drop knobs are applied here (a `dropped` record per endpoint, nothing sent).
async fn deliver_event(app: &SharedApp, client: &reqwest::Client, outgoing: Outgoing) {
    let (dropped, duplicate) = {
        let mut rt = app.runtime();
        let faults = &mut rt.faults;
        let dropped = if faults.drop_webhooks {
            true
        } else if faults.drop_next > 0 {
            faults.drop_next -= 1;
            true
        } else {
            false
        };
        let duplicate = faults.duplicate_deliveries;
        let realistic = faults.profile == Profile::Realistic;
        (
            dropped,
            duplicate || (realistic && rt.roll() < REALISTIC_DUPLICATE_SHARE),
        )
    };
    if dropped {
        let endpoints = app.store().webhook_endpoints.clone();
        for url in endpoints {
            let delivery = Delivery::new(app, client, &outgoing, url, false);
            delivery.record(0, None, None, "dropped", false);
        }
        tracing::info!(event_id = %outgoing.id(), "webhook dropped by a fault knob");
        return;
    }
    send_to_all(
        app,
        client,
        &outgoing,
        Send {
            duplicate,
            redelivery: false,
            new_idempotency_key: false,
        },
    )
    .await;
}

async fn send_to_all(app: &SharedApp, client: &reqwest::Client, outgoing: &Outgoing, how: Send) {
    let endpoints = app.store().webhook_endpoints.clone();
    let mut first_attempts = JoinSet::new();
    for url in endpoints {
        let mut delivery = Delivery::new(app, client, outgoing, url, how.new_idempotency_key);
        delivery.redelivery = how.redelivery;
        first_attempts.spawn(async move {
            let ok = delivery.attempt(1, false).await;
            if how.duplicate {
                delivery.attempt(1, true).await;
            }
            if !ok {
                tokio::spawn(delivery.retry());
            }
        });
    }
    while first_attempts.join_next().await.is_some() {}
}

struct Delivery {
    app: SharedApp,
    client: reqwest::Client,
    url: String,
    body: Bytes,
    event_id: String,
    kind: String,
    idempotency_key: String,
    redelivery: bool,
    /// The first attempt's `X-Signature`, which retries repeat under `retry_signature: original`.
    first_signature: OnceLock<String>,
}

impl Delivery {
    fn new(
        app: &SharedApp,
        client: &reqwest::Client,
        outgoing: &Outgoing,
        url: String,
        new_idempotency_key: bool,
    ) -> Delivery {
        let event_id = outgoing.id().to_string();
        let idempotency_key = {
            let mut store = app.store();
            let slot = format!("{event_id} {url}");
            if new_idempotency_key {
                crate::model::new_id("whdel")
            } else {
                store
                    .delivery_keys
                    .entry(slot)
                    .or_insert_with(|| crate::model::new_id("whdel"))
                    .clone()
            }
        };
        Delivery {
            app: app.clone(),
            client: client.clone(),
            url,
            body: Bytes::from(serde_json::to_vec(&outgoing.event).unwrap_or_default()),
            event_id,
            kind: outgoing.event["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            idempotency_key,
            redelivery: false,
            first_signature: OnceLock::new(),
        }
    }

    async fn retry(self) {
        let delays = retry_delays(self.app.settings.time_factor);
        let attempts = delays.len() as u32 + 1;
        for (i, delay) in delays.into_iter().enumerate() {
            tokio::time::sleep(delay).await;
            if self.app.runtime().faults.drop_webhooks {
                return;
            }
            let n = i as u32 + 2;
            if self.attempt(n, false).await {
                return;
            }
            if n == attempts {
                tracing::warn!(event_id = %self.event_id, url = %self.url, "webhook delivery gave up");
            }
        }
    }

    /// One signed POST; records the attempt and says whether it got a 2xx.
    async fn attempt(&self, n: u32, duplicate: bool) -> bool {
        let fresh = signature_header(&self.app, Utc::now().timestamp(), &self.body);
        let original = self.app.runtime().faults.retry_signature == RetrySignature::Original;
        let signature = if original {
            self.first_signature.get_or_init(|| fresh).clone()
        } else {
            fresh
        };
        let result = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Signature", signature)
            .header("X-Idempotency-Key", &self.idempotency_key)
            .body(self.body.clone())
            .send()
            .await;
        let (status_code, error, ok) = match result {
            Ok(resp) => (
                Some(resp.status().as_u16()),
                None,
                resp.status().is_success(),
            ),
            Err(e) => (None, Some(describe(&e)), false),
        };
        let last = n as usize > RETRY_SCHEDULE_SECS.len();
        let outcome = match (ok, duplicate, last) {
            (_, true, _) => "duplicate",
            (true, _, _) => "delivered",
            (false, _, true) => "gave_up",
            (false, _, false) => "retrying",
        };
        tracing::info!(
            event_id = %self.event_id, event_type = %self.kind, attempt = n,
            status = ?status_code, outcome, "webhook attempt"
        );
        self.record(n, status_code, error, outcome, self.redelivery);
        ok
    }

    fn record(
        &self,
        attempt: u32,
        status_code: Option<u16>,
        error: Option<String>,
        outcome: &str,
        redelivery: bool,
    ) {
        let record = DeliveryAttempt {
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            url: self.url.clone(),
            attempt,
            status_code,
            error,
            idempotency_key: self.idempotency_key.clone(),
            outcome: outcome.to_string(),
            redelivery,
            at: Utc::now(),
        };
        self.app.store().deliveries.push(record);
        self.app.changed();
    }
}

/// `t=<ts>,v1=<hex>` with one `v1` per active signing secret (several during a rotation).
pub fn signature_header(app: &SharedApp, timestamp: i64, body: &[u8]) -> String {
    let secrets = {
        let rt = app.runtime();
        if rt.signing_secrets.is_empty() {
            vec![app.settings.webhook_secret.clone()]
        } else {
            rt.signing_secrets.clone()
        }
    };
    let mut header = format!("t={timestamp}");
    for secret in &secrets {
        let one = shared::signature::sign(secret, timestamp, body);
        if let Some((_, v1)) = one.split_once(',') {
            header.push(',');
            header.push_str(v1);
        }
    }
    header
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// For logs and tests: when an attempt happened.
pub fn attempt_time(a: &DeliveryAttempt) -> String {
    ts::format(&a.at)
}
