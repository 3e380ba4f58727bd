//! One run of the order upload: lease pending orders from the outbox, send them to
//! `POST /v1/orders/` in batches per organisation under the client-side rate limit, and record
//! each order's outcome as soon as it is known (CREATED, FAILED with code and field, DUPLICATE
//! reconciled by reference). 429 and 5xx back off and send the SAME orders (same
//! `reference_id`s) again.
//!
//! Crash safety comes from the outbox, not from this loop: an order is LEASED before it is sent
//! and only leaves the pending-index once its outcome is stored. A run killed between the POST
//! and the write leaves the lease to expire; the next run sends the order again, gets
//! DUPLICATE_ORDER, stores RECONCILE at once (so no run POSTs it again) and looks the order up by
//! reference, one order at a time within the run's stop time; what is left waits for the next
//! run.
//!
//! Nothing loops for ever: an order is tried by at most `max_attempts` runs (then FAILED with
//! the last reason, notified, counted); between runs it waits a growing next-attempt time and
//! moves back in the pending-index, so it never blocks the orders behind it.
//!
//! - `organisation`: reads one organisation's pending-index, leases, hands out the work;
//! - `create`: the POST of a batch, its retries, and the outcome per order;
//! - `responses`: which answer of a batch response belongs to which order;
//! - `lookup`: DUPLICATE_ORDER reconciliation by reference, bounded by the stop time;
//! - `patches`: later PATCH updates of uploaded orders;
//! - `estimate`: how long a backlog takes at the limiter's rate (the backfill's estimate).

mod create;
pub mod estimate;
mod lookup;
mod organisation;
mod patches;
mod responses;

use crate::clock::Clock;
use crate::domain::rate_limit::OrgRateLimiter;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::order_api::OrderApi;
use crate::ports::order_outbox::{iso, OrderOutbox};
use crate::ports::run_state::LeaseHolder;
use crate::ports::store_error::StoreError;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The documented maximum of orders per `POST /v1/orders/`.
pub const MAX_BATCH: usize = 100;

/// The error code stored on an order that ran out of attempts.
pub const ATTEMPTS_EXHAUSTED: &str = "ATTEMPTS_EXHAUSTED";

#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// Orders per POST, 1..=100.
    pub batch_size: usize,
    /// How long a run holds an order before another run may take it. Longer than one run.
    pub lease: Duration,
    /// Batches of one organisation in flight at once (the rate limiter still decides when).
    pub in_flight_per_org: usize,
    /// Runs that may try to send one order (`ORDER_MAX_ATTEMPTS`); after the last one fails
    /// transiently the order is FAILED with the last reason.
    pub max_attempts: u32,
    /// Sends of one batch within one run (429/5xx with backoff) before it waits for a later run.
    pub attempts_per_run: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// After a run could not send an order, it is due again `retry_base × 2^(attempts-1)`
    /// later, at most `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            batch_size: MAX_BATCH,
            lease: Duration::from_secs(300),
            in_flight_per_org: 4,
            max_attempts: 8,
            attempts_per_run: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(3600),
        }
    }
}

impl UploadConfig {
    pub fn batch_size(&self) -> usize {
        self.batch_size.clamp(1, MAX_BATCH)
    }

    /// How long an order that has been tried `attempts` times waits before the next try.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        self.retry_base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
            .min(self.retry_cap)
    }
}

/// What one run did, for logs, metrics and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadReport {
    pub organisations: usize,
    pub created: u64,
    pub duplicate: u64,
    /// FAILED this run (refused by the API, or out of attempts).
    pub failed: u64,
    /// Of `failed`: tried `max_attempts` times without an answer.
    pub attempts_exhausted: u64,
    /// Left for a later run (PENDING with a next-attempt time, or RECONCILE for a lookup).
    pub retry_later: u64,
    /// `GET /v1/orders/?reference_id=` lookups of orders ChargebackStop already had.
    pub lookups: u64,
    pub patched: u64,
    pub requests: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    /// Organisations stopped by an error a person must fix (401, 403...).
    pub blocked: Vec<String>,
    /// Set when another run held the run lease: this run did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_held_by: Option<LeaseHolder>,
}

impl UploadReport {
    /// The report of a run that found the run lease held.
    pub fn skipped(holder: LeaseHolder) -> Self {
        Self {
            lease_held_by: Some(holder),
            ..Default::default()
        }
    }
}

/// Everything one run shares between its tasks.
pub struct OrderUpload {
    pub outbox: Arc<dyn OrderOutbox>,
    pub api: Arc<dyn OrderApi>,
    pub limiter: Arc<OrgRateLimiter>,
    pub clock: Arc<dyn Clock>,
    /// Told about orders that end FAILED.
    pub notifier: Arc<dyn Notifier>,
    pub config: UploadConfig,
    /// Identifies this run's leases.
    pub owner: String,
    /// Stop taking new work at this instant (the Lambda deadline minus a margin).
    pub stop_at: Instant,
}

