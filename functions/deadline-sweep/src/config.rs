//! The deadline sweep's configuration, read once at start-up (README "Configuration" plus the
//! knobs below). A missing or bad value stops start-up with a message naming the variable.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `DEFAULT_ALERT_POLICY` | refund only partner refunds | the policy of organisations whose customer record has none (shared with process-events) |
//! | `SWEEP_WARN_THRESHOLDS` | `48h,24h,4h` | warn operations once per alert per threshold before its deadline |
//! | `SWEEP_CUTOFF` | the organisation's policy (120 min) | act this long before the deadline; overrides every policy |
//! | `SWEEP_DEFAULT_ACTION` | `ACCEPT_DISPUTE` | the action when the organisation's policy names none |
//! | `SWEEP_MAX_ALERTS` | 10000 | most alerts one run reads from the deadline-index |
//! | `SWEEP_CONCURRENCY` | 4 | alerts handled at once (API calls in flight) |
//! | `SWEEP_STOP_MARGIN_SECS` | 10 | stop taking new work this long before the invocation's deadline |
//! | `SWEEP_MAX_RUN_SECS` | (none) | cap one run below the invocation's timeout |
//! | `RECONCILE` | `on` | poll alerts (every status) and enrolments for changes whose webhook never came |
//! | `RECONCILE_ORGANISATION_IDS` | (none) | organisations to poll besides those in the customers table |
//! | `RECONCILE_PAGE_SIZE` | 100 | items asked per page of that poll (the API may return fewer) |
//! | `RECONCILE_LOOKBACK` | `7d` | alerts received this long ago or less are read each pass |
//! | `NOTIFY_TOPIC_ARN` / `NOTIFY_SINK` | required | where warnings and auto-actions are reported |

use shared::adapters::notify::NotifyTarget;
use shared::config::{self, ConfigError, PartnerEnv};
use shared::domain::alert_policy::AlertPolicy;
use shared::domain::deadline_sweep::{SweepConfig, Threshold};
use shared::domain::rate_limit::parse_duration;
use shared::models::alert::AlertAction;
use std::time::Duration;

pub struct Config {
    /// TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY.
    pub partner: PartnerEnv,
    pub default_policy: AlertPolicy,
    pub sweep: SweepConfig,
    pub stop_margin: Duration,
    pub max_run: Option<Duration>,
    pub reconcile: bool,
    pub reconcile_organisations: Vec<String>,
    pub reconcile_page_size: u32,
    pub reconcile_lookback: chrono::Duration,
    pub notify: NotifyTarget,
}

fn invalid(name: &'static str) -> impl Fn(String) -> ConfigError {
    move |reason| ConfigError::Invalid { name, reason }
}

fn duration(name: &'static str) -> Result<Option<chrono::Duration>, ConfigError> {
    config::optional(name)
        .map(|raw| {
            parse_duration(&raw)
                .and_then(|d| chrono::Duration::from_std(d).map_err(|e| e.to_string()))
                .map_err(invalid(name))
        })
        .transpose()
}

impl Config {
    /// The API key's first read starts here, in the background, with `aws`'s clients
    /// (`PartnerEnv::from_env_reading_key`); `main` waits for it at the end of init.
    pub fn from_env(aws: &shared::adapters::aws::SdkConfig) -> Result<Self, ConfigError> {
        let partner = PartnerEnv::from_env_reading_key(aws)?;
        partner.refuse_key_of_other_mode()?;
        let thresholds = Threshold::parse_list(
            &config::optional("SWEEP_WARN_THRESHOLDS").unwrap_or_else(|| "48h,24h,4h".into()),
        )
        .map_err(invalid("SWEEP_WARN_THRESHOLDS"))?;
        let cutoff = duration("SWEEP_CUTOFF")?;
        let default_action = match config::optional("SWEEP_DEFAULT_ACTION").as_deref() {
            None | Some("ACCEPT_DISPUTE") => AlertAction::AcceptDispute,
            Some("REFUND") => AlertAction::Refund,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SWEEP_DEFAULT_ACTION",
                    reason: format!("expected REFUND or ACCEPT_DISPUTE, got {other:?}"),
                })
            }
        };
        let reconcile = match config::optional("RECONCILE").as_deref() {
            None | Some("on") | Some("true") | Some("1") => true,
            Some("off") | Some("false") | Some("0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "RECONCILE",
                    reason: format!("expected on or off, got {other:?}"),
                })
            }
        };
        let concurrency: usize = config::parsed("SWEEP_CONCURRENCY", 4usize)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "SWEEP_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            partner,
            default_policy: AlertPolicy::default_from_env()?,
            sweep: SweepConfig {
                thresholds,
                cutoff,
                default_action,
                max_alerts: config::parsed("SWEEP_MAX_ALERTS", 10_000i32)?,
                concurrency,
                max_customers: 10_000,
            },
            stop_margin: Duration::from_secs(config::parsed("SWEEP_STOP_MARGIN_SECS", 10u64)?),
            max_run: config::optional("SWEEP_MAX_RUN_SECS")
                .map(|_| config::parsed("SWEEP_MAX_RUN_SECS", 0u64).map(Duration::from_secs))
                .transpose()?,
            reconcile,
            reconcile_organisations: config::optional("RECONCILE_ORGANISATION_IDS")
                .map(|raw| {
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            reconcile_page_size: config::parsed("RECONCILE_PAGE_SIZE", 100u32)?,
            reconcile_lookback: duration("RECONCILE_LOOKBACK")?
                .unwrap_or_else(|| chrono::Duration::days(7)),
            notify: NotifyTarget::from_env()?,
        })
    }
}
