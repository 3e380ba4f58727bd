//! `cbs-billing`: a local stand-in for a partner's billing system, the other end of the refund
//! hook (README "The refund hook"). It verifies our `X-Signature` with the one verifier in
//! `shared::signature`, refunds once per `Idempotency-Key` (a repeat gets the same refund), and
//! misbehaves on demand. Prints exactly one line to stdout, `BILLING_LISTENING http://...`.
//!
//! Knobs (admin API), per alert id or for every request:
//! - `POST /_billing/modes {"alert_id": "..", "mode": M}`, `POST /_billing/default {"mode": M}`
//!   with M one of `refund`, `refund_and_cancel`, `refuse`, `timeout` (no answer for
//!   `--hang-secs`, nothing refunded), `answer_twice` (refunds, answers the first request only
//!   after `--hang-secs`, so the caller times out and asks again: the repeat gets the same refund
//!   at once), `flaky` (a 503 first, then refunds);
//! - `GET /_billing/log`: every request received (key, signature verdict, body, mode, answer);
//! - `GET /_billing/refunds`: refunds made, each with the number of times it was answered.
//! - `POST /_billing/reset`.
//!
//! The signing secret comes from `CBS_BILLING_SECRET` (never a command-line argument).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::secret::Secret;
use shared::signature::{verify, WebhookSecrets, SIGNATURE_HEADER};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "cbs-billing",
    about = "A stand-in partner billing system for the refund hook"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// The secret our platform signs refund requests with.
    #[arg(long, env = "CBS_BILLING_SECRET", hide_env_values = true)]
    secret: String,
    /// How long `timeout` and `answer_twice` keep a request waiting.
    #[arg(long, default_value_t = 30)]
    hang_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Refund,
    RefundAndCancel,
    Refuse,
    Timeout,
    AnswerTwice,
    Flaky,
}

/// What we are asked (the partner's view of the contract).
#[derive(Debug, Clone, Deserialize, Serialize)]
struct RefundRequest {
    alert_id: String,
    organisation_id: String,
    order_reference_id: String,
    transaction_reference_id: String,
    amount_in_cents: Option<i64>,
    currency: Option<String>,
    requested_action: String,
}

#[derive(Debug, Clone, Serialize)]
struct Refund {
    idempotency_key: String,
    refund_reference: String,
    order_reference_id: String,
    transaction_reference_id: String,
    amount_in_cents: Option<i64>,
    currency: Option<String>,
    subscription_cancelled: bool,
    /// Requests answered with this refund.
    answered: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Logged {
    at: String,
    idempotency_key: Option<String>,
    signature: String,
    body: Value,
    mode: Option<Mode>,
    status: u16,
    answer: Value,
}

struct Billing {
    secrets: WebhookSecrets,
    hang: Duration,
    default_mode: Mutex<Mode>,
    modes: Mutex<HashMap<String, Mode>>,
    refunds: Mutex<HashMap<String, Refund>>,
    /// Keys that already got their first 503 (`flaky`) or their late answer (`answer_twice`).
    seen: Mutex<HashMap<String, u32>>,
    log: Mutex<Vec<Logged>>,
    next: Mutex<u64>,
}

type Shared = Arc<Billing>;

impl Billing {
    /// Logged on receipt (a request held by `timeout` shows before it is answered); the answer
    /// is filled in when given (`status` 0 until then).
    fn received(&self, entry: Logged) -> usize {
        let mut log = self.log.lock().unwrap();
        log.push(entry);
        log.len() - 1
    }

    fn answered(&self, index: usize, status: u16, answer: Value) {
        if let Some(e) = self.log.lock().unwrap().get_mut(index) {
            e.status = status;
            e.answer = answer;
        }
    }

