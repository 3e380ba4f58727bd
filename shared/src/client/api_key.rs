//! The partner API key the client sends, and where it comes from.
//!
//! In the cloud the key lives in Secrets Manager only (`CBS_API_KEY_SECRET_ID`): it is read once
//! per container, kept in memory, and read again when ChargebackStop answers 401, so a rotation
//! (new key put in the secret, old key revoked) needs no deploy and no restart. Locally a fixed
//! key (`CBS_API_KEY`) works as before; it never re-reads.
//!
//! The functions start the first read in the background at the top of their init
//! ([`ApiKey::read_in_background`]) and wait for it ([`ApiKey::ready`]) at the end, so the
//! Secrets Manager round trip runs while the rest of init does; a key that cannot be read still
//! stops init. A call made before the first read landed waits for it.
//!
//! Re-reads are bounded: after a 401, concurrent callers share one read (the first one reads,
//! the others see the newer key); a read happens at most once per `min_reread_interval`, so a key
//! that is really refused does not turn every call into a Secrets Manager call.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::time::Instant;

use crate::secret::Secret;

/// Where a key is (re-)read from: Secrets Manager in the cloud, a fake in tests.
#[async_trait::async_trait]
pub trait ApiKeyLoader: Send + Sync {
    async fn load(&self) -> Result<Secret, KeyLoadError>;
    /// Names the source for logs (a secret's name, never its value).
    fn source(&self) -> String;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLoadError {
    #[error("API key secret {source_name} could not be read: {reason}")]
    Unavailable { source_name: String, reason: String },
    #[error("API key secret {source_name} holds no usable key: {reason}")]
    Unusable { source_name: String, reason: String },
}

/// How long after one re-read another may happen (a refused key is not re-read on every call).
pub const DEFAULT_MIN_REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// The key in use, shared by every clone of a client. Cheap to clone.
#[derive(Clone)]
pub struct ApiKey {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` until the first read lands (only for [`ApiKey::read_in_background`]).
    current: RwLock<Option<InUse>>,
    /// The first read under way, taken by the first caller of `ready`.
    first_read: tokio::sync::Mutex<Option<FirstRead>>,
    loader: Option<Arc<dyn ApiKeyLoader>>,
    /// Held while re-reading; holds when the last re-read started.
    reread: tokio::sync::Mutex<Option<Instant>>,
    min_reread_interval_ms: AtomicU64,
}

type FirstRead = tokio::task::JoinHandle<Result<Secret, KeyLoadError>>;

/// The key one request was sent with.
#[derive(Clone)]
pub(crate) struct InUse {
    pub(crate) secret: Secret,
    /// Bumped on every change, so a 401 for an older key does not trigger another read.
    pub(crate) generation: u64,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("source", &self.inner.loader.as_ref().map(|l| l.source()))
            .field("generation", &self.in_use().map(|k| k.generation))
            .finish_non_exhaustive()
    }
}

impl From<Secret> for ApiKey {
    fn from(secret: Secret) -> Self {
        Self::fixed(secret)
    }
}

impl ApiKey {
    /// A key that never changes (`CBS_API_KEY`, tests, the CLI).
    pub fn fixed(secret: Secret) -> Self {
        Self::build(Some(secret), None)
    }

    /// `initial` (read at start-up), re-read from `loader` after a 401.
    pub fn reloading(initial: Secret, loader: Arc<dyn ApiKeyLoader>) -> Self {
        Self::build(Some(initial), Some(loader))
    }

    /// Starts reading the key from `loader` now, on the current Tokio runtime, and returns at
    /// once: clients can be made with it while the read is in flight. [`ready`](Self::ready)
    /// waits for the read (and says why it failed); a call sent before then waits too. Re-read
    /// after a 401 as with [`reloading`](Self::reloading).
    pub fn read_in_background(loader: Arc<dyn ApiKeyLoader>) -> Self {
        let reading = loader.clone();
        let first = tokio::spawn(async move { reading.load().await });
        let key = Self::build(None, Some(loader));
        *key.inner
            .first_read
            .try_lock()
            .expect("nobody else holds a key made a line ago") = Some(first);
        key
    }

    /// The key in use, once read. After a first read that failed, the next caller reads again
    /// (one at a time), so a Secrets Manager outage at start-up heals on the next call.
    pub async fn ready(&self) -> Result<Secret, KeyLoadError> {
        self.ready_in_use().await.map(|k| k.secret)
    }

    pub(crate) async fn ready_in_use(&self) -> Result<InUse, KeyLoadError> {
        if let Some(key) = self.in_use() {
            return Ok(key);
        }
        let mut first = self.inner.first_read.lock().await;
        if let Some(key) = self.in_use() {
            // Landed while we waited for the lock.
            return Ok(key);
        }
        let Some(loader) = self.inner.loader.as_ref() else {
            unreachable!("a key without a loader is built with its value")
        };
        let read = match first.take() {
            Some(task) => task.await.unwrap_or_else(|_| {
                Err(KeyLoadError::Unavailable {
                    source_name: loader.source(),
                    reason: "the reading task stopped before it answered".into(),
                })
            }),
            None => loader.load().await,
        };
        let secret = read?;
        let in_use = InUse {
            secret,
            generation: 0,
        };
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(in_use.clone());
        Ok(in_use)
    }

    /// Reads the key from `loader` now, and again after a 401.
    pub async fn load(loader: Arc<dyn ApiKeyLoader>) -> Result<Self, KeyLoadError> {
        let initial = loader.load().await?;
        Ok(Self::reloading(initial, loader))
    }

    fn build(secret: Option<Secret>, loader: Option<Arc<dyn ApiKeyLoader>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: RwLock::new(secret.map(|secret| InUse {
                    secret,
                    generation: 0,
                })),
                first_read: tokio::sync::Mutex::new(None),
                loader,
                reread: tokio::sync::Mutex::new(None),
                min_reread_interval_ms: AtomicU64::new(
                    DEFAULT_MIN_REREAD_INTERVAL.as_millis() as u64
                ),
            }),
        }
    }

    /// Sets how long after one re-read another may happen (for every clone).
    pub fn with_min_reread_interval(self, interval: Duration) -> Self {
        self.inner
            .min_reread_interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
        self
    }

    /// The key as it is now; `None` while its first read is under way.
    pub fn secret(&self) -> Option<Secret> {
        self.in_use().map(|k| k.secret)
    }

    /// How many times the key changed since start-up.
    pub fn generation(&self) -> u64 {
        self.in_use().map_or(0, |k| k.generation)
    }

    pub fn reloads(&self) -> bool {
        self.inner.loader.is_some()
    }

    pub(crate) fn in_use(&self) -> Option<InUse> {
        read(&self.inner.current).clone()
    }

    /// After ChargebackStop refused the key of `generation` with a 401: whether the request
    /// should be sent again because a newer key is now in use (read by this call or by a
    /// concurrent one). Without a loader, within the re-read interval, when the read fails or
    /// finds the same key: false, and the 401 stands.
    pub(crate) async fn reread_after_unauthorized(&self, generation: u64) -> bool {
        let Some(loader) = self.inner.loader.as_ref() else {
            return false;
        };
        let mut last = self.inner.reread.lock().await;
        if self.generation() != generation {
            // Someone else already moved to a newer key while we waited.
            return true;
        }
        if self.in_use().is_none() {
            // No request was sent with a key yet, so none was refused.
            return false;
        }
        let now = Instant::now();
        let interval =
            Duration::from_millis(self.inner.min_reread_interval_ms.load(Ordering::Relaxed));
        if last.is_some_and(|at| now.duration_since(at) < interval) {
            return false;
        }
        *last = Some(now);
        match loader.load().await {
            Ok(fresh) => {
                if header_value(&fresh).is_none() {
                    tracing::error!(
                        source = %loader.source(),
                        "re-read API key contains characters not allowed in a header; keeping the old one"
                    );
                    return false;
                }
                let mut guard = self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                let Some(current) = guard.as_mut() else {
                    return false;
                };
                if current.secret == fresh {
                    tracing::warn!(
                        source = %loader.source(),
                        "ChargebackStop refused the API key and the secret still holds the same key"
                    );
                    return false;
                }
                current.secret = fresh;
                current.generation += 1;
                tracing::info!(
                    source = %loader.source(),
                    generation = current.generation,
                    "ChargebackStop refused the API key; using the newer key from the secret"
                );
                true
            }
            Err(err) => {
                tracing::error!(error = %err, "ChargebackStop refused the API key and it could not be re-read");
                false
            }
        }
    }
}

fn read(lock: &RwLock<Option<InUse>>) -> std::sync::RwLockReadGuard<'_, Option<InUse>> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

/// `Bearer <key>`, marked sensitive; `None` when the key cannot be a header value.
pub(crate) fn header_value(secret: &Secret) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The key as a plain string secret in AWS Secrets Manager, by name or ARN.
pub struct SecretsManagerKey {
    secret_id: String,
    /// Refuses a key of the other mode (a LIVE key put in a TEST stack's secret).
    mode: Option<crate::config::StackMode>,
    client: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
}

impl SecretsManagerKey {
    /// The SDK client is made on first use, from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL` locally), in the runtime that first reads.
    pub fn new(secret_id: impl Into<String>, mode: Option<crate::config::StackMode>) -> Self {
        Self {
            secret_id: secret_id.into(),
            mode,
            client: tokio::sync::OnceCell::new(),
        }
    }

