//! Configuration every native binary shares, read from the environment at start-up. A missing or
//! bad value stops start-up with a message that names the variable.

use crate::secret::Secret;
use std::sync::Arc;

/// TEST or LIVE: kept with the records (`records::stack_mode`), read from the environment here.
pub use crate::records::stack_mode::StackMode;

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
    /// Every accepted webhook delivery, raw (see `ports::event_archive`).
    pub fn archive(&self) -> String {
        format!("{}-archive", self.prefix)
    }

    /// The partner's transactions indexed for matching alerts (`domain::matching`).
    pub fn transactions(&self) -> String {
        format!("{}-transactions", self.prefix)
    }
    /// Run leases and rate-limit budgets of the scheduled functions.
    pub fn run_state(&self) -> String {
        format!("{}-run-state", self.prefix)
    }
    /// The insights counters (per organisation per day) and their idempotency markers.
    pub fn insights(&self) -> String {
        format!("{}-insights", self.prefix)
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

/// Where the partner API key is read from, in this order:
/// - `CBS_API_KEY_SECRET_ID` (or `CBS_API_KEY_SECRET_ARN`): the name or ARN of a Secrets
///   Manager secret holding the key as a plain string; the cloud's way. Read once at start-up,
///   kept in memory, re-read after a 401 (a rotation needs no deploy);
/// - `CBS_API_KEY`: the key itself, for local runs, tests and the CLI; never re-read.
pub const API_KEY_SECRET_VARS: [&str; 2] = ["CBS_API_KEY_SECRET_ID", "CBS_API_KEY_SECRET_ARN"];

/// What every entry point that calls ChargebackStop as the partner reads first, in this order:
/// TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, then the key (see [`API_KEY_SECRET_VARS`]).
/// Whether the key belongs to the other mode is checked apart: the Lambdas report it as a bad
/// CBS_API_KEY ([`PartnerEnv::refuse_key_of_other_mode`]), the ops API and the CLI with
/// `domain::onboarding::refuse_key_of_other_mode`'s own message. A key re-read from the secret
/// is checked on every read (`client::SecretsManagerKey`).
#[derive(Debug, Clone)]
pub struct PartnerEnv {
    pub tables: TableNames,
    pub mode: StackMode,
    pub api_base_url: String,
    /// The key the clients send: read at start-up (or still being read, see
    /// [`PartnerEnv::from_env_reading_key`]), replaced by a newer one from the secret after a 401.
    pub api_key_source: crate::client::ApiKey,
    /// Where the key came from (`CBS_API_KEY_SECRET_ID`, ... or `CBS_API_KEY`), for messages.
    key_variable: &'static str,
}

impl PartnerEnv {
    /// Reads the environment and the key, before returning (the CLI; a function's init uses
    /// [`from_env_reading_key`](Self::from_env_reading_key)).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(|name, id, mode| {
            let initial = read_secret_at_start_up(&id, mode).map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })?;
            let loader = crate::client::SecretsManagerKey::new(id, Some(mode));
            Ok(crate::client::ApiKey::reloading(initial, Arc::new(loader)))
        })
    }

    /// A function's init: reads the environment and starts reading the key from its secret in
    /// the background, on this runtime and with `aws`'s configuration, so the Secrets Manager
    /// round trip overlaps the rest of init. The clients can be made at once;
    /// [`key_ready`](Self::key_ready) must be awaited before the function takes work.
    pub fn from_env_reading_key(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Self::read(|_, id, mode| {
            let loader = crate::client::SecretsManagerKey::new(id, Some(mode))
                .with_client(aws_sdk_secretsmanager::Client::new(aws));
            Ok(crate::client::ApiKey::read_in_background(Arc::new(loader)))
        })
    }

    fn read(
        from_secret: impl FnOnce(
            &'static str,
            String,
            StackMode,
        ) -> Result<crate::client::ApiKey, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let tables = TableNames::from_env()?;
        let mode = stack_mode()?;
        let api_base_url = required("CBS_API_BASE_URL")?;
        let secret_id = API_KEY_SECRET_VARS
            .iter()
            .find_map(|name| optional(name).map(|id| (*name, id)));
        let (key_variable, api_key_source) = match secret_id {
            Some((name, id)) => (name, from_secret(name, id, mode)?),
            None => {
                let key = required_secret("CBS_API_KEY")?;
                ("CBS_API_KEY", crate::client::ApiKey::fixed(key))
            }
        };
        Ok(Self {
            tables,
            mode,
            api_base_url,
            api_key_source,
            key_variable,
        })
    }

    /// The key as read at start-up; `None` while the first read of
    /// [`from_env_reading_key`](Self::from_env_reading_key) is in flight.
    pub fn api_key(&self) -> Option<Secret> {
        self.api_key_source.secret()
    }

    /// Waits for the key's first read. A secret that cannot be read, or holds no usable key
    /// (empty, a key of the other mode), is an error naming the variable, as `from_env`'s.
    pub async fn key_ready(&self) -> Result<(), ConfigError> {
        self.api_key_source
            .ready()
            .await
            .map(|_| ())
            .map_err(|e| ConfigError::Invalid {
                name: self.key_variable,
                reason: e.to_string(),
            })
    }

    /// A key of the other mode (a LIVE key on a TEST stack, or the reverse) as a bad CBS_API_KEY.
    /// A key read from its secret is checked as it is read (`client::SecretsManagerKey`).
    pub fn refuse_key_of_other_mode(&self) -> Result<(), ConfigError> {
        let Some(key) = self.api_key() else {
            return Ok(());
        };
        crate::domain::onboarding::refuse_key_of_other_mode(self.mode, &key).map_err(|e| {
            ConfigError::Invalid {
                name: "CBS_API_KEY",
                reason: e.to_string(),
            }
        })
    }

    /// The client configuration for this base URL and key (the key shared with every client
    /// made from this environment, so one re-read serves them all).
    pub fn client_config(&self) -> crate::client::ClientConfig {
        crate::client::ClientConfig::new(self.api_base_url.clone(), self.api_key_source.clone())
    }

    /// The ChargebackStop client for this base URL and key, retrying as `retry` says
    /// (`RetryPolicy::none()` where the caller decides on 429/5xx itself).
    pub fn client(
        &self,
        retry: crate::client::RetryPolicy,
    ) -> Result<crate::client::ChargebackStop, crate::client::ApiError> {
        crate::client::ChargebackStop::new(self.client_config().with_retry(retry))
    }
}

/// Reads the key once, before the function takes work (Lambda's init phase). `from_env` is
/// synchronous and may run inside the function's runtime, so the read runs on a thread of its
/// own with its own runtime and SDK client (the loader kept for re-reads makes its client in the
/// function's runtime).
fn read_secret_at_start_up(
    secret_id: &str,
    mode: StackMode,
) -> Result<Secret, crate::client::KeyLoadError> {
    use crate::client::ApiKeyLoader;
    let secret_id = secret_id.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::client::KeyLoadError::Unavailable {
                source_name: secret_id.clone(),
                reason: format!("no runtime to read it with: {e}"),
            })?;
        let loader = crate::client::SecretsManagerKey::new(secret_id, Some(mode));
        runtime.block_on(loader.load())
    })
    .join()
    .unwrap_or_else(|_| {
        Err(crate::client::KeyLoadError::Unavailable {
            source_name: "CBS_API_KEY_SECRET_ID".into(),
            reason: "the reading thread panicked".into(),
        })
    })
}
