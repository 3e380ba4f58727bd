//! `chaos [--minutes N] [--seed S] [--out DIR]` (run it through `bin/chaos`, which builds first):
//! brings up the whole local stack, plays a seeded workload under seeded faults for N minutes,
//! turns the faults off and waits (bounded) until the outcome can be judged, then checks the
//! promise from ChargebackStop's own records. Prints a table per invariant and a last line
//! `chaos: <n> events, <n> alerts, <n> orders, lost 0, missed deadlines 0, double actions 0,
//! orders duplicated 0`; exits 1 on any violation, 2 if the run itself could not be done.
//!
//! `chaos --check DIR/dumps.json` re-checks the dumps of an earlier run (no stack).

use chaos::check::{check, Dumps, Report};
use chaos::collect;
use chaos::driver::{Driver, RunState};
use chaos::plan::{self, Step, Timing};
use chaos::stack::ChaosStack;
use clap::Parser;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "chaos",
    about = "The platform under seeded faults, checked against ChargebackStop's records"
)]
struct Args {
    /// Length of the fault phase (the workload runs all through it).
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write report.json, the sandbox's records, the DLQ and our tables here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Organisations onboarded.
    #[arg(long, default_value_t = 3)]
    orgs: usize,
    /// Longest settle phase in seconds (default: the last deadline plus 4 minutes).
    #[arg(long)]
    settle_max_secs: Option<u64>,
    /// Re-check a dumps.json written by an earlier run; no stack is started.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Print the seeded plan (as JSON) and exit; no stack is started.
    #[arg(long)]
    plan_only: bool,
    /// The edge queue's visibility timeout in seconds (default: infra/template.yaml's). A
    /// shorter one compresses time for the dead-letter path like the deadlines are compressed.
    #[arg(long)]
    visibility_secs: Option<u32>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,chaos=info,devstack=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        if args.plan_only {
            let plan = plan::build(args.seed, args.minutes, args.orgs, &Timing::default());
            let faults = faults_injected(&plan);
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"faults": faults, "plan": plan}))
                    .unwrap_or_default()
            );
            return 0;
        }
        match &args.check {
            Some(path) => recheck(path),
            None => {
                // Ctrl-C or SIGTERM: drop the stack (every part it started goes with it).
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    code = run(&args) => code,
                    _ = tokio::signal::ctrl_c() => { eprintln!("chaos: interrupted"); 130 }
                    _ = term.recv() => { eprintln!("chaos: terminated"); 143 }
                }
            }
        }
    });
    // Parts left running by an aborted task die with their process groups in ManagedProcess's
    // Drop; give the runtime a moment to drop them.
    runtime.shutdown_timeout(Duration::from_secs(10));
    std::process::ExitCode::from(code)
}

fn recheck(path: &PathBuf) -> u8 {
    let dumps: Dumps = match std::fs::read_to_string(path)
        .map_err(anyhow::Error::from)
        .and_then(|t| serde_json::from_str(&t).map_err(anyhow::Error::from))
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("chaos: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let report = check(&dumps);
    print!("{}", report.table());
    println!("{}", report.last_line());
    if report.ok() {
        0
    } else {
        1
    }
}

async fn run(args: &Args) -> u8 {
    match run_inner(args).await {
        Ok(report) if report.ok() => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("chaos: the run could not be done: {e:#}");
            2
        }
    }
}

