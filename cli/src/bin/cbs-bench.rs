//! `cbs-bench`: the scheduled jobs' figures, over real local parts it starts itself.
//!
//! `cbs-bench orders [--orders 15000] [--window-secs 60]`: orders uploaded per minute against
//! the sandbox enforcing 100 requests per window, as a fraction of the ceiling (requests per
//! minute x 100 orders per request). The outbox is in memory here so the figure is the rate
//! limiter's, not the local DynamoDB emulator's (moto serves about 80 writes a second).
//!
//! `cbs-bench sweep [--stored 100000] [--due 100]`: one deadline sweep run over a moto alerts
//! table holding `--stored` alerts of which `--due` are inside the warning horizon, then the
//! same with 1,000 stored: run time, items the index query returned, DynamoDB requests.
//!
//! `cbs-bench init [--rounds 7] [--profile release]`: process-events and ops-api cold starts
//! (time to the first poll for an invocation, peak RSS) as ratios to a hello-world Lambda, in
//! interleaved rounds (`cbs_bench/init.rs`).
//!
//! `cbs-bench matching [--sizes 10000,1000000] [--alerts 1000] [--store memory|moto]`: index
//! queries and time per matched alert at each number of stored transactions
//! (`cbs_bench/matching.rs`).
//!
//! `cbs-bench capacity [--scales 1,10,100,1000] [--hours 6]`: a simulation of the design load's
//! peak at each scale: which limit binds first, before and after sharding and high-throughput
//! FIFO (`cbs_bench/capacity.rs`, `docs/capacity.md`). Starts nothing.
//!
//! Needs `cargo build -p cbs-sandbox` and the venv of bin/setup (moto).

#[path = "cbs_bench/capacity.rs"]
mod capacity;
#[path = "cbs_bench/init.rs"]
mod init;
#[path = "cbs_bench/matching.rs"]
mod matching;

