//! `cbs upload-orders`: one run of the order upload from a workstation (a long backfill, or
//! when the schedule is paused), the same `shared::domain::order_upload` the Lambda runs, with
//! the same crash safety: stop it at any point and the next run (either one) resumes.
//!
//! It takes the same `order-upload` run lease as the function (renewed while it runs, so a
//! killed command blocks the function for at most `--lease-secs`) and continues the same stored
//! rate budget: the command and the function never run side by side or double the burst.
//!
//! Environment: TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY (and the AWS variables);
//! NOTIFY_TOPIC_ARN or NOTIFY_SINK for orders that end FAILED (otherwise a log line).

use indicatif::{ProgressBar, ProgressStyle};
use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::run_state::DynamoRunState;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::notify::NotifyTarget;
use shared::client::{ChargebackStop, RetryPolicy};
use shared::clock::SystemClock;
use shared::config::PartnerEnv;
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::domain::order_upload::estimate::{estimate, Backlog};
use shared::domain::order_upload::{OrderUpload, UploadConfig, UploadReport};
use shared::domain::rate_limit::{
    parse_duration, parse_rate_limit, OrgRateLimiter, PoolScope, RateLimit,
};
use shared::domain::run_lease::{exclusive_renewed, Exclusive};
use shared::ports::notifier::Notifier;
use std::sync::Arc;
use std::time::Duration;

/// The function's run lease (functions/order-upload).
const LEASE: &str = "order-upload";

/// What a run from here needs besides its arguments.
pub struct Wiring {
    pub outbox: Arc<dyn shared::ports::order_outbox::OrderOutbox>,
    pub run_state: Arc<DynamoRunState>,
    pub api: ChargebackStop,
    pub notifier: Arc<dyn Notifier>,
}

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
    /// Runs that may try one order before it is FAILED.
    #[arg(long, env = "ORDER_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: u32,
    /// Stop taking new work after this long (e.g. `10m`); the rest waits for the next run.
    #[arg(long, default_value = "1h")]
    pub max_time: String,
    /// No progress bar (logs and CI): progress lines on stderr instead.
    #[arg(long)]
    pub quiet: bool,
}

