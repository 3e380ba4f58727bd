//! How long an order backlog takes to upload: the figure `cbs upload-orders` prints before a
//! backfill and `cbs-bench orders` checks against the time a run really takes.
//!
//! The limiter decides it: each pool (one per organisation, or one for a partner-group key)
//! sends its burst at once, then `refill_per_sec`. Orders to create need one request per batch;
//! orders to reconcile (ChargebackStop answered DUPLICATE_ORDER) one lookup each, from the
//! lookup's own budget (`Endpoint::OrderLookup`), side by side with the creates. Duplicates
//! found during the run add lookups, which only lengthen the run when they outnumber the
//! creates' requests.

use crate::domain::rate_limit::{PoolScope, RateLimit};
use std::time::Duration;

/// One organisation's backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Orders waiting to be created (PENDING, or LEASED by a run that died).
    pub to_create: u64,
    /// Orders waiting for a DUPLICATE_ORDER lookup (RECONCILE).
    pub to_reconcile: u64,
}

impl Backlog {
    /// `POST /v1/orders/` requests with `batch_size` orders each.
    pub fn create_requests(&self, batch_size: usize) -> u64 {
        self.to_create.div_ceil(batch_size.max(1) as u64)
    }

    /// Requests this backlog needs, creates and lookups.
    pub fn requests(&self, batch_size: usize) -> u64 {
        self.create_requests(batch_size) + self.to_reconcile
    }
}

/// What a backlog will take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub orders: u64,
    pub requests: u64,
    /// The busiest pool's requests (creates or lookups; with a partner-group key, every
    /// organisation's together).
    pub busiest_pool_requests: u64,
    pub duration: Duration,
}

impl Estimate {
    /// Orders per minute the estimate implies.
    pub fn orders_per_minute(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs <= 0.0 {
            return self.orders as f64;
        }
        self.orders as f64 * 60.0 / secs
    }
}

/// The time `backlogs` (one per organisation) take under `limit` shared as `scope` says.
pub fn estimate(
    backlogs: &[Backlog],
    limit: &RateLimit,
    scope: PoolScope,
    batch_size: usize,
) -> Estimate {
    let orders = backlogs.iter().map(|b| b.to_create + b.to_reconcile).sum();
    let requests: u64 = backlogs.iter().map(|b| b.requests(batch_size)).sum();
    // Per pool: the creates' and the lookups' requests, each under its own limit.
    let pools: Vec<(u64, u64)> = match scope {
        PoolScope::PartnerGroup => vec![(
            backlogs.iter().map(|b| b.create_requests(batch_size)).sum(),
            backlogs.iter().map(|b| b.to_reconcile).sum(),
        )],
        PoolScope::Organisation => backlogs
            .iter()
            .map(|b| (b.create_requests(batch_size), b.to_reconcile))
            .collect(),
    };
    let busiest_pool_requests = pools
        .iter()
        .map(|(creates, lookups)| *creates.max(lookups))
        .max()
        .unwrap_or(0);
    let after_burst = (busiest_pool_requests as f64 - limit.burst()).max(0.0);
    Estimate {
        orders,
        requests,
        busiest_pool_requests,
        duration: Duration::from_secs_f64(after_burst / limit.refill_per_sec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(to_create: u64) -> Backlog {
        Backlog {
            to_create,
            to_reconcile: 0,
        }
    }

    #[test]
    fn a_million_orders_take_about_102_minutes_at_98_requests_a_minute() {
        let e = estimate(
            &[backlog(1_000_000)],
            &RateLimit::ORDER_UPLOAD,
            PoolScope::PartnerGroup,
            100,
        );
        assert_eq!(e.requests, 10_000);
        // 99 budget, burst 1: 98 a minute after the first request.
        let minutes = e.duration.as_secs_f64() / 60.0;
        assert!((102.0..102.1).contains(&minutes), "{minutes}");
        assert!((e.orders_per_minute() - 9_800.0).abs() < 10.0);
    }

    #[test]
    fn lookups_run_beside_the_creates_in_their_own_pool() {
        let with = |to_reconcile| {
            estimate(
                &[Backlog {
                    to_create: 10_000,
                    to_reconcile,
                }],
                &RateLimit::ORDER_UPLOAD,
                PoolScope::PartnerGroup,
                100,
            )
        };
        let plain = with(0);
        assert_eq!(with(100).requests, plain.requests + 100);
        // 100 lookups beside 100 creates: no longer.
        assert_eq!(with(100).duration, plain.duration);
        // 300 lookups: the lookups' pool is the busier one.
        assert_eq!(with(300).busiest_pool_requests, 300);
        assert!(with(300).duration > plain.duration);
    }

    #[test]
    fn organisations_with_their_own_pools_take_as_long_as_the_busiest() {
        let backlogs = [backlog(50_000), backlog(10_000), backlog(0)];
        let own = estimate(
            &backlogs,
            &RateLimit::ORDER_UPLOAD,
            PoolScope::Organisation,
            100,
        );
        let shared = estimate(
            &backlogs,
            &RateLimit::ORDER_UPLOAD,
            PoolScope::PartnerGroup,
            100,
        );
        assert_eq!(own.busiest_pool_requests, 500);
        assert_eq!(shared.busiest_pool_requests, 600);
        assert!(own.duration < shared.duration);
        assert_eq!(
            estimate(
                &[backlog(0)],
                &RateLimit::ORDER_UPLOAD,
                PoolScope::PartnerGroup,
                100
            )
            .duration,
            Duration::ZERO
        );
    }
}
