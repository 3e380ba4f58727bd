//! Test-side calls to the sandbox that panic with the route and answer when ChargebackStop
//! refuses: the partner API (`/v1/...`, `/v2/...`) with the partner key and the admin API
//! (`/_sandbox/...`). One copy, shared by the e2e test files that drive the sandbox directly.

use crate::Sandbox;
use reqwest::Method;
use serde_json::Value;

#[derive(Clone)]
pub struct SandboxClient {
    http: reqwest::Client,
    base_url: String,
    partner_key: String,
}

impl SandboxClient {
    pub fn new(sandbox: &Sandbox, http: reqwest::Client) -> Self {
        Self {
            http,
            base_url: sandbox.base_url.clone(),
            partner_key: sandbox.partner_key.clone(),
        }
    }

    /// A partner API request: (status, body as JSON, or as a string when it is not JSON).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.partner_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("sandbox answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A partner API request that must succeed (2xx); its body. A 429 or an injected 5xx (the
    /// sandbox answers them before the handler, so nothing was done) is sent again, up to 8
    /// times, as a careful script would: set-up must not fail under the `realistic` profile.
    /// A `Value::Null` body sends none (a GET).
    pub async fn api(&self, method: Method, path: &str, body: Value) -> Value {
        let mut attempt = 0;
        let (status, v) = loop {
            let sent = (!body.is_null()).then(|| body.clone());
            let (status, v) = self.call(method.clone(), path, sent).await;
            attempt += 1;
            if attempt < 8 && (status == 429 || status >= 500) {
                tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                continue;
            }
            break (status, v);
        };
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// An admin API request (`/_sandbox/<path>`) that must succeed; its body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "{}/_sandbox/{}",
            self.base_url,
            path.trim_start_matches('/')
        );
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("sandbox admin answers");
        assert!(
            resp.status().is_success(),
            "admin {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }

    /// Sets the sandbox's fault knobs (`PUT /_sandbox/faults`), e.g. `{"latency_ms": 200}`.
    pub async fn faults(&self, knobs: Value) {
        self.admin(Method::PUT, "faults", Some(knobs)).await;
    }
}
