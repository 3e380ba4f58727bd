//! Test support: a sandbox started in-process on 127.0.0.1:0, a reqwest client, and a tiny axum
//! receiver that captures webhooks.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cbs_sandbox::{Config, Sandbox};
use reqwest::Method;
use serde_json::{json, Value};
use shared::secret::Secret;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PARTNER_KEY: &str = "cbs_test_partner_admin_key";
pub const LIVE_PARTNER_KEY: &str = "cbs_live_partner_admin_key";
pub const WEBHOOK_SECRET: &str = "whsec_sandbox_tests";

pub struct Harness {
    pub sandbox: Sandbox,
    pub base: String,
    pub http: reqwest::Client,
}

pub fn config() -> Config {
    Config {
        partner_key: Some(Secret::new(PARTNER_KEY)),
        live_partner_key: Some(Secret::new(LIVE_PARTNER_KEY)),
        webhook_secret: Secret::new(WEBHOOK_SECRET),
        time_factor: 0.0002,
        ..Config::default()
    }
}

pub async fn start() -> Harness {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> Harness {
    let sandbox = Sandbox::start(config).await.expect("sandbox starts");
    let base = sandbox.base_url();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Harness {
        sandbox,
        base,
        http,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Harness {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches the sandbox");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, None, body).await
    }

    /// Create a key through the admin API.
    pub async fn key(&self, spec: Value) -> String {
        let r = self.admin(Method::POST, "/_sandbox/keys", Some(spec)).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["key"].as_str().unwrap().to_string()
    }

    /// Organisation + merchant + CUSTOM_ORDERS integration under `key`.
    pub async fn onboard(&self, key: &str, name: &str) -> Onboarded {
        let org = self
            .post("/v1/organisations/", key, json!({ "name": name }))
            .await;
        assert_eq!(org.status, 201, "{:?}", org.body);
        let org_id = org.body["id"].as_str().unwrap().to_string();
        let merchant = self
            .post(
                "/v1/merchants/",
                key,
                json!({ "organisation_id": org_id, "name": format!("{name} store"), "type": "GENERIC", "external_id": "mid_1" }),
            )
            .await;
        assert_eq!(merchant.status, 201, "{:?}", merchant.body);
        let merchant_id = merchant.body["id"].as_str().unwrap().to_string();
        let integration = self
            .post(
                "/v1/integrations/",
                key,
                json!({ "organisation_id": org_id, "name": "orders", "type": "CUSTOM_ORDERS", "status": "ENABLED", "merchant_ids": [merchant_id] }),
            )
            .await;
        assert_eq!(integration.status, 201, "{:?}", integration.body);
        Onboarded {
            org_id,
            merchant_id,
            integration_id: integration.body["id"].as_str().unwrap().to_string(),
        }
    }

    pub async fn ethoca_enrolment(&self, key: &str, merchant_id: &str, enable: bool) -> String {
        self.enrolment(
            key,
            json!({ "merchant_ids": [merchant_id], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [{ "descriptor": "ACMEFIT", "match_type": "STARTS_WITH" }] } }),
            enable,
        )
        .await
    }

    pub async fn rdr_enrolment(&self, key: &str, merchant_id: &str, enable: bool) -> String {
        self.enrolment(
            key,
            json!({ "merchant_ids": [merchant_id], "type": "VERIFI_RDR", "verifi_rdr": { "bin": "424242", "caid": "ACMECAID01" } }),
            enable,
        )
        .await
    }

    /// Create an enrolment (it starts PENDING) and, when asked, enable it through the
    /// simulation endpoint so that alerts can be simulated on it.
    async fn enrolment(&self, key: &str, body: Value, enable: bool) -> String {
        let e = self.post("/v2/enrolments/", key, body).await;
        assert_eq!(e.status, 201, "{:?}", e.body);
        let id = e.body["id"].as_str().unwrap().to_string();
        if enable {
            let r = self
                .patch(
                    &format!("/v1/simulate/enrolments/{id}"),
                    key,
                    json!({ "status": "ENABLED" }),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        id
    }

    /// Where most alert tests start: an onboarded organisation, an ENABLED Ethoca enrolment
    /// and one simulated ACTION_REQUIRED alert on it.
    pub async fn onboard_with_alert(&self, key: &str, name: &str) -> Alerted {
        let o = self.onboard(key, name).await;
        let enrolment_id = self.ethoca_enrolment(key, &o.merchant_id, true).await;
        let alert = self
            .simulate_alert(key, &o.org_id, &enrolment_id, json!({}))
            .await;
        assert_eq!(alert.status, 201, "{:?}", alert.body);
        Alerted {
            o,
            enrolment_id,
            alert: alert.body,
        }
    }

    pub async fn simulate_alert(
        &self,
        key: &str,
        org_id: &str,
        enrolment_id: &str,
        extra: Value,
    ) -> Reply {
        let mut body = json!({
            "organisation_id": org_id,
            "enrolment_id": enrolment_id,
            "status": "ACTION_REQUIRED",
            "card_scheme": "VISA",
            "amount_in_cents": 4900,
            "currency_code": "USD",
            "transaction_acquirer_reference_number": "74027012345678901234567",
            "transaction_authorisation_code": "123456"
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/v1/simulate/alerts", key, body).await
    }

    pub async fn faults(&self, knobs: Value) -> Value {
        let r = self
            .admin(Method::PUT, "/_sandbox/faults", Some(knobs))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        let r = self.admin(Method::GET, "/_sandbox/deliveries", None).await;
        r.body.as_array().cloned().unwrap_or_default()
    }
}

pub struct Onboarded {
    pub org_id: String,
    pub merchant_id: String,
    pub integration_id: String,
}

pub struct Alerted {
    pub o: Onboarded,
    pub enrolment_id: String,
    pub alert: Value,
}

/// One webhook as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Bytes,
    pub signature: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    pub json: Value,
    /// When the receiver got it.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Statuses to answer with, in order; 200 once empty.
    script: VecDeque<u16>,
}

/// A tiny axum server that records every POST and answers from a script.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    pub url: String,
}

impl Receiver {
    pub async fn start(script: Vec<u16>) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            received: Vec::new(),
            script: script.into(),
        }));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            state,
            url: format!("http://{addr}/hook"),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Wait (bounded) until at least `n` webhooks arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(|| {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} webhooks, got {:?}", self.received().len()))
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut s = state.lock().unwrap();
    s.received.push(Received {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
        signature: header("x-signature"),
        idempotency_key: header("x-idempotency-key"),
        content_type: header("content-type"),
        at: std::time::Instant::now(),
    });
    StatusCode::from_u16(s.script.pop_front().unwrap_or(200)).unwrap()
}

/// Poll `check` until it gives a value, for at most 10 s (a bound, not a timing assertion).
pub async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..400 {
        if let Some(v) = check() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}
