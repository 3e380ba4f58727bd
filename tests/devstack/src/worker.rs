//! The edge Worker (edge-worker/, Rust compiled to wasm) under workerd, pointed at the emulator's
//! edge queue. Two ways to run it, both the same workerd engine:
//! - [`Worker::start_built`]: `node edge-worker/bin/serve.mjs` serves the already built bundle
//!   (Miniflare); what the end-to-end tests use, no rebuild.
//! - [`Worker::start_wrangler_dev`]: `npx wrangler dev`, which runs the `[build]` command of
//!   wrangler.toml first; what `bin/dev` uses.

use crate::process::ManagedProcess;
use crate::{paths, wait};
use shared::secret::Secret;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub moto_endpoint: String,
    pub queue_url: String,
    /// `WEBHOOK_SECRET`: what the sandbox signs with.
    pub webhook_secret: Secret,
    /// `WEBHOOK_SECRET_PREVIOUS`: the old secret during a rotation.
    pub webhook_secret_previous: Option<Secret>,
    /// Further bindings, e.g. `SIGNATURE_TOLERANCE_SECS` (wrangler.toml's defaults when unset).
    pub extra_vars: Vec<(String, String)>,
}

impl WorkerOptions {
    pub fn new(moto_endpoint: &str, queue_url: &str, webhook_secret: &str) -> Self {
        Self {
            moto_endpoint: moto_endpoint.into(),
            queue_url: queue_url.into(),
            webhook_secret: Secret::new(webhook_secret),
            webhook_secret_previous: None,
            extra_vars: Vec::new(),
        }
    }

    /// The Worker's bindings (`--var NAME:VALUE`): what wrangler.toml and `wrangler secret put`
    /// give it in the cloud.
    fn vars(&self) -> Vec<String> {
        let mut vars = vec![
            format!("WEBHOOK_SECRET:{}", self.webhook_secret.expose()),
            format!("SQS_ENDPOINT:{}", self.moto_endpoint),
            format!("SQS_QUEUE_URL:{}", self.queue_url),
            format!("AWS_REGION:{}", crate::moto::REGION),
            format!("AWS_ACCESS_KEY_ID:{}", crate::moto::ACCESS_KEY_ID),
            format!("AWS_SECRET_ACCESS_KEY:{}", crate::moto::SECRET_ACCESS_KEY),
        ];
        if let Some(p) = &self.webhook_secret_previous {
            vars.push(format!("WEBHOOK_SECRET_PREVIOUS:{}", p.expose()));
        }
        vars.extend(self.extra_vars.iter().map(|(k, v)| format!("{k}:{v}")));
        vars
    }
}

pub struct Worker {
    /// e.g. `http://127.0.0.1:41234`
    pub base_url: String,
    pub process: ManagedProcess,
}

const SERVE_READY: &str = "edge-worker listening on ";

impl Worker {
    /// Where ChargebackStop (the sandbox) posts webhooks.
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/chargebackstop", self.base_url)
    }

    /// Serves the built bundle (edge-worker/build) with `bin/serve.mjs` on a free port.
    pub async fn start_built(opts: &WorkerOptions) -> anyhow::Result<Self> {
        let edge = paths::workspace_root().join("edge-worker");
        build_if_stale(&edge).await?;
        anyhow::ensure!(
            edge.join("build/index.js").is_file(),
            "edge-worker/build/index.js is missing: run bin/setup (or edge-worker/bin/build)"
        );
        let mut cmd = Command::new("node");
        cmd.arg(edge.join("bin/serve.mjs"))
            .args(["--port", "0"])
            .current_dir(&edge);
        for v in opts.vars() {
            cmd.args(["--var", &v]);
        }
        let mut process = ManagedProcess::spawn("edge-worker", cmd)?;
        let base_url = wait::until(
            "the Worker's listening line",
            Duration::from_secs(120),
            || {
                let ready = process.ensure_running().map(|_| {
                    process.stdout().lines().find_map(|l| {
                        l.strip_prefix(SERVE_READY)
                            .map(|u| u.trim().trim_end_matches('/').to_string())
                    })
                });
                async move {
                    match ready {
                        Err(e) => Some(Err(e)),
                        Ok(found) => found.map(Ok),
                    }
                }
            },
        )
        .await
        .and_then(|r| r)
        .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", process.stderr_tail(2000)))?;
        let worker = Self { base_url, process };
        worker.wait_healthy(Duration::from_secs(60)).await?;
        Ok(worker)
    }

    /// `npx wrangler dev` in edge-worker/ (builds the Worker first, then serves it) on a free
    /// port. The first build of the wasm can take minutes on two cores.
    pub async fn start_wrangler_dev(opts: &WorkerOptions) -> anyhow::Result<Self> {
        let edge = paths::workspace_root().join("edge-worker");
        let port = wait::free_port();
        let inspector = wait::free_port();
        let mut cmd = Command::new(edge.join("node_modules/.bin/wrangler"));
        cmd.args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .args([
                "--show-interactive-dev-session=false",
                "--log-level",
                "warn",
            ])
            .current_dir(&edge)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "1");
        for v in opts.vars() {
            cmd.args(["--var", &v]);
        }
        let process = ManagedProcess::spawn("edge-worker-wrangler", cmd)?;
        let mut worker = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            process,
        };
        let health = format!("{}/healthz", worker.base_url);
        wait::until(
            "wrangler dev to build and serve the Worker",
            Duration::from_secs(900),
            || {
                let exited = worker.process.ensure_running().err();
                let health = health.clone();
                async move {
                    match exited {
                        Some(e) => Some(Err(e)),
                        None => healthy(&health).await.then_some(Ok(())),
                    }
                }
            },
        )
        .await
        .and_then(|r| r)
        .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", worker.process.stderr_tail(2000)))?;
        Ok(worker)
    }

    async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let health = format!("{}/healthz", self.base_url);
        wait::until("the Worker's /healthz", timeout, || {
            let health = health.clone();
            async move { healthy(&health).await.then_some(()) }
        })
        .await
    }
}

async fn healthy(url: &str) -> bool {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Rebuilds the bundle when the Worker's or shared's sources are newer than it
/// (`edge-worker/bin/build --if-stale`), once per test process: a test never serves a Worker
/// older than the code beside it. Says what is missing when the wasm tools are not installed.
async fn build_if_stale(edge: &std::path::Path) -> anyhow::Result<()> {
    static CHECKED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CHECKED
        .get_or_try_init(|| async {
            let out = tokio::process::Command::new(edge.join("bin/build"))
                .arg("--if-stale")
                .current_dir(edge)
                .output()
                .await
                .map_err(|e| anyhow::anyhow!("run edge-worker/bin/build --if-stale: {e}"))?;
            anyhow::ensure!(
                out.status.success(),
                "edge-worker/bin/build --if-stale failed (bin/setup installs its tools): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Ok(())
        })
        .await
        .map(|_| ())
}