async fn run_inner(args: &Args) -> anyhow::Result<Report> {
    let timing = Timing::default();
    let work_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("chaos-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir)?;
    let work_dir = work_dir.canonicalize()?;
    let t0 = Instant::now();
    eprintln!(
        "chaos: seed {}, {} min of faults; starting the stack (logs in {})",
        args.seed,
        args.minutes,
        devstack::log_dir().display()
    );
    let chaos = Arc::new(
        ChaosStack::start(
            &timing,
            work_dir.join("notifications.jsonl"),
            args.visibility_secs,
        )
        .await?,
    );
    eprintln!(
        "chaos: stack up in {:.0}s; onboarding {} organisations",
        t0.elapsed().as_secs_f64(),
        args.orgs
    );
    let orgs = Driver::onboard(&chaos, args.seed, args.orgs).await?;
    let plan = plan::build(args.seed, args.minutes, orgs.len(), &timing);
    let count = |f: fn(&Step) -> bool| plan.iter().filter(|p| f(&p.step)).count();
    eprintln!(
        "chaos: plan: {} ethoca alerts, {} rdr alerts, {} order imports, {} enrolment changes, {} faults",
        count(|s| matches!(s, Step::EthocaAlert { .. })),
        count(|s| matches!(s, Step::RdrAlert { .. })),
        count(|s| matches!(s, Step::ImportOrders { .. })),
        count(|s| matches!(s, Step::EnrolmentChange { .. })),
        count(|s| matches!(s, Step::Fault(_))),
    );
    let state = Arc::new(Mutex::new(RunState::default()));
    let driver = Arc::new(Driver {
        chaos: chaos.clone(),
        orgs: orgs.clone(),
        state: state.clone(),
        started: Instant::now(),
        seed: args.seed,
    });
    let mut workload = driver.play(plan.clone()).await;
    let fault_phase = driver.started.elapsed();
    eprintln!(
        "chaos: fault phase over after {:.0}s; faults off, settling",
        fault_phase.as_secs_f64()
    );
    driver.log("settle", "faults off");
    driver.all_faults_off().await;
    let settle = settle(&driver, &timing, args.settle_max_secs).await;
    workload.abort_all();
    let queued_orders = state.lock().expect("run state").queued_orders.clone();
    let dumps = collect::dumps(&chaos, queued_orders).await?;
    let report = check(&dumps);

    let decided_by = decided_by(&dumps);
    let faults_injected = faults_injected(&plan);
    let s = state.lock().expect("run state");
    let full = json!({
        "decided_by": decided_by,
        "faults_injected": faults_injected,
        "seed": args.seed,
        "minutes": args.minutes,
        "timing": timing,
        "organisations": orgs,
        "plan": plan,
        "fault_phase_secs": fault_phase.as_secs(),
        "settle": settle,
        "timeline": s.timeline,
        "driver_errors": s.driver_errors,
        "operator_actions": s.operator_actions,
        "gates": {"edge_sqs": chaos.edge_gate.stats(), "functions_aws": chaos.dynamo_gate.stats()},
        "bridge": {
            "batches": devstack::BridgeStats::get(&chaos.stack.bridge.stats.batches),
            "records_delivered": devstack::BridgeStats::get(&chaos.stack.bridge.stats.records_delivered),
            "records_failed": devstack::BridgeStats::get(&chaos.stack.bridge.stats.records_failed),
            "invoke_errors": devstack::BridgeStats::get(&chaos.stack.bridge.stats.invoke_errors),
        },
        "dlq_messages": dumps.dlq.len(),
        "notifications": dumps.notifications.len(),
        "summary": report.summary,
        "invariants": report.invariants,
        "ok": report.ok(),
        "logs": devstack::log_dir(),
        "total_secs": t0.elapsed().as_secs(),
    });
    drop(s);
    if args.out.is_some() {
        collect::write(&work_dir, &dumps, &full)?;
    }
    println!();
    print!("{}", report.table());
    let errors = state.lock().expect("run state").driver_errors.len();
    println!(
        "stack up {:.0}s, fault phase {:.0}s, settle {}s ({}), {} DLQ messages, {} notifications, {} driver step errors, total {:.0}s{}",
        chaos.stack.startup.as_secs_f64(),
        fault_phase.as_secs_f64(),
        settle["secs"],
        if settle["settled"] == true { "settled" } else { "timed out" },
        dumps.dlq.len(),
        dumps.notifications.len(),
        errors,
        t0.elapsed().as_secs_f64(),
        args.out
            .as_ref()
            .map(|d| format!(", dumps in {}", d.display()))
            .unwrap_or_default()
    );
    println!(
        "decided by: {}; faults: {}",
        decided_by
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        faults_injected
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{}", report.last_line());
    drop(driver);
    Ok(report)
}

/// Applied decisions by source (AUTO_POLICY, OPERATOR, SWEEP), from our alerts' audit trails.
fn decided_by(d: &Dumps) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for alert in d.tables.get("alerts").into_iter().flatten() {
        for decision in alert["decisions"].as_array().into_iter().flatten() {
            if decision["result"] == "APPLIED" {
                let source = decision["source"].as_str().unwrap_or("?").to_string();
                *by.entry(source).or_default() += 1;
            }
        }
    }
    by
}

fn faults_injected(plan: &[plan::Planned]) -> BTreeMap<&'static str, usize> {
    let mut by = BTreeMap::new();
    for p in plan {
        if let Step::Fault(f) = &p.step {
            *by.entry(f.name()).or_default() += 1;
        }
    }
    by
}

