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
    /// Ethoca alerts whose deadline has not passed yet: when it does, they expire (leave
    /// ACTION_REQUIRED, `alert.updated`). An alert given a deadline already in the past (admin
    /// PATCH, or the simulate extension) is not watched: it describes an overdue alert
    /// ChargebackStop has not processed yet, until `POST /_sandbox/alerts/{id}/expire`.
    #[serde(default)]
    pub expiry_watch: std::collections::BTreeSet<String>,
    /// Alerts with a subscription associated (the simulate extension `subscription: true`, or a
    /// matched order with `subscriptions`): CANCEL and REFUND_AND_CANCEL can cancel it when the
    /// merchant also has a payment processor integration.
    #[serde(default)]
    pub subscribed_alerts: std::collections::BTreeSet<String>,
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
    /// The next N API requests (after any `burst_429`) get `error_status`: a 5xx that is
    /// certain to happen, where `error_rate` only may.
    pub burst_5xx: u32,
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

    // --- Where the docs are silent: each plausible answer (tests/sandbox/README.md,
    // "Assumptions where the docs are silent"). Defaults are the lenient, documented-as-far-as-
    // it-goes behaviour.
    /// `fresh`: every webhook attempt is signed with the time of that attempt; `original`: every
    /// retry carries the first attempt's `X-Signature` (and so its `t`).
    pub retry_signature: RetrySignature,
    /// Send `Retry-After` on 429s (rate limit and `burst_429`).
    pub retry_after_header: bool,
    /// Body of injected 5xx answers: `json` (the error shape), `html` (a proxy's error page),
    /// `empty`.
    pub error_body: ErrorBody,
    /// 4xx bodies carry `code` and `errors[].code`; false: `{"detail": "..."}` only, so a test
    /// proves our code never depends on codes the docs do not show.
    pub error_codes: bool,
    /// Order batch errors echo the order's `reference_id` (else only `index` identifies it).
    pub order_error_reference_id: bool,
    /// What `PATCH /v1/simulate/enrolments/{id}` answers: the enrolment (200), an empty 200, or
    /// 204 No Content.
    pub simulate_enrolment_response: SimulateEnrolmentResponse,
    /// Only the documented form of each path answers (`/v1/orders/` with its slash,
    /// `/v1/alerts/{id}` without); the other form gets 404.
    pub strict_paths: bool,
    /// Stricter than the docs where the docs are silent: RFC 3339 dates only, `limit` outside
    /// 1..=1000 refused, closed lists for merchant type, integration type, role and card scheme,
    /// a ruleset needs a rule, organisation keys refused (401) on every onboarding route.
    pub strict: bool,
    /// An Ethoca alert whose deadline passes leaves ACTION_REQUIRED (and `alert.updated` goes
    /// out); false: it waits for ever, as the sandbox did before.
    pub alert_expiry: bool,
    /// What an expired alert becomes (the docs say only "the dispute proceeds").
    pub expiry_outcome: ExpiryOutcome,
    /// Simulated alerts are matched to uploaded COMPLETE orders (ARN; auth code + last 4; BIN +
    /// last 4 + amount + currency + date) and carry `integration_id` and
    /// `integration_transaction_id`. False: always null, as the Orders guide says the real
    /// simulator may answer.
    pub match_orders: bool,
    /// The `realistic` profile: seeded reordering, duplicates, occasional 5xx and 429, latency.
    /// Set with `{"profile": "realistic", "seed": 7}`; `{"profile": "none"}` turns it off.
    pub profile: Profile,
    /// Seed of the fault dice (error_rate, the realistic profile), so a run can be repeated.
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrySignature {
    #[default]
    Fresh,
    Original,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorBody {
    #[default]
    Json,
    Html,
    Empty,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulateEnrolmentResponse {
    #[default]
    Enrolment,
    Empty200,
    NoContent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryOutcome {
    /// RESOLVED with `transaction_refund_outcome: NOT_REFUNDED` (auto-declined).
    #[default]
    ResolvedNotRefunded,
    /// RESOLVED with no outcome.
    ResolvedNoOutcome,
    /// INVALID.
    Invalid,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    None,
    Realistic,
}

impl Faults {
    pub fn normal() -> Self {
        Faults {
            error_status: 500,
            out_of_order_window_ms: 500,
            retry_after_header: true,
            error_codes: true,
            order_error_reference_id: true,
            alert_expiry: true,
            match_orders: true,
            ..Faults::default()
        }
    }

    /// What the `realistic` profile turns on (each still overridable after it).
    pub fn realistic(mut self) -> Self {
        self.profile = Profile::Realistic;
        self.error_rate = self.error_rate.max(0.02);
        self.error_status = 503;
        self.latency_ms = self.latency_ms.max(20);
        self.out_of_order = true;
        self.out_of_order_batch = 2;
        self.out_of_order_window_ms = self.out_of_order_window_ms.min(200);
        self.seed = self.seed.or(Some(1));
        self
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
    /// The fault dice: seeded from `Faults::seed` when set, so a run can be repeated.
    pub dice: Option<rand::rngs::StdRng>,
}

impl Runtime {
    /// A number in 0..1 from the fault dice (seeded when `Faults::seed` is set).
    pub fn roll(&mut self) -> f64 {
        use rand::{Rng, SeedableRng};
        if self.dice.is_none() {
            self.dice = Some(match self.faults.seed {
                Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
                None => rand::rngs::StdRng::from_os_rng(),
            });
        }
        self.dice.as_mut().expect("set above").random::<f64>()
    }
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
    /// True when the answer was an injected fault (a fault knob or the `realistic` profile),
    /// not the API's own answer: a test tells an injected 429 from the real rate limit by it.
    pub injected: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub webhook_secret: shared::secret::Secret,
    pub time_factor: f64,
    pub rate_limit: u32,
    /// GET and POST of one path share one limit (`--rate-limit-per path`); otherwise each
    /// method and path has its own.
    pub rate_limit_per_path: bool,
    pub rate_window: std::time::Duration,
    pub state_file: Option<PathBuf>,
    /// The knobs at start and after `POST /_sandbox/reset`: `Faults::normal()`, or the
    /// `realistic` profile when the sandbox was started with `--profile realistic`.
    pub start_faults: Faults,
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
            faults: settings.start_faults.clone(),
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
