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
}
