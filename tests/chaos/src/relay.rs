//! A relay in front of `cargo lambda watch`'s runtime API, one path prefix per function
//! instance (`/<instance>/.rt/<function>/2018-06-01/runtime/...`). It remembers which invocation
//! each instance is working on, so when the chaos run kills an instance mid-work it can report
//! the invocation as failed (`Runtime.ExitError`), as Lambda does when a runtime dies. Without
//! it the killed invocation would hang its caller (the bridge, the scheduler) until the
//! emulator's 10-minute timeout, which no real event source or schedule does.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    /// instance -> (function, request id in progress)
    in_flight: Arc<Mutex<HashMap<String, (String, String)>>>,
    /// Instances killed: an invocation handed to one of them (on a long poll it opened before
    /// it died) is failed at once.
    dead: Arc<Mutex<std::collections::HashSet<String>>>,
}

pub struct Relay {
    pub base_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays to `upstream` (cargo lambda's base URL).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            // No timeout: `next` is a long poll that waits for the next invocation.
            http: reqwest::Client::builder().build()?,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            dead: Arc::new(Mutex::new(std::collections::HashSet::new())),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url,
            shared,
            task,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for one instance of `function`.
    pub fn runtime_api(&self, instance: &str, function: &str) -> String {
        format!("{}/{instance}/.rt/{function}", self.base_url)
    }

    /// How many instances of `function` are working on an invocation now.
    pub fn busy(&self, function: &str) -> usize {
        self.shared
            .in_flight
            .lock()
            .map(|m| m.values().filter(|(f, _)| f == function).count())
            .unwrap_or(0)
    }

    /// The instance died: fail the invocation it held, if any (true when there was one).
    pub async fn instance_died(&self, instance: &str) -> bool {
        if let Ok(mut dead) = self.shared.dead.lock() {
            dead.insert(instance.to_string());
        }
        let held = self
            .shared
            .in_flight
            .lock()
            .ok()
            .and_then(|mut m| m.remove(instance));
        let Some((function, request_id)) = held else {
            return false;
        };
        fail_invocation(&self.shared, instance, &function, &request_id).await
    }
}

/// Reports the invocation as failed by a runtime exit, as Lambda does when a runtime dies.
async fn fail_invocation(s: &Shared, instance: &str, function: &str, request_id: &str) -> bool {
    tracing::info!(
        instance,
        function,
        request_id,
        "failing the invocation of a killed instance"
    );
    {
        let url = format!(
            "{}/.rt/{function}/2018-06-01/runtime/invocation/{request_id}/error",
            s.upstream
        );
        let sent = s
            .http
            .post(url)
            .header("Lambda-Runtime-Function-Error-Type", "Runtime.ExitError")
            .json(&serde_json::json!({
                "errorType": "Runtime.ExitError",
                "errorMessage": "the runtime was killed mid-invocation (chaos)"
            }))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        if let Err(e) = &sent {
            tracing::warn!(error = %e, instance, "could not fail the killed invocation");
        }
        sent.is_ok()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    let Some((instance, rest)) = path.split_once('/') else {
        return (StatusCode::NOT_FOUND, "no instance in the path").into_response();
    };
    let function = rest
        .strip_prefix(".rt/")
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{}/{rest}{query}", s.upstream);
    let mut req = s.http.request(method.clone(), url).body(body);
    for (name, value) in headers.iter() {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    // Detached: if the instance dies during its long poll, the invocation the emulator hands
    // to this request still arrives here (and is failed) instead of vanishing.
    let instance = instance.to_string();
    let rest = rest.to_string();
    let detached = s.clone();
    let upstream = tokio::spawn(async move {
        let resp = req.send().await?;
        let status = resp.status();
        let out_headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let mut dead_invocation = None;
        if let Ok(mut m) = detached.in_flight.lock() {
            if rest.ends_with("/invocation/next") && status.is_success() {
                if let Some(id) = out_headers
                    .get("lambda-runtime-aws-request-id")
                    .and_then(|v| v.to_str().ok())
                {
                    let dead = detached
                        .dead
                        .lock()
                        .map(|d| d.contains(&instance))
                        .unwrap_or(false);
                    if dead {
                        dead_invocation = Some(id.to_string());
                    } else {
                        m.insert(instance.clone(), (function.clone(), id.to_string()));
                    }
                }
            } else if rest.ends_with("/response") || rest.ends_with("/error") {
                m.remove(&instance);
            }
        }
        if let Some(id) = dead_invocation {
            fail_invocation(&detached, &instance, &function, &id).await;
        }
        Ok::<_, reqwest::Error>((status, out_headers, bytes))
    });
    let (status, out_headers, bytes) = match upstream.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in out_headers.iter() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response
        .body(axum::body::Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
