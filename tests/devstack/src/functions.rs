//! The Lambda functions under `cargo lambda watch`, which emulates the Lambda invoke API and
//! starts each function (`cargo run --bin <fn>`) on its first invocation.

use crate::process::ManagedProcess;
use crate::{paths, wait};
use anyhow::Context;
use std::process::Command;
use std::time::Duration;

/// Every function binary in `functions/`.
pub const ALL: [&str; 4] = [
    "process-events",
    "order-upload",
    "deadline-sweep",
    "ops-api",
];

/// Builds the function binaries (debug) once per process. `cargo lambda watch` then runs the
/// same `cargo run` against the same target dir and profile, so the first invoke only starts
/// the binary instead of compiling the AWS SDK while the invoke waits.
pub async fn build_functions() -> anyhow::Result<()> {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| async {
            let mut cmd = tokio::process::Command::new("cargo");
            cmd.arg("build").arg("--quiet");
            for f in ALL {
                cmd.args(["-p", f]);
            }
            cmd.current_dir(paths::workspace_root())
                .env("PATH", paths::tool_path())
                .env("CARGO_TARGET_DIR", paths::target_dir())
                .kill_on_drop(true);
            let out = cmd
                .output()
                .await
                .context("run cargo build for the functions")?;
            anyhow::ensure!(
                out.status.success(),
                "cargo build of the functions failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        })
        .await
        .map(|_| ())
}

/// Calls functions through the Lambda invoke API at `base_url` (cargo lambda watch locally).
#[derive(Clone, Debug)]
pub struct LambdaInvoker {
    pub base_url: String,
    http: reqwest::Client,
}

impl LambdaInvoker {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            // Generous: a first invoke may wait for `cargo run` to start the binary.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("reqwest client"),
        }
    }

    /// Synchronous invoke (`RequestResponse`). An error the function returned is an `Err` that
    /// carries its `errorType` and `errorMessage`.
    pub async fn invoke(
        &self,
        function: &str,
        payload: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base_url
        );
        let resp = self
            .http
            .post(&url)
            .json(&payload)
            .send()
            .await
            .with_context(|| format!("invoke {function}"))?;
        let status = resp.status();
        let function_error = resp
            .headers()
            .get("x-amz-function-error")
            .map(|v| v.to_str().unwrap_or("").to_string());
        let body = resp.bytes().await?;
        let value: serde_json::Value = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
            })
        };
        let is_error =
            !status.is_success() || function_error.is_some() || value.get("errorType").is_some();
        if is_error {
            anyhow::bail!("{function} failed (HTTP {status}): {value}");
        }
        Ok(value)
    }
}

pub struct Functions {
    /// e.g. `http://127.0.0.1:40123`
    pub base_url: String,
    pub invoker: LambdaInvoker,
    /// The function processes started by [`Functions::start_binaries`], one each.
    pub instances: Vec<ManagedProcess>,
    /// `cargo lambda watch --only-lambda-apis` (the invoke and runtime APIs).
    pub process: ManagedProcess,
}

impl Functions {
    /// Builds the functions, then starts `cargo lambda watch` in the workspace root with `env`
    /// (TABLE_PREFIX, AWS_ENDPOINT_URL, CBS_API_BASE_URL, CBS_API_KEY, ...) passed to every
    /// function; the key goes through the emulator's Secrets Manager, as in the cloud. Code changes do not reload the functions (other engineers edit the tree).
    pub async fn start(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        build_functions().await?;
        Self::start_prebuilt(env).await
    }

    /// As [`Functions::start`], for binaries that are already built (e.g. by `cargo test`): every
    /// function in [`ALL`] started from the debug build (see [`Functions::start_binaries`]).
    ///
    /// Not `cargo lambda watch` starting each function itself on its first invoke: the invoke
    /// that started a function could wait until another request arrived (a health check waited
    /// 76 s here, and in CI the ops page's scripts stalled for two minutes and its login never
    /// appeared). Our own processes poll the runtime API from the start.
    pub async fn start_prebuilt(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        Self::start_binaries(env, &ALL).await
    }

