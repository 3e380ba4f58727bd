//! One run at a time per scheduled function. A run takes the function's lease (one conditional
//! write to `<prefix>-run-state`) before any work and gives it back at the end; a run that
//! finds it held exits at once and says who holds it. The lease ends by itself at the holder's
//! invocation deadline, so a killed run blocks the next one only until then.
//!
//! The Lambda side has the same rule twice over (reserved concurrency 1, no async retries in
//! `infra/template.yaml`); the lease makes it hold locally, for `cbs upload-orders`, and for
//! the moments where Lambda's own rules do not (a retry beside the next scheduled run).

use crate::clock::Clock;
use crate::ports::run_state::{LeaseHolder, LeaseTaken, RunLeases};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;

/// What a run under a lease did.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclusive<T> {
    Ran(T),
    /// Another run holds the lease: nothing was done.
    Busy(LeaseHolder),
}

/// Runs `work` only if `owner` can take `name`'s lease until `until`, then releases it (also
/// when `work` fails). A failed release is logged: the lease expires at `until` anyway.
pub async fn exclusive<T, E, F>(
    leases: &dyn RunLeases,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    work: F,
) -> Result<Exclusive<T>, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<StoreError>,
{
    match leases.acquire(name, owner, now, until).await? {
        LeaseTaken::HeldBy(holder) => {
            tracing::warn!(
                lease = name,
                holder = %holder.owner,
                until = %holder.until,
                "another run holds the lease; this run does nothing"
            );
            Ok(Exclusive::Busy(holder))
        }
        LeaseTaken::Acquired => {
            let result = work.await;
            if let Err(e) = leases.release(name, owner).await {
                tracing::warn!(lease = name, error = %e, "could not release the run lease; it expires by itself");
            }
            result.map(Exclusive::Ran)
        }
    }
}

/// How long a scheduled run's lease lasts before its renewal: a run killed mid-work (a crash, a
/// Lambda timeout, a killed process) blocks the next run for at most this long, instead of until
/// its invocation's deadline.
pub const RUN_LEASE_TTL: Duration = Duration::from_secs(30);

/// As `exclusive`, for a run with no fixed end (`cbs upload-orders`): the lease lasts `ttl` and
/// is renewed every `ttl / 3` while `work` goes on, so a killed run blocks the next one for at
/// most `ttl`.
pub async fn exclusive_renewed<T, E, F>(
    leases: &dyn RunLeases,
    name: &str,
    owner: &str,
    clock: &dyn Clock,
    ttl: Duration,
    work: F,
) -> Result<Exclusive<T>, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<StoreError>,
{
    let ttl_chrono = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5));
    let now = clock.now();
    let renew = async {
        #[allow(clippy::infinite_loop)]
        loop {
            tokio::time::sleep(ttl / 3).await;
            let now = clock.now();
            match leases.acquire(name, owner, now, now + ttl_chrono).await {
                Ok(LeaseTaken::Acquired) => {}
                Ok(LeaseTaken::HeldBy(h)) => {
                    tracing::error!(lease = name, holder = %h.owner, "the run lease was taken over while this run went on")
                }
                Err(e) => tracing::warn!(lease = name, error = %e, "could not renew the run lease"),
            }
        }
    };
    let work = async {
        tokio::select! {
            result = work => result,
            _ = renew => unreachable!("the renewal loop never ends"),
        }
    };
    exclusive(leases, name, owner, now, now + ttl_chrono, work).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory_run_state::MemoryRunState;
    use std::sync::Arc;
    use std::time::Duration;

    fn now() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn two_overlapping_runs_one_works_the_other_exits_at_once_naming_the_holder() {
        let leases = Arc::new(MemoryRunState::default());
        let until = now() + chrono::Duration::minutes(1);
        let worked = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let run = |owner: &'static str| {
            let (leases, worked) = (leases.clone(), worked.clone());
            async move {
                let started = tokio::time::Instant::now();
                let out = exclusive(&*leases, "order-upload", owner, now(), until, async {
                    worked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, StoreError>(owner)
                })
                .await
                .unwrap();
                (out, started.elapsed())
            }
        };
        let (a, b) = tokio::join!(run("run-a"), run("run-b"));
        assert_eq!(worked.load(std::sync::atomic::Ordering::SeqCst), 1);
        let (ran, busy) = if matches!(a.0, Exclusive::Ran(_)) {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(ran.1, Duration::from_secs(30));
        let Exclusive::Busy(holder) = busy.0 else {
            panic!("both ran")
        };
        assert_eq!(busy.1, Duration::ZERO, "the second run exits at once");
        assert_eq!(Exclusive::Ran(holder.owner.as_str()), ran.0);
        // Released at the end: the next run goes ahead.
        let next = exclusive(&*leases, "order-upload", "run-c", now(), until, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        assert_eq!(next, Exclusive::Ran(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_lease_outlives_its_ttl_while_the_run_goes_on() {
        let leases = Arc::new(MemoryRunState::default());
        let clock = Arc::new(crate::clock::FixedClock::at(now()));
        let ttl = Duration::from_secs(3);
        let long_run = {
            let (leases, clock) = (leases.clone(), clock.clone());
            async move {
                exclusive_renewed(&*leases, "order-upload", "cli", &*clock, ttl, async {
                    for _ in 0..10 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        clock.advance(chrono::Duration::seconds(1));
                    }
                    Ok::<_, StoreError>(())
                })
                .await
                .unwrap()
            }
        };
        let probe = {
            let (leases, clock) = (leases.clone(), clock.clone());
            async move {
                // 8 s in: far past the first 3 s lease, still held thanks to the renewals.
                tokio::time::sleep(Duration::from_millis(8500)).await;
                leases
                    .acquire("order-upload", "lambda", clock.now(), clock.now())
                    .await
                    .unwrap()
            }
        };
        let (ran, probed) = tokio::join!(long_run, probe);
        assert_eq!(ran, Exclusive::Ran(()));
        assert!(
            matches!(&probed, LeaseTaken::HeldBy(h) if h.owner == "cli"),
            "{probed:?}"
        );
    }

    #[tokio::test]
    async fn a_lease_left_by_a_killed_run_expires() {
        let leases = MemoryRunState::default();
        let until = now() + chrono::Duration::minutes(1);
        assert_eq!(
            leases
                .acquire("sweep", "killed", now(), until)
                .await
                .unwrap(),
            LeaseTaken::Acquired
        );
        assert!(matches!(
            leases
                .acquire("sweep", "next", now() + chrono::Duration::seconds(30), until)
                .await
                .unwrap(),
            LeaseTaken::HeldBy(h) if h.owner == "killed"
        ));
        let later = now() + chrono::Duration::minutes(2);
        assert_eq!(
            leases
                .acquire("sweep", "next", later, later + chrono::Duration::minutes(1))
                .await
                .unwrap(),
            LeaseTaken::Acquired
        );
        // Functions do not share a lease.
        assert_eq!(
            leases
                .acquire("order-upload", "other", now(), until)
                .await
                .unwrap(),
            LeaseTaken::Acquired
        );
    }
}
