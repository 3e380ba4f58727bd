//! Webhook delivery, as ChargebackStop does it: POST the event to every configured endpoint with
//! `X-Signature` (re-signed with the current time at every attempt) and `X-Idempotency-Key` (the
//! delivery id, the same across retries); retry a non-2xx or a failed request after 1 m, 5 m,
//! 30 m, 2 h and 12 h (scaled by `--time-factor`), then give up. Every attempt is recorded.
//!
//! Events go out one after another per sandbox (first attempts in order; retries on their own
//! timers), unless the `out_of_order` knob holds a batch and sends it reversed.

use crate::model::{ts, DeliveryAttempt};
use crate::state::SharedApp;
use axum::body::Bytes;
use chrono::Utc;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// The documented retry schedule, in seconds, before scaling.
pub const RETRY_SCHEDULE_SECS: [f64; 5] = [60.0, 300.0, 1800.0, 7200.0, 43200.0];
/// ChargebackStop expects a 2xx within 20 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event: Value,
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
        let (out_of_order, window) = {
            let rt = app.runtime();
            (
                rt.faults.out_of_order,
                Duration::from_millis(rt.faults.out_of_order_window_ms),
            )
        };
        if !out_of_order {
            deliver_event(&app, &client, first).await;
            continue;
        }
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(e) => batch.push(e),
                    None => break,
                },
                _ = &mut deadline => break,
                _ = app.flush.notified() => break,
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

/// First attempt to every endpoint (concurrently); failures go on to their own retry timers.
async fn deliver_event(app: &SharedApp, client: &reqwest::Client, outgoing: Outgoing) {
    let (drop_all, duplicate) = {
        let rt = app.runtime();
        (rt.faults.drop_webhooks, rt.faults.duplicate_deliveries)
    };
    if drop_all {
        return;
    }
    let endpoints = app.store().webhook_endpoints.clone();
    let event_id = outgoing.event["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = outgoing.event["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = Bytes::from(serde_json::to_vec(&outgoing.event).unwrap_or_default());

    let mut first_attempts = JoinSet::new();
    for url in endpoints {
        let delivery = Delivery {
            app: app.clone(),
            client: client.clone(),
            url,
            body: body.clone(),
            event_id: event_id.clone(),
            kind: kind.clone(),
            idempotency_key: crate::model::new_id("whdel"),
        };
        first_attempts.spawn(async move {
            let ok = delivery.attempt(1, false).await;
            if duplicate {
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
}

impl Delivery {
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
        let timestamp = Utc::now().timestamp();
        let signature =
            shared::signature::sign(&self.app.settings.webhook_secret, timestamp, &self.body);
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
        let record = DeliveryAttempt {
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            url: self.url.clone(),
            attempt: n,
            status_code,
            error,
            idempotency_key: self.idempotency_key.clone(),
            outcome: outcome.to_string(),
            at: Utc::now(),
        };
        self.app.store().deliveries.push(record);
        self.app.changed();
        ok
    }
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
