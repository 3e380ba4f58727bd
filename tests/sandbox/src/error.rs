//! The error body every API route answers with.
//!
//! ```json
//! {"detail": "human readable", "code": "MACHINE_CODE",
//!  "errors": [{"field": "action", "code": "INVALID_ENUM_VALUE", "message": "..."}]}
//! ```
//! `errors` is present on 422 only and names each offending field. 429 carries `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self::new(field, "MISSING_FIELD", message)
    }

    pub fn invalid_type(field: impl Into<String>, expected: &str) -> Self {
        let field = field.into();
        let message = format!("{field} must be {expected}");
        Self::new(field, "INVALID_TYPE", message)
    }

    pub fn invalid_enum(field: impl Into<String>, allowed: &[&str]) -> Self {
        let field = field.into();
        let message = format!("{field} must be one of: {}", allowed.join(", "));
        Self::new(field, "INVALID_ENUM_VALUE", message)
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn unauthorised() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORISED",
            "Invalid, expired or missing API key.",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found."),
        )
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "Too many requests: limit per endpoint per organisation or partner group exceeded.",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// A 422 whose top-level code is `code`, naming one field.
    pub fn unprocessable(code: &str, field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail.clone());
        e.errors.push(FieldError::new(field, code, detail));
        e
    }

    /// A 422 built from field errors; the top-level code is the first field's code.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let first = errors
            .first()
            .cloned()
            .unwrap_or_else(|| FieldError::new("body", "VALIDATION_ERROR", "invalid request"));
        let detail = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let code = if errors.len() > 1 && errors.iter().any(|e| e.code != first.code) {
            "VALIDATION_ERROR".to_string()
        } else {
            first.code.clone()
        };
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, &code, detail);
        e.errors = if errors.is_empty() {
            vec![first]
        } else {
            errors
        };
        e
    }

    pub fn fault(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            502 => "BAD_GATEWAY",
            503 => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_ERROR",
        };
        Self::new(status, code, "Injected sandbox fault.")
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::validation(vec![e])
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(e: Vec<FieldError>) -> Self {
        ApiError::validation(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            detail: &self.detail,
            code: &self.code,
            errors: if self.status == StatusCode::UNPROCESSABLE_ENTITY {
                Some(&self.errors)
            } else {
                None
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
