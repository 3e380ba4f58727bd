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

/// The secret the local stack keeps the partner API key in, one per table prefix (as the cloud's
/// `cbs/<env>/api-key`).
pub fn api_key_secret_name(table_prefix: &str) -> String {
    format!("{table_prefix}/cbs-api-key")
}

/// The secret the local stack keeps the webhook signing secret in (as the cloud's
/// `cbs/<env>/webhook-secret`, the operators' record copy of the Worker's `WEBHOOK_SECRET`):
/// what `cbs events replay --refused` verifies refused deliveries with.
pub fn webhook_secret_name(table_prefix: &str) -> String {
    format!("{table_prefix}/webhook-secret")
}

/// Puts `key` into the emulator's Secrets Manager as `name`, creating the secret or adding a new
/// version (a rotation); returns the secret's ARN.
pub async fn put_secret(moto_endpoint: &str, name: &str, key: &str) -> anyhow::Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&crate::moto::sdk_config(moto_endpoint).await);
    match client
        .create_secret()
        .name(name)
        .secret_string(key)
        .send()
        .await
    {
        Ok(out) => Ok(out.arn().unwrap_or(name).to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            let out = client
                .put_secret_value()
                .secret_id(name)
                .secret_string(key)
                .send()
                .await
                .with_context(|| format!("put a new value into secret {name}"))?;
            Ok(out.arn().unwrap_or(name).to_string())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("create secret {name}"))),
    }
}

/// The functions' environment as the cloud has it: a `CBS_API_KEY` (the last one, when overridden)
/// is put into the emulator's Secrets Manager and replaced by `CBS_API_KEY_SECRET_ID`, so every
/// local run reads the key the way the deployed functions do. Unchanged when the environment
/// already names a secret, has no key, or has no emulator.
pub async fn api_key_via_secrets_manager(
    env: Vec<(String, String)>,
) -> anyhow::Result<Vec<(String, String)>> {
    let last = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let names_a_secret = shared::config::API_KEY_SECRET_VARS
        .iter()
        .any(|var| last(var).is_some_and(|v| !v.is_empty()));
    let (Some(key), Some(endpoint), false) = (
        last("CBS_API_KEY"),
        last("AWS_ENDPOINT_URL"),
        names_a_secret,
    ) else {
        return Ok(env);
    };
    let prefix = last("TABLE_PREFIX").unwrap_or_else(|| unique_prefix("cbs"));
    let name = api_key_secret_name(&prefix);
    put_secret(&endpoint, &name, &key).await?;
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k != "CBS_API_KEY")
        .collect();
    env.push(("CBS_API_KEY_SECRET_ID".into(), name));
    Ok(env)
}
