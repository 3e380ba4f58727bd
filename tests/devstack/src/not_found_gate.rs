//! A gate in front of the sandbox for tests of a replica that lags: `GET /v1/alerts/{id}`
//! answers the sandbox's own 404 while the id is hidden, everything else is forwarded.
//!
//! A few lines of HTTP/1.1 over a `TcpListener` (request heads with Content-Length bodies, as
//! our client sends them) rather than a proxy crate: it only has to rewrite one path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// An HTTP/1.1 gate in front of the sandbox that answers `GET /v1/alerts/{id}` with the
/// sandbox's own 404 while the id is hidden (a replica behind), and forwards everything else.
#[derive(Default)]
pub struct NotFoundGate {
    /// Where requests go; set at start or later ([`NotFoundGate::set_upstream`]) when the
    /// sandbox starts after the functions that are pointed at the gate.
    upstream: OnceLock<String>,
    hidden: Mutex<HashSet<String>>,
    not_found_answers: Mutex<HashMap<String, u32>>,
}

impl NotFoundGate {
    /// Listens on a free loopback port; answers the gate's URL. `upstream`: the sandbox's base
    /// URL, or `None` to set it later.
    pub async fn start(upstream: Option<String>) -> anyhow::Result<(String, Arc<Self>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let gate = Arc::new(Self::default());
        if let Some(upstream) = upstream {
            gate.set_upstream(upstream);
        }
        let http = reqwest::Client::new();
        let g = gate.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (g, http) = (g.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = g.serve(stream, &http).await;
                });
            }
        });
        Ok((url, gate))
    }

    /// Sets where requests go (once; a second call is ignored).
    pub fn set_upstream(&self, upstream: String) {
        let _ = self.upstream.set(upstream);
    }

    /// Hides `alert_id` (its GETs answer 404) or shows it again.
    pub fn hide(&self, alert_id: &str, hidden: bool) {
        let mut h = self.hidden.lock().unwrap();
        if hidden {
            h.insert(alert_id.to_string());
        } else {
            h.remove(alert_id);
        }
    }

    /// How many 404s the gate answered for `alert_id`.
    pub fn not_found_answers(&self, alert_id: &str) -> u32 {
        *self
            .not_found_answers
            .lock()
            .unwrap()
            .get(alert_id)
            .unwrap_or(&0)
    }

    /// One keep-alive connection: request heads with Content-Length bodies (what the client
    /// sends), answers with Content-Length.
    async fn serve(
        &self,
        stream: tokio::net::TcpStream,
        http: &reqwest::Client,
    ) -> anyhow::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        loop {
            let mut request_line = String::new();
            if read.read_line(&mut request_line).await? == 0 {
                return Ok(());
            }
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                read.read_line(&mut line).await?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            read.read_exact(&mut body).await?;

            let alert_id = path
                .split('?')
                .next()
                .unwrap_or_default()
                .strip_prefix("/v1/alerts/")
                .map(|id| id.trim_end_matches('/').to_string())
                .filter(|id| !id.is_empty());
            let hidden = method == "GET"
                && alert_id
                    .as_ref()
                    .is_some_and(|id| self.hidden.lock().unwrap().contains(id));
            // Forward (a hidden alert: ask for one that does not exist, for the real 404).
            let target = if hidden {
                *self
                    .not_found_answers
                    .lock()
                    .unwrap()
                    .entry(alert_id.unwrap())
                    .or_default() += 1;
                "/v1/alerts/netalrt_hidden_by_the_gate".to_string()
            } else {
                path
            };
            let upstream = self.upstream.get().cloned().unwrap_or_default();
            let mut req = http.request(method.parse()?, format!("{upstream}{target}"));
            for (k, v) in &headers {
                if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                    req = req.header(k, v);
                }
            }
            let resp = req.body(body).send().await?;
            let status = resp.status();
            let mut head = format!(
                "HTTP/1.1 {} {}\r\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            for (k, v) in resp.headers() {
                if !matches!(
                    k.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
                }
            }
            let bytes = resp.bytes().await?;
            head.push_str(&format!("content-length: {}\r\n\r\n", bytes.len()));
            write.write_all(head.as_bytes()).await?;
            write.write_all(&bytes).await?;
        }
    }
}
