//! `cbs upload-orders`: one run of the order upload from a workstation (a long backfill, or
//! when the schedule is paused), the same `shared::domain::order_upload` the Lambda runs, with
//! the same crash safety: stop it at any point and the next run (either one) resumes.
//!
//! Environment: TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY (and the AWS variables).

use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::client::{ChargebackStop, RetryPolicy};
use shared::clock::SystemClock;
use shared::config::PartnerEnv;
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::domain::order_upload::{OrderUpload, UploadConfig, UploadReport};
use shared::domain::rate_limit::{parse_duration, parse_rate_limit, OrgRateLimiter, PoolScope};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct UploadArgs {
    #[arg(long, env = "ORDER_BATCH_SIZE", default_value_t = 100)]
    pub batch_size: usize,
    /// ChargebackStop's limit per endpoint and pool, e.g. `100/60s`.
    #[arg(long, env = "ORDER_RATE_LIMIT", default_value = "100/60s")]
    pub rate_limit: String,
    /// `partner` (a partner-group key: one pool) or `organisation`.
    #[arg(long, env = "ORDER_RATE_POOL", default_value = "partner")]
    pub rate_pool: String,
    #[arg(long, env = "ORDER_LEASE_SECS", default_value_t = 300)]
    pub lease_secs: u64,
    #[arg(long, env = "ORDER_IN_FLIGHT", default_value_t = 4)]
    pub in_flight: usize,
    /// Stop taking new work after this long (e.g. `10m`); the rest waits for the next run.
    #[arg(long, default_value = "1h")]
    pub max_time: String,
}

impl UploadArgs {
    pub fn build(
        &self,
        outbox: Arc<DynamoOrderOutbox>,
        api: ChargebackStop,
    ) -> anyhow::Result<OrderUpload> {
        let limit = parse_rate_limit(&self.rate_limit).map_err(anyhow::Error::msg)?;
        let pool: PoolScope = self.rate_pool.parse().map_err(anyhow::Error::msg)?;
        let max_time = parse_duration(&self.max_time).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            (1..=100).contains(&self.batch_size),
            "--batch-size must be 1..=100"
        );
        Ok(OrderUpload {
            outbox,
            api: Arc::new(api),
            limiter: Arc::new(OrgRateLimiter::with_scope(limit, pool)),
            clock: Arc::new(SystemClock),
            config: UploadConfig {
                batch_size: self.batch_size,
                lease: Duration::from_secs(self.lease_secs),
                in_flight_per_org: self.in_flight,
                ..UploadConfig::default()
            },
            owner: format!("cbs-cli/{}", uuid::Uuid::new_v4().simple()),
            stop_at: tokio::time::Instant::now() + max_time,
        })
    }
}

/// The outbox and the client (sent once per call: the upload retries) from the environment.
pub async fn wiring_from_env() -> anyhow::Result<(Arc<DynamoOrderOutbox>, ChargebackStop)> {
    let partner = PartnerEnv::from_env()?;
    refuse_key_of_other_mode(partner.mode, &partner.api_key)?;
    let api = partner.client(RetryPolicy::none())?;
    let aws = shared::adapters::aws::load_config().await;
    let outbox = Arc::new(DynamoOrderOutbox::new(Table::new(
        aws_sdk_dynamodb::Client::new(&aws),
        partner.tables.orders(),
        Arc::new(DynamoCounters::default()),
    )));
    Ok((outbox, api))
}

pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    // Progress lines ("order upload progress") on stderr; the report on stdout.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let (outbox, api) = wiring_from_env().await?;
    let report: UploadReport = args.build(outbox, api)?.run().await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
