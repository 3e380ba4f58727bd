//! The AWS emulator: moto (DynamoDB, SQS, SNS, Secrets Manager, CloudFormation on one port),
//! served by `moto/serve.py`.

use crate::process::ManagedProcess;
use crate::{paths, wait};
use std::process::Command;
use std::time::Duration;

/// Region and dummy credentials every local client uses; moto accepts any.
pub const REGION: &str = "eu-west-1";
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

pub struct Moto {
    pub endpoint: String,
    pub process: ManagedProcess,
}

impl Moto {
    /// Starts moto on a free port; tries another port if the first is taken in between.
    pub async fn start() -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once().await {
                Ok(moto) => return Ok(moto),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    async fn start_once() -> anyhow::Result<Self> {
        let port = wait::free_port();
        // moto's application behind waitress (keep-alive, no access log): see moto/serve.py.
        let mut cmd = Command::new(paths::tool("python"));
        cmd.arg(paths::workspace_root().join("tests/devstack/moto/serve.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut process = ManagedProcess::spawn("moto", cmd)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/moto-api/");
        wait::until("moto to answer", Duration::from_secs(30), || {
            // A part that exited will never answer: stop waiting and report its stderr.
            let exited = process.ensure_running().err();
            let probe = probe.clone();
            async move {
                match exited {
                    Some(e) => Some(Err(e)),
                    None => wait::http_answers(&probe).await.then_some(Ok(())),
                }
            }
        })
        .await
        .and_then(|r| r)
        .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", process.stderr_tail(1000)))?;
        Ok(Self { endpoint, process })
    }

    /// Environment for a native binary that talks to this emulator (the SDK reads these).
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(&self.endpoint)
    }

    /// An SDK config pointed at this emulator.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "devstack",
        ))
        .load()
        .await
}
