//! Configuration every native binary shares, read from the environment at start-up. A missing or
//! bad value stops start-up with a message that names the variable.

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn required_secret(name: &'static str) -> Result<Secret, ConfigError> {
    required(name).map(Secret::new)
}

pub fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// TEST or LIVE: each stack is one mode and refuses the other's ids and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StackMode {
    Test,
    Live,
}

impl std::str::FromStr for StackMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TEST" => Ok(StackMode::Test),
            "LIVE" => Ok(StackMode::Live),
            other => Err(format!("expected TEST or LIVE, got {other:?}")),
        }
    }
}

/// Names of the DynamoDB tables, all `<TABLE_PREFIX>-<name>` (see README "State in DynamoDB").
#[derive(Debug, Clone)]
pub struct TableNames {
    prefix: String,
}

impl TableNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        required("TABLE_PREFIX").map(Self::new)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn events(&self) -> String {
        format!("{}-events", self.prefix)
    }
    pub fn alerts(&self) -> String {
        format!("{}-alerts", self.prefix)
    }
    pub fn enrolments(&self) -> String {
        format!("{}-enrolments", self.prefix)
    }
    pub fn orders(&self) -> String {
        format!("{}-orders", self.prefix)
    }
    pub fn customers(&self) -> String {
        format!("{}-customers", self.prefix)
    }
    pub fn operators(&self) -> String {
        format!("{}-operators", self.prefix)
    }
    /// Run leases and rate-limit budgets of the scheduled functions.
    pub fn run_state(&self) -> String {
        format!("{}-run-state", self.prefix)
    }
}

/// STACK_MODE, required: TEST or LIVE.
pub fn stack_mode() -> Result<StackMode, ConfigError> {
    required("STACK_MODE")?
        .parse()
        .map_err(|reason| ConfigError::Invalid {
            name: "STACK_MODE",
            reason,
        })
}

/// What every entry point that calls ChargebackStop as the partner reads first, in this order:
/// TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY. Whether the key belongs to the other
/// mode is checked apart: the Lambdas report it as a bad CBS_API_KEY
/// ([`PartnerEnv::refuse_key_of_other_mode`]), the ops API and the CLI with
/// `domain::onboarding::refuse_key_of_other_mode`'s own message.
#[derive(Debug, Clone)]
pub struct PartnerEnv {
    pub tables: TableNames,
    pub mode: StackMode,
    pub api_base_url: String,
    pub api_key: Secret,
}

impl PartnerEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames::from_env()?,
            mode: stack_mode()?,
            api_base_url: required("CBS_API_BASE_URL")?,
            api_key: required_secret("CBS_API_KEY")?,
        })
    }

    /// A key of the other mode (a LIVE key on a TEST stack, or the reverse) as a bad CBS_API_KEY.
    pub fn refuse_key_of_other_mode(&self) -> Result<(), ConfigError> {
        crate::domain::onboarding::refuse_key_of_other_mode(self.mode, &self.api_key).map_err(|e| {
            ConfigError::Invalid {
                name: "CBS_API_KEY",
                reason: e.to_string(),
            }
        })
    }

    /// The ChargebackStop client for this base URL and key, retrying as `retry` says
    /// (`RetryPolicy::none()` where the caller decides on 429/5xx itself).
    pub fn client(
        &self,
        retry: crate::client::RetryPolicy,
    ) -> Result<crate::client::ChargebackStop, crate::client::ApiError> {
        crate::client::ChargebackStop::new(
            crate::client::ClientConfig::new(self.api_base_url.clone(), self.api_key.clone())
                .with_retry(retry),
        )
    }
}