/// An order that ended FAILED in this run, for the notification.
#[derive(Debug, Clone)]
struct FailedOrder {
    organisation_id: String,
    reference_id: String,
    code: String,
    field: Option<String>,
}

struct Shared {
    run: OrderUpload,
    report: Mutex<UploadReport>,
    failed: Mutex<Vec<FailedOrder>>,
    /// The report so far, for a progress bar (`cbs upload-orders`).
    progress: Option<tokio::sync::watch::Sender<UploadReport>>,
}

impl Shared {
    fn add(&self, f: impl FnOnce(&mut UploadReport)) {
        let mut report = self.report.lock().expect("report lock");
        f(&mut report);
        if let Some(progress) = &self.progress {
            progress.send_replace(report.clone());
        }
    }

    fn out_of_time(&self, extra: Duration) -> bool {
        Instant::now() + extra >= self.run.stop_at
    }

    /// Exponential backoff with full jitter, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.run.config;
        let ceiling = cfg
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(cfg.backoff_cap);
        let jitter: f64 = rand::random_range(0.5..=1.0);
        ceiling.mul_f64(jitter)
    }
}

impl OrderUpload {
    /// Uploads every organisation's pending orders until done or out of time.
    pub async fn run(self) -> Result<UploadReport, StoreError> {
        self.run_with_progress(None).await
    }

    /// [`OrderUpload::run`], sending the report so far to `progress` each time it changes.
    pub async fn run_with_progress(
        self,
        progress: Option<tokio::sync::watch::Sender<UploadReport>>,
    ) -> Result<UploadReport, StoreError> {
        let organisations =
            store_retry("list organisations", || self.outbox.organisations()).await?;
        let shared = Arc::new(Shared {
            run: self,
            report: Mutex::new(UploadReport {
                organisations: organisations.len(),
                ..Default::default()
            }),
            failed: Mutex::new(Vec::new()),
            progress,
        });
        // Organisations are independent (separate rate-limit pools), so they run side by side.
        let mut tasks = tokio::task::JoinSet::new();
        for org in organisations {
            let shared = shared.clone();
            tasks.spawn(async move { organisation::upload_organisation(shared, org).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "order upload of an organisation stopped");
                    first_error.get_or_insert(e);
                }
                Err(e) => tracing::error!(error = %e, "order upload task panicked"),
            }
        }
        notify_failures(&shared).await;
        let report = shared.report.lock().expect("report lock").clone();
        match first_error {
            Some(e) if report.created + report.duplicate + report.failed == 0 => Err(e),
            _ => Ok(report),
        }
    }
}

/// One notification per organisation for the orders that ended FAILED in this run (a person
/// corrects and requeues them: ops API `POST /api/orders/{org}/{ref}/requeue`, `cbs orders
/// requeue`).
async fn notify_failures(shared: &Shared) {
    let failed = std::mem::take(&mut *shared.failed.lock().expect("failed lock"));
    let mut by_org: std::collections::BTreeMap<String, Vec<FailedOrder>> = Default::default();
    for f in failed {
        by_org.entry(f.organisation_id.clone()).or_default().push(f);
    }
    for (org, orders) in by_org {
        const LISTED: usize = 20;
        let mut listed: Vec<String> = orders
            .iter()
            .take(LISTED)
            .map(|f| match &f.field {
                Some(field) => format!("{} ({} on {field})", f.reference_id, f.code),
                None => format!("{} ({})", f.reference_id, f.code),
            })
            .collect();
        if orders.len() > LISTED {
            listed.push(format!("and {} more", orders.len() - LISTED));
        }
        let notification = OpsNotification {
            kind: "order.upload_failed".into(),
            subject: format!(
                "{} order(s) of {org} could not be uploaded to ChargebackStop; correct and requeue them",
                orders.len()
            ),
            organisation_id: Some(org.clone()),
            object_id: orders[0].reference_id.clone(),
            status: Some("FAILED".into()),
            note: Some(listed.join(", ")),
            at: iso(shared.run.clock.now()),
        };
        if let Err(e) = shared.run.notifier.notify(&notification).await {
            // Still in the table as FAILED with the reason, and counted in the run's metrics.
            tracing::error!(organisation_id = %org, error = %e, "could not notify about failed orders");
        }
    }
}

/// Repeats an outbox call that failed transiently (throttling, a dropped connection): a blip
/// must not end an organisation's upload. Every outbox write is conditional on this run's
/// lease, so a repeat after a lost answer changes nothing twice.
async fn store_retry<T, F, Fut>(what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e @ StoreError::Transient { .. }) if attempt < ATTEMPTS => {
                let pause = Duration::from_millis(100 * 2u64.pow(attempt));
                tracing::warn!(operation = what, attempt, error = %e, "order outbox call failed, retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
