//! The domain's ports over the typed client: `AlertApi`, `EnrolmentApi`, `OrderApi` and
//! `OnboardingApi` for `ChargebackStop`. Each maps `ApiError` onto the error its caller
//! decides on:
//!
//! | ApiError                         | ApiCallError (alerts, enrolments) | OrderApiError        | ApiFailure (onboarding)   |
//! |----------------------------------|-----------------------------------|----------------------|---------------------------|
//! | 429                              | Transient                         | RateLimited{after}   | status 429                |
//! | 5xx, timeout, transport          | Transient                         | Retryable            | status 5xx / None         |
//! | 404                              | NotFound                          | Fatal{404}           | status 404                |
//! | 422 (codes, fields)              | Unprocessable{first code}         | Rejected{code,field} | status 422, code, field   |
//! | 400                              | Refused{400}                      | Rejected{400}        | status 400                |
//! | 401, 403, other                  | Refused{status}                   | Fatal{status}        | status                    |
//! | 2xx that did not decode          | Refused{200}                      | Retryable (create)   | status None               |
//! | Invalid (refused before sending) | Unprocessable{first code}         | Rejected{0, field}   | status None, code, field  |
//!
//! Messages are `ApiError`'s Display: the call (method, path) and the API's detail, never the key.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{ApiError, ChargebackStop, ListQuery, Repeat};
use crate::domain::onboarding::{
    ApiFailure, CreatedEnrolment, CreatedOrganisation, MembershipSpec, MerchantSpec, OnboardingApi,
};
use crate::models::{
    Alert, CreateIntegration, CreateMembership, CreateMerchant, CreateOrganisation, Enrolment,
    EnrolmentStatus, IntegrationStatus, IntegrationType, Order, OrderBatchResponse, PatchOrder,
    UpdateAlert,
};
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::order_api::{OrderApi, OrderApiError};
use reqwest::Method;

use super::orders::MAX_ORDERS_PER_POST;

fn first_code(errors: &crate::validation::ValidationErrors) -> String {
    errors
        .errors()
        .first()
        .map(|e| e.code.to_owned())
        .unwrap_or_else(|| "INVALID".into())
}

/// For the alert and enrolment processing: what to do with the event that needed the call.
pub fn call_error(operation: &'static str, id: &str, error: ApiError) -> ApiCallError {
    let id = id.to_owned();
    if error.is_retryable() {
        return ApiCallError::Transient {
            operation,
            id,
            detail: error.to_string(),
        };
    }
    match error {
        ApiError::NotFound { .. } => ApiCallError::NotFound { operation, id },
        ApiError::Unprocessable { ref codes, .. } => ApiCallError::Unprocessable {
            operation,
            id,
            code: codes
                .first()
                .cloned()
                .unwrap_or_else(|| "UNPROCESSABLE".into()),
            message: error.detail().unwrap_or_default().to_owned(),
        },
        // Refused before sending: final, like a 422.
        ApiError::Invalid { ref errors, .. } => ApiCallError::Unprocessable {
            operation,
            id,
            code: first_code(errors),
            message: errors.to_string(),
        },
        // A 2xx we could not read: a person must look (model drift), redelivery would not help.
        ApiError::Decode { .. } => ApiCallError::Refused {
            operation,
            id,
            status: 200,
            detail: error.to_string(),
        },
        // Config never reaches here from a built client; 0 says "refused before sending".
        ApiError::Config(_) => ApiCallError::Refused {
            operation,
            id,
            status: 0,
            detail: error.to_string(),
        },
        other => ApiCallError::Refused {
            operation,
            id,
            status: other.status().unwrap_or(0),
            detail: other.to_string(),
        },
    }
}

