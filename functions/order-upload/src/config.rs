//! The order upload's configuration, read once at start-up (README "Configuration" plus the
//! knobs below). A missing or bad value stops start-up with a message naming the variable.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ORDER_BATCH_SIZE` | 100 | orders per `POST /v1/orders/` (1..=100) |
//! | `ORDER_RATE_LIMIT` | `100/60s` | ChargebackStop's limit per endpoint and pool; the upload uses 98 % of it with a burst of one request (`RateLimit::ORDER_UPLOAD`) |
//! | `ORDER_RATE_POOL` | `partner` | `partner` (a partner-group key: one pool for all organisations) or `organisation` |
//! | `ORDER_LEASE_SECS` | 300 | how long a run holds an order; must exceed the function timeout |
//! | `ORDER_IN_FLIGHT` | 4 | batches of one pool in flight at once |
//! | `ORDER_MAX_ATTEMPTS` | 8 | runs that may try to send one order; then FAILED (`ATTEMPTS_EXHAUSTED`) with the last reason, notified |
//! | `ORDER_RETRY_SECS` | 60 | an order a run could not send waits this long, doubling per attempt (at most an hour), and moves back in the pending-index |
//! | `ORDER_STOP_MARGIN_SECS` | 15 | stop taking work this long before the Lambda deadline |
//! | `ORDER_MAX_RUN_SECS` | (the deadline) | stop taking work after this long even if the deadline is later |
//!
//! Notifications (orders that end FAILED): `NOTIFY_TOPIC_ARN` or `NOTIFY_SINK`.

use shared::adapters::notify::NotifyTarget;
use shared::config::{self, ConfigError, PartnerEnv};
use shared::domain::order_upload::UploadConfig;
use shared::domain::rate_limit::{parse_rate_limit, PoolScope, RateLimit};
use std::time::Duration;

pub struct Config {
    /// TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY.
    pub partner: PartnerEnv,
    pub upload: UploadConfig,
    pub rate_limit: RateLimit,
    pub pool: PoolScope,
    pub stop_margin: Duration,
    pub max_run: Option<Duration>,
    pub notify: NotifyTarget,
}

impl Config {
    /// The API key's first read starts here, in the background, with `aws`'s clients
    /// (`PartnerEnv::from_env_reading_key`); `main` waits for it at the end of init.
    pub fn from_env(aws: &shared::adapters::aws::SdkConfig) -> Result<Self, ConfigError> {
        let partner = PartnerEnv::from_env_reading_key(aws)?;
        partner.refuse_key_of_other_mode()?;
        let rate_limit = match config::optional("ORDER_RATE_LIMIT") {
            None => RateLimit::ORDER_UPLOAD,
            Some(raw) => parse_rate_limit(&raw, RateLimit::ORDER_UPLOAD).map_err(|reason| {
                ConfigError::Invalid {
                    name: "ORDER_RATE_LIMIT",
                    reason,
                }
            })?,
        };
        let batch_size: usize = config::parsed("ORDER_BATCH_SIZE", 100)?;
        if !(1..=100).contains(&batch_size) {
            return Err(ConfigError::Invalid {
                name: "ORDER_BATCH_SIZE",
                reason: format!("{batch_size} is not between 1 and 100"),
            });
        }
        let defaults = UploadConfig::default();
        let upload = UploadConfig {
            batch_size,
            lease: Duration::from_secs(config::parsed("ORDER_LEASE_SECS", 300u64)?),
            in_flight_per_org: config::parsed("ORDER_IN_FLIGHT", 4usize)?,
            max_attempts: config::parsed("ORDER_MAX_ATTEMPTS", defaults.max_attempts)?,
            retry_base: Duration::from_secs(config::parsed("ORDER_RETRY_SECS", 60u64)?),
            ..defaults
        };
        if upload.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                name: "ORDER_MAX_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            partner,
            upload,
            rate_limit,
            pool: config::parsed("ORDER_RATE_POOL", PoolScope::PartnerGroup)?,
            stop_margin: Duration::from_secs(config::parsed("ORDER_STOP_MARGIN_SECS", 15u64)?),
            max_run: config::optional("ORDER_MAX_RUN_SECS")
                .map(|raw| {
                    raw.parse::<u64>()
                        .map(Duration::from_secs)
                        .map_err(|e| ConfigError::Invalid {
                            name: "ORDER_MAX_RUN_SECS",
                            reason: e.to_string(),
                        })
                })
                .transpose()?,
            notify: NotifyTarget::from_env()?,
        })
    }
}
