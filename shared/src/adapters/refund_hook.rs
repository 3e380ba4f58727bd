//! The refund hook over HTTPS: `POST <url>` with the JSON refund request, signed with our
//! secret for the organisation (`X-Signature: t=<unix>,v1=<hex HMAC-SHA512(secret,
//! "<t>.<body>")>`, the one signer in `crate::signature`), `Idempotency-Key: <alert id>`.
//!
//! The secret is read from Secrets Manager by the name the policy gives (`secret_id`), the same
//! loader as the partner API key (`client::SecretsManagerKey`), cached per name, read again when
//! a read failed. It never reaches a log line, an error message or the function's environment.

use crate::client::{ApiKeyLoader, SecretsManagerKey};
use crate::ports::refund_hook::{HookAnswer, HookCallError, RefundHook};
use crate::records::refund_hook::{RefundHookConfig, RefundRequest};
use crate::secret::Secret;
use crate::signature::{sign, SIGNATURE_HEADER};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the signing secret named by a policy's `secret_id` comes from.
#[async_trait::async_trait]
pub trait HookSecrets: Send + Sync {
    /// The secret; the error names the secret, never its value.
    async fn secret(&self, secret_id: &str) -> Result<Secret, String>;
}

/// Secrets Manager, cached per secret name for the life of the process.
#[derive(Default)]
pub struct SecretsManagerHookSecrets {
    cache: Mutex<HashMap<String, Secret>>,
}

#[async_trait::async_trait]
impl HookSecrets for SecretsManagerHookSecrets {
    async fn secret(&self, secret_id: &str) -> Result<Secret, String> {
        if let Some(s) = self.cache.lock().expect("cache lock").get(secret_id) {
            return Ok(s.clone());
        }
        let secret = SecretsManagerKey::new(secret_id, None)
            .load()
            .await
            .map_err(|e| e.to_string())?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(secret_id.to_string(), secret.clone());
        Ok(secret)
    }
}

/// A secret given directly (unit tests and tools).
pub struct FixedHookSecret(pub Secret);

#[async_trait::async_trait]
impl HookSecrets for FixedHookSecret {
    async fn secret(&self, _secret_id: &str) -> Result<Secret, String> {
        Ok(self.0.clone())
    }
}

pub struct HttpRefundHook {
    http: reqwest::Client,
    secrets: Arc<dyn HookSecrets>,
}

impl HttpRefundHook {
    pub fn new(secrets: Arc<dyn HookSecrets>) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: crate::tls::http_client_builder()
                .connect_timeout(Duration::from_secs(3))
                .build()?,
            secrets,
        })
    }
}

/// The hook the functions use: HTTP, secrets from Secrets Manager.
pub fn http_refund_hook() -> Result<Arc<dyn RefundHook>, reqwest::Error> {
    Ok(Arc::new(HttpRefundHook::new(Arc::new(
        SecretsManagerHookSecrets::default(),
    ))?))
}

/// The answer's body (`status` decides; the rest as given).
#[derive(serde::Deserialize)]
struct AnswerBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    refund_reference: Option<String>,
    #[serde(default)]
    subscription_cancelled: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Reads a hook's answer (status code and body); pure, for tests.
pub fn read_answer(status: u16, body: &str) -> Result<HookAnswer, HookCallError> {
    let parsed = serde_json::from_str::<AnswerBody>(body).ok();
    match status {
        200..=299 => match parsed {
            Some(a) if a.status == "refunded" => match a.refund_reference {
                Some(r) if !r.trim().is_empty() => Ok(HookAnswer::Refunded {
                    refund_reference: r.chars().take(200).collect(),
                    subscription_cancelled: a.subscription_cancelled,
                }),
                _ => Err(HookCallError::Unreadable {
                    reason: format!("{status}: refunded without a refund_reference"),
                }),
            },
            Some(a) if a.status == "refused" => Ok(HookAnswer::Refused {
                reason: refusal_reason(status, a.reason),
            }),
            Some(a) => Err(HookCallError::Unreadable {
                reason: format!("{status}: unknown status {:?}", a.status),
            }),
            None => Err(HookCallError::Unreadable {
                reason: format!("{status}: the body is not a refund answer"),
            }),
        },
        408 | 429 | 500..=599 => Err(HookCallError::NoAnswer {
            reason: format!("HTTP {status}"),
        }),
        400..=499 => Ok(HookAnswer::Refused {
            reason: refusal_reason(status, parsed.and_then(|a| a.reason)),
        }),
        _ => Err(HookCallError::Unreadable {
            reason: format!("HTTP {status}"),
        }),
    }
}

fn refusal_reason(status: u16, reason: Option<String>) -> String {
    let reason: String = reason
        .unwrap_or_else(|| "no reason given".into())
        .chars()
        .take(500)
        .collect();
    format!("{status}: {reason}")
}

#[async_trait::async_trait]
impl RefundHook for HttpRefundHook {
    async fn post_once(
        &self,
        config: &RefundHookConfig,
        request: &RefundRequest,
    ) -> Result<HookAnswer, HookCallError> {
        let secret = self
            .secrets
            .secret(&config.secret_id)
            .await
            .map_err(|reason| HookCallError::NotCalled {
                reason: format!("signing secret unavailable: {reason}"),
            })?;
        let body = serde_json::to_vec(request).map_err(|e| HookCallError::NotCalled {
            reason: format!("request not serialisable: {e}"),
        })?;
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let signature = sign(&secret, now.timestamp(), &body);
        let sent = self
            .http
            .post(&config.url)
            .timeout(Duration::from_millis(config.timeout_ms))
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("Idempotency-Key", &request.alert_id)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Err(HookCallError::NotCalled {
                    reason: format!("bad hook URL: {}", e.without_url()),
                })
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    format!("timed out after {} ms", config.timeout_ms)
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "request failed".to_string()
                };
                return Err(HookCallError::NoAnswer { reason: what });
            }
        };
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => {
                return Err(HookCallError::NoAnswer {
                    reason: format!("body timed out after {} ms", config.timeout_ms),
                })
            }
            Err(_) => {
                return Err(HookCallError::NoAnswer {
                    reason: format!("HTTP {status}, body unreadable"),
                })
            }
        };
        read_answer(status, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_status_and_body() {
        assert_eq!(
            read_answer(
                200,
                r#"{"status":"refunded","refund_reference":"rf-1","subscription_cancelled":true}"#
            ),
            Ok(HookAnswer::Refunded {
                refund_reference: "rf-1".into(),
                subscription_cancelled: true
            })
        );
        assert_eq!(
            read_answer(200, r#"{"status":"refused","reason":"already shipped"}"#),
            Ok(HookAnswer::Refused {
                reason: "200: already shipped".into()
            })
        );
        assert_eq!(
            read_answer(409, r#"{"reason":"chargeback open"}"#),
            Ok(HookAnswer::Refused {
                reason: "409: chargeback open".into()
            })
        );
        assert!(matches!(
            read_answer(503, ""),
            Err(HookCallError::NoAnswer { .. })
        ));
        assert!(matches!(
            read_answer(429, ""),
            Err(HookCallError::NoAnswer { .. })
        ));
        // A 2xx that confirms nothing is never taken for a refund.
        assert!(matches!(
            read_answer(200, r#"{"status":"refunded"}"#),
            Err(HookCallError::Unreadable { .. })
        ));
        assert!(matches!(
            read_answer(200, "ok"),
            Err(HookCallError::Unreadable { .. })
        ));
    }
}