    pub fn with_client(mut self, client: aws_sdk_secretsmanager::Client) -> Self {
        self.client = tokio::sync::OnceCell::new_with(Some(client));
        self
    }

    fn unavailable(&self, reason: impl Into<String>) -> KeyLoadError {
        KeyLoadError::Unavailable {
            source_name: self.secret_id.clone(),
            reason: reason.into(),
        }
    }

    fn unusable(&self, reason: impl Into<String>) -> KeyLoadError {
        KeyLoadError::Unusable {
            source_name: self.secret_id.clone(),
            reason: reason.into(),
        }
    }
}

#[async_trait::async_trait]
impl ApiKeyLoader for SecretsManagerKey {
    async fn load(&self) -> Result<Secret, KeyLoadError> {
        let client = self
            .client
            .get_or_init(|| async {
                aws_sdk_secretsmanager::Client::new(&crate::adapters::aws::load_config().await)
            })
            .await;
        let out = client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                // The SDK's error names the service error code; it never holds the value.
                let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e);
                self.unavailable(e.to_string())
            })?;
        let value = out
            .secret_string()
            .ok_or_else(|| self.unusable("it is binary, not a string"))?;
        // `--secret-string file:///dev/stdin` keeps a trailing newline.
        let key = Secret::new(value.trim());
        if key.is_empty() {
            return Err(self.unusable("it is empty"));
        }
        if header_value(&key).is_none() {
            return Err(self.unusable("it contains characters not allowed in a header"));
        }
        if let Some(mode) = self.mode {
            crate::domain::onboarding::refuse_key_of_other_mode(mode, &key)
                .map_err(|e| self.unusable(e.to_string()))?;
        }
        Ok(key)
    }

    fn source(&self) -> String {
        format!("Secrets Manager {}", self.secret_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// A secret store that answers what `value` holds, slowly, counting reads; it can fail.
    struct FakeSecret {
        value: Mutex<Result<String, String>>,
        reads: AtomicUsize,
    }

    impl FakeSecret {
        fn new(value: &str) -> Arc<Self> {
            Arc::new(Self {
                value: Mutex::new(Ok(value.into())),
                reads: AtomicUsize::new(0),
            })
        }
        fn put(&self, value: &str) {
            *self.value.lock().unwrap() = Ok(value.into());
        }
        fn fail(&self, reason: &str) {
            *self.value.lock().unwrap() = Err(reason.into());
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl ApiKeyLoader for FakeSecret {
        async fn load(&self) -> Result<Secret, KeyLoadError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.value
                .lock()
                .unwrap()
                .clone()
                .map(Secret::new)
                .map_err(|reason| KeyLoadError::Unavailable {
                    source_name: "fake".into(),
                    reason,
                })
        }
        fn source(&self) -> String {
            "fake".into()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_key_is_read_once_and_kept() {
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::load(store.clone()).await.unwrap();
        for _ in 0..100 {
            assert_eq!(key.secret().unwrap().expose(), "cbs_test_one");
        }
        assert_eq!(store.reads(), 1);
        assert_eq!(key.generation(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_re_reads_and_a_rotated_key_is_used_from_then_on() {
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::load(store.clone()).await.unwrap();
        store.put("cbs_test_two");
        // Until a 401, the cached key stays in use (no read per call).
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_one");
        assert!(key.reread_after_unauthorized(0).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_two");
        assert_eq!(key.generation(), 1);
        assert_eq!(store.reads(), 2);
        // Clones share the key.
        assert_eq!(key.clone().secret().unwrap().expose(), "cbs_test_two");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_401s_share_one_read() {
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::load(store.clone()).await.unwrap();
        store.put("cbs_test_two");
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let key = key.clone();
                tokio::spawn(async move { key.reread_after_unauthorized(0).await })
            })
            .collect();
        for call in calls {
            assert!(
                call.await.unwrap(),
                "every caller sends again with the new key"
            );
        }
        assert_eq!(store.reads(), 2);
        assert_eq!(key.generation(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_or_unreadable_secret_leaves_the_401_standing_and_re_reads_are_spaced() {
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::load(store.clone())
            .await
            .unwrap()
            .with_min_reread_interval(Duration::from_secs(30));
        // Same key in the secret: the 401 is real.
        assert!(!key.reread_after_unauthorized(0).await);
        assert_eq!(store.reads(), 2);
        // Within the interval: no read at all.
        store.put("cbs_test_two");
        assert!(!key.reread_after_unauthorized(0).await);
        assert_eq!(store.reads(), 2);
        // After it, the new key is found.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(key.reread_after_unauthorized(0).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_two");
        // A failing read keeps the key in use.
        tokio::time::advance(Duration::from_secs(31)).await;
        store.fail("AccessDeniedException");
        assert!(!key.reread_after_unauthorized(1).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_two");
        // A key that cannot be a header is not taken.
        tokio::time::advance(Duration::from_secs(31)).await;
        store.put("cbs_test_bad\nkey");
        assert!(!key.reread_after_unauthorized(1).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_two");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_read_in_background_is_read_once_and_awaited_by_its_first_users() {
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::read_in_background(store.clone());
        assert!(key.secret().is_none(), "the read takes 20 ms");
        // Several users at once (init's wait, a first call): one read between them.
        let users: Vec<_> = (0..5)
            .map(|_| {
                let key = key.clone();
                tokio::spawn(async move { key.ready().await })
            })
            .collect();
        for user in users {
            assert_eq!(user.await.unwrap().unwrap().expose(), "cbs_test_one");
        }
        assert_eq!(store.reads(), 1);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_one");
        assert_eq!(key.generation(), 0);
        // Then it is a key like any other: re-read after a 401.
        store.put("cbs_test_two");
        assert!(key.reread_after_unauthorized(0).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_two");
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_read_is_reported_and_the_next_caller_reads_again() {
        let store = FakeSecret::new("cbs_test_one");
        store.fail("ResourceNotFoundException");
        let key = ApiKey::read_in_background(store.clone());
        let err = key.ready().await.unwrap_err();
        assert!(
            err.to_string().contains("ResourceNotFoundException"),
            "{err}"
        );
        assert!(key.secret().is_none());
        assert!(
            !key.reread_after_unauthorized(0).await,
            "no request was sent with a key, so none was refused"
        );
        store.put("cbs_test_one");
        assert_eq!(key.ready().await.unwrap().expose(), "cbs_test_one");
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test]
    async fn a_call_sent_while_the_key_is_read_waits_for_it() {
        use crate::client::{ApiError, ChargebackStop, ClientConfig, RetryPolicy};
        let valid = Arc::new(Mutex::new("cbs_test_one".to_string()));
        let (url, seen) = api_accepting(valid.clone()).await;
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::read_in_background(store.clone());
        // The client is made before the key is known, as in a function's init.
        let api = ChargebackStop::new(ClientConfig::new(url, key).with_retry(RetryPolicy::none()))
            .unwrap();
        let answer = api.get_alert("netalrt_1").await;
        assert!(
            matches!(answer, Err(ApiError::NotFound { .. })),
            "{answer:?}"
        );
        assert_eq!(*seen.lock().unwrap(), ["cbs_test_one"]);
        assert_eq!(store.reads(), 1);

        // A secret that cannot be read: nothing is sent, and the error says why (retryable:
        // Secrets Manager may be back on the next try); one that holds no usable key is not.
        let store = FakeSecret::new("cbs_test_one");
        store.fail("ThrottlingException");
        let (url, seen) = api_accepting(valid).await;
        let api = ChargebackStop::new(
            ClientConfig::new(url, ApiKey::read_in_background(store))
                .with_retry(RetryPolicy::none()),
        )
        .unwrap();
        let answer = api.get_alert("netalrt_1").await;
        assert!(
            matches!(&answer, Err(e @ ApiError::Transport { .. }) if e.is_retryable() && e.to_string().contains("ThrottlingException")),
            "{answer:?}"
        );
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_key_never_re_reads() {
        let key = ApiKey::fixed(Secret::new("cbs_test_one"));
        assert!(!key.reloads());
        assert!(!key.reread_after_unauthorized(0).await);
        assert_eq!(key.secret().unwrap().expose(), "cbs_test_one");
    }

    /// A one-route HTTP server on a loopback port: 401 unless the bearer key is `valid` (then 404,
    /// so the client's answer shows which key got through); records the key of every request.
    async fn api_accepting(valid: Arc<Mutex<String>>) -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let valid = valid.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let key = text
                        .lines()
                        .find_map(|l| l.strip_prefix("authorization: Bearer "))
                        .unwrap_or("")
                        .to_string();
                    let ok = key == *valid.lock().unwrap();
                    log.lock().unwrap().push(key);
                    let (status, body) = if ok {
                        ("404 Not Found", r#"{"detail":"no such alert"}"#)
                    } else {
                        ("401 Unauthorized", r#"{"detail":"invalid key"}"#)
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_client_keeps_working_across_a_rotation_without_a_restart() {
        use crate::client::{ApiError, ChargebackStop, ClientConfig, RetryPolicy};
        let valid = Arc::new(Mutex::new("cbs_test_one".to_string()));
        let (url, seen) = api_accepting(valid.clone()).await;
        let store = FakeSecret::new("cbs_test_one");
        let key = ApiKey::load(store.clone()).await.unwrap();
        let api = ChargebackStop::new(
            ClientConfig::new(url, key.clone()).with_retry(RetryPolicy::none()),
        )
        .unwrap();
        let got_through = |r: Result<_, ApiError>| matches!(r, Err(ApiError::NotFound { .. }));

        assert!(got_through(api.get_alert("netalrt_1").await));
        assert!(got_through(api.get_alert("netalrt_1").await));
        assert_eq!(store.reads(), 1, "the key is cached, not read per call");

        // Rotation: the new key goes into the secret, then the old one is revoked.
        store.put("cbs_test_two");
        assert!(
            got_through(api.get_alert("netalrt_1").await),
            "old key still valid"
        );
        *valid.lock().unwrap() = "cbs_test_two".into();
        // The same client (a clone, as the functions share one) keeps working: 401, re-read,
        // sent again with the new key.
        assert!(got_through(api.clone().get_alert("netalrt_1").await));
        assert!(got_through(api.get_alert("netalrt_1").await));
        assert_eq!(store.reads(), 2);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "cbs_test_one",
                "cbs_test_one",
                "cbs_test_one",
                "cbs_test_one",
                "cbs_test_two",
                "cbs_test_two"
            ]
        );

        // A key that is refused and not rotated: the 401 stands.
        *valid.lock().unwrap() = "cbs_test_three".into();
        let refused = api.get_alert("netalrt_1").await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized { .. })),
            "{refused:?}"
        );
        let refused = api.get_alert("netalrt_1").await;
        assert!(matches!(refused, Err(ApiError::Unauthorized { .. })));
        // The last re-read (the rotation) was moments ago: no read at all for these two.
        assert_eq!(store.reads(), 2, "re-reads are spaced, not one per call");
    }

    #[tokio::test]
    async fn a_fixed_key_client_does_not_survive_a_rotation() {
        use crate::client::{ApiError, ChargebackStop, ClientConfig, RetryPolicy};
        let valid = Arc::new(Mutex::new("cbs_test_one".to_string()));
        let (url, _) = api_accepting(valid.clone()).await;
        let api = ChargebackStop::new(
            ClientConfig::new(url, Secret::new("cbs_test_one")).with_retry(RetryPolicy::none()),
        )
        .unwrap();
        *valid.lock().unwrap() = "cbs_test_two".into();
        let refused = api.get_alert("netalrt_1").await;
        assert!(matches!(refused, Err(ApiError::Unauthorized { .. })));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::fixed(Secret::new("cbs_test_do_not_print"));
        assert!(!format!("{key:?}").contains("do_not_print"));
    }
}
