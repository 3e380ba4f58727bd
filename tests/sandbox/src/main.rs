//! `cbs-sandbox`: the local ChargebackStop. Prints exactly one line to stdout,
//! `SANDBOX_LISTENING http://127.0.0.1:PORT`, once it accepts connections; logs go to stderr.

use cbs_sandbox::{serve, Config, Profile, DEFAULT_WEBHOOK_SECRET};
use clap::Parser;
use shared::secret::Secret;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "cbs-sandbox",
    about = "A local, offline stand-in for the ChargebackStop API and its webhooks"
)]
struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "CBS_SANDBOX_ADDR", default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Admin partner-group key of a TEST partner, with every ability.
    #[arg(long, env = "CBS_SANDBOX_PARTNER_KEY", hide_env_values = true)]
    partner_key: Option<String>,
    /// Admin partner-group key of a LIVE partner, with every ability.
    #[arg(long, env = "CBS_SANDBOX_LIVE_PARTNER_KEY", hide_env_values = true)]
    live_partner_key: Option<String>,
    /// Webhook endpoint (repeat for several; comma-separated in the environment).
    #[arg(
        long = "webhook-url",
        env = "CBS_SANDBOX_WEBHOOK_URL",
        value_delimiter = ','
    )]
    webhook_urls: Vec<String>,
    /// Secret the webhooks are signed with.
    #[arg(long, env = "CBS_SANDBOX_WEBHOOK_SECRET", hide_env_values = true, default_value = DEFAULT_WEBHOOK_SECRET, hide_default_value = true)]
    webhook_secret: String,
    /// Scales the retry schedule (1 m, 5 m, 30 m, 2 h, 12 h); 0.001 gives 60 ms, 300 ms, ...
    #[arg(long, env = "CBS_SANDBOX_TIME_FACTOR", default_value_t = 1.0)]
    time_factor: f64,
    /// Requests per window per endpoint per organisation or partner group.
    #[arg(long, env = "CBS_SANDBOX_RATE_LIMIT", default_value_t = 100)]
    rate_limit: u32,
    /// Length of the rate-limit window in seconds (documented: 60).
    #[arg(long, env = "CBS_SANDBOX_RATE_WINDOW_SECS", default_value_t = 60)]
    rate_window_secs: u64,
    /// What "per endpoint" counts, where the docs are silent: `method` (GET and POST of one
    /// path are two endpoints, each with its own limit) or `path` (they share one).
    #[arg(long, env = "CBS_SANDBOX_RATE_LIMIT_PER", default_value = "method")]
    rate_limit_per: RateLimitPerArg,
    /// Length of the rate-limit window in milliseconds; overrides --rate-window-secs.
    #[arg(long, env = "CBS_SANDBOX_RATE_WINDOW_MS")]
    rate_window_ms: Option<u64>,
    /// Load the state from this JSON file at start and save it there on every change.
    #[arg(long, env = "CBS_SANDBOX_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// `realistic`: start (and return on reset) with production's faults on, seeded: events out
    /// of order, duplicates, occasional 5xx and 429, latency. `none`: the documented behaviour.
    #[arg(long, env = "CBS_SANDBOX_PROFILE", default_value = "none")]
    profile: ProfileArg,
    /// Seed of the fault dice, so a run under `--profile realistic` can be repeated.
    #[arg(long, env = "CBS_SANDBOX_SEED")]
    seed: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RateLimitPerArg {
    Method,
    Path,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ProfileArg {
    None,
    Realistic,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if !(cli.time_factor.is_finite() && cli.time_factor >= 0.0) {
        anyhow::bail!("--time-factor must be a non-negative number");
    }
    let config = Config {
        addr: cli.addr,
        partner_key: cli.partner_key.map(Secret::new),
        live_partner_key: cli.live_partner_key.map(Secret::new),
        webhook_urls: cli
            .webhook_urls
            .into_iter()
            .filter(|u| !u.is_empty())
            .collect(),
        webhook_secret: Secret::new(cli.webhook_secret),
        time_factor: cli.time_factor,
        rate_limit: cli.rate_limit,
        rate_limit_per_path: matches!(cli.rate_limit_per, RateLimitPerArg::Path),
        rate_window: match cli.rate_window_ms {
            Some(ms) => Duration::from_millis(ms.max(1)),
            None => Duration::from_secs(cli.rate_window_secs.max(1)),
        },
        state_file: cli.state_file,
        profile: match cli.profile {
            ProfileArg::None => Profile::None,
            ProfileArg::Realistic => Profile::Realistic,
        },
        seed: cli.seed,
    };
    serve(config, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "SANDBOX_LISTENING http://{addr}");
        let _ = out.flush();
    })
    .await
}
