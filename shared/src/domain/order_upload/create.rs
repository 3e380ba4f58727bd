//! The POST of one batch: retries within the run (429 with the limiter paused, 5xx with
//! backoff, a whole-request 422 narrowed down by halves), then one outcome per order, recorded
//! at once. Orders ChargebackStop already has go on to `lookup` in the same run.

use super::responses::{answers, Answer};
use super::{store_retry, FailedOrder, Shared, UploadReport, ATTEMPTS_EXHAUSTED};
use crate::domain::rate_limit::Endpoint;
use crate::models::order::Order;
use crate::ports::order_api::OrderApiError;
use crate::ports::order_outbox::{OutboxOrder, UploadOutcome};
use crate::ports::store_error::StoreError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// How one order of a batch left the send loop.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Answered(Answer),
    /// Never reached ChargebackStop (run out of time before the first send, organisation
    /// blocked): the attempt does not count.
    Unsent {
        reason: String,
    },
}

/// Sends one batch (retrying as needed), records every order's outcome, then looks up the
/// orders ChargebackStop said it already had.
/// Returns the references ChargebackStop already had (DUPLICATE_ORDER), recorded RECONCILE
/// and still leased to this run: the caller looks them up (`lookup`) once it has let the next
/// create go, so lookups never hold back the creates.
pub(super) async fn send_batch(
    shared: &Shared,
    org: &str,
    batch: Vec<OutboxOrder>,
    blocked: &AtomicBool,
) -> Result<Vec<String>, StoreError> {
    let run = &shared.run;
    let orders: Vec<Order> = batch.iter().map(|o| o.order.clone()).collect();
    let attempts: HashMap<&str, u32> = batch
        .iter()
        .map(|o| (o.reference_id.as_str(), o.attempts))
        .collect();
    let sent = create_orders(shared, org, &orders, blocked, 0).await;
    let now = run.clock.now();
    let mut to_look_up = Vec::new();
    let outcomes: Vec<(String, UploadOutcome)> = sent
        .into_iter()
        .map(|(reference, sent)| {
            let outcome = match sent {
                Sent::Unsent { reason } => UploadOutcome::Unsent { reason },
                Sent::Answered(Answer::Final(outcome)) => outcome,
                Sent::Answered(Answer::Lookup) => {
                    to_look_up.push(reference.clone());
                    UploadOutcome::Lookup {
                        reason: "DUPLICATE_ORDER: looking the order up by reference".into(),
                        keep_lease: true,
                    }
                }
                Sent::Answered(Answer::Again { reason }) => {
                    let tried = attempts.get(reference.as_str()).copied().unwrap_or(1);
                    if tried >= run.config.max_attempts {
                        UploadOutcome::Failed {
                            code: ATTEMPTS_EXHAUSTED.into(),
                            field: None,
                            message: Some(format!("{tried} attempts, the last: {reason}")),
                        }
                    } else {
                        let wait = chrono::Duration::from_std(run.config.retry_delay(tried))
                            .unwrap_or(chrono::Duration::hours(1));
                        UploadOutcome::Retry {
                            reason,
                            retry_at: now + wait,
                        }
                    }
                }
            };
            (reference, outcome)
        })
        .collect();
    let recorded = record_outcomes(shared, org, &outcomes).await?;
    if recorded == 0 {
        return Ok(Vec::new());
    }
    Ok(to_look_up)
}

