//! The stand-in partner billing system (`cbs-billing`, built by `cargo build -p cbs-billing`):
//! the other end of the refund hook. Its signing secret is also put into the emulator's Secrets
//! Manager, where the platform reads it by name (the policy's `refund_hook.secret_id`), exactly
//! as it reads the partner API key.

use crate::paths;
use crate::process::ManagedProcess;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

pub struct Billing {
    /// e.g. `http://127.0.0.1:41235`; the hook URL is `<base_url>/refunds`.
    pub base_url: String,
    /// The Secrets Manager secret (name) holding the signing secret.
    pub secret_id: String,
    pub process: ManagedProcess,
    http: reqwest::Client,
}

const LISTENING: &str = "BILLING_LISTENING ";

impl Billing {
    /// Starts `cbs-billing` with a fresh signing secret, stored in moto's Secrets Manager as
    /// `<prefix>-refund-hook`. `hang_secs`: how long `timeout` / `answer_twice` hold a request.
    pub async fn start(moto_endpoint: &str, prefix: &str, hang_secs: u64) -> anyhow::Result<Self> {
        let binary = paths::debug_binary("cbs-billing");
        anyhow::ensure!(
            binary.is_file(),
            "{} is missing: run `cargo build -p cbs-billing` first",
            binary.display()
        );
        let secret = format!("whsec_billing_{}", uuid::Uuid::new_v4().simple());
        let secret_id = format!("{prefix}-refund-hook");
        crate::resources::put_secret(moto_endpoint, &secret_id, &secret).await?;
        let mut cmd = Command::new(binary);
        cmd.args([
            "--addr",
            "127.0.0.1:0",
            "--hang-secs",
            &hang_secs.to_string(),
        ])
        .env("CBS_BILLING_SECRET", &secret);
        let (process, base_url) =
            ManagedProcess::spawn_listening("billing", cmd, LISTENING).await?;
        Ok(Self {
            base_url,
            secret_id,
            process,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// The policy's `refund_hook` for this billing system.
    pub fn hook_config(&self, timeout_ms: u64, max_attempts: u32) -> Value {
        json!({"url": format!("{}/refunds", self.base_url), "secret_id": self.secret_id,
               "timeout_ms": timeout_ms, "max_attempts": max_attempts})
    }

    /// Sets what the billing system does for one alert: `refund`, `refund_and_cancel`,
    /// `refuse`, `timeout`, `answer_twice`, `flaky`.
    pub async fn set_mode(&self, alert_id: &str, mode: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/_billing/modes", self.base_url))
            .json(&json!({"alert_id": alert_id, "mode": mode}))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "set mode: {}", resp.status());
        Ok(())
    }

    /// Every request received, oldest first.
    pub async fn log(&self) -> anyhow::Result<Vec<Value>> {
        self.get("log").await
    }

    /// Refunds made (one per idempotency key), with `answered` counts.
    pub async fn refunds(&self) -> anyhow::Result<Vec<Value>> {
        self.get("refunds").await
    }

    async fn get(&self, what: &str) -> anyhow::Result<Vec<Value>> {
        let v: Value = self
            .http
            .get(format!("{}/_billing/{what}", self.base_url))
            .send()
            .await?
            .json()
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}