/// For the order upload: wait, retry, split the batch, or stop the organisation's upload.
pub fn order_error(error: ApiError) -> OrderApiError {
    match error {
        ApiError::RateLimited { retry_after, .. } => OrderApiError::RateLimited { retry_after },
        e @ (ApiError::Server { .. } | ApiError::Timeout { .. } | ApiError::Transport { .. }) => {
            OrderApiError::Retryable(e.to_string())
        }
        // The orders may have been created; sending the same reference_ids again is safe and
        // turns into DUPLICATE_ORDER, which the upload reconciles.
        e @ ApiError::Decode { .. } => OrderApiError::Retryable(e.to_string()),
        ApiError::Unprocessable {
            detail,
            codes,
            fields,
            ..
        } => OrderApiError::Rejected {
            status: 422,
            code: codes
                .into_iter()
                .next()
                .unwrap_or_else(|| "UNPROCESSABLE".into()),
            field: fields.into_iter().next(),
            message: detail,
        },
        // Refused before sending: about the orders, so the upload splits and marks them.
        ApiError::Invalid { errors, .. } => OrderApiError::Rejected {
            status: 0,
            code: first_code(&errors),
            field: errors.errors().first().map(|e| e.field.clone()),
            message: errors.to_string(),
        },
        // A malformed request is about the orders, not the configuration.
        ApiError::UnexpectedStatus {
            status: 400,
            detail,
            ..
        } => OrderApiError::Rejected {
            status: 400,
            code: "BAD_REQUEST".into(),
            field: None,
            message: detail,
        },
        other => OrderApiError::Fatal {
            status: other.status().unwrap_or(0),
            message: other.to_string(),
        },
    }
}

/// For onboarding: kept whole (status, first code, first field), to be shown to an operator.
pub fn onboarding_failure(error: ApiError) -> ApiFailure {
    if let ApiError::Invalid { errors, .. } = &error {
        return ApiFailure {
            status: None,
            code: Some(first_code(errors)),
            field: errors.errors().first().map(|e| e.field.clone()),
            message: error.to_string(),
        };
    }
    ApiFailure {
        status: error.status(),
        code: error.codes().first().cloned(),
        field: error.fields().first().cloned(),
        message: error.to_string(),
    }
}

#[async_trait::async_trait]
impl AlertApi for ChargebackStop {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        ChargebackStop::get_alert(self, alert_id)
            .await
            .map_err(|e| call_error("get alert", alert_id, e))
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        ChargebackStop::update_alert(self, alert_id, update)
            .await
            .map_err(|e| call_error("update alert", alert_id, e))
    }
}

#[async_trait::async_trait]
impl EnrolmentApi for ChargebackStop {
    async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiCallError> {
        ChargebackStop::get_enrolment(self, enrolment_id)
            .await
            .map_err(|e| call_error("get enrolment", enrolment_id, e))
    }
}

#[async_trait::async_trait]
impl OrderApi for ChargebackStop {
    async fn create_orders(&self, orders: &[Order]) -> Result<OrderBatchResponse, OrderApiError> {
        if orders.len() > MAX_ORDERS_PER_POST {
            // Rejected (not Fatal) so the upload splits the batch and carries on.
            return Err(OrderApiError::Rejected {
                status: 0,
                code: "TOO_MANY_ORDERS".into(),
                field: None,
                message: format!(
                    "{} orders in one request; at most {MAX_ORDERS_PER_POST}",
                    orders.len()
                ),
            });
        }
        ChargebackStop::create_orders(self, orders)
            .await
            .map_err(order_error)
    }

    async fn find_order_id(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<String>, OrderApiError> {
        let org = (!organisation_id.is_empty()).then_some(organisation_id);
        let order = self
            .find_order_by_reference(org, reference_id)
            .await
            .map_err(order_error)?;
        Ok(order.and_then(|o| o.id))
    }

    async fn patch_order(&self, order_id: &str, patch: &PatchOrder) -> Result<(), OrderApiError> {
        // The upload only needs to know it landed: any JSON body will do.
        let url = self.url(&["v1", "orders", order_id], false);
        self.send::<_, IgnoredAny>(Method::PATCH, url, Some(patch), Repeat::Safe)
            .await
            .map_err(order_error)?;
        Ok(())
    }
}

/// Only the id and status of a created object: onboarding sends bodies it built itself and
/// must not fail on a field our typed model does not expect.
#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    status: Option<String>,
}

#[async_trait::async_trait]
impl OnboardingApi for ChargebackStop {
    async fn create_organisation(&self, name: &str) -> Result<CreatedOrganisation, ApiFailure> {
        let org = ChargebackStop::create_organisation(
            self,
            &CreateOrganisation {
                name: name.to_owned(),
            },
        )
        .await
        .map_err(onboarding_failure)?;
        Ok(CreatedOrganisation {
            id: org.id,
            mode: org.mode.to_string(),
        })
    }

    async fn get_organisation(&self, id: &str) -> Result<CreatedOrganisation, ApiFailure> {
        let org = ChargebackStop::get_organisation(self, id)
            .await
            .map_err(onboarding_failure)?;
        Ok(CreatedOrganisation {
            id: org.id,
            mode: org.mode.to_string(),
        })
    }

