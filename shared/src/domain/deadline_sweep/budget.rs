//! How long one scheduled run may work: the Lambda invocation's deadline, less a margin to
//! record progress and return. Work is taken only before `stop_at`; work in flight is cut at
//! `cut_at`; anything this run claims (a pending warning) is held until `ends_at` at most.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct RunBudget {
    /// Take no new work from here on.
    pub stop_at: Instant,
    /// Work still in flight is abandoned here (the next run resumes it).
    pub cut_at: Instant,
    /// The wall-clock end of the invocation.
    pub ends_at: DateTime<Utc>,
}

impl RunBudget {
    /// `left` of the invocation remains at `now`; stop taking work `margin` before its end and
    /// cut work in flight half a margin before it.
    pub fn new(left: Duration, margin: Duration, now: DateTime<Utc>) -> Self {
        let start = Instant::now();
        Self {
            stop_at: start + left.saturating_sub(margin),
            cut_at: start + left.saturating_sub(margin / 2),
            ends_at: now
                .checked_add_signed(chrono::Duration::from_std(left).unwrap_or_default())
                .unwrap_or(now),
        }
    }

    /// From the Lambda context's deadline (epoch milliseconds). `cargo lambda watch` sends the
    /// timeout itself (e.g. 600000) instead of an instant: anything before 2001 is taken as
    /// such a duration. `max_run` caps the run (e.g. to keep runs short in tests).
    pub fn from_lambda_deadline(
        deadline_ms: u64,
        now: DateTime<Utc>,
        margin: Duration,
        max_run: Option<Duration>,
    ) -> Self {
        let deadline_ms = deadline_ms as i64;
        let left_ms = if deadline_ms < 978_307_200_000 {
            deadline_ms.max(0)
        } else {
            (deadline_ms - now.timestamp_millis()).max(0)
        };
        let mut left = Duration::from_millis(left_ms as u64);
        if let Some(max) = max_run {
            left = left.min(max);
        }
        Self::new(left, margin, now)
    }

    /// Whether new work may still be started.
    pub fn has_time(&self) -> bool {
        Instant::now() < self.stop_at
    }

    pub fn remaining(&self) -> Duration {
        self.stop_at.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stops_taking_work_a_margin_before_the_deadline() {
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let deadline = now.timestamp_millis() as u64 + 60_000;
        let b = RunBudget::from_lambda_deadline(deadline, now, Duration::from_secs(10), None);
        assert!(b.has_time());
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(b.has_time());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!b.has_time(), "10 s margin");
        assert!(Instant::now() < b.cut_at, "work in flight still runs");
        assert_eq!(
            b.ends_at,
            "2026-11-24T10:01:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // cargo lambda's timeout-as-deadline, capped by max_run.
        let b = RunBudget::from_lambda_deadline(
            600_000,
            now,
            Duration::from_secs(10),
            Some(Duration::from_secs(20)),
        );
        assert_eq!(b.remaining(), Duration::from_secs(10));
    }
}
