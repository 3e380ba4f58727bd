//! The local ChargebackStop (`cbs-sandbox`, built by `cargo build -p cbs-sandbox`).

use crate::paths;
use crate::process::ManagedProcess;
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// The TEST partner key; a fresh `cbs_test_...` key when unset.
    pub partner_key: Option<String>,
    pub live_partner_key: Option<String>,
    /// Where webhooks go (the Worker's URL), each one signed with `webhook_secret`.
    pub webhook_urls: Vec<String>,
    pub webhook_secret: Option<String>,
    /// Sandbox time runs this many times faster than wall time (deadlines, retries).
    pub time_factor: Option<f64>,
    pub rate_limit: Option<u32>,
    pub rate_window_secs: Option<u64>,
    /// GET and POST of one path share one rate limit (`--rate-limit-per path`).
    pub rate_limit_per_path: bool,
    pub state_file: Option<std::path::PathBuf>,
}

pub struct Sandbox {
    /// e.g. `http://127.0.0.1:41234`: both the API (`/v1/...`) and the admin API (`/_sandbox/...`).
    pub base_url: String,
    pub partner_key: String,
    pub webhook_secret: Option<String>,
    pub process: ManagedProcess,
}

const LISTENING: &str = "SANDBOX_LISTENING ";

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Self> {
        let binary = paths::debug_binary("cbs-sandbox");
        anyhow::ensure!(
            binary.is_file(),
            "{} is missing: run `cargo build -p cbs-sandbox` first",
            binary.display()
        );
        let partner_key = opts
            .partner_key
            .clone()
            .unwrap_or_else(|| format!("cbs_test_{}", uuid::Uuid::new_v4().simple()));
        let mut cmd = Command::new(binary);
        cmd.args(["--addr", "127.0.0.1:0", "--partner-key", &partner_key]);
        if let Some(k) = &opts.live_partner_key {
            cmd.args(["--live-partner-key", k]);
        }
        for url in &opts.webhook_urls {
            cmd.args(["--webhook-url", url]);
        }
        if let Some(s) = &opts.webhook_secret {
            cmd.args(["--webhook-secret", s]);
        }
        if let Some(f) = opts.time_factor {
            cmd.args(["--time-factor", &f.to_string()]);
        }
        if let Some(n) = opts.rate_limit {
            cmd.args(["--rate-limit", &n.to_string()]);
        }
        if let Some(s) = opts.rate_window_secs {
            cmd.args(["--rate-window-secs", &s.to_string()]);
        }
        if opts.rate_limit_per_path {
            cmd.args(["--rate-limit-per", "path"]);
        }
        if let Some(p) = &opts.state_file {
            cmd.arg("--state-file").arg(p);
        }
        let (process, base_url) =
            ManagedProcess::spawn_listening("sandbox", cmd, LISTENING).await?;
        Ok(Self {
            base_url,
            partner_key,
            webhook_secret: opts.webhook_secret,
            process,
        })
    }

    /// `<base_url><path>`, e.g. `url("/v1/alerts/")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The admin API: `admin_url("deliveries")` is `<base_url>/_sandbox/deliveries`.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "{}/_sandbox/{}",
            self.base_url,
            path.trim_start_matches('/')
        )
    }

    /// Environment for a function or the CLI that calls this sandbox as ChargebackStop.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CBS_API_BASE_URL".into(), self.base_url.clone()),
            ("CBS_API_KEY".into(), self.partner_key.clone()),
        ]
    }
}
