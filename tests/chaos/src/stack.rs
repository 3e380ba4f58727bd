//! The chaos run's stack: devstack's whole local [`Stack`] with two TCP gates in front of the
//! AWS emulator (one for the edge Worker's SQS calls, one for the functions), a second instance
//! of each scheduled function (so two runs can overlap, as two Lambda instances do), the
//! notification sink in a file, and kill/restart of any function instance.

use crate::gate::Gate;
use crate::plan::Timing;
use devstack::process::ManagedProcess;
use devstack::{AwsCaller, AwsEndpointVia, Stack, StackOptions};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub const SCHEDULED: [&str; 2] = ["order-upload", "deadline-sweep"];

pub struct ChaosStack {
    pub stack: Stack,
    pub edge_gate: Arc<Gate>,
    pub dynamo_gate: Arc<Gate>,
    /// The functions' environment (as devstack gave it, plus ours), to restart an instance.
    pub function_env: Vec<(String, String)>,
    /// Instances started here: the second instance of each scheduled function and every
    /// restarted one, by label.
    pub extra: Mutex<Vec<(String, ManagedProcess)>>,
    /// Pids of devstack's own instances this run killed (they stay in its list until the end).
    killed: std::sync::Mutex<HashSet<u32>>,
    pub notify_sink: PathBuf,
}

impl ChaosStack {
    pub async fn start(timing: &Timing, notify_sink: PathBuf) -> anyhow::Result<Self> {
        let edge_gate = Arc::new(Gate::bind("edge-sqs").await?);
        let dynamo_gate = Arc::new(Gate::bind("functions-aws").await?);
        let (edge, dynamo) = (edge_gate.clone(), dynamo_gate.clone());
        let via = AwsEndpointVia(Arc::new(move |caller, moto: &str| {
            let gate = match caller {
                AwsCaller::Worker => &edge,
                AwsCaller::Functions => &dynamo,
            };
            if let Err(e) = gate.set_upstream(moto) {
                tracing::error!(error = %e, "gate upstream");
            }
            gate.url()
        }));
        let _ = std::fs::remove_file(&notify_sink);
        let ours: Vec<(String, String)> = vec![
            // NOTIFY_TOPIC_ARN wins over NOTIFY_SINK: blank it so the file sink is used.
            ("NOTIFY_TOPIC_ARN".into(), String::new()),
            (
                "NOTIFY_SINK".into(),
                format!("file://{}", notify_sink.display()),
            ),
            (
                "SWEEP_WARN_THRESHOLDS".into(),
                timing.warn_thresholds.into(),
            ),
            ("SWEEP_CUTOFF".into(), format!("{}s", timing.cutoff_secs)),
        ];
        let stack = Stack::start(StackOptions {
            table_prefix: Some(devstack::resources::unique_prefix("chaos")),
            schedule: vec![
                (
                    "deadline-sweep".into(),
                    Duration::from_secs(timing.sweep_every_secs),
                ),
                (
                    "order-upload".into(),
                    Duration::from_secs(timing.upload_every_secs),
                ),
            ],
            function_env: ours.clone(),
            aws_endpoint_via: Some(via),
            ..Default::default()
        })
        .await?;
        let mut function_env = devstack::moto::aws_env(&dynamo_gate.url());
        function_env.extend(stack.resources.env());
        function_env.extend(stack.sandbox.env());
        function_env.push(("STACK_MODE".into(), "TEST".into()));
        function_env.extend(ours);
        let chaos = Self {
            stack,
            edge_gate,
            dynamo_gate,
            function_env,
            extra: Mutex::new(Vec::new()),
            killed: std::sync::Mutex::new(HashSet::new()),
            notify_sink,
        };
        for name in SCHEDULED {
            let p = chaos.spawn_function(name)?;
            chaos.extra.lock().await.push((name.to_string(), p));
        }
        Ok(chaos)
    }

    /// One more instance of `name` polling the runtime API (what devstack's
    /// `Functions::start_binaries` starts for each function).
    pub fn spawn_function(&self, name: &str) -> anyhow::Result<ManagedProcess> {
        let binary = devstack::paths::debug_binary(name);
        let mut cmd = std::process::Command::new(binary);
        cmd.envs(self.function_env.iter().cloned())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("{}/.rt/{name}", self.stack.functions.base_url),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "chaos")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        ManagedProcess::spawn(&format!("fn-{name}-chaos"), cmd)
    }

    /// SIGKILLs every running instance of `name` (mid-work, no grace), then after
    /// `restart_after` starts one again. Returns how many were killed.
    pub async fn kill_and_restart(
        &self,
        name: &str,
        restart_after: Duration,
    ) -> anyhow::Result<usize> {
        let mut killed = 0;
        for pid in self.devstack_instances(name) {
            kill_group(pid);
            self.killed.lock().expect("killed set").insert(pid);
            killed += 1;
        }
        {
            let mut extra = self.extra.lock().await;
            for (n, p) in extra.iter_mut() {
                if n == name && p.ensure_running().is_ok() {
                    kill_group(p.pid());
                    killed += 1;
                }
            }
            extra.retain_mut(|(_, p)| p.ensure_running().is_ok());
        }
        tokio::time::sleep(restart_after).await;
        // Restart as many as ran (at least one).
        for _ in 0..killed.max(1) {
            let p = self.spawn_function(name)?;
            self.extra.lock().await.push((name.to_string(), p));
        }
        Ok(killed)
    }

    /// Every function has at least one live instance (restarts any that died).
    pub async fn ensure_functions(&self) -> anyhow::Result<()> {
        for name in devstack::functions::ALL {
            let mut alive = !self.devstack_instances(name).is_empty();
            let mut extra = self.extra.lock().await;
            extra.retain_mut(|(_, p)| p.ensure_running().is_ok());
            alive |= extra.iter().any(|(n, _)| n == name);
            if !alive {
                tracing::warn!(function = name, "no live instance: starting one");
                let p = self.spawn_function(name)?;
                extra.push((name.to_string(), p));
            }
        }
        Ok(())
    }
}

impl ChaosStack {
    /// Pids of devstack's instances of `name` this run has not killed.
    fn devstack_instances(&self, name: &str) -> Vec<u32> {
        let label = format!("fn-{name}");
        let killed = self.killed.lock().expect("killed set");
        self.stack
            .functions
            .instances
            .iter()
            .filter(|p| p.name() == label && !killed.contains(&p.pid()))
            .map(|p| p.pid())
            .collect()
    }
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) on the process group devstack created for this child (its pid).
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}
