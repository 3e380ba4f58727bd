//! The Worker's configuration, read from its bindings once per isolate: an isolate keeps its
//! `env` for its lifetime (a changed binding is a new deployment and a new isolate), so the parsed
//! configuration and the SigV4 signer (with its day's signing key) are kept, keyed by the identity
//! of the `env` object in case a runtime ever hands over another one. Secrets are wrapped at once
//! in `Secret`.

use crate::sigv4::Signer;
use crate::webcrypto::KeyCache;
use shared::secret::Secret;
use shared::signature::{
    Tolerance, WebhookSecrets, DEFAULT_RETRIED_DELIVERY_SECS, DEFAULT_TOLERANCE_SECS,
};
use shared::sqs_request::{AwsCredentials, QueueTarget, SqsRequestError};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// ChargebackStop's payloads are small JSON documents; 256 KiB is also SQS's classic limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 262_144;
/// Well inside ChargebackStop's 20 s delivery timeout.
pub const DEFAULT_SQS_TIMEOUT_MS: u64 = 5_000;

pub struct Config {
    pub secrets: WebhookSecrets,
    /// `secrets` as WebCrypto keys, imported on the first delivery.
    pub mac_keys: KeyCache,
    /// `SIGNATURE_TOLERANCE_SECS` (300) both ways; `SIGNATURE_RETRY_WINDOW_SECS` (180000, 50 h)
    /// into the past for a retried delivery carrying its first attempt's signature (0: off).
    pub tolerance: Tolerance,
    pub queue: QueueTarget,
    /// Signs SendMessage for `queue`; an endpoint URL it cannot sign is reported when sending.
    pub signer: Result<Signer, SqsRequestError>,
    pub sqs_timeout_ms: u64,
    /// `KEEP_REFUSED` (on unless `off`): a delivery refused for its signature is still queued,
    /// marked, to be archived for `cbs events replay --refused` (`crate::refused`).
    pub keep_refused: bool,
}

/// Everything read from the bindings, once per isolate.
pub struct Settings {
    env: JsValue,
    pub max_body_bytes: usize,
    pub config: Result<Config, Missing>,
}

thread_local! {
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// This isolate's settings for `env`, read on first use.
pub fn settings(env: &JsValue) -> Rc<Settings> {
    let env_value = env;
    SETTINGS.with(|cell| {
        if let Some(settings) = cell.borrow().as_ref() {
            if js_sys::Object::is(&settings.env, env_value) {
                return Rc::clone(settings);
            }
        }
        let settings = Rc::new(Settings {
            env: env_value.clone(),
            max_body_bytes: max_body_bytes(env),
            config: Config::from_env(env),
        });
        *cell.borrow_mut() = Some(Rc::clone(&settings));
        settings
    })
}

/// The name of the first missing binding; safe to log and to return.
#[derive(Debug)]
pub struct Missing(pub &'static str);

fn text(env: &JsValue, name: &str) -> Option<String> {
    // Plain-text vars and secrets are both string properties of `env`.
    js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string())
        .filter(|v| !v.trim().is_empty())
}

fn required(env: &JsValue, name: &'static str) -> Result<String, Missing> {
    text(env, name).ok_or(Missing(name))
}

fn number<T: std::str::FromStr>(env: &JsValue, name: &str, default: T) -> T {
    text(env, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Only what the 413 check needs, so an oversized body is refused before anything else.
fn max_body_bytes(env: &JsValue) -> usize {
    number(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
}

impl Config {
    pub fn from_env(env: &JsValue) -> Result<Self, Missing> {
        let secrets = WebhookSecrets::new(
            Secret::new(required(env, "WEBHOOK_SECRET")?),
            text(env, "WEBHOOK_SECRET_PREVIOUS").map(Secret::new),
        );
        let queue = QueueTarget {
            region: required(env, "AWS_REGION")?,
            queue_url: required(env, "SQS_QUEUE_URL")?,
            endpoint: text(env, "SQS_ENDPOINT"),
        };
        let credentials = AwsCredentials {
            access_key_id: required(env, "AWS_ACCESS_KEY_ID")?,
            secret_access_key: Secret::new(required(env, "AWS_SECRET_ACCESS_KEY")?),
            session_token: text(env, "AWS_SESSION_TOKEN").map(Secret::new),
        };
        let signer = Signer::new(credentials, queue.clone());
        Ok(Self {
            secrets,
            mac_keys: KeyCache::default(),
            tolerance: Tolerance {
                fresh_secs: number(env, "SIGNATURE_TOLERANCE_SECS", DEFAULT_TOLERANCE_SECS),
                retried_delivery_secs: number(
                    env,
                    "SIGNATURE_RETRY_WINDOW_SECS",
                    DEFAULT_RETRIED_DELIVERY_SECS,
                ),
            },
            queue,
            signer,
            sqs_timeout_ms: number(env, "SQS_TIMEOUT_MS", DEFAULT_SQS_TIMEOUT_MS),
            keep_refused: text(env, "KEEP_REFUSED")
                .is_none_or(|v| !v.trim().eq_ignore_ascii_case("off")),
        })
    }
}
