//! Every route but `/health` and the page shell needs an operator key:
//! `Authorization: Bearer cbsop_...`. Keys are looked up by SHA-256 and compared in constant time
//! (`shared::ports::operator_keys`). The operator's name goes into request extensions so actions
//! are recorded against who took them.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use shared::ports::operator_keys::{authenticate, KeyRefusal};
use shared::secret::Secret;

/// Who made the request.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

pub async fn require_operator(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| Secret::new(k.trim()));
    let Some(presented) = presented else {
        return Err(ApiError::unauthorised());
    };
    match authenticate(state.operators.as_ref(), &presented).await? {
        Ok(record) => {
            req.extensions_mut().insert(Operator(record.operator));
            Ok(next.run(req).await)
        }
        Err(refusal) => {
            // Logged without the key; the response is the same for every refusal.
            tracing::warn!(reason = ?refusal_name(&refusal), "operator key refused");
            Err(ApiError::unauthorised())
        }
    }
}

fn refusal_name(r: &KeyRefusal) -> &'static str {
    match r {
        KeyRefusal::Missing => "missing",
        KeyRefusal::Unknown => "unknown",
        KeyRefusal::Revoked => "revoked",
    }
}
