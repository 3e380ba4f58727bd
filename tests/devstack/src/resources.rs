//! The data resources (tables, queues with redrive, the topic) created in the emulator from
//! `infra/template.yaml` by `infra/local/create_resources.py`, so tests and the cloud share one
//! definition. Each test passes its own prefix, so tests can share one emulator.

use crate::paths;
use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Resources {
    /// `TABLE_PREFIX`: tables are `<prefix>-events`, `-alerts`, ...; also the stack name.
    pub table_prefix: String,
    pub edge_queue_url: String,
    pub edge_queue_arn: String,
    pub edge_dlq_url: String,
    pub topic_arn: String,
}

/// Overrides for the edge queue so tests see redelivery and dead-lettering quickly.
#[derive(Debug, Clone, Default)]
pub struct QueueOptions {
    pub visibility_timeout_secs: Option<u32>,
    pub max_receive_count: Option<u32>,
}

/// A prefix no other test uses: `<label>-<8 hex>`, lower case (a valid TablePrefix).
pub fn unique_prefix(label: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", label.to_lowercase(), &id[..8])
}

pub async fn create(moto_endpoint: &str, table_prefix: &str) -> anyhow::Result<Resources> {
    create_with(moto_endpoint, table_prefix, &QueueOptions::default()).await
}

pub async fn create_with(
    moto_endpoint: &str,
    table_prefix: &str,
    queue: &QueueOptions,
) -> anyhow::Result<Resources> {
    let script = paths::workspace_root().join("infra/local/create_resources.py");
    let mut cmd = tokio::process::Command::new(paths::tool("python"));
    cmd.arg(&script)
        .args(["--endpoint", moto_endpoint, "--prefix", table_prefix])
        .env("PATH", paths::tool_path())
        .env("AWS_REGION", crate::moto::REGION)
        .kill_on_drop(true);
    if let Some(v) = queue.visibility_timeout_secs {
        cmd.args(["--visibility-timeout", &v.to_string()]);
    }
    if let Some(n) = queue.max_receive_count {
        cmd.args(["--max-receive-count", &n.to_string()]);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("run {}", script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "create_resources.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "parse create_resources.py output: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

impl Resources {
    /// The environment the functions need for these resources (plus the emulator's).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TABLE_PREFIX".into(), self.table_prefix.clone()),
            ("EDGE_QUEUE_URL".into(), self.edge_queue_url.clone()),
            ("EDGE_DLQ_URL".into(), self.edge_dlq_url.clone()),
            ("NOTIFY_TOPIC_ARN".into(), self.topic_arn.clone()),
        ]
    }
}