    async fn create_membership(
        &self,
        organisation_id: &str,
        spec: &MembershipSpec,
    ) -> Result<String, ApiFailure> {
        let body = CreateMembership {
            organisation_id: organisation_id.to_owned(),
            first_name: spec.first_name.clone(),
            last_name: spec.last_name.clone(),
            email: spec.email.clone(),
            role: spec.role.as_str().into(),
            is_alert_action_required_email_enabled: Some(
                spec.is_alert_action_required_email_enabled,
            ),
            is_alert_resolved_email_enabled: Some(spec.is_alert_resolved_email_enabled),
            is_alert_dismissed_email_enabled: Some(spec.is_alert_dismissed_email_enabled),
            is_evidence_requested_email_enabled: Some(spec.is_evidence_requested_email_enabled),
        };
        Ok(ChargebackStop::create_membership(self, &body)
            .await
            .map_err(onboarding_failure)?
            .id)
    }

    async fn create_merchant(
        &self,
        organisation_id: &str,
        spec: &MerchantSpec,
    ) -> Result<String, ApiFailure> {
        let body = CreateMerchant {
            organisation_id: organisation_id.to_owned(),
            name: spec.name.clone(),
            merchant_type: spec.merchant_type.as_str().into(),
            external_id: Some(spec.external_id.clone()),
        };
        Ok(ChargebackStop::create_merchant(self, &body)
            .await
            .map_err(onboarding_failure)?
            .id)
    }

    async fn find_merchant(
        &self,
        organisation_id: &str,
        external_id: &str,
    ) -> Result<Option<String>, ApiFailure> {
        // Filtered on the server, checked again here: a filter the server ignores must not
        // hand back another merchant.
        let mut query = ListQuery::page(100, 0).for_organisation(organisation_id);
        query.external_id = Some(external_id.to_owned());
        loop {
            let page = self
                .list_merchants(&query)
                .await
                .map_err(onboarding_failure)?;
            let offset = u64::from(query.offset.unwrap_or(0));
            if let Some(found) = page.items.iter().find(|m| {
                m.organisation_id == organisation_id
                    && m.external_id.as_deref() == Some(external_id)
            }) {
                return Ok(Some(found.id.clone()));
            }
            if !page.has_more(offset, 100) {
                return Ok(None);
            }
            query.offset = Some(query.offset.unwrap_or(0) + page.items.len() as u32);
        }
    }

    async fn create_integration(
        &self,
        organisation_id: &str,
        name: &str,
        merchant_ids: &[String],
    ) -> Result<String, ApiFailure> {
        let body = CreateIntegration {
            organisation_id: organisation_id.to_owned(),
            name: name.to_owned(),
            integration_type: IntegrationType::CustomOrders,
            status: IntegrationStatus::Enabled,
            merchant_ids: merchant_ids.to_vec(),
        };
        Ok(ChargebackStop::create_integration(self, &body)
            .await
            .map_err(onboarding_failure)?
            .id)
    }

    async fn create_enrolment(
        &self,
        body: &serde_json::Value,
    ) -> Result<CreatedEnrolment, ApiFailure> {
        let url = self.url(&["v2", "enrolments"], true);
        let created: Created = self
            .send(Method::POST, url, Some(body), Repeat::Never)
            .await
            .map_err(onboarding_failure)?;
        Ok(CreatedEnrolment {
            id: created.id,
            status: created.status.unwrap_or_default(),
        })
    }

    async fn simulate_enable(&self, enrolment_id: &str) -> Result<Option<String>, ApiFailure> {
        let answer = self
            .request_enrolment_status(enrolment_id, EnrolmentStatus::Enabled)
            .await
            .map_err(onboarding_failure)?;
        if let Some(enrolment) = answer {
            return Ok(Some(enrolment.status.to_string()));
        }
        // The enable happened; its answer said nothing. Ask, but a failure to ask is not a
        // failure of the enable.
        match ChargebackStop::get_enrolment(self, enrolment_id).await {
            Ok(enrolment) => Ok(Some(enrolment.status.to_string())),
            Err(e) => {
                tracing::warn!(enrolment_id, error = %e, "enrolment enabled, but its status could not be read");
                Ok(None)
            }
        }
    }

    async fn create_ruleset(&self, body: &serde_json::Value) -> Result<String, ApiFailure> {
        let url = self.url(&["v1", "rulesets"], true);
        let created: Created = self
            .send(Method::POST, url, Some(body), Repeat::Never)
            .await
            .map_err(onboarding_failure)?;
        Ok(created.id)
    }
}
