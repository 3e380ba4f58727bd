//! The typed ChargebackStop API client (reqwest + rustls), for the real API (TEST or LIVE
//! account) or the local sandbox: only the base URL differs.
//!
//! ```ignore
//! let api = ChargebackStop::new(ClientConfig::new("https://api.chargebackstop.com", key))?;
//! let alert = api.get_alert("netalrt_abc123").await?;
//! api.update_alert(&alert.id, &UpdateAlert::action(AlertAction::Refund)).await?;
//! ```
//!
//! Retries happen inside the client only where repeating the call cannot do harm: GETs, PATCHes
//! (they set the same values again) and `POST /v1/orders/` (ChargebackStop deduplicates by our
//! `reference_id`s). Creates of organisations, memberships, merchants, integrations,
//! enrolments, rulesets and simulated alerts are sent once: a timeout there may still have
//! created the object, and the caller must look before trying again.

mod alerts;
mod api_key;
mod error;
mod onboarding;
mod orders;
mod ports;
mod retry;
mod rulesets;
mod simulations;

pub use alerts::AlertPager;
pub use api_key::{ApiKey, ApiKeyLoader, KeyLoadError, SecretsManagerKey};
pub use error::{ApiError, Call};
pub use onboarding::ListQuery;
pub use orders::MAX_ORDERS_PER_POST;
pub use ports::{call_error, onboarding_failure, order_error};
pub use retry::{parse_retry_after, RetryPolicy};

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::models::ApiErrorBody;
use crate::secret::Secret;

/// Where and how to reach ChargebackStop.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://api.chargebackstop.com`, or the sandbox (`http://127.0.0.1:<port>`). A path
    /// prefix is kept.
    pub base_url: String,
    /// The partner or organisation key (`cbs_...`): fixed, or re-read from its secret after a
    /// 401 (see `api_key`).
    pub api_key: ApiKey,
    /// For each attempt (connect, send, read the whole body).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults: 10 s per attempt, `RetryPolicy::default()`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<ApiKey>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Whether a call may be sent again after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// GET, PATCH, POST /v1/orders/.
    Safe,
    /// Creates: sent again only after a 429, which the API answers before it does anything
    /// (a rate limit refuses the request); never after a 5xx or a timeout, which may have landed.
    Never,
}

/// The ChargebackStop API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct ChargebackStop {
    http: reqwest::Client,
    base: Url,
    /// Sent as `Authorization: Bearer`; also scrubbed from error bodies, should a server ever
    /// echo it.
    key: ApiKey,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ChargebackStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargebackStop")
            .field("base", &self.base.as_str())
            .field("auth", &"<redacted>")
            .field("retry", &self.retry)
            .finish()
    }
}

