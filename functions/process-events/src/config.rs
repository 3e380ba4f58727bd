//! The function's configuration, read once at start-up (README "Configuration"). A missing or
//! bad value stops the function with a message naming the variable; the API key never appears
//! in a message.

use shared::config::{self, ConfigError, PartnerEnv};
use shared::domain::alert_policy::AlertPolicy;
use shared::domain::event_processing::redelivery::RedeliveryBackoff;

#[derive(Debug)]
pub struct ProcessorConfig {
    /// `TABLE_PREFIX`, `STACK_MODE`, `CBS_API_BASE_URL`, `CBS_API_KEY`: read as every function
    /// reads them. A TEST stack refuses a LIVE key and the other way round (see `wiring`).
    pub partner: PartnerEnv,
    /// `DEFAULT_ALERT_POLICY` (optional JSON, see `domain::alert_policy`): the policy of
    /// organisations whose customer record has none. Unset: refund only what the partner's
    /// records show refunded, everything else to a person.
    pub default_policy: AlertPolicy,
    /// `EDGE_QUEUE_URL`: the queue this function consumes; failed messages get their
    /// visibility set here (ChangeMessageVisibility), the backoff below.
    pub edge_queue_url: String,
    /// `EDGE_DLQ_URL`: poison messages and given-up events are sent here at once, with a
    /// `reason` attribute.
    pub edge_dlq_url: String,
    /// `EVENT_RETRY_BASE_SECS` (30) and `EVENT_RETRY_MAX_SECS` (900): a failed message comes
    /// back after base x 2^(receives - 1) seconds, at most max (see `redelivery`).
    pub backoff: RedeliveryBackoff,
    /// `EVENT_STOP_MARGIN_SECS` (10): no new record is started with less than this left of the
    /// invocation; the rest are handed back untried.
    pub stop_margin: std::time::Duration,
    /// `EVENT_NOT_FOUND_RETRY_SECS` (3600): how long after an event's `created_at` a 404 on its
    /// alert or enrolment is still retried before the event is dead-lettered.
    pub not_found_retry_for: chrono::Duration,
    /// `ARCHIVE_RETENTION_DAYS` (400): how long every accepted delivery is kept raw in the
    /// archive table (its TTL).
    pub archive_retention_days: u32,
    // NOTIFY_TOPIC_ARN / NOTIFY_SINK are read by `NotifyTarget::from_env`.
}

impl ProcessorConfig {
    /// The API key's first read starts here, in the background, with `aws`'s clients
    /// (`PartnerEnv::from_env_reading_key`); `wiring` waits for it at the end of init.
    pub fn from_env(aws: &shared::adapters::aws::SdkConfig) -> Result<Self, ConfigError> {
        let partner = PartnerEnv::from_env_reading_key(aws)?;
        // The one loader every function shares (validated; names the field on error).
        let default_policy = AlertPolicy::default_from_env()?;
        let defaults = RedeliveryBackoff::default();
        let backoff = RedeliveryBackoff {
            base_secs: config::parsed("EVENT_RETRY_BASE_SECS", defaults.base_secs)?,
            max_secs: config::parsed("EVENT_RETRY_MAX_SECS", defaults.max_secs)?,
        };
        if backoff.base_secs == 0 || backoff.max_secs < backoff.base_secs {
            return Err(ConfigError::Invalid {
                name: "EVENT_RETRY_MAX_SECS",
                reason: "EVENT_RETRY_BASE_SECS must be at least 1 and at most EVENT_RETRY_MAX_SECS"
                    .into(),
            });
        }
        Ok(Self {
            partner,
            default_policy,
            edge_queue_url: config::required("EDGE_QUEUE_URL")?,
            edge_dlq_url: config::required("EDGE_DLQ_URL")?,
            backoff,
            stop_margin: std::time::Duration::from_secs(config::parsed(
                "EVENT_STOP_MARGIN_SECS",
                10u64,
            )?),
            not_found_retry_for: chrono::Duration::seconds(config::parsed(
                "EVENT_NOT_FOUND_RETRY_SECS",
                3600i64,
            )?),
            archive_retention_days: config::parsed(
                "ARCHIVE_RETENTION_DAYS",
                shared::ports::event_archive::DEFAULT_ARCHIVE_RETENTION_DAYS,
            )?,
        })
    }
}