use clap::{Parser, Subcommand};
use devstack::{resources, Moto, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::memory_orders::MemoryOutbox;
use shared::adapters::notify::LogNotifier;
use shared::client::{ChargebackStop, ClientConfig, RetryPolicy};
use shared::clock::SystemClock;
use shared::config::TableNames;
use shared::domain::alert_policy::{AlertPolicy, FixedPolicy, PolicyLoad};
use shared::domain::alert_record::{merge_fetched, Merge};
use shared::domain::deadline_sweep::{DeadlineSweep, RunBudget, SweepConfig, Threshold};
use shared::domain::order_intake::intake_orders;
use shared::domain::order_upload::estimate::{estimate, Backlog};
use shared::domain::order_upload::{OrderUpload, UploadConfig};
use shared::domain::rate_limit::{OrgRateLimiter, PoolScope, RateLimit};
use shared::models::alert::{Alert, AlertAction};
use shared::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "cbs-bench",
    about = "Figures for the order upload, the deadline sweep, matching, cold starts and capacity"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    Orders {
        #[arg(long, default_value_t = 15_000)]
        orders: usize,
        #[arg(long, default_value_t = 60)]
        window_secs: u64,
        /// Also run the previous setting (the alert endpoints' limiter: 95 a window, a tenth
        /// as burst) first, on a fresh sandbox, and report the ratio.
        #[arg(long)]
        compare: bool,
        /// This fraction of the orders is created on ChargebackStop before the run (through
        /// an organisation key: another rate-limit pool), as if a run's answer had been lost:
        /// the upload meets DUPLICATE_ORDER and reconciles them in the same run.
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Also print the estimate for a backfill of this many orders, scaled by what this
        /// run measured against its own estimate.
        #[arg(long)]
        extrapolate: Option<u64>,
        /// The sandbox counts GET and POST of one path as one endpoint (the other reading of
        /// "per endpoint"): the lookups meet 429s and are retried.
        #[arg(long)]
        rate_limit_per_path: bool,
    },
    Sweep {
        #[arg(long, default_value_t = 100_000)]
        stored: usize,
        #[arg(long, default_value_t = 100)]
        due: usize,
    },
    /// Reads and time per matched alert at each number of stored transactions.
    Matching {
        #[arg(long, value_delimiter = ',', default_values_t = [10_000, 1_000_000])]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 1_000)]
        alerts: usize,
        /// `memory` (the index with DynamoDB's semantics, in memory) or `moto`.
        #[arg(long, default_value = "memory")]
        store: String,
    },
    /// Which limit binds first at each scale of the design load, by simulation.
    Capacity {
        #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100, 1000])]
        scales: Vec<u64>,
        /// Hours simulated from the start of the peak (the peak, then the drain).
        #[arg(long, default_value_t = 6)]
        hours: u64,
        /// Assumed latency of one ChargebackStop call.
        #[arg(long, default_value_t = 200.0)]
        api_latency_ms: f64,
        /// Assumed latency of one DynamoDB request.
        #[arg(long, default_value_t = 8.0)]
        dynamo_latency_ms: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Function cold starts against a hello-world Lambda built with the same profile.
    Init {
        #[arg(long, default_value_t = 7)]
        rounds: usize,
        /// The build profile's directory under the target dir (`release` or `debug`).
        #[arg(long, default_value = "release")]
        profile: String,
        /// Where the binaries are, if not in the target dir's profile directory.
        #[arg(long)]
        bin_dir: Option<std::path::PathBuf>,
        /// Runs each function on this one CPU only, as a Lambda with a fraction
        /// of a vCPU: then only waiting overlaps, never work on two cores.
        #[arg(long)]
        pin_cpu: Option<u32>,
        /// Starts every binary with `SSL_CERT_FILE` set to this bundle, so the certificate store
        /// is that one file (as on Lambda's Amazon Linux images, whose store is a bundle and a
        /// directory of a few links to it) instead of this machine's default store.
        #[arg(long)]
        cert_file: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Orders {
            orders,
            window_secs,
            compare,
            duplicates,
            extrapolate,
            rate_limit_per_path,
        } => {
            let sandbox = SandboxShape {
                window_secs,
                per_path: rate_limit_per_path,
            };
            let previous = if compare {
                Some(
                    orders_bench(
                        orders,
                        sandbox,
                        RateLimit::CHARGEBACKSTOP,
                        "previous",
                        duplicates,
                        None,
                    )
                    .await?,
                )
            } else {
                None
            };
            let now = orders_bench(
                orders,
                sandbox,
                RateLimit::ORDER_UPLOAD,
                "order-upload",
                duplicates,
                extrapolate,
            )
            .await?;
            if let Some(previous) = previous {
                println!(
                    "order-upload / previous orders per minute: x{:.3}",
                    now / previous
                );
            }
            Ok(())
        }
        Bench::Matching {
            sizes,
            alerts,
            store,
        } => matching::run(&sizes, alerts.max(1), &store).await,
        Bench::Capacity {
            scales,
            hours,
            api_latency_ms,
            dynamo_latency_ms,
            seed,
        } => capacity::run(&scales, hours, api_latency_ms, dynamo_latency_ms, seed),
        Bench::Init {
            rounds,
            profile,
            bin_dir,
            pin_cpu,
            cert_file,
        } => init::run(rounds.max(1), &profile, bin_dir, pin_cpu, cert_file).await,
        Bench::Sweep { stored, due } => {
            let moto = Moto::start().await?;
            for n in [stored, 1_000.max(due)] {
                sweep_bench(&moto, n, due).await?;
            }
            Ok(())
        }
    }
}

async fn post(
    http: &reqwest::Client,
    sandbox: &Sandbox,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .post(sandbox.url(path))
        .bearer_auth(&sandbox.partner_key)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
    Ok(v)
}

/// One upload of `count` orders with `limit` (its window replaced by `window_secs`); prints the
/// figures and answers the orders per minute.
/// How the bench's sandbox limits requests.
#[derive(Clone, Copy)]
struct SandboxShape {
    window_secs: u64,
    per_path: bool,
}

async fn orders_bench(
    count: usize,
    shape: SandboxShape,
    limit: RateLimit,
    label: &str,
    duplicates: f64,
    extrapolate: Option<u64>,
) -> anyhow::Result<f64> {
    let window_secs = shape.window_secs;
    let sandbox = Sandbox::start(SandboxOptions {
        rate_limit: Some(100),
        rate_window_secs: Some(window_secs),
        rate_limit_per_path: shape.per_path,
        ..Default::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let org = post(
        &http,
        &sandbox,
        "/v1/organisations/",
        json!({ "name": "Bench" }),
    )
    .await?;
    let org_id = org["id"].as_str().unwrap_or_default().to_string();
    let merchant = post(&http, &sandbox, "/v1/merchants/", json!({ "organisation_id": org_id, "name": "Bench store", "type": "GENERIC", "external_id": "bench" })).await?;
    let integration = post(&http, &sandbox, "/v1/integrations/", json!({ "organisation_id": org_id, "name": "orders", "type": "CUSTOM_ORDERS", "status": "ENABLED", "merchant_ids": [merchant["id"]] })).await?;
    let orders: Vec<Value> = (0..count)
        .map(|i| {
            let r = format!("bench-{i:06}");
            json!({
                "type": "COMPLETE", "organisation_id": org_id, "integration_id": integration["id"],
                "reference_id": r, "order_datetime": "2026-02-17T09:59:00Z", "order_number": format!("B-{i}"),
                "order_subtotal_amount_in_cents": 4900, "order_currency": "USD",
                "order_total_amount_in_cents": 4900, "order_status": "CLOSED_COMPLETE",
                "transactions": [{ "reference_id": format!("t-{r}"), "amount_in_cents": 4900, "currency": "USD",
                    "payment_method_type": "CARD", "authorisation_status": "SETTLED",
                    "payment_method_reference_id": format!("p-{r}"), "authorised_at": "2026-02-17T09:59:05Z",
                    "payment_method_card_brand": "VISA", "payment_method_card_last_4": "4242" }]
            })
        })
        .collect();
    // Orders ChargebackStop already has: every n-th, created through an organisation key (its
    // own rate-limit pool, so the run's budget is untouched).
    let already: Vec<Value> = if duplicates > 0.0 {
        let every = (1.0 / duplicates.min(1.0)).round().max(1.0) as usize;
        orders.iter().step_by(every).cloned().collect()
    } else {
        Vec::new()
    };
    if !already.is_empty() {
        let key = post(
            &http,
            &sandbox,
            "/_sandbox/keys",
            json!({ "scope": "organisation", "organisation_id": org_id }),
        )
        .await?;
        let org_key = key["key"].as_str().unwrap_or_default().to_string();
        for chunk in already.chunks(100) {
            let resp = http
                .post(sandbox.url("/v1/orders/"))
                .bearer_auth(&org_key)
                .json(&chunk)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "pre-create: {}", resp.status());
        }
    }
    let outbox = Arc::new(MemoryOutbox::default());
    let intake = intake_orders(&*outbox, orders, chrono::Utc::now()).await?;
    anyhow::ensure!(
        intake.stored.len() == count,
        "intake refused orders: {:?}",
        intake.rejected.first()
    );
    let limit = RateLimit {
        window: Duration::from_secs(window_secs),
        ..limit
    };
    let api = ChargebackStop::new(
        ClientConfig::new(
            sandbox.base_url.clone(),
            Secret::new(sandbox.partner_key.clone()),
        )
        .with_retry(RetryPolicy::none()),
    )?;
    let run = OrderUpload {
        outbox,
        api: Arc::new(api),
        limiter: Arc::new(OrgRateLimiter::with_scope(limit, PoolScope::PartnerGroup)),
        clock: Arc::new(SystemClock),
        notifier: Arc::new(shared::adapters::notify::LogNotifier),
        config: UploadConfig::default(),
        owner: "bench".into(),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(3600),
    };
    let expected_lookups = already.len() as u64;
    let estimated = estimate(
        &[Backlog {
            to_create: count as u64 - expected_lookups,
            to_reconcile: expected_lookups,
        }],
        &limit,
        PoolScope::PartnerGroup,
        run.config.batch_size(),
    );
    let started = Instant::now();
    let report = run.run().await?;
    let secs = started.elapsed().as_secs_f64();
    let per_minute = (report.created + report.duplicate) as f64 * 60.0 / secs;
    // Exactly once, from ChargebackStop's side: each reference once among its orders.
    let state: Value = http
        .get(sandbox.url("/_sandbox/state"))
        .send()
        .await?
        .json()
        .await?;
    let mut references = std::collections::HashMap::<String, usize>::new();
    for order in state["orders"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        if order["organisation_id"] == org_id.as_str() {
            *references
                .entry(
                    order["reference_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
                .or_default() += 1;
        }
    }
    let on_chargebackstop = references.len();
    let twice = references.values().filter(|n| **n > 1).count();
    let ceiling = 100.0 * 60.0 / window_secs as f64 * 100.0;
    // Sustained: orders ChargebackStop created per whole window of the run, from its own
    // timestamps (the pre-created duplicates are older than the run). The run's first window
    // starts at its first create; the last, partial window and the drain after it are left out.
    let run_began =
        chrono::Utc::now() - chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    let mut created_at: Vec<chrono::DateTime<chrono::Utc>> = state["orders"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|o| o["organisation_id"] == org_id.as_str())
        .filter_map(|o| o["created_at"].as_str()?.parse().ok())
        .filter(|t| *t >= run_began)
        .collect();
    created_at.sort();
    let per_window: Vec<u64> = match (created_at.first(), created_at.last()) {
        (Some(first), Some(last)) => {
            let width = chrono::Duration::seconds(window_secs as i64);
            let whole = ((*last - *first).num_milliseconds() / width.num_milliseconds()) as usize;
            let mut counts = vec![0u64; whole];
            for t in &created_at {
                let i = ((*t - *first).num_milliseconds() / width.num_milliseconds()) as usize;
                if i < whole {
                    counts[i] += 1;
                }
            }
            counts
        }
        _ => Vec::new(),
    };
    let per_window_ceiling = ceiling * window_secs as f64 / 60.0;
    let sustained_min = per_window
        .iter()
        .min()
        .map(|n| *n as f64 / per_window_ceiling);
    let sustained_mean = (!per_window.is_empty()).then(|| {
        per_window.iter().sum::<u64>() as f64 / per_window.len() as f64 / per_window_ceiling
    });
    let round3 = |x: Option<f64>| x.map(|x| (x * 1000.0).round() / 1000.0);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bench": "orders",
            "limiter": label,
            "orders": count,
            "sandbox_limit": format!("100 requests / {window_secs}s per {}", if shape.per_path { "path" } else { "method and path" }),
            "client_budget": format!("{} requests / {window_secs}s (burst {})", limit.budget(), limit.burst()),
            "seconds": (secs * 10.0).round() / 10.0,
            "orders_per_minute": per_minute.round(),
            "ceiling_orders_per_minute": ceiling,
            "fraction_of_ceiling": (per_minute / ceiling * 1000.0).round() / 1000.0,
            "created_per_whole_window": per_window,
            "sustained_fraction_min_window": round3(sustained_min),
            "sustained_fraction_mean_window": round3(sustained_mean),
            "requests": report.requests,
            "rate_limited_429": report.rate_limited,
            "created": report.created,
            "duplicates_reconciled": report.duplicate,
            "lookups": report.lookups,
            "retry_later": report.retry_later,
            "failed": report.failed,
            "orders_on_chargebackstop": on_chargebackstop,
            "references_created_twice": twice,
            "estimate_seconds": (estimated.duration.as_secs_f64() * 10.0).round() / 10.0,
            "took_over_estimate": (secs / estimated.duration.as_secs_f64().max(0.001) * 1000.0).round() / 1000.0,
        }))?
    );
    anyhow::ensure!(
        on_chargebackstop == count && twice == 0,
        "not exactly once: {on_chargebackstop} of {count} references on ChargebackStop, {twice} twice"
    );
    if let Some(n) = extrapolate {
        let big = estimate(
            &[Backlog {
                to_create: n - (n as f64 * duplicates) as u64,
                to_reconcile: (n as f64 * duplicates) as u64,
            }],
            &limit,
            PoolScope::PartnerGroup,
            100,
        );
        let ratio = secs / estimated.duration.as_secs_f64().max(0.001);
        println!(
            "backfill of {n} orders: estimate {:.1} min ({} requests); x{ratio:.3} as measured here: {:.1} min",
            big.duration.as_secs_f64() / 60.0,
            big.requests,
            big.duration.as_secs_f64() * ratio / 60.0
        );
    }
    Ok(per_minute)
}