impl ChargebackStop {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base = Url::parse(&config.base_url).map_err(|e| {
            ApiError::Config(format!("base URL {:?} is not a URL: {e}", config.base_url))
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ApiError::Config(format!(
                "base URL {:?} must be http(s)",
                config.base_url
            )));
        }
        // The message must not echo the key, even when it holds a character a header cannot.
        // A key still being read is checked by its loader.
        if let Some(secret) = config.api_key.secret() {
            api_key::header_value(&secret).ok_or_else(|| {
                ApiError::Config("the API key contains characters not allowed in a header".into())
            })?;
        }
        let http = crate::tls::http_client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("chargeback-platform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            key: config.api_key,
            retry: config.retry,
        })
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `base` + the segments, each percent-encoded (ids come from webhooks and operators), with
    /// a trailing slash where the docs write one: collections (`/v1/organisations/`,
    /// `/v1/orders/`, `/v2/enrolments/`, `/v1/alerts/`) take it; single objects
    /// (`/v1/alerts/{alert_id}`) and simulations (`/v1/simulate/alerts`) do not. A strict
    /// server answers only that form.
    pub(crate) fn url(&self, segments: &[&str], trailing_slash: bool) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new: can be a base");
            path.pop_if_empty();
            path.extend(segments);
            if trailing_slash {
                path.push("");
            }
        }
        url
    }

    pub(crate) async fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        url: Url,
        query: Option<&Q>,
    ) -> Result<T, ApiError> {
        let mut url = url;
        if let Some(query) = query {
            // reqwest's `query` feature encodes with serde_urlencoded; building (not sending) a
            // request borrows that without a direct dependency.
            let encoded = self
                .http
                .get(url.clone())
                .query(query)
                .build()
                .map_err(|e| ApiError::Config(format!("query did not encode: {e}")))?;
            url = encoded.url().clone();
            if url.query() == Some("") {
                url.set_query(None);
            }
        }
        self.send::<(), T>(Method::GET, url, None, Repeat::Safe)
            .await
    }

    /// Sends one call with the retry policy, decoding a 2xx body as `T`.
    pub(crate) async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        repeat: Repeat,
    ) -> Result<T, ApiError> {
        self.send_tracked(method, url, body, repeat).await.0
    }

    /// `send`, also telling whether an earlier attempt failed in a way that leaves it unknown
    /// whether the server acted on it (5xx, timeout, dropped connection; a 429 is a refusal
    /// before processing). A repeat's 422 "already done" then may be our own earlier attempt.
    pub(crate) async fn send_tracked<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        repeat: Repeat,
    ) -> (Result<T, ApiError>, bool) {
        let call = Call {
            method: method_name(&method),
            path: path_of(&url),
        };
        let body = match body {
            Some(body) => match serde_json::to_vec(body) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    let err = ApiError::Decode {
                        call,
                        reason: format!("request body did not serialise: {e}"),
                    };
                    return (Err(err), false);
                }
            },
            None => None,
        };
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        let mut ambiguous = false;
        let mut key_reread = false;
        loop {
            attempt += 1;
            let key = match self.key.ready_in_use().await {
                Ok(key) => key,
                Err(err) => return (Err(key_not_read(err, &call)), false),
            };
            let err = match self
                .attempt(&method, &url, body.as_deref(), &call, &key)
                .await
            {
                Ok(bytes) => return (decode(&bytes, &call), ambiguous),
                Err(err) => err,
            };
            // A 401 is a refusal before any processing, so sending again is safe for every call;
            // once per call, and only when a newer key is in use (the secret was rotated).
            if matches!(err, ApiError::Unauthorized { .. })
                && !key_reread
                && self.key.reread_after_unauthorized(key.generation).await
            {
                key_reread = true;
                attempt -= 1;
                continue;
            }
            let Some(wait) = plan_retry(&self.retry, repeat, &err, attempt, started.elapsed())
            else {
                return (Err(err), ambiguous);
            };
            ambiguous |= matches!(
                err,
                ApiError::Server { .. } | ApiError::Timeout { .. } | ApiError::Transport { .. }
            );
            tracing::warn!(
                call = %call,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err,
                "ChargebackStop call failed, retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange: the body bytes of a 2xx, or the error it maps to.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        call: &Call,
        key: &api_key::InUse,
    ) -> Result<Vec<u8>, ApiError> {
        let auth = api_key::header_value(&key.secret).ok_or_else(|| {
            ApiError::Config("the API key contains characters not allowed in a header".into())
        })?;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| transport_error(e, call))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemClock.now()));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, call))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let error = status_error(status, &bytes, retry_after, call);
        Err(redact(error, &key.secret))
    }
}

/// Refuses a request that breaks a documented rule before it is sent (no request is made).
pub(crate) fn checked(
    method: &Method,
    url: &Url,
    result: Result<(), crate::validation::ValidationErrors>,
) -> Result<(), ApiError> {
    result.map_err(|errors| ApiError::Invalid {
        call: Call {
            method: method_name(method),
            path: path_of(url),
        },
        errors,
    })
}

/// How long to wait before attempt `attempt + 1`, or `None` to give up with this error:
/// only for calls safe to repeat, only for retryable errors, within the attempt and time
/// bounds. `Retry-After` wins over the backoff, but never past `max_total`.
pub(crate) fn plan_retry(
    policy: &RetryPolicy,
    repeat: Repeat,
    err: &ApiError,
    attempt: u32,
    elapsed: Duration,
) -> Option<Duration> {
    let may_repeat = match repeat {
        Repeat::Safe => err.is_retryable(),
        Repeat::Never => matches!(err, ApiError::RateLimited { .. }),
    };
    if !may_repeat || attempt >= policy.max_attempts {
        return None;
    }
    let wait = err.retry_after().unwrap_or_else(|| policy.backoff(attempt));
    (elapsed + wait <= policy.max_total).then_some(wait)
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

fn path_of(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{}", url.path(), query),
        None => url.path().to_owned(),
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8], call: &Call) -> Result<T, ApiError> {
    // An empty 2xx body (204) decodes as JSON null, so `()` and `Option<_>` callers work.
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        call: call.clone(),
        reason: e.to_string(),
    })
}

