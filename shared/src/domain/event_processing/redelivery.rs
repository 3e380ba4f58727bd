//! When a failed message comes back, and what dead-lettering tells operations.
//!
//! SQS counts *every* receive of a message against the queue's maxReceiveCount, whether the
//! function tried it or not. So a failed message is not left to the queue's visibility timeout
//! (180 s x maxReceiveCount 5 used to dead-letter events after 15 minutes of an API or DynamoDB
//! outage); the processor sets its visibility itself (ChangeMessageVisibility), growing
//! exponentially with its receive count up to a cap, and maxReceiveCount is sized from this
//! schedule (`receives_to_outlast`). Messages never tried in a batch (held back behind a failed
//! message of their FIFO group, or left when the invocation ran short of time) are handed back
//! with visibility 0: they still used a receive, which the sizing allows for.

use crate::ports::event_log::iso;
use crate::ports::notifier::OpsNotification;
use chrono::{DateTime, Utc};

/// The backoff of a failed message: `base_secs x 2^(receive_count - 1)`, at most `max_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryBackoff {
    pub base_secs: u32,
    pub max_secs: u32,
}

/// SQS refuses a visibility timeout above 12 hours.
pub const SQS_MAX_VISIBILITY_SECS: u32 = 43_200;

impl Default for RedeliveryBackoff {
    /// 30 s, 60 s, 2 m, 4 m, 8 m, then every 15 m: a 2-hour outage costs 13 receives, and the
    /// first attempt after an outage comes at most 15 minutes after it ended.
    fn default() -> Self {
        Self {
            base_secs: 30,
            max_secs: 900,
        }
    }
}

impl RedeliveryBackoff {
    /// The visibility timeout to give a message that failed on its `receive_count`-th receive.
    pub fn visibility_after(&self, receive_count: u32) -> u32 {
        let doublings = receive_count.saturating_sub(1).min(31);
        let delay = u64::from(self.base_secs.max(1)) << doublings;
        delay.min(u64::from(self.max_secs.min(SQS_MAX_VISIBILITY_SECS))) as u32
    }

    /// How many receives a message needs to outlast an outage of `outage_secs` that starts at
    /// its first receive and fails every attempt: the failed attempts plus the first one after
    /// the outage (processing time only adds to the gaps, so this is an upper bound).
    pub fn receives_to_outlast(&self, outage_secs: u64) -> u32 {
        let mut waited: u64 = 0;
        let mut receives = 1;
        while waited < outage_secs {
            waited += u64::from(self.visibility_after(receives));
            receives += 1;
        }
        receives
    }

    /// The maxReceiveCount that lets every message outlast such an outage: a message held back
    /// behind a failing head of its FIFO group is received with it each time, then needs its own
    /// attempts (twice `receives_to_outlast`), plus one hand-back per other record of a batch
    /// when invocations run short of time (`batch_size - 1`).
    pub fn max_receive_count_for(&self, outage_secs: u64, batch_size: u32) -> u32 {
        2 * self.receives_to_outlast(outage_secs) + batch_size.saturating_sub(1)
    }
}

/// Where the age of an event is counted from when deciding how long to retry a 404: the
/// event's own `created_at`, else when the edge received it, else when it was queued.
pub fn event_origin(
    created_at: &str,
    received_at: Option<&str>,
    sent_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    parse(created_at)
        .or_else(|| received_at.and_then(parse))
        .or(sent_at)
}

/// What operations hear about a message sent to the dead-letter queue.
pub fn dead_letter_notification(
    event_id: Option<&str>,
    message_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> OpsNotification {
    let object_id = event_id.unwrap_or(message_id).to_string();
    OpsNotification {
        kind: "event.dead_lettered".into(),
        subject: format!("Webhook event {object_id} sent to the dead-letter queue"),
        organisation_id: None,
        object_id,
        status: Some("DEAD_LETTERED".into()),
        note: Some(format!("{reason} (SQS message {message_id})")),
        at: iso(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = RedeliveryBackoff::default();
        let schedule: Vec<u32> = (1..=8).map(|n| b.visibility_after(n)).collect();
        assert_eq!(schedule, vec![30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(b.visibility_after(0), 30);
        assert_eq!(b.visibility_after(u32::MAX), 900);
        let huge = RedeliveryBackoff {
            base_secs: 60,
            max_secs: 100_000,
        };
        assert_eq!(huge.visibility_after(40), SQS_MAX_VISIBILITY_SECS);
    }

    /// The arithmetic behind the template's maxReceiveCount (infra/template.yaml, README).
    #[test]
    fn a_two_hour_outage_fits_the_templates_max_receive_count() {
        let b = RedeliveryBackoff::default();
        // 30+60+120+240+480 = 930 s after 5 failures, then 900 s each: 12 failures cover
        // 7,230 s >= 7,200 s, the 13th receive succeeds.
        assert_eq!(b.receives_to_outlast(7_200), 13);
        assert_eq!(b.max_receive_count_for(7_200, 10), 35);
        const TEMPLATE_MAX_RECEIVE_COUNT: u32 = 50;
        assert!(b.max_receive_count_for(7_200, 10) <= TEMPLATE_MAX_RECEIVE_COUNT);
        // The old settings: every receive burnt after the 180 s visibility timeout, 5 receives.
        assert!(5 * 180 < 7_200);
        // With 50 receives a message keeps being retried for about 11 hours.
        let covered: u64 = (1..TEMPLATE_MAX_RECEIVE_COUNT)
            .map(|n| u64::from(b.visibility_after(n)))
            .sum();
        assert!(covered > 11 * 3600, "{covered}");
    }

    #[test]
    fn the_origin_is_the_events_own_time_when_it_parses() {
        let sent: DateTime<Utc> = "2026-11-24T10:05:00Z".parse().unwrap();
        assert_eq!(
            event_origin(
                "2026-11-24T10:00:00Z",
                Some("2026-11-24T10:01:00Z"),
                Some(sent)
            ),
            Some("2026-11-24T10:00:00Z".parse().unwrap())
        );
        assert_eq!(
            event_origin("yesterday", Some("2026-11-24T10:01:00.000Z"), Some(sent)),
            Some("2026-11-24T10:01:00Z".parse().unwrap())
        );
        assert_eq!(event_origin("x", None, Some(sent)), Some(sent));
        assert_eq!(event_origin("x", Some("y"), None), None);
    }
}