/// Every organisation's backlog in the outbox (its pending-index, page by page): what the
/// estimate is made of.
pub async fn count_backlog(
    outbox: &dyn shared::ports::order_outbox::OrderOutbox,
) -> anyhow::Result<Vec<Backlog>> {
    use shared::ports::order_outbox::UploadState;
    let mut backlogs = Vec::new();
    for org in outbox.organisations().await? {
        let mut backlog = Backlog::default();
        let mut after: Option<String> = None;
        loop {
            let page = outbox.pending(&org, after.as_deref(), 1_000).await?;
            for order in &page.orders {
                match order.state {
                    UploadState::Reconcile => backlog.to_reconcile += 1,
                    _ => backlog.to_create += 1,
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        backlogs.push(backlog);
    }
    Ok(backlogs)
}

impl UploadArgs {
    /// The limit and pool the run will use.
    pub fn limit(&self) -> anyhow::Result<(RateLimit, PoolScope)> {
        let limit = parse_rate_limit(&self.rate_limit, RateLimit::ORDER_UPLOAD)
            .map_err(anyhow::Error::msg)?;
        let pool: PoolScope = self.rate_pool.parse().map_err(anyhow::Error::msg)?;
        Ok((limit, pool))
    }

    pub fn build(&self, wiring: &Wiring) -> anyhow::Result<OrderUpload> {
        let (limit, pool) = self.limit()?;
        let max_time = parse_duration(&self.max_time).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            (1..=100).contains(&self.batch_size),
            "--batch-size must be 1..=100"
        );
        anyhow::ensure!(self.max_attempts >= 1, "--max-attempts must be at least 1");
        let clock = Arc::new(SystemClock);
        Ok(OrderUpload {
            outbox: wiring.outbox.clone(),
            api: Arc::new(wiring.api.clone()),
            limiter: Arc::new(
                OrgRateLimiter::with_scope(limit, pool)
                    .persisted_in(wiring.run_state.clone(), clock.clone()),
            ),
            clock,
            notifier: wiring.notifier.clone(),
            config: UploadConfig {
                batch_size: self.batch_size,
                lease: Duration::from_secs(self.lease_secs),
                in_flight_per_org: self.in_flight,
                max_attempts: self.max_attempts,
                ..UploadConfig::default()
            },
            owner: format!("cbs-cli/{}", uuid::Uuid::new_v4().simple()),
            stop_at: tokio::time::Instant::now() + max_time,
        })
    }
}

/// The outbox, the run state and the client (sent once per call: the upload retries) from the
/// environment.
pub async fn wiring_from_env() -> anyhow::Result<Wiring> {
    let partner = PartnerEnv::from_env()?;
    if let Some(key) = partner.api_key() {
        refuse_key_of_other_mode(partner.mode, &key)?;
    }
    let api = partner.client(RetryPolicy::none())?;
    let aws = shared::adapters::aws::load_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let counters = Arc::new(DynamoCounters::default());
    let notifier: Arc<dyn Notifier> = match NotifyTarget::from_env() {
        Ok(target) => Arc::from(target.build(Some(&aws))),
        Err(_) => Arc::new(shared::adapters::notify::LogNotifier),
    };
    Ok(Wiring {
        // Counts upload outcomes into the insights table as they are recorded.
        outbox: Arc::new(shared::domain::insights::CountingOrderOutbox::new(
            Arc::new(DynamoOrderOutbox::new(Table::new(
                dynamo.clone(),
                partner.tables.orders(),
                counters.clone(),
            ))),
            Arc::new(
                shared::adapters::dynamo::insights::DynamoInsightsStore::new(Table::new(
                    dynamo.clone(),
                    partner.tables.insights(),
                    counters.clone(),
                )),
            ),
            Arc::new(shared::clock::SystemClock),
        )),
        run_state: Arc::new(DynamoRunState::new(Table::new(
            dynamo,
            partner.tables.run_state(),
            counters,
        ))),
        api,
        notifier,
    })
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
    let wiring = wiring_from_env().await?;
    let run = args.build(&wiring)?;
    let owner = run.owner.clone();
    let ttl = Duration::from_secs(args.lease_secs.max(3));

    // The estimate, from the backlog and the limiter, before anything is sent.
    let (limit, pool) = args.limit()?;
    let backlogs = count_backlog(wiring.outbox.as_ref()).await?;
    let estimated = estimate(&backlogs, &limit, pool, run.config.batch_size());
    eprintln!(
        "{} orders waiting ({} to create, {} to reconcile) in {} organisations: {} requests, about {} at {} requests a minute per pool{}",
        estimated.orders,
        backlogs.iter().map(|b| b.to_create).sum::<u64>(),
        backlogs.iter().map(|b| b.to_reconcile).sum::<u64>(),
        backlogs.len(),
        estimated.requests,
        human(estimated.duration),
        (limit.refill_per_sec() * 60.0).round(),
        if estimated.duration > run.stop_at.duration_since(tokio::time::Instant::now()) {
            format!(" (more than --max-time {}: the rest waits for the next run)", args.max_time)
        } else {
            String::new()
        }
    );
    let (progress, mut watch) = tokio::sync::watch::channel(UploadReport::default());
    let bar = if args.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(estimated.orders)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} orders ({per_sec}, eta {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let bar_task = {
        let bar = bar.clone();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let r = watch.borrow_and_update().clone();
                bar.set_position(r.created + r.duplicate + r.failed);
                bar.set_message(format!(
                    "{} requests, {} lookups, {} x 429, {} failed",
                    r.requests, r.lookups, r.rate_limited, r.failed
                ));
            }
        })
    };
    let report: UploadReport = match exclusive_renewed(
        wiring.run_state.as_ref(),
        LEASE,
        &owner,
        &SystemClock,
        ttl,
        run.run_with_progress(Some(progress)),
    )
    .await?
    {
        Exclusive::Ran(report) => report,
        Exclusive::Busy(holder) => {
            eprintln!(
                "another order upload run holds the lease ({} until {}); try again later",
                holder.owner, holder.until
            );
            UploadReport::skipped(holder)
        }
    };
    let _ = bar_task.await;
    bar.finish_and_clear();
    let took = started.elapsed();
    if report.lease_held_by.is_none() {
        eprintln!(
            "done in {} (estimate {}: x{:.2}); {} created, {} reconciled, {} failed, {} left for a later run",
            human(took),
            human(estimated.duration),
            took.as_secs_f64() / estimated.duration.as_secs_f64().max(1.0),
            report.created,
            report.duplicate,
            report.failed,
            report.retry_later
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `1 h 43 min`, `4 min 10 s`, `12 s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