/// Waits, faults off, until the outcome can be judged: every Ethoca alert decided (or past its
/// deadline), the edge queue empty, no delivery still being retried, no order or event in
/// flight, twice in a row; or every invariant already holds. Bounded.
async fn settle(driver: &Arc<Driver>, timing: &Timing, max_secs: Option<u64>) -> serde_json::Value {
    let started = Instant::now();
    let last_deadline = driver
        .state
        .lock()
        .expect("run state")
        .ethoca
        .iter()
        .map(|(_, d)| *d)
        .max();
    let until_last = last_deadline
        .map(|d| (d - chrono::Utc::now()).num_seconds().max(0) as u64)
        .unwrap_or(0);
    let max = Duration::from_secs(max_secs.unwrap_or(until_last + 240).max(60));
    let _ = timing;
    let mut quiet_polls = 0;
    let mut last_reason = String::new();
    let mut redelivered = driver.redeliver_dropped().await;
    while started.elapsed() < max {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let Err(e) = driver.chaos.ensure_functions().await {
            tracing::warn!(error = %e, "restart functions");
        }
        redelivered += driver.redeliver_dropped().await;
        let queued = driver
            .state
            .lock()
            .expect("run state")
            .queued_orders
            .clone();
        let d = match collect::dumps_without_dlq(&driver.chaos, queued).await {
            Ok(d) => d,
            Err(e) => {
                last_reason = format!("dumps: {e}");
                continue;
            }
        };
        let waiting = waiting_for(&d);
        if check(&d).ok() {
            last_reason = "every invariant holds".into();
            break;
        }
        if waiting.is_empty() {
            quiet_polls += 1;
            last_reason = "quiet".into();
            if quiet_polls >= 2 {
                break;
            }
        } else {
            quiet_polls = 0;
            last_reason = waiting.join(", ");
            eprintln!(
                "chaos: settling ({:.0}s): waiting for {last_reason}",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let settled = started.elapsed() < max;
    driver.log(
        "settle",
        format!("done: {last_reason} (redelivered {redelivered} dropped events)"),
    );
    json!({"secs": started.elapsed().as_secs(), "settled": settled, "last": last_reason,
           "max_secs": max.as_secs(), "redelivered_dropped": redelivered})
}

/// What is still moving.
fn waiting_for(d: &Dumps) -> Vec<String> {
    let mut waiting = Vec::new();
    let now = chrono::Utc::now();
    let open_alerts = d
        .sandbox_state
        .get("alerts")
        .and_then(|a| a.as_object())
        .map(|alerts| {
            alerts
                .values()
                .filter(|a| {
                    a["enrolment_type"] == "ETHOCA_ALERT" && a["status"] == "ACTION_REQUIRED"
                })
                .filter(|a| {
                    a["action_required_deadline"]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .is_some_and(|t| t > now)
                })
                .count()
        })
        .unwrap_or(0);
    if open_alerts > 0 {
        waiting.push(format!("{open_alerts} ethoca alerts undecided"));
    }
    if d.edge_queue_depth > 0 {
        waiting.push(format!("{} messages on the edge queue", d.edge_queue_depth));
    }
    let in_flight_orders = d
        .tables
        .get("orders")
        .map(|t| {
            t.iter()
                .filter(|o| matches!(o["state"].as_str(), Some("PENDING") | Some("LEASED")))
                .count()
        })
        .unwrap_or(0);
    if in_flight_orders > 0 {
        waiting.push(format!("{in_flight_orders} orders pending"));
    }
    let settled = check(d);
    if let Some(inv) = settled
        .invariants
        .iter()
        .find(|i| i.name == chaos::check::SETTLED)
    {
        if !inv.violations.is_empty() {
            waiting.push(format!("{} in flight", inv.violations.len()));
        }
    }
    waiting
}
