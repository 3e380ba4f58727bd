//! A JSON body extractor whose rejection is our JSON error naming the offending field
//! (axum's own `Json` answers in plain text without the field path).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Largest body accepted (an order batch of a few hundred orders fits comfortably).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_unreadable",
                format!("request body could not be read: {e}"),
            )
        })?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, naming the path of the field that did not fit (e.g. `merchants[0].name`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_missing",
            "a JSON body is required",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_not_json",
                format!("request body is not valid JSON: {inner}"),
            )
        } else if path == "." || path.is_empty() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("request body has the wrong shape: {inner}"),
            )
        } else {
            ApiError::invalid(path, inner.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        amount: i64,
    }

    #[test]
    fn a_wrong_type_names_the_field_path() {
        let err = parse::<Outer>(br#"{"items":[{"amount":1},{"amount":"x"}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("items[1].amount"));
    }

    #[test]
    fn broken_json_and_empty_bodies_are_400() {
        assert_eq!(
            parse::<Outer>(b"{").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(parse::<Outer>(b"  ").unwrap_err().code, "body_missing");
    }
}