/// Nothing was sent: the key's first read failed. An unreachable secret is worth trying again
/// (as a connection failure is); a secret that holds no usable key is not.
fn key_not_read(err: api_key::KeyLoadError, call: &Call) -> ApiError {
    match err {
        api_key::KeyLoadError::Unavailable { .. } => ApiError::Transport {
            call: call.clone(),
            reason: err.to_string(),
        },
        api_key::KeyLoadError::Unusable { .. } => ApiError::Config(err.to_string()),
    }
}

fn transport_error(error: reqwest::Error, call: &Call) -> ApiError {
    if error.is_timeout() {
        return ApiError::Timeout { call: call.clone() };
    }
    // Without the URL: the call already names the path, and the message stays short.
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    ApiError::Transport {
        call: call.clone(),
        reason,
    }
}

/// Removes the key from an error's detail text.
fn redact(error: ApiError, key: &Secret) -> ApiError {
    let key = key.expose();
    if key.is_empty() {
        return error;
    }
    let scrub = |s: String| {
        if s.contains(key) {
            s.replace(key, "<redacted>")
        } else {
            s
        }
    };
    match error {
        ApiError::Unauthorized { call, detail } => ApiError::Unauthorized {
            call,
            detail: scrub(detail),
        },
        ApiError::Forbidden { call, detail } => ApiError::Forbidden {
            call,
            detail: scrub(detail),
        },
        ApiError::NotFound { call, detail } => ApiError::NotFound {
            call,
            detail: scrub(detail),
        },
        ApiError::Unprocessable {
            call,
            detail,
            codes,
            fields,
        } => ApiError::Unprocessable {
            call,
            detail: scrub(detail),
            codes,
            fields,
        },
        ApiError::Server {
            call,
            status,
            detail,
            retry_after,
        } => ApiError::Server {
            call,
            status,
            detail: scrub(detail),
            retry_after,
        },
        ApiError::UnexpectedStatus {
            call,
            status,
            detail,
        } => ApiError::UnexpectedStatus {
            call,
            status,
            detail: scrub(detail),
        },
        other => other,
    }
}

fn status_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    call: &Call,
) -> ApiError {
    let parsed: Option<ApiErrorBody> = serde_json::from_slice(body).ok();
    let detail = match &parsed {
        Some(body) => body.summary(),
        None => describe_unparsed_body(body),
    };
    let call = call.clone();
    match status.as_u16() {
        401 => ApiError::Unauthorized { call, detail },
        403 => ApiError::Forbidden { call, detail },
        404 => ApiError::NotFound { call, detail },
        422 => {
            let (codes, fields) = match &parsed {
                Some(body) => (
                    body.codes(),
                    body.items().iter().filter_map(|i| i.field_path()).collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            ApiError::Unprocessable {
                call,
                detail,
                codes,
                fields,
            }
        }
        429 => ApiError::RateLimited { call, retry_after },
        s @ 500..=599 => ApiError::Server {
            call,
            status: s,
            detail,
            retry_after,
        },
        s => ApiError::UnexpectedStatus {
            call,
            status: s,
            detail,
        },
    }
}

/// A short description of an error body that is not the API's JSON: empty, a proxy's HTML
/// page (its title, else its text without tags), or the start of the text. Never more than
/// 300 characters.
pub(crate) fn describe_unparsed_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("<!doctype html") || lower.starts_with("<html")) {
        return text.chars().take(300).collect();
    }
    // `lower` has the same byte offsets as `text` (ASCII lower-casing keeps lengths).
    let title = lower.find("<title>").and_then(|start| {
        let from = start + "<title>".len();
        lower[from..]
            .find("</title>")
            .map(|len| text[from..from + len].to_owned())
    });
    let shown = title.unwrap_or_else(|| without_tags(text));
    let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    if shown.is_empty() {
        "HTML page".to_owned()
    } else {
        format!("HTML page: {}", shown.chars().take(200).collect::<String>())
    }
}

/// The text of an HTML page: everything outside `<...>`.
fn without_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
