//! The function's configuration, read once at start-up (README "Configuration"). A missing or
//! bad value stops the function with a message naming the variable; the API key never appears
//! in a message.

use shared::config::{self, ConfigError, StackMode, TableNames};
use shared::domain::alert_policy::AlertPolicy;
use shared::secret::Secret;

#[derive(Debug)]
pub struct ProcessorConfig {
    /// `TABLE_PREFIX`: `<prefix>-events`, `-alerts`, `-enrolments`, `-customers`.
    pub tables: TableNames,
    /// `STACK_MODE`: a TEST stack refuses a LIVE key and the other way round.
    pub mode: StackMode,
    /// `CBS_API_BASE_URL`: the API, or the sandbox locally.
    pub api_base_url: String,
    /// `CBS_API_KEY`: the partner key.
    pub api_key: Secret,
    /// `DEFAULT_ALERT_POLICY` (optional JSON, see `domain::alert_policy`): the policy of
    /// organisations whose customer record has none. Unset: refund only what the partner's
    /// records show refunded, everything else to a person.
    pub default_policy: AlertPolicy,
    // NOTIFY_TOPIC_ARN / NOTIFY_SINK are read by `NotifyTarget::from_env`.
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mode =
            config::required("STACK_MODE")?
                .parse()
                .map_err(|reason| ConfigError::Invalid {
                    name: "STACK_MODE",
                    reason,
                })?;
        let default_policy = match config::optional("DEFAULT_ALERT_POLICY") {
            None => AlertPolicy::default(),
            Some(raw) => serde_json::from_str::<serde_json::Value>(&raw)
                .and_then(|v| AlertPolicy::from_json(&v))
                .map_err(|e| ConfigError::Invalid {
                    name: "DEFAULT_ALERT_POLICY",
                    reason: e.to_string(),
                })?,
        };
        Ok(Self {
            tables: TableNames::from_env()?,
            mode,
            api_base_url: config::required("CBS_API_BASE_URL")?,
            api_key: config::required_secret("CBS_API_KEY")?,
            default_policy,
        })
    }
}
