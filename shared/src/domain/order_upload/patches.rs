//! PATCH updates (refunds, disputes, status) of orders that already have their `order_id`.

use super::{store_retry, Shared};
use crate::domain::rate_limit::Endpoint;
use crate::ports::order_api::OrderApiError;
use crate::ports::order_outbox::OutboxOrder;
use crate::ports::store_error::StoreError;

/// Sends an uploaded order's waiting PATCH updates, oldest first.
pub(super) async fn send_patches(shared: &Shared, order: OutboxOrder) -> Result<(), StoreError> {
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
            if !run
                .limiter
                .acquire_by(org, Endpoint::OrderUpdate, run.stop_at)
                .await
            {
                break 'updates;
            }
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
                        || attempt >= run.config.attempts_per_run
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
