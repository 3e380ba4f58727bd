//! DUPLICATE_ORDER reconciliation: `GET /v1/orders/?reference_id=` for orders ChargebackStop
//! already has (created by a run whose answer was lost). The orders are RECONCILE and leased to
//! this run; each lookup goes through the rate limiter within the run's stop time and its
//! outcome is recorded as soon as it is known. What the run has no time for goes back as
//! RECONCILE without a lease, so the next run looks it up (and never POSTs it again).

use super::create::record_outcomes;
use super::Shared;
use crate::domain::rate_limit::Endpoint;
use crate::ports::order_api::OrderApiError;
use crate::ports::order_outbox::UploadOutcome;
use crate::ports::store_error::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) async fn look_up_orders(
    shared: &Shared,
    org: &str,
    references: Vec<String>,
    blocked: &AtomicBool,
) -> Result<(), StoreError> {
    let run = &shared.run;
    let mut left = references.into_iter().peekable();
    let mut attempt = 0u32;
    let mut stopped = String::from("run ended before the lookup");
    while let Some(reference) = left.peek().cloned() {
        if blocked.load(Ordering::Relaxed) {
            stopped = "organisation blocked".into();
            break;
        }
        if !run
            .limiter
            .acquire_by(org, Endpoint::OrderLookup, run.stop_at)
            .await
        {
            break;
        }
        shared.add(|r| {
            r.requests += 1;
            r.lookups += 1;
        });
        let outcome = match run.api.find_order_id(org, &reference).await {
            Ok(Some(order_id)) => UploadOutcome::Duplicate { order_id },
            // ChargebackStop said it has the order but cannot find it: send it again later (a
            // repeat comes back as DUPLICATE_ORDER or creates it); attempts bound this.
            Ok(None) => UploadOutcome::Retry {
                reason: "DUPLICATE_ORDER but no order found by reference".into(),
                retry_at: run.clock.now()
                    + chrono::Duration::from_std(run.config.retry_base)
                        .unwrap_or(chrono::Duration::minutes(1)),
            },
            Err(e) => {
                let pause = match &e {
                    OrderApiError::RateLimited { retry_after } => {
                        shared.add(|r| r.rate_limited += 1);
                        let pause = retry_after.unwrap_or_else(|| shared.backoff(attempt));
                        run.limiter
                            .penalise(org, Endpoint::OrderLookup, pause)
                            .await;
                        // The limiter holds every task back; this one waits in `acquire_by`.
                        std::time::Duration::ZERO
                    }
                    OrderApiError::Retryable(_) => {
                        shared.add(|r| r.server_errors += 1);
                        shared.backoff(attempt)
                    }
                    OrderApiError::Fatal { .. } => {
                        tracing::error!(organisation_id = %org, error = %e, "order lookups blocked");
                        blocked.store(true, Ordering::Relaxed);
                        stopped = e.to_string();
                        break;
                    }
                    OrderApiError::Rejected { .. } => {
                        stopped = e.to_string();
                        break;
                    }
                };
                attempt += 1;
                stopped = format!("lookup failed: {e}");
                if attempt >= run.config.attempts_per_run || shared.out_of_time(pause) {
                    break;
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        attempt = 0;
        left.next();
        record_outcomes(shared, org, &[(reference, outcome)]).await?;
    }
    let rest: Vec<(String, UploadOutcome)> = left
        .map(|reference| {
            (
                reference,
                UploadOutcome::Lookup {
                    reason: stopped.clone(),
                    keep_lease: false,
                },
            )
        })
        .collect();
    if !rest.is_empty() {
        tracing::info!(organisation_id = %org, left = rest.len(), reason = %stopped, "lookups left for the next run");
        record_outcomes(shared, org, &rest).await?;
    }
    Ok(())
}
