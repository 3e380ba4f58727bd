//! `dev-stack` (what `bin/dev` runs after `bin/setup`): brings the whole platform up on this
//! machine, onboards a TEST customer, runs a short scenario, prints where each part listens and
//! keeps everything running until Ctrl-C, which stops every part it started.

use clap::Parser;
use devstack::{scenario, Stack, StackOptions, WorkerMode};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "The whole ChargebackStop partner platform on one machine")]
struct Args {
    /// TABLE_PREFIX and stack name of the local TEST stack.
    #[arg(long, default_value = "cbs-dev")]
    prefix: String,
    /// `wrangler` runs `wrangler dev` (builds the Worker first); `built` serves the last build.
    #[arg(long, default_value = "wrangler", value_parser = ["wrangler", "built"])]
    worker: String,
    /// How often the local scheduler fires deadline-sweep (seconds).
    #[arg(long, default_value_t = 60)]
    sweep_every: u64,
    /// How often the local scheduler fires order-upload (seconds).
    #[arg(long, default_value_t = 60)]
    upload_every: u64,
    /// Skip the onboarding and the scenario.
    #[arg(long)]
    no_scenario: bool,
    /// Stop after the scenario instead of waiting for Ctrl-C (a smoke run).
    #[arg(long)]
    exit_after_scenario: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "devstack=warn".into()),
        )
        .init();
    let args = Args::parse();
    tokio::select! {
        result = run(&args) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nCtrl-C: stopping every part");
            Ok(())
        }
    }
    // Returning drops the stack inside `run`'s future: each part's process group is stopped.
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    say(&format!(
        "starting moto, the sandbox, the Worker ({}), the functions, the bridge and the scheduler",
        if args.worker == "wrangler" {
            "wrangler dev"
        } else {
            "built bundle"
        }
    ));
    let stack = Stack::start(StackOptions {
        table_prefix: Some(args.prefix.clone()),
        worker: if args.worker == "wrangler" {
            WorkerMode::WranglerDev
        } else {
            WorkerMode::Built
        },
        schedule: vec![
            (
                "deadline-sweep".into(),
                Duration::from_secs(args.sweep_every.max(1)),
            ),
            (
                "order-upload".into(),
                Duration::from_secs(args.upload_every.max(1)),
            ),
        ],
        ..Default::default()
    })
    .await?;
    say(&format!("stack up in {:.1} s", stack.startup.as_secs_f64()));

    if !args.no_scenario {
        let customer = stack.onboard("dev-customer").await?;
        say(&format!(
            "onboarded TEST customer dev-customer: organisation {}, Ethoca enrolment {}, RDR enrolment {}",
            customer.organisation_id, customer.ethoca_enrolment_id, customer.rdr_enrolment_id
        ));
        let t = Instant::now();
        scenario::operator_refunds_an_ethoca_alert(&stack, &customer, |line| {
            say(&format!("  [{:>5.1} s] {line}", t.elapsed().as_secs_f64()))
        })
        .await?;
        say(&format!(
            "scenario done; everything up {:.1} s after start",
            started.elapsed().as_secs_f64()
        ));
    }

    println!("\n{}\n", stack.describe());
    println!(
        "operator key (Authorization: Bearer ...): {}",
        // Printed on purpose: a local TEST key for the person running the stack.
        stack.operator_key.expose()
    );
    println!(
        "partner key of the sandbox (TEST):         {}",
        stack.sandbox.partner_key
    );
    match write_env_file(&stack) {
        Ok(path) => println!(
            "\nenv file for `cbs` (read by every cbs command; `source` it for other tools): {}",
            path.display()
        ),
        Err(e) => eprintln!("dev-stack: could not write the env file: {e:#}"),
    }
    println!("\nOpen the operations page: {}", stack.ops_url());
    if args.exit_after_scenario {
        return Ok(());
    }
    println!("Ctrl-C stops every part.");
    std::future::pending::<()>().await;
    Ok(())
}

/// `$CBS_CACHE/dev.env` (or `CBS_ENV_FILE`): every variable `cbs` reads for this stack, so
/// commands need no hand-set variables. Local TEST values only (the sandbox's key).
fn write_env_file(stack: &Stack) -> anyhow::Result<std::path::PathBuf> {
    let path = match std::env::var_os("CBS_ENV_FILE").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(
            std::env::var_os("CBS_CACHE")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/chargeback-platform")
                        .into_os_string()
                }),
        )
        .join("dev.env"),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from("# Written by bin/dev for the local TEST stack; cbs reads it.\n");
    for (k, v) in stack.env() {
        text.push_str(&format!("{k}='{v}'\n"));
    }
    text.push_str(&format!("OPS_API_URL='{}'\n", stack.ops_url()));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn say(line: &str) {
    println!("dev-stack: {line}");
}
