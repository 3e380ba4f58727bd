//! Everything the sandbox remembers. `Store` is what `--state-file` saves; `Runtime` (fault knobs,
//! rate-limit windows, request counts) lives only as long as the process.

use crate::model::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Store {
    pub keys: Vec<ApiKey>,
    pub webhook_endpoints: Vec<String>,
    pub organisations: BTreeMap<String, Organisation>,
    pub memberships: BTreeMap<String, Membership>,
    pub merchants: BTreeMap<String, Merchant>,
    pub integrations: BTreeMap<String, Integration>,
    pub enrolments: BTreeMap<String, Enrolment>,
    pub alerts: BTreeMap<String, Alert>,
    pub rulesets: BTreeMap<String, Ruleset>,
    /// Orders as submitted (plus id, created_at, links), by id.
    pub orders: BTreeMap<String, Value>,
    /// Every event emitted, in order (GET /_sandbox/events).
    pub events: Vec<Value>,
    pub deliveries: Vec<DeliveryAttempt>,
    /// Every PATCH /v1/alerts/{id} on an existing alert, accepted or refused, in order
    /// (GET /_sandbox/alerts/{id}/actions).
    #[serde(default)]
    pub alert_actions: Vec<AlertAction>,
    /// "<event id> <endpoint url>" -> the X-Idempotency-Key of that delivery, so retries and
    /// redeliveries of one event to one endpoint carry the same key.
    #[serde(default)]
    pub delivery_keys: BTreeMap<String, String>,
    /// (organisation_id, reference_id) -> order id; rebuilt on load.
    #[serde(skip)]
    pub order_refs: HashMap<(String, String), String>,
}

impl Store {
    pub fn rebuild_indexes(&mut self) {
        self.order_refs = self
            .orders
            .iter()
            .filter_map(|(id, o)| {
                let org = o.get("organisation_id")?.as_str()?.to_string();
                let reference = o.get("reference_id")?.as_str()?.to_string();
                Some(((org, reference), id.clone()))
            })
            .collect();
    }

    /// What `POST /_sandbox/reset` keeps: keys and webhook endpoints.
    pub fn reset(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        let endpoints = std::mem::take(&mut self.webhook_endpoints);
        *self = Store {
            keys,
            webhook_endpoints: endpoints,
            ..Store::default()
        };
    }
}

/// Fault knobs (`PUT /_sandbox/faults`). They apply to /v1 and /v2 routes and to webhooks only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of API requests (0..1) answered with `error_status` instead of being processed.
    pub error_rate: f64,
    /// 500, 502 or 503.
    pub error_status: u16,
    /// The next N API requests get 429 RATE_LIMITED.
    pub burst_429: u32,
    /// Added before every API request.
    pub latency_ms: u64,
    /// Every webhook is delivered twice (same event, same idempotency key).
    pub duplicate_deliveries: bool,
    /// Webhooks are held and each batch delivered in reverse order.
    pub out_of_order: bool,
    /// How long the first held webhook waits for others before its batch goes out.
    pub out_of_order_window_ms: u64,
    /// A batch goes out as soon as it has this many events (0: only the window or a flush ends
    /// it). With 2 and a long window, every pair of events is swapped, whatever the timing.
    pub out_of_order_batch: u32,
    /// Webhooks are never delivered (events are still recorded).
    pub drop_webhooks: bool,
    /// The next N events are not delivered (each gets a `dropped` delivery record); counts down.
    pub drop_next: u32,
    /// Events are held, not delivered, until `POST /_sandbox/webhooks/release` (deterministic
    /// reordering: release them reversed, or in any order by event id).
    pub hold_webhooks: bool,
    /// Alert ids whose action PATCHes are refused with 422 `ACTION_NOT_AVAILABLE` while the
    /// alert stays ACTION_REQUIRED (a refusal that resolves nothing; logged as an action).
    pub refuse_alert_actions: Vec<String>,
}

impl Faults {
    pub fn normal() -> Self {
        Faults {
            error_status: 500,
            out_of_order_window_ms: 500,
            ..Faults::default()
        }
    }
}

#[derive(Debug, Default)]
pub struct Runtime {
    pub faults: Faults,
    /// (endpoint, pool) -> (window start unix ms, count)
    pub rate_windows: HashMap<(String, String), (i64, u32)>,
    /// "METHOD /template" -> requests seen
    pub request_counts: BTreeMap<String, u64>,
    /// The last `REQUEST_LOG_LIMIT` API requests (GET /_sandbox/requests).
    pub requests: VecDeque<RequestRecord>,
    pub next_request_seq: u64,
    /// Events waiting for `POST /_sandbox/webhooks/release` (the `hold_webhooks` knob).
    pub held: Vec<crate::webhooks::Outgoing>,
    /// Set by `PUT /_sandbox/webhooks/secrets` (rotation tests): every secret here signs each
    /// attempt, one `v1=` entry each. Empty: the configured `--webhook-secret` alone.
    pub signing_secrets: Vec<shared::secret::Secret>,
}

/// How many API requests `GET /_sandbox/requests` remembers (oldest dropped first).
pub const REQUEST_LOG_LIMIT: usize = 10_000;

/// One /v1 or /v2 request as the sandbox received it. Never the Authorization header: `key_id`
/// says which key was used once it authenticated.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The route template, e.g. `PATCH /v1/alerts/{alert_id}` (the rate-limit endpoint).
    pub route: String,
    /// The body as JSON, or as a string when it is not JSON; null when empty.
    pub body: Value,
    pub key_id: Option<String>,
    /// The status the sandbox answered with (null while in flight).
    pub status: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub webhook_secret: shared::secret::Secret,
    pub time_factor: f64,
    pub rate_limit: u32,
    pub rate_window: std::time::Duration,
    pub state_file: Option<PathBuf>,
}

/// What a handler gets: the store, the runtime, and a way to emit webhook events.
pub struct App {
    store: Mutex<Store>,
    runtime: Mutex<Runtime>,
    pub settings: Settings,
    pub events: mpsc::UnboundedSender<crate::webhooks::Outgoing>,
    /// Flush held (out-of-order) webhooks now.
    pub flush: Notify,
    /// Wake the state-file writer.
    pub save: Notify,
}

pub type SharedApp = Arc<App>;

impl App {
    pub fn new(
        store: Store,
        settings: Settings,
        events: mpsc::UnboundedSender<crate::webhooks::Outgoing>,
    ) -> Self {
        let runtime = Runtime {
            faults: Faults::normal(),
            ..Runtime::default()
        };
        Self {
            store: Mutex::new(store),
            runtime: Mutex::new(runtime),
            settings,
            events,
            flush: Notify::new(),
            save: Notify::new(),
        }
    }

    /// Never held across an await.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn runtime(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record an event and queue it for delivery, then ask for the state to be saved.
    pub fn emit(
        &self,
        store: &mut Store,
        kind: &str,
        api_version: &str,
        object: Value,
        previous: Value,
    ) {
        let event = serde_json::json!({
            "id": new_id("evt"),
            "type": kind,
            "created_at": ts::format(&chrono::Utc::now()),
            "data": { "object": object, "previous_attributes": previous },
            "api_version": api_version,
        });
        store.events.push(event.clone());
        let _ = self.events.send(crate::webhooks::Outgoing { event });
    }

    pub fn changed(&self) {
        self.save.notify_one();
    }
}
