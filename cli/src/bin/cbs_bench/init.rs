//! `cbs-bench init`: each function's cold start against a hello-world Lambda, side by side.
//!
//! The hello-world is `bridge-probe` (tests/devstack): `lambda_runtime::run` over one handler,
//! no AWS client, no logging set-up, the floor any Rust function starts from. `hello+clients`
//! (`clients-probe`) adds only what the goal asks every function to do during init: JSON logs,
//! the AWS configuration and clients, the ChargebackStop client (its HTTPS stack and trust
//! roots), reading nothing. It is the floor of a function that creates its clients at init. process-events
//! and ops-api start with their real configuration (moto, the sandbox, the API key through the
//! emulator's Secrets Manager), so their init includes creating the AWS clients and reading the
//! secret, as in the cloud.
//!
//! The `probe` rows are `clients-probe` stopped after each of its init steps in turn
//! (`CBS_PROBE_UP_TO`): `probe, no init` is that binary's own floor (its size, its dynamic
//! linking, the runtime), and each row below adds one step, so the column "adds ms" says what
//! the logs, the trusted roots, the AWS configuration and the SDK clients each cost, and the
//! `hello+clients` row what the ChargebackStop client adds. The row `key in env` is
//! process-events given its API key in `CBS_API_KEY` instead of a secret to read, so the
//! difference to the row above is what reading the secret during init costs (a measurement
//! only: deployed functions read their secret, and no key is ever in their environment).
//!
//! Init time is measured from outside: from spawning the process to its first
//! `GET /2018-06-01/runtime/invocation/next` on a runtime API stub that never answers (the
//! moment Lambda ends the init phase). Peak RSS is the process's `VmHWM` at that moment. Rounds
//! interleave the binaries so load on the machine falls on all of them alike; the figures are
//! medians, and the ratios are to the hello-world in the same run.
//! The stub is `devstack::runtime_stub`.
//!
//! `--pin-cpu N` runs each function on one CPU (its affinity set between fork and exec, so no
//! extra program starts in the measured time), as a Lambda of 256 MB has a fraction
//! of one: work started in the background then only overlaps waiting.
//!
//! `--cert-file BUNDLE` starts every binary with `SSL_CERT_FILE=BUNDLE`: the store is then that
//! one file, as on Lambda's Amazon Linux images, instead of a Debian store's bundle plus about
//! 290 files in `/etc/ssl/certs` (each certificate parsed from the bundle and from its own file).
//!
//! `CBS_BENCH_STRACE_DIR=DIR` runs each binary under `strace -f -tt` into `DIR/<label>.strace`
//! to see where the init goes (the times are then strace's, not the binary's). What it showed
//! (2026-12-01): the certificate store read twice (the AWS SDK's HTTPS client and the
//! ChargebackStop client each load `/etc/ssl/certs`, about 290 files), about 45 % of
//! process-events' init, then the Secrets Manager round trip.

use devstack::runtime_stub::RuntimeApiStub;
use devstack::{resources, Moto, Sandbox, SandboxOptions};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How a row's binary starts.
#[derive(Clone, Copy)]
enum Start {
    /// With the configuration it has in the cloud.
    AsDeployed,
    /// `clients-probe` stopped after this init step (`CBS_PROBE_UP_TO`).
    ProbeUpTo(&'static str),
    /// Given the API key in `CBS_API_KEY` instead of a secret to read: what init costs without
    /// the Secrets Manager round trip. A measurement only: a deployed function reads its secret.
    KeyInEnvironment,
}

/// Each row: its label, its binary and how it starts (the `probe` rows: see the module's doc).
const BINARIES: [(&str, &str, Start); 10] = [
    ("hello-world", "bridge-probe", Start::AsDeployed),
    (
        "probe, no init",
        "clients-probe",
        Start::ProbeUpTo("nothing"),
    ),
    ("probe +logs", "clients-probe", Start::ProbeUpTo("logs")),
    ("probe +roots", "clients-probe", Start::ProbeUpTo("roots")),
    (
        "probe +aws-config",
        "clients-probe",
        Start::ProbeUpTo("aws-config"),
    ),
    (
        "probe +sdk-clients",
        "clients-probe",
        Start::ProbeUpTo("sdk-clients"),
    ),
    ("hello+clients", "clients-probe", Start::AsDeployed),
    ("process-events", "process-events", Start::AsDeployed),
    ("  key in env", "process-events", Start::KeyInEnvironment),
    ("ops-api", "ops-api", Start::AsDeployed),
];

/// `bin_dir`: where the three binaries are (default: the target dir's `profile` directory).
/// `pin_cpu`: each function runs on that CPU only. `cert_file`: every binary's `SSL_CERT_FILE`.
pub async fn run(
    rounds: usize,
    profile: &str,
    bin_dir: Option<PathBuf>,
    pin_cpu: Option<u32>,
    cert_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    if let Some(file) = &cert_file {
        anyhow::ensure!(
            file.is_file(),
            "--cert-file {}: no such file",
            file.display()
        );
    }
    let dir = bin_dir.unwrap_or_else(|| devstack::paths::target_dir().join(profile));
    let paths: Vec<(&str, PathBuf, Start)> = BINARIES
        .iter()
        .map(|(label, bin, start)| (*label, dir.join(bin), *start))
        .collect();
    let missing: Vec<String> = paths
        .iter()
        .filter(|(_, p, _)| !p.is_file())
        .map(|(_, p, _)| p.display().to_string())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "missing {} (cargo build {} -p devstack -p process-events -p ops-api --bin bridge-probe --bin clients-probe --bin process-events --bin ops-api)",
        missing.join(", "),
        if profile == "release" {
            "--release"
        } else {
            ""
        }
    );

