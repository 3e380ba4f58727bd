//! `POST /api/onboarding` runs (or resumes) the onboarding flow for one customer;
//! `GET /api/customers/{customer_id}` shows what was created and how far it got.

use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use shared::domain::onboarding::{CustomerRecord, CustomerSpec, Onboarding, OnboardingError};

pub async fn onboard(
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<CustomerSpec>,
) -> ApiResult<(StatusCode, Json<CustomerRecord>)> {
    let flow = Onboarding {
        api: state.onboarding_api.as_ref(),
        store: state.customers.as_ref(),
        clock: state.clock.as_ref(),
        mode: state.mode,
    };
    match flow.run(&spec).await {
        Ok(mut record) => {
            record.run_token = None;
            tracing::info!(customer_id = %record.customer_id, "onboarding completed");
            Ok((StatusCode::OK, Json(record)))
        }
        Err(err) => Err(onboarding_error(err)),
    }
}

pub fn onboarding_error(err: OnboardingError) -> ApiError {
    tracing::warn!(error = %err, "onboarding stopped");
    match err {
        OnboardingError::Invalid(problems) => problems.into(),
        OnboardingError::ModeMismatch(message) => {
            ApiError::conflict("mode_mismatch", message).with_field("organisation")
        }
        OnboardingError::Busy { .. } => ApiError::conflict("onboarding_busy", err.to_string()),
        OnboardingError::Api { ref failure, .. } => {
            let field = failure.field.clone();
            let status = failure.status;
            let mut e = match status {
                // ChargebackStop refused the request content: the spec needs fixing.
                Some(400) | Some(409) | Some(422) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "chargebackstop_refused",
                    err.to_string(),
                ),
                _ => ApiError::upstream(format!(
                    "{err}; progress is saved, run onboarding again to resume"
                )),
            };
            if let Some(f) = field {
                e = e.with_field(f);
            }
            e
        }
        OnboardingError::Store(e) => e.into(),
    }
}

pub async fn customer(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
) -> ApiResult<Json<CustomerRecord>> {
    let mut record = state
        .customers
        .get(&customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", &customer_id))?;
    record.run_token = None;
    Ok(Json(record))
}
