//! One run of the order upload: lease pending orders from the outbox, send them to
//! `POST /v1/orders/` in batches per organisation under the client-side rate limit, and record
//! each order's outcome (CREATED, FAILED with code and field, DUPLICATE reconciled by
//! reference). 429 and 5xx back off and send the SAME orders (same `reference_id`s) again.
//!
//! Crash safety comes from the outbox, not from this loop: an order is LEASED before it is sent
//! and only leaves the pending-index once its outcome is stored. A run killed between the POST
//! and the write leaves the lease to expire; the next run sends the order again, gets
//! DUPLICATE_ORDER and reconciles it to the `order_id` ChargebackStop already has.

use crate::clock::Clock;
use crate::domain::rate_limit::{Endpoint, OrgRateLimiter};
use crate::models::order::{Order, OrderBatchResponse, OrderErrorCode};
use crate::ports::order_api::{OrderApi, OrderApiError};
use crate::ports::order_outbox::{OrderOutbox, OutboxOrder, UploadOutcome, Work};
use crate::ports::store_error::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The documented maximum of orders per `POST /v1/orders/`.
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// Orders per POST, 1..=100.
    pub batch_size: usize,
    /// How long a run holds an order before another run may take it. Longer than one run.
    pub lease: Duration,
    /// Batches of one organisation in flight at once (the rate limiter still decides when).
    pub in_flight_per_org: usize,
    /// Attempts per batch within one run before it goes back to PENDING for the next run.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            batch_size: MAX_BATCH,
            lease: Duration::from_secs(300),
            in_flight_per_org: 4,
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

impl UploadConfig {
    pub fn batch_size(&self) -> usize {
        self.batch_size.clamp(1, MAX_BATCH)
    }
}

/// What one run did, for logs, metrics and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadReport {
    pub organisations: usize,
    pub created: u64,
    pub duplicate: u64,
    pub failed: u64,
    /// Left PENDING for the next run (retries exhausted, time budget, lease lost).
    pub retry_later: u64,
    pub patched: u64,
    pub requests: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    /// Organisations stopped by an error a person must fix (401, 403...).
    pub blocked: Vec<String>,
}

/// Everything one run shares between its tasks.
pub struct OrderUpload {
    pub outbox: Arc<dyn OrderOutbox>,
    pub api: Arc<dyn OrderApi>,
    pub limiter: Arc<OrgRateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub config: UploadConfig,
    /// Identifies this run's leases.
    pub owner: String,
    /// Stop taking new work at this instant (the Lambda deadline minus a margin).
    pub stop_at: Instant,
}

struct Shared {
    run: OrderUpload,
    report: Mutex<UploadReport>,
}