    /// Refunds once per key; a repeat is answered the same refund.
    fn refund(&self, key: &str, req: &RefundRequest, cancel: bool) -> Refund {
        let mut refunds = self.refunds.lock().unwrap();
        let refund = refunds.entry(key.to_string()).or_insert_with(|| {
            let mut n = self.next.lock().unwrap();
            *n += 1;
            Refund {
                idempotency_key: key.to_string(),
                refund_reference: format!("bill-rf-{:04}", *n),
                order_reference_id: req.order_reference_id.clone(),
                transaction_reference_id: req.transaction_reference_id.clone(),
                amount_in_cents: req.amount_in_cents,
                currency: req.currency.clone(),
                subscription_cancelled: cancel,
                answered: 0,
            }
        });
        refund.answered += 1;
        refund.clone()
    }
}

fn refunded(r: &Refund) -> Value {
    json!({"status": "refunded", "refund_reference": r.refund_reference,
           "subscription_cancelled": r.subscription_cancelled})
}

async fn refunds_endpoint(
    State(b): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let now = chrono::Utc::now();
    let key = headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut entry = Logged {
        at: now.to_rfc3339(),
        idempotency_key: key.clone(),
        signature: "ok".into(),
        body: parsed.clone(),
        mode: None,
        status: 0,
        answer: Value::Null,
    };
    let answer = |b: &Billing, entry: Logged, status: StatusCode, answer: Value| {
        let index = b.received(entry);
        b.answered(index, status.as_u16(), answer.clone());
        (status, Json(answer))
    };
    if let Err(e) = verify(header, &body, &b.secrets, now.timestamp(), 300) {
        entry.signature = format!("refused: {}", e.code());
        return answer(
            &b,
            entry,
            StatusCode::UNAUTHORIZED,
            json!({"status": "refused", "reason": "bad signature"}),
        );
    }
    let Some(key) = key else {
        return answer(
            &b,
            entry,
            StatusCode::BAD_REQUEST,
            json!({"status": "refused", "reason": "Idempotency-Key missing"}),
        );
    };
    let Ok(req) = serde_json::from_value::<RefundRequest>(parsed) else {
        return answer(
            &b,
            entry,
            StatusCode::BAD_REQUEST,
            json!({"status": "refused", "reason": "not a refund request"}),
        );
    };
    if req.alert_id != key {
        return answer(
            &b,
            entry,
            StatusCode::BAD_REQUEST,
            json!({"status": "refused", "reason": "Idempotency-Key is not the alert id"}),
        );
    }
    let mode = b
        .modes
        .lock()
        .unwrap()
        .get(&req.alert_id)
        .copied()
        .unwrap_or(*b.default_mode.lock().unwrap());
    entry.mode = Some(mode);
    // Whatever the mode now, a refund already made for this key is answered again.
    if let Some(done) = b.refunds.lock().unwrap().get_mut(&key) {
        done.answered += 1;
        let done = done.clone();
        return answer(&b, entry, StatusCode::OK, refunded(&done));
    }
    let seen = {
        let mut seen = b.seen.lock().unwrap();
        let n = seen.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    match mode {
        Mode::Refund | Mode::RefundAndCancel => {
            // Cancels the subscription only when asked to and told to by the knob.
            let cancel =
                mode == Mode::RefundAndCancel && req.requested_action == "REFUND_AND_CANCEL";
            let r = b.refund(&key, &req, cancel);
            answer(&b, entry, StatusCode::OK, refunded(&r))
        }
        Mode::Refuse => answer(
            &b,
            entry,
            StatusCode::OK,
            json!({"status": "refused", "reason": "order already shipped; refund refused by billing"}),
        ),
        Mode::Timeout => {
            let index = b.received(entry);
            tokio::time::sleep(b.hang).await;
            let late = json!({"status": "unavailable"});
            b.answered(index, 503, late.clone());
            (StatusCode::SERVICE_UNAVAILABLE, Json(late))
        }
        Mode::AnswerTwice => {
            let r = b.refund(&key, &req, false);
            let index = b.received(entry);
            tokio::time::sleep(b.hang).await;
            b.answered(index, 200, refunded(&r));
            (StatusCode::OK, Json(refunded(&r)))
        }
        Mode::Flaky if seen == 1 => answer(
            &b,
            entry,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable"}),
        ),
        Mode::Flaky => {
            let r = b.refund(&key, &req, false);
            answer(&b, entry, StatusCode::OK, refunded(&r))
        }
    }
}

#[derive(Deserialize)]
struct SetMode {
    #[serde(default)]
    alert_id: Option<String>,
    mode: Mode,
}

async fn set_mode(State(b): State<Shared>, Json(m): Json<SetMode>) -> Json<Value> {
    match &m.alert_id {
        Some(id) => {
            b.modes.lock().unwrap().insert(id.clone(), m.mode);
        }
        None => *b.default_mode.lock().unwrap() = m.mode,
    }
    Json(json!({"ok": true}))
}

async fn log(State(b): State<Shared>) -> Json<Value> {
    Json(serde_json::to_value(&*b.log.lock().unwrap()).unwrap_or_default())
}

async fn refunds(State(b): State<Shared>) -> Json<Value> {
    let list: Vec<Refund> = b.refunds.lock().unwrap().values().cloned().collect();
    Json(serde_json::to_value(list).unwrap_or_default())
}

async fn reset(State(b): State<Shared>) -> Json<Value> {
    b.modes.lock().unwrap().clear();
    b.refunds.lock().unwrap().clear();
    b.seen.lock().unwrap().clear();
    b.log.lock().unwrap().clear();
    *b.default_mode.lock().unwrap() = Mode::Refund;
    Json(json!({"ok": true}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(!cli.secret.is_empty(), "CBS_BILLING_SECRET is empty");
    let state = Arc::new(Billing {
        secrets: WebhookSecrets::new(Secret::new(cli.secret), None),
        hang: Duration::from_secs(cli.hang_secs),
        default_mode: Mutex::new(Mode::Refund),
        modes: Mutex::default(),
        refunds: Mutex::default(),
        seen: Mutex::default(),
        log: Mutex::default(),
        next: Mutex::new(0),
    });
    let app = Router::new()
        .route("/refunds", post(refunds_endpoint))
        .route("/_billing/modes", post(set_mode))
        .route("/_billing/default", post(set_mode))
        .route("/_billing/log", get(log))
        .route("/_billing/refunds", get(refunds))
        .route("/_billing/reset", post(reset))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    let addr = listener.local_addr()?;
    println!("BILLING_LISTENING http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}