    let moto = Moto::start().await?;
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("init")).await?;
    let sandbox = Sandbox::start(SandboxOptions::default()).await?;
    let mut env = moto.env();
    env.extend(res.env());
    env.extend(sandbox.env());
    env.push(("STACK_MODE".into(), "TEST".into()));
    env.push(("RUST_LOG".into(), "warn".into()));
    if let Some(file) = &cert_file {
        env.push(("SSL_CERT_FILE".into(), file.display().to_string()));
    }
    let key_in_env = env.clone();
    let env = resources::api_key_via_secrets_manager(env).await?;

    let mut samples: Vec<(&str, Vec<(Duration, u64)>)> =
        BINARIES.iter().map(|(l, _, _)| (*l, Vec::new())).collect();
    for round in 1..=rounds {
        for (i, (label, path, start)) in paths.iter().enumerate() {
            let env = match start {
                Start::AsDeployed => env.clone(),
                Start::ProbeUpTo(step) => {
                    let mut env = env.clone();
                    env.push(("CBS_PROBE_UP_TO".into(), step.to_string()));
                    env
                }
                Start::KeyInEnvironment => key_in_env.clone(),
            };
            let sample = cold_start(path, label, &env, pin_cpu).await?;
            samples[i].1.push(sample);
        }
        eprintln!("round {round}/{rounds} done");
    }

    let median = |v: &[(Duration, u64)]| {
        let mut t: Vec<Duration> = v.iter().map(|s| s.0).collect();
        let mut m: Vec<u64> = v.iter().map(|s| s.1).collect();
        t.sort();
        m.sort();
        (t[t.len() / 2], m[m.len() / 2])
    };
    let (base_t, base_m) = median(&samples[0].1);
    let cpus = match pin_cpu {
        Some(cpu) => format!("pinned to CPU {cpu}"),
        None => "on every CPU".to_string(),
    };
    let store = match &cert_file {
        Some(file) => format!("certificate store {}", file.display()),
        None => "this machine's certificate store".to_string(),
    };
    println!("cold start, {profile} build, {cpus}, {store}, median of {rounds} interleaved rounds (ratios to hello-world):");
    println!(
        "{:<20} {:>10} {:>8} {:>12} {:>8} {:>12}",
        "binary", "init ms", "x", "peak RSS MB", "x", "adds ms"
    );
    let mut previous: Option<(&str, Duration)> = None;
    for ((label, v), (_, bin, _)) in samples.iter().zip(BINARIES.iter()) {
        let (t, m) = median(v);
        // What this row adds to the row above it, when both are the same binary: a step of
        // `clients-probe`, or process-events' secret read (negative: the row without it).
        let step = match previous {
            Some((before_bin, before)) if before_bin == *bin => {
                format!("{:+.1}", (t.as_secs_f64() - before.as_secs_f64()) * 1000.0)
            }
            _ => String::new(),
        };
        previous = Some((bin, t));
        println!(
            "{:<20} {:>10.1} {:>8.2} {:>12.1} {:>8.2} {:>12}",
            label,
            t.as_secs_f64() * 1000.0,
            t.as_secs_f64() / base_t.as_secs_f64(),
            m as f64 / 1024.0,
            m as f64 / base_m as f64,
            step,
        );
    }
    Ok(())
}

/// Spawns `path` against a fresh runtime API stub; returns the time to its first poll for an
/// invocation and its peak RSS (KiB) then. The process is killed afterwards.
async fn cold_start(
    path: &PathBuf,
    label: &str,
    env: &[(String, String)],
    pin_cpu: Option<u32>,
) -> anyhow::Result<(Duration, u64)> {
    let stub = RuntimeApiStub::bind().await?;
    let started = Instant::now();
    let mut command = match std::env::var("CBS_BENCH_STRACE_DIR") {
        Ok(dir) => {
            let mut c = tokio::process::Command::new("strace");
            c.args(["-f", "-tt", "-o"])
                .arg(format!(
                    "{dir}/{}.strace",
                    label.replace(|c: char| !c.is_ascii_alphanumeric() && c != '+', "_")
                ))
                .arg(path);
            c
        }
        Err(_) => tokio::process::Command::new(path),
    };
    if let Some(cpu) = pin_cpu {
        pin_to_cpu(&mut command, cpu);
    }
    // Only what Lambda would set: nothing of this machine's environment (its RUST_BACKTRACE,
    // SSL_CERT_FILE and SSL_CERT_DIR change what a function does at init).
    let mut child = command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "en_US.UTF-8")
        .env("TZ", ":UTC")
        .envs(env.iter().cloned())
        .envs(stub.lambda_env(label)?)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let polled = tokio::time::timeout(Duration::from_secs(60), async {
        // Held open (never answered) until the process is killed.
        let conn = stub.first_poll().await?;
        Ok::<_, std::io::Error>((started.elapsed(), conn))
    })
    .await;
    let (elapsed, _conn) = match polled {
        Ok(r) => r?,
        Err(_) => {
            child.start_kill().ok();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).await.ok();
            }
            anyhow::bail!(
                "{label} did not poll for an invocation within 60 s; its stderr: {}",
                &err[err.len().saturating_sub(2000)..]
            );
        }
    };
    let peak_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    child.kill().await.ok();
    Ok((elapsed, peak_kb))
}

/// Sets the child's CPU affinity to `cpu` alone, between fork and exec.
fn pin_to_cpu(command: &mut tokio::process::Command, cpu: u32) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (CPU_ZERO/CPU_SET on a local set, sched_setaffinity).
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            libc::CPU_SET(cpu as usize, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
