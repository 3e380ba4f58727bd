//! The chaos run's stack: devstack's whole local [`Stack`] with two TCP gates in front of the
//! AWS emulator (one for the edge Worker's SQS calls, one for the functions), the notification
//! sink in a file, and the worker functions (`process-events`, `order-upload`,
//! `deadline-sweep`) run as instances started here behind a runtime-API [`Relay`], so one can
//! be killed mid-invocation and its invocation fails at once, as in Lambda. The scheduled
//! functions get two instances each, so two runs can overlap as two Lambda instances do.

use crate::gate::Gate;
use crate::plan::Timing;
use crate::relay::Relay;
use devstack::process::ManagedProcess;
use devstack::{AwsCaller, AwsEndpointVia, Stack, StackOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The functions whose instances the chaos run owns, and how many instances each.
pub const WORKERS: [(&str, usize); 3] = [
    ("process-events", 1),
    ("order-upload", 2),
    ("deadline-sweep", 2),
];

pub struct Instance {
    pub function: String,
    pub label: String,
    pub process: ManagedProcess,
}

pub struct ChaosStack {
    pub stack: Stack,
    pub edge_gate: Arc<Gate>,
    pub dynamo_gate: Arc<Gate>,
    pub relay: Relay,
    /// The functions' environment (as devstack gives it, plus ours).
    pub function_env: Vec<(String, String)>,
    pub instances: Mutex<Vec<Instance>>,
    next_instance: AtomicUsize,
    pub notify_sink: PathBuf,
    pub kills: AtomicUsize,
}

impl ChaosStack {
    pub async fn start(
        timing: &Timing,
        notify_sink: PathBuf,
        visibility_secs: Option<u32>,
    ) -> anyhow::Result<Self> {
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
        // No schedule yet: the scheduler starts once the instances behind the relay run.
        let stack = Stack::start(StackOptions {
            table_prefix: Some(devstack::resources::unique_prefix("chaos")),
            function_env: ours.clone(),
            aws_endpoint_via: Some(via),
            queue: devstack::QueueOptions {
                visibility_timeout_secs: visibility_secs,
                max_receive_count: None,
            },
            ..Default::default()
        })
        .await?;
        let mut function_env = devstack::moto::aws_env(&dynamo_gate.url());
        function_env.extend(stack.resources.env());
        function_env.extend(stack.sandbox.env());
        function_env.push(("STACK_MODE".into(), "TEST".into()));
        function_env.extend(ours);
        let relay = Relay::start(&stack.functions.base_url).await?;
        let mut chaos = Self {
            stack,
            edge_gate,
            dynamo_gate,
            relay,
            function_env,
            instances: Mutex::new(Vec::new()),
            next_instance: AtomicUsize::new(0),
            notify_sink,
            kills: AtomicUsize::new(0),
        };
        // Replace devstack's own worker instances (they talk to the emulator directly) with
        // ones behind the relay. Idle now: nothing has invoked them yet but onboarding's events,
        // which the new instances take over.
        for p in chaos.stack.functions.instances.iter_mut() {
            if WORKERS.iter().any(|(f, _)| p.name() == format!("fn-{f}")) {
                p.stop();
            }
        }
        for (function, n) in WORKERS {
            for _ in 0..n {
                chaos.start_instance(function).await?;
            }
        }
        chaos.stack.scheduler = Some(devstack::Scheduler::start(
            chaos.stack.functions.invoker.clone(),
            vec![
                (
                    "deadline-sweep".into(),
                    Duration::from_secs(timing.sweep_every_secs),
                ),
                (
                    "order-upload".into(),
                    Duration::from_secs(timing.upload_every_secs),
                ),
            ],
        ));
        Ok(chaos)
    }

    /// One more instance of `function`, polling the runtime API through the relay.
    pub async fn start_instance(&self, function: &str) -> anyhow::Result<()> {
        let n = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let label = format!("{function}-{n}");
        let binary = devstack::paths::debug_binary(function);
        let mut cmd = std::process::Command::new(binary);
        cmd.envs(self.function_env.iter().cloned())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                self.relay.runtime_api(&label, function),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &label)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        let process = ManagedProcess::spawn(&format!("fn-{label}"), cmd)?;
        self.instances.lock().await.push(Instance {
            function: function.to_string(),
            label,
            process,
        });
        Ok(())
    }

    /// SIGKILLs every instance of `function` (mid-work, no grace); their invocations fail as a
    /// runtime exit would; after `restart_after` as many start again. How many were killed.
    pub async fn kill_and_restart(
        &self,
        function: &str,
        restart_after: Duration,
    ) -> anyhow::Result<usize> {
        let victims: Vec<String> = {
            let mut instances = self.instances.lock().await;
            let mut victims = Vec::new();
            for i in instances.iter_mut().filter(|i| i.function == function) {
                kill_group(i.process.pid());
                victims.push(i.label.clone());
            }
            instances.retain(|i| i.function != function);
            victims
        };
        self.kills.fetch_add(victims.len(), Ordering::SeqCst);
        // The emulator hands the killed instances nothing more: fail what they held (also what
        // arrives on a long poll they opened before dying).
        tokio::time::sleep(Duration::from_millis(300)).await;
        for label in &victims {
            self.relay.instance_died(label).await;
        }
        tokio::time::sleep(restart_after).await;
        for _ in 0..victims.len().max(1) {
            self.start_instance(function).await?;
        }
        Ok(victims.len())
    }

    /// Every worker function has its instances running (restarts any that died).
    pub async fn ensure_functions(&self) -> anyhow::Result<()> {
        let mut dead = Vec::new();
        {
            let mut instances = self.instances.lock().await;
            instances.retain_mut(|i| {
                let alive = i.process.ensure_running().is_ok();
                if !alive {
                    dead.push(i.label.clone());
                }
                alive
            });
        }
        for label in &dead {
            tracing::warn!(instance = %label, "instance exited: failing its invocation");
            self.relay.instance_died(label).await;
        }
        for (function, n) in WORKERS {
            let have = self
                .instances
                .lock()
                .await
                .iter()
                .filter(|i| i.function == function)
                .count();
            for _ in have..n {
                self.start_instance(function).await?;
            }
        }
        Ok(())
    }
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) on the process group devstack's ManagedProcess created for this child.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}