fn synthetic_alert(i: usize, status: &str, deadline: chrono::DateTime<chrono::Utc>) -> Alert {
    serde_json::from_value(json!({
        "id": format!("netalrt_bench_{i:07}"),
        "organisation_id": "org_bench", "merchant_id": "mrch_bench", "enrolment_id": "enrl_bench",
        "enrolment_type": "ETHOCA_ALERT", "status": status,
        "transaction_amount_in_cents": 4900, "transaction_currency_code": "USD",
        "action_required_deadline": deadline, "alert_received_at": deadline - chrono::Duration::hours(72),
        "created_at": deadline - chrono::Duration::hours(72), "updated_at": deadline - chrono::Duration::hours(72),
    }))
    .expect("synthetic alert")
}

/// Writes `stored` alerts with BatchWriteItem (the store's own put is one conditional write per
/// alert, far too slow for 100,000 on moto): `due` inside the 48 h horizon, half of the rest
/// ACTION_REQUIRED with deadlines 3 to 30 days out, half RESOLVED.
async fn seed(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    stored: usize,
    due: usize,
) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let now = chrono::Utc::now();
    let store = DynamoAlertStore::new(Table::new(dynamo.clone(), table, Default::default()));
    // Seeded in batches around the store (a benchmark's fresh records, no bookkeeping): not
    // journaled, unlike every write the functions make (`adapters::dynamo::journal`).
    let mut requests = Vec::new();
    for i in 0..stored {
        let (status, deadline) = if i < due {
            (
                "ACTION_REQUIRED",
                now + chrono::Duration::minutes(30 * 60 + (i % 600) as i64),
            )
        } else if i % 2 == 0 {
            (
                "ACTION_REQUIRED",
                now + chrono::Duration::hours(72 + (i % 648) as i64),
            )
        } else {
            ("RESOLVED", now - chrono::Duration::hours((i % 720) as i64))
        };
        let record = match merge_fetched(None, synthetic_alert(i, status, deadline), now) {
            Merge::Updated(r) | Merge::Stale(r) => r,
        };
        // The store's own item: sort keys normalised, the alert's `deadline-index` shard.
        let mut item = store.to_item(&record)?;
        if let Some(map) = item.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(item)?;
        requests.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build(),
        );
    }
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(|c| c.to_vec()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    for chunk in chunks {
        let (dynamo, table, sem) = (dynamo.clone(), table.to_string(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let mut pending = Some(std::collections::HashMap::from([(table.clone(), chunk)]));
            while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
                let out = dynamo
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await?;
                pending = out.unprocessed_items;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

async fn sweep_bench(moto: &Moto, stored: usize, due: usize) -> anyhow::Result<()> {
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("bench")).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = TableNames::new(res.table_prefix.clone());
    let seeding = Instant::now();
    seed(&dynamo, &tables.alerts(), stored, due).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    let counters = Arc::new(DynamoCounters::default());
    let sweep = DeadlineSweep {
        alerts: Arc::new(DynamoAlertStore::new(Table::new(
            dynamo.clone(),
            tables.alerts(),
            counters.clone(),
        ))),
        // Nothing is inside the cutoff, so no call reaches ChargebackStop.
        api: Arc::new(ChargebackStop::new(ClientConfig::new(
            "http://127.0.0.1:9",
            Secret::new("cbs_test_unused"),
        ))?),
        notifier: Arc::new(LogNotifier),
        policies: Arc::new(FixedPolicy(AlertPolicy::default())),
        clock: Arc::new(SystemClock),
        refund_first: None,
        config: SweepConfig {
            thresholds: Threshold::parse_list("48h,24h,4h").map_err(anyhow::Error::msg)?,
            cutoff: Some(chrono::Duration::hours(2)),
            default_action: AlertAction::AcceptDispute,
            max_alerts: 10_000,
            ..SweepConfig::default()
        },
    };
    let started = Instant::now();
    let load = PolicyLoad::default_only(AlertPolicy::default());
    let budget = RunBudget::new(
        std::time::Duration::from_secs(600),
        std::time::Duration::from_secs(10),
        chrono::Utc::now(),
    );
    let report = sweep.run(&load, &budget).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bench": "sweep",
            "stored_alerts": stored,
            "due_within_48h": due,
            "seed_seconds": (seed_secs * 10.0).round() / 10.0,
            "sweep_seconds": (secs * 1000.0).round() / 1000.0,
            "items_read_from_index": report.read,
            "dynamodb_reads": counters.reads(),
            "dynamodb_writes": counters.writes(),
            "warned": report.warned,
            "actioned": report.actioned,
        }))?
    );
    Ok(())
}