    /// `cargo lambda watch --only-lambda-apis` (the invoke and runtime APIs), with each of
    /// `names` started here from the debug build and polling its runtime API, as Lambda's own
    /// runtime would. Unlike letting cargo lambda `cargo run` each function on its first invoke,
    /// nothing waits on the shared target dir's build lock while a test or `bin/dev` runs, and
    /// each function logs to its own file. Build the binaries first.
    pub async fn start_binaries(
        env: Vec<(String, String)>,
        names: &[&str],
    ) -> anyhow::Result<Self> {
        let env = crate::resources::api_key_via_secrets_manager(env).await?;
        let mut functions = Self::start_watch(env.clone()).await?;
        for name in names {
            let binary = paths::debug_binary(name);
            anyhow::ensure!(
                binary.is_file(),
                "{} is missing: build it first (cargo build --workspace --bins)",
                binary.display()
            );
            let mut cmd = Command::new(binary);
            cmd.envs(env.iter().cloned())
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("{}/.rt/{name}", functions.base_url),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                );
            functions
                .instances
                .push(ManagedProcess::spawn(&format!("fn-{name}"), cmd)?);
        }
        Ok(functions)
    }

    /// Feeds the sandbox's latest `alert.created` for `alert_id` to process-events as record
    /// number `n` of an SQS batch of one from `queue_arn` (message group `group`, as the Worker
    /// sends it); answers the function's batch answer (`batchItemFailures`).
    pub async fn process_alert_created(
        &self,
        cbs: &crate::sandbox_client::SandboxClient,
        queue_arn: &str,
        group: &str,
        n: u32,
        alert_id: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let events = cbs.admin(reqwest::Method::GET, "events", None).await;
        let event = events
            .as_array()
            .and_then(|events| {
                events
                    .iter()
                    .rev()
                    .find(|e| e["type"] == "alert.created" && e["data"]["object"]["id"] == alert_id)
            })
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!("the sandbox emitted no alert.created for {alert_id}")
            })?;
        let record = serde_json::json!({
            "messageId": format!("m-{n}"), "receiptHandle": format!("rh-{n}"),
            "body": event.to_string(),
            "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group,
                "MessageDeduplicationId": event["id"], "SentTimestamp": "1795000000000"},
            "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn, "awsRegion": crate::moto::REGION,
        });
        self.invoke("process-events", serde_json::json!({"Records": [record]}))
            .await
    }

    /// `POST /api/orders` of the ops API with an operator key: the orders taken into the outbox
    /// (indexed for matching). Answers the status and the body.
    pub async fn take_in_orders(
        &self,
        http: &reqwest::Client,
        operator_key: &str,
        orders: Vec<serde_json::Value>,
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("{}api/orders", self.http_url("ops-api"));
        let resp = http
            .post(url)
            .bearer_auth(operator_key)
            .json(&serde_json::Value::Array(orders))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// Every JSON log line the functions wrote so far (each function process logs to its own
    /// files; cargo lambda's own lines are not JSON).
    pub fn json_log_lines(&self) -> Vec<serde_json::Value> {
        let mut out = String::new();
        for p in std::iter::once(&self.process).chain(&self.instances) {
            out.push_str(&p.stdout());
            out.push_str(&std::fs::read_to_string(&p.stderr_log).unwrap_or_default());
        }
        out.lines()
            .filter_map(|l| l.find('{').map(|i| &l[i..]))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Fails if a function started by [`Functions::start_binaries`] has exited (a configuration
    /// error stops a function at start-up), with the tail of its log.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.process.ensure_running()?;
        for instance in &mut self.instances {
            instance.ensure_running()?;
        }
        Ok(())
    }

    /// `cargo lambda watch` on a free port; another port if the first is taken in between.
    /// A `CBS_API_KEY` in `env` is moved into the emulator's Secrets Manager first (see
    /// [`crate::resources::api_key_via_secrets_manager`]): the functions read it from there.
    async fn start_watch(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let env = crate::resources::api_key_via_secrets_manager(env).await?;
        let mut last = None;
        for _ in 0..3 {
            match Self::start_watch_once(env.clone()).await {
                Ok(functions) => return Ok(functions),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    async fn start_watch_once(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let port = wait::free_port();
        let mut cmd = Command::new(paths::tool("cargo-lambda"));
        cmd.args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--quiet",
            "--only-lambda-apis",
        ]);
        cmd.args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(paths::workspace_root())
            .env("CARGO_TARGET_DIR", paths::target_dir())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env);
        let mut process = ManagedProcess::spawn("functions", cmd)?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait::until(
            "cargo lambda watch to answer",
            Duration::from_secs(60),
            || {
                // A part that exited will never answer: stop waiting and report its stderr.
                let exited = process.ensure_running().err();
                async move {
                    match exited {
                        Some(e) => Some(Err(e)),
                        // With only the APIs, `/` waits for a function that never comes:
                        // accepting connections is the sign it is up.
                        None => tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .is_ok()
                            .then_some(Ok(())),
                    }
                }
            },
        )
        .await
        .and_then(|r| r)
        .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", process.stderr_tail(2000)))?;
        Ok(Self {
            invoker: LambdaInvoker::new(base_url.clone()),
            base_url,
            instances: Vec::new(),
            process,
        })
    }

    pub async fn invoke(
        &self,
        function: &str,
        payload: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        self.invoker.invoke(function, payload).await
    }

    /// The function URL of an HTTP function (ops-api): `<base>/lambda-url/<fn>/`.
    pub fn http_url(&self, function: &str) -> String {
        format!("{}/lambda-url/{function}/", self.base_url)
    }
}