/// Records outcomes of this run's orders (one conditional write each), counts them, logs the
/// run's progress. Returns how many were recorded (the others' leases were taken over).
pub(super) async fn record_outcomes(
    shared: &Shared,
    org: &str,
    outcomes: &[(String, UploadOutcome)],
) -> Result<usize, StoreError> {
    let run = &shared.run;
    let recorded = store_retry("record outcomes", || {
        run.outbox
            .record(org, &run.owner, outcomes, run.clock.now())
    })
    .await?;
    let mut tally = UploadReport::default();
    let mut failed = Vec::new();
    for (reference, outcome) in outcomes {
        match outcome {
            UploadOutcome::Created { .. } => tally.created += 1,
            UploadOutcome::Duplicate { .. } => tally.duplicate += 1,
            UploadOutcome::Failed { code, field, .. } => {
                tally.failed += 1;
                if code == ATTEMPTS_EXHAUSTED {
                    tally.attempts_exhausted += 1;
                }
                failed.push(FailedOrder {
                    organisation_id: org.to_string(),
                    reference_id: reference.clone(),
                    code: code.clone(),
                    field: field.clone(),
                });
            }
            UploadOutcome::Retry { .. } | UploadOutcome::Unsent { .. } => tally.retry_later += 1,
            // Kept for this run's lookup: counted when the lookup ends.
            UploadOutcome::Lookup {
                keep_lease: true, ..
            } => {}
            UploadOutcome::Lookup { .. } => tally.retry_later += 1,
        }
    }
    // Outcomes we could not record (lease taken over) are finished by the other run.
    if recorded < outcomes.len() {
        tracing::warn!(
            organisation_id = %org,
            lost = outcomes.len() - recorded,
            "some leases were taken over; the other run finishes those orders"
        );
    }
    shared.failed.lock().expect("failed lock").extend(failed);
    let totals = {
        let mut report = shared.report.lock().expect("report lock");
        report.created += tally.created;
        report.duplicate += tally.duplicate;
        report.failed += tally.failed;
        report.attempts_exhausted += tally.attempts_exhausted;
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
    Ok(recorded)
}

fn all(orders: &[Order], sent: Sent) -> Vec<(String, Sent)> {
    orders
        .iter()
        .map(|o| (o.reference_id.clone().unwrap_or_default(), sent.clone()))
        .collect()
}

/// POSTs one batch until it gets an answer per order, the attempts of this run run out, or
/// time does. A whole-request 422 splits the batch in halves so one bad order cannot fail its
/// neighbours.
fn create_orders<'a>(
    shared: &'a Shared,
    org: &'a str,
    orders: &'a [Order],
    blocked: &'a AtomicBool,
    sends_before: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<(String, Sent)>> + Send + 'a>> {
    Box::pin(async move {
        let run = &shared.run;
        let mut attempt = 0u32;
        loop {
            let sent_already = sends_before + attempt > 0;
            let not_now = |reason: String| {
                if sent_already {
                    Sent::Answered(Answer::Again { reason })
                } else {
                    Sent::Unsent { reason }
                }
            };
            if blocked.load(Ordering::Relaxed) {
                return all(orders, not_now("organisation blocked".into()));
            }
            if !run
                .limiter
                .acquire_by(org, Endpoint::Orders, run.stop_at)
                .await
            {
                return all(orders, not_now("run ended before sending".into()));
            }
            shared.add(|r| r.requests += 1);
            let error = match run.api.create_orders(orders).await {
                Ok(response) => {
                    return answers(orders, &response)
                        .into_iter()
                        .map(|(r, a)| (r, Sent::Answered(a)))
                        .collect()
                }
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
                    let sends = sends_before + attempt + 1;
                    let mut outcomes = create_orders(shared, org, left, blocked, sends).await;
                    outcomes.extend(create_orders(shared, org, right, blocked, sends).await);
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
                        Sent::Answered(Answer::Final(UploadOutcome::Failed {
                            code: code.clone(),
                            field: field.clone(),
                            message: Some(message.clone()),
                        })),
                    );
                }
                OrderApiError::Fatal { .. } => {
                    tracing::error!(organisation_id = %org, error = %error, "order upload blocked");
                    blocked.store(true, Ordering::Relaxed);
                    // Refused before it was looked at: the order is not at fault.
                    return all(
                        orders,
                        Sent::Unsent {
                            reason: error.to_string(),
                        },
                    );
                }
            };
            attempt += 1;
            if attempt >= run.config.attempts_per_run || shared.out_of_time(pause) {
                return all(
                    orders,
                    Sent::Answered(Answer::Again {
                        reason: error.to_string(),
                    }),
                );
            }
            tracing::warn!(organisation_id = %org, attempt, pause_ms = pause.as_millis() as u64, error = %error, "order batch retry");
            tokio::time::sleep(pause).await;
        }
    })
}
