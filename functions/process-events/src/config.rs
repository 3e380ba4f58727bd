//! The function's configuration, read once at start-up (README "Configuration"). A missing or
//! bad value stops the function with a message naming the variable; the API key never appears
//! in a message.

use shared::config::{ConfigError, PartnerEnv};
use shared::domain::alert_policy::AlertPolicy;

#[derive(Debug)]
pub struct ProcessorConfig {
    /// `TABLE_PREFIX`, `STACK_MODE`, `CBS_API_BASE_URL`, `CBS_API_KEY`: read as every function
    /// reads them. A TEST stack refuses a LIVE key and the other way round (see `wiring`).
    pub partner: PartnerEnv,
    /// `DEFAULT_ALERT_POLICY` (optional JSON, see `domain::alert_policy`): the policy of
    /// organisations whose customer record has none. Unset: refund only what the partner's
    /// records show refunded, everything else to a person.
    pub default_policy: AlertPolicy,
    // NOTIFY_TOPIC_ARN / NOTIFY_SINK are read by `NotifyTarget::from_env`.
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let partner = PartnerEnv::from_env()?;
        // The one loader every function shares (validated; names the field on error).
        let default_policy = AlertPolicy::default_from_env()?;
        Ok(Self {
            partner,
            default_policy,
        })
    }
}
