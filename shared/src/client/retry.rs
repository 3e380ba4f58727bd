//! When and how long to wait before repeating a call: jittered exponential backoff, bounded in
//! attempts and in total time, and `Retry-After` honoured when the API sends it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for each one after.
    pub base_delay: Duration,
    /// No single wait is longer (unless `Retry-After` asks for it within `max_total`).
    pub max_delay: Duration,
    /// The whole call, waits included, never plans to run longer than this: a retry whose wait
    /// would cross it is not made and the last error is returned instead.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts over at most 20 s: fits well inside a Lambda's timeout and the
    /// webhook's 20 s answer window is not involved (the client runs behind the queue).
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_total: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The un-jittered backoff after `attempt` failed attempts (1-based): base * 2^(attempt-1),
    /// capped at `max_delay`.
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// The wait after `attempt` failed attempts: "equal jitter", uniformly between half the
    /// ceiling and the ceiling, so that clients that failed together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_ceiling(attempt);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_micros() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            rand::rng().random_range(0..=spread)
        };
        half + Duration::from_micros(jitter)
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date (RFC 7231).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_total: Duration::from_secs(60),
        };
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(5), Duration::from_millis(1000));
        assert_eq!(p.backoff_ceiling(60), Duration::from_millis(1000));
        for attempt in 1..8 {
            for _ in 0..50 {
                let d = p.backoff(attempt);
                let ceiling = p.backoff_ceiling(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "{d:?} for attempt {attempt}"
                );
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: DateTime<Utc> = "2026-02-17T10:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Tue, 17 Feb 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 17 Feb 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn none_means_one_attempt() {
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }
}