impl Shared {
    fn add(&self, f: impl FnOnce(&mut UploadReport)) {
        f(&mut self.report.lock().expect("report lock"));
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
        let organisations =
            store_retry("list organisations", || self.outbox.organisations()).await?;
        let shared = Arc::new(Shared {
            run: self,
            report: Mutex::new(UploadReport {
                organisations: organisations.len(),
                ..Default::default()
            }),
        });
        // Organisations are independent (separate rate-limit pools), so they run side by side.
        let mut tasks = tokio::task::JoinSet::new();
        for org in organisations {
            let shared = shared.clone();
            tasks.spawn(async move { upload_organisation(shared, org).await });
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
        let report = shared.report.lock().expect("report lock").clone();
        match first_error {
            Some(e) if report.created + report.duplicate + report.failed == 0 => Err(e),
            _ => Ok(report),
        }
    }
}

async fn upload_organisation(shared: Arc<Shared>, org: String) -> Result<(), StoreError> {
    let run = &shared.run;
    let batch_size = run.config.batch_size();
    // One read of the pending-index feeds every batch allowed in flight: fewer index queries
    // (each one costs a request; the local emulator even scans the table for it).
    let page_size = batch_size * run.config.in_flight_per_org.max(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(
        run.config.in_flight_per_org.max(1),
    ));
    let blocked = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let mut cursor: Option<String> = None;
    let mut creates: Vec<OutboxOrder> = Vec::new();
    let mut store_error = None;

    loop {
        if shared.out_of_time(Duration::ZERO) || blocked.load(Ordering::Relaxed) {
            break;
        }
        let page = match store_retry("read pending orders", || {
            run.outbox.pending(&org, cursor.as_deref(), page_size)
        })
        .await
        {
            Ok(page) => page,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        let now = run.clock.now();
        let candidates: Vec<OutboxOrder> = page
            .orders
            .into_iter()
            .filter(|o| o.work_at(now).is_some())
            .collect();
        let until = now
            + chrono::Duration::from_std(run.config.lease).unwrap_or(chrono::Duration::minutes(5));
        // A repeat after a lost answer cannot take an order twice (the lease is conditional);
        // one we did take stays leased to us until it expires, then the next run sends it.
        let leased = match store_retry("lease orders", || {
            run.outbox.lease(&candidates, &run.owner, now, until)
        })
        .await
        {
            Ok(leased) => leased,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        for order in leased {
            // A create lease leaves the order LEASED; a patch lease leaves it CREATED/DUPLICATE.
            match Work::for_leased(&order) {
                Work::Patch => {
                    let permit = permits.clone().acquire_owned().await.expect("semaphore");
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let _permit = permit;
                        send_patches(&shared, order).await
                    });
                }
                _ => creates.push(order),
            }
        }
        cursor = page.next;
        while creates.len() >= batch_size || (cursor.is_none() && !creates.is_empty()) {
            let take = creates.len().min(batch_size);
            let batch: Vec<OutboxOrder> = creates.drain(..take).collect();
            let permit = permits.clone().acquire_owned().await.expect("semaphore");
            let (shared, org, blocked) = (shared.clone(), org.clone(), blocked.clone());
            tasks.spawn(async move {
                let _permit = permit;
                send_batch(&shared, &org, batch, &blocked).await
            });
        }
        if cursor.is_none() {
            break;
        }
    }
    // Leased but never sent (out of time): give them back now rather than wait for the lease.
    if !creates.is_empty() {
        let outcomes: Vec<(String, UploadOutcome)> = creates
            .iter()
            .map(|o| {
                (
                    o.reference_id.clone(),
                    UploadOutcome::Retry {
                        reason: "run ended before sending".into(),
                    },
                )
            })
            .collect();
        shared.add(|r| r.retry_later += outcomes.len() as u64);
        if let Err(e) = store_retry("give leases back", || {
            run.outbox
                .record(&org, &run.owner, &outcomes, run.clock.now())
        })
        .await
        {
            store_error.get_or_insert(e);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                store_error.get_or_insert(e);
            }
            Err(e) => tracing::error!(organisation_id = %org, error = %e, "upload task panicked"),
        }
    }
    if blocked.load(Ordering::Relaxed) {
        shared.add(|r| r.blocked.push(org.clone()));
    }
    match store_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sends one batch (retrying as needed), records every order's outcome, logs progress.
async fn send_batch(
    shared: &Shared,
    org: &str,
    batch: Vec<OutboxOrder>,
    blocked: &AtomicBool,
) -> Result<(), StoreError> {
    let orders: Vec<Order> = batch.iter().map(|o| o.order.clone()).collect();
    let outcomes = create_orders(shared, org, &orders, blocked).await;
    let run = &shared.run;
    let recorded = store_retry("record outcomes", || {
        run.outbox
            .record(org, &run.owner, &outcomes, run.clock.now())
    })
    .await?;
    let mut tally = UploadReport::default();
    for (_, outcome) in &outcomes {
        match outcome {
            UploadOutcome::Created { .. } => tally.created += 1,
            UploadOutcome::Duplicate { .. } => tally.duplicate += 1,
            UploadOutcome::Failed { .. } => tally.failed += 1,
            UploadOutcome::Retry { .. } => tally.retry_later += 1,
        }
    }
    // Outcomes we could not record (lease taken over) are finished by the other run.
    tally.retry_later += (outcomes.len() - recorded.min(outcomes.len())) as u64;
    let totals = {
        let mut report = shared.report.lock().expect("report lock");
        report.created += tally.created;
        report.duplicate += tally.duplicate;
        report.failed += tally.failed;
        report.retry_later += tally.retry_later;
        report.clone()
    };
    tracing::info!(
        organisation_id = %org,
        batch = outcomes.len(),
        created = tally.created,
        duplicate = tally.duplicate,
        failed = tally.failed,
        retry_later = tally.retry_later,
        run_created = totals.created,
        run_duplicate = totals.duplicate,
        run_failed = totals.failed,
        run_requests = totals.requests,
        "order upload progress"
    );
    Ok(())
}

fn all(orders: &[Order], outcome: UploadOutcome) -> Vec<(String, UploadOutcome)> {
    orders
        .iter()
        .map(|o| (o.reference_id.clone().unwrap_or_default(), outcome.clone()))
        .collect()
}

/// POSTs one batch until it gets an answer per order, the attempts run out, or time does.
/// A whole-request 422 splits the batch in halves so one bad order cannot fail its neighbours.
fn create_orders<'a>(
    shared: &'a Shared,
    org: &'a str,
    orders: &'a [Order],
    blocked: &'a AtomicBool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<(String, UploadOutcome)>> + Send + 'a>>
{
    Box::pin(async move {
        let run = &shared.run;
        let mut attempt = 0u32;
        loop {
            if blocked.load(Ordering::Relaxed) {
                return all(
                    orders,
                    UploadOutcome::Retry {
                        reason: "organisation blocked".into(),
                    },
                );
            }
            run.limiter.acquire(org, Endpoint::Orders).await;
            shared.add(|r| r.requests += 1);
            let error = match run.api.create_orders(orders).await {
                Ok(response) => return settle(shared, org, orders, response).await,
                Err(e) => e,
            };
            let pause = match &error {
                OrderApiError::RateLimited { retry_after } => {
                    shared.add(|r| r.rate_limited += 1);
                    let pause = retry_after.unwrap_or_else(|| shared.backoff(attempt));
                    run.limiter.penalise(org, Endpoint::Orders, pause).await;
                    pause
                }
                OrderApiError::Retryable(_) => {
                    shared.add(|r| r.server_errors += 1);
                    shared.backoff(attempt)
                }
                OrderApiError::Rejected { .. } if orders.len() > 1 => {
                    let (left, right) = orders.split_at(orders.len() / 2);
                    let mut outcomes = create_orders(shared, org, left, blocked).await;
                    outcomes.extend(create_orders(shared, org, right, blocked).await);
                    return outcomes;
                }
                OrderApiError::Rejected {
                    code,
                    field,
                    message,
                    ..
                } => {
                    return all(
                        orders,
                        UploadOutcome::Failed {
                            code: code.clone(),
                            field: field.clone(),
                            message: Some(message.clone()),
                        },
                    );
                }
                OrderApiError::Fatal { .. } => {
                    tracing::error!(organisation_id = %org, error = %error, "order upload blocked");
                    blocked.store(true, Ordering::Relaxed);
                    return all(
                        orders,
                        UploadOutcome::Retry {
                            reason: error.to_string(),
                        },
                    );
                }
            };
            attempt += 1;
            if attempt >= run.config.max_attempts || shared.out_of_time(pause) {
                return all(
                    orders,
                    UploadOutcome::Retry {
                        reason: error.to_string(),
                    },
                );
            }
            tracing::warn!(organisation_id = %org, attempt, pause_ms = pause.as_millis() as u64, error = %error, "order batch retry");
            tokio::time::sleep(pause).await;
        }
    })
}

/// Turns a batch response into one outcome per order we sent.
async fn settle(
    shared: &Shared,
    org: &str,
    orders: &[Order],
    response: OrderBatchResponse,
) -> Vec<(String, UploadOutcome)> {
    let mut outcomes = Vec::with_capacity(orders.len());
    for order in orders {
        let reference = order.reference_id.clone().unwrap_or_default();
        let outcome = match classify(&response, &reference) {
            Classified::Done(outcome) => outcome,
            Classified::Reconcile => reconcile_duplicate(shared, org, &reference).await,
        };
        outcomes.push((reference, outcome));
    }
    outcomes
}

#[derive(Debug, PartialEq)]
enum Classified {
    Done(UploadOutcome),
    /// DUPLICATE_ORDER without the existing id: look it up by reference.
    Reconcile,
}

fn classify(response: &OrderBatchResponse, reference: &str) -> Classified {
    if let Some(order_id) = response.result_for(reference).and_then(|o| o.id.clone()) {
        return Classified::Done(UploadOutcome::Created { order_id });
    }
    match response.error_for(reference) {
        Some(e) if e.code == OrderErrorCode::DuplicateOrder => match &e.order_id {
            Some(order_id) => Classified::Done(UploadOutcome::Duplicate {
                order_id: order_id.clone(),
            }),
            None => Classified::Reconcile,
        },
        Some(e) if e.code == OrderErrorCode::RateLimited => {
            Classified::Done(UploadOutcome::Retry {
                reason: "RATE_LIMITED".into(),
            })
        }
        Some(e) => Classified::Done(UploadOutcome::Failed {
            code: e.code.as_str().to_string(),
            field: e.field.clone(),
            message: e.message.clone(),
        }),
        // Neither created nor refused: we cannot know, so send it again; a second create of
        // the same reference comes back as DUPLICATE_ORDER and is reconciled.
        None => Classified::Done(UploadOutcome::Retry {
            reason: "missing from the batch response".into(),
        }),
    }
}

/// `GET /v1/orders/?reference_id=` for an order ChargebackStop says it already has.
async fn reconcile_duplicate(shared: &Shared, org: &str, reference: &str) -> UploadOutcome {
    let run = &shared.run;
    let mut last = String::new();
    for attempt in 0..3u32 {
        run.limiter.acquire(org, Endpoint::Orders).await;
        shared.add(|r| r.requests += 1);
        match run.api.find_order_id(org, reference).await {
            Ok(Some(order_id)) => return UploadOutcome::Duplicate { order_id },
            Ok(None) => {
                return UploadOutcome::Retry {
                    reason: "DUPLICATE_ORDER but no order found by reference".into(),
                }
            }
            Err(OrderApiError::RateLimited { retry_after }) => {
                shared.add(|r| r.rate_limited += 1);
                let pause = retry_after.unwrap_or_else(|| shared.backoff(attempt));
                run.limiter.penalise(org, Endpoint::Orders, pause).await;
                last = "rate limited".into();
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                last = e.to_string();
                if matches!(e, OrderApiError::Retryable(_)) {
                    shared.add(|r| r.server_errors += 1);
                    tokio::time::sleep(shared.backoff(attempt)).await;
                } else {
                    break;
                }
            }
        }
    }
    UploadOutcome::Retry {
        reason: format!("duplicate reconciliation failed: {last}"),
    }
}

/// Sends an uploaded order's waiting PATCH updates, oldest first.
async fn send_patches(shared: &Shared, order: OutboxOrder) -> Result<(), StoreError> {
    let run = &shared.run;
    let org = order.organisation_id.as_str();
    let Some(order_id) = order.order_id.as_deref() else {
        return Ok(());
    };
    let mut done = Vec::new();
    let mut refused = None;
    'updates: for (update_id, patch) in &order.pending_updates {
        let mut attempt = 0;
        loop {
            run.limiter.acquire(org, Endpoint::OrderUpdate).await;
            shared.add(|r| r.requests += 1);
            match run.api.patch_order(order_id, patch).await {
                Ok(()) => {
                    done.push(update_id.clone());
                    shared.add(|r| r.patched += 1);
                    break;
                }
                Err(OrderApiError::Rejected { code, message, .. }) => {
                    // Kept on the order for operators, and not sent again.
                    refused = Some(format!("{update_id}: {code} {message}"));
                    done.push(update_id.clone());
                    break;
                }
                Err(e) => {
                    let pause = match &e {
                        OrderApiError::RateLimited { retry_after } => {
                            shared.add(|r| r.rate_limited += 1);
                            let pause = retry_after.unwrap_or_else(|| shared.backoff(attempt));
                            run.limiter
                                .penalise(org, Endpoint::OrderUpdate, pause)
                                .await;
                            pause
                        }
                        _ => shared.backoff(attempt),
                    };
                    attempt += 1;
                    if matches!(e, OrderApiError::Fatal { .. })
                        || attempt >= run.config.max_attempts
                        || shared.out_of_time(pause)
                    {
                        break 'updates;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    store_retry("record sent updates", || {
        run.outbox.record_patch(
            org,
            &order.reference_id,
            &run.owner,
            &done,
            refused.as_deref(),
            run.clock.now(),
        )
    })
    .await
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
