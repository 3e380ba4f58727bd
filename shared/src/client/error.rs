//! Why a ChargebackStop call failed. Every variant names the call (method and path, which
//! carries the object id) and never the API key, which only ever lives in a `Secret` and a
//! sensitive header.

use std::fmt;
use std::time::Duration;

/// The call that failed, e.g. `PATCH /v1/alerts/netalrt_abc123`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    /// Path and query as sent, without the base URL.
    pub path: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The key is invalid, expired or missing (or an organisation key on a partner endpoint).
    #[error("{call}: unauthorised (401): {detail}")]
    Unauthorized { call: Call, detail: String },
    /// The key is valid but lacks the ability (e.g. `alerts:write`).
    #[error("{call}: forbidden (403): {detail}")]
    Forbidden { call: Call, detail: String },
    /// Unknown, or not visible to this key.
    #[error("{call}: not found (404): {detail}")]
    NotFound { call: Call, detail: String },
    /// Validation refused the request: bad date range, invalid enum value, resolved alert...
    #[error("{call}: unprocessable (422) {codes:?}: {detail}")]
    Unprocessable {
        call: Call,
        detail: String,
        /// Machine-readable codes of the body, the top-level one first.
        codes: Vec<String>,
        /// The request fields the body's items name, in order.
        fields: Vec<String>,
    },
    /// 100 requests per minute per endpoint per organisation/partner group.
    #[error("{call}: rate limited (429), retry after {retry_after:?}")]
    RateLimited {
        call: Call,
        retry_after: Option<Duration>,
    },
    /// 5xx; `retry_after` when a 503 said how long to wait.
    #[error("{call}: server error ({status}): {detail}")]
    Server {
        call: Call,
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Any other status (400, 405, 409...).
    #[error("{call}: unexpected status {status}: {detail}")]
    UnexpectedStatus {
        call: Call,
        status: u16,
        detail: String,
    },
    #[error("{call}: timed out")]
    Timeout { call: Call },
    /// Connection refused or reset, TLS, DNS...
    #[error("{call}: transport error: {reason}")]
    Transport { call: Call, reason: String },
    /// A 2xx whose body is not the expected object.
    #[error("{call}: response did not decode: {reason}")]
    Decode { call: Call, reason: String },
    /// Refused before sending: the request breaks a documented rule (`crate::validation`),
    /// each problem naming its field. Nothing reached ChargebackStop.
    #[error("{call}: not sent, invalid request: {errors}")]
    Invalid {
        call: Call,
        errors: crate::validation::ValidationErrors,
    },
    /// The client could not be built (bad base URL, bad key characters).
    #[error("ChargebackStop client configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// Worth trying again later with the same request: 429, 5xx, timeouts, transport errors.
    /// The client retries these itself only where the call is safe to repeat; callers use this
    /// to decide between redelivery and a dead letter.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
        )
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Unprocessable { .. } => Some(422),
            Self::RateLimited { .. } => Some(429),
            Self::Server { status, .. } | Self::UnexpectedStatus { status, .. } => Some(*status),
            Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::Decode { .. }
            | Self::Invalid { .. }
            | Self::Config(_) => None,
        }
    }

    /// How long the API asked us to wait (`Retry-After` on a 429 or a 5xx).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The machine-readable codes of a 422 (empty otherwise).
    pub fn codes(&self) -> &[String] {
        match self {
            Self::Unprocessable { codes, .. } => codes,
            _ => &[],
        }
    }

    /// The request fields a 422 named (empty otherwise).
    pub fn fields(&self) -> &[String] {
        match self {
            Self::Unprocessable { fields, .. } => fields,
            _ => &[],
        }
    }

    /// The API's human-readable detail, when it sent one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { detail, .. }
            | Self::Forbidden { detail, .. }
            | Self::NotFound { detail, .. }
            | Self::Unprocessable { detail, .. }
            | Self::Server { detail, .. }
            | Self::UnexpectedStatus { detail, .. } => Some(detail),
            _ => None,
        }
    }

    pub fn call(&self) -> Option<&Call> {
        match self {
            Self::Unauthorized { call, .. }
            | Self::Forbidden { call, .. }
            | Self::NotFound { call, .. }
            | Self::Unprocessable { call, .. }
            | Self::RateLimited { call, .. }
            | Self::Server { call, .. }
            | Self::UnexpectedStatus { call, .. }
            | Self::Timeout { call }
            | Self::Transport { call, .. }
            | Self::Decode { call, .. }
            | Self::Invalid { call, .. } => Some(call),
            Self::Config(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            method: "GET",
            path: "/v1/alerts/netalrt_1".into(),
        }
    }

    #[test]
    fn retryable_kinds() {
        assert!(ApiError::RateLimited {
            call: call(),
            retry_after: None
        }
        .is_retryable());
        assert!(ApiError::Server {
            call: call(),
            status: 503,
            detail: String::new(),
            retry_after: None,
        }
        .is_retryable());
        assert!(ApiError::Timeout { call: call() }.is_retryable());
        assert!(ApiError::Transport {
            call: call(),
            reason: "reset".into()
        }
        .is_retryable());
        for e in [
            ApiError::Unauthorized {
                call: call(),
                detail: String::new(),
            },
            ApiError::Forbidden {
                call: call(),
                detail: String::new(),
            },
            ApiError::NotFound {
                call: call(),
                detail: String::new(),
            },
            ApiError::Unprocessable {
                call: call(),
                detail: String::new(),
                codes: vec![],
                fields: vec![],
            },
            ApiError::Decode {
                call: call(),
                reason: String::new(),
            },
            ApiError::UnexpectedStatus {
                call: call(),
                status: 400,
                detail: String::new(),
            },
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn messages_name_the_call() {
        let e = ApiError::NotFound {
            call: call(),
            detail: "Not found.".into(),
        };
        assert_eq!(
            e.to_string(),
            "GET /v1/alerts/netalrt_1: not found (404): Not found."
        );
        assert_eq!(e.status(), Some(404));
    }
}
