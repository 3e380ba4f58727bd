//! A small reqwest adapter for the calls onboarding and the ops API make (organisations,
//! memberships, merchants, integrations, v2 enrolments, simulate enrolment status, rulesets,
//! alert get/update, enrolment get). It exists so those ports have a real implementation while
//! the typed `client` module is being written in parallel; once that client implements the
//! same ports, the entry points switch to it with a one-line change.

use crate::domain::onboarding::{
    ApiFailure, CreatedEnrolment, CreatedOrganisation, MembershipSpec, MerchantSpec, OnboardingApi,
};
use crate::models::alert::{Alert, UpdateAlert};
use crate::models::enrolment::Enrolment;
use crate::models::error::ApiErrorBody;
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::secret::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone)]
pub struct PartnerHttp {
    http: reqwest::Client,
    base_url: String,
    key: Secret,
}

/// A failed call: the status (None when there was no response) and the parsed error body.
struct Failure {
    status: Option<u16>,
    body: ApiErrorBody,
    detail: String,
}

impl PartnerHttp {
    pub fn new(base_url: impl Into<String>, key: Secret) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("reqwest client");
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            key,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Failure> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(self.key.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| Failure {
            status: None,
            body: ApiErrorBody::default(),
            // reqwest's Display can include the URL, never the key (it is a header).
            detail: format!("request failed: {e}"),
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if status.is_success() {
            serde_json::from_str(&text).map_err(|e| Failure {
                status: Some(status.as_u16()),
                body: ApiErrorBody::default(),
                detail: format!("unexpected response body: {e}"),
            })
        } else {
            let body: ApiErrorBody = serde_json::from_str(&text).unwrap_or_default();
            let summary = body.summary();
            Err(Failure {
                status: Some(status.as_u16()),
                detail: if summary.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {summary}")
                },
                body,
            })
        }
    }
}

fn onboarding_failure(f: Failure) -> ApiFailure {
    let items = f.body.items();
    ApiFailure {
        status: f.status,
        code: f
            .body
            .code
            .clone()
            .or_else(|| items.iter().find_map(|i| i.code.clone())),
        message: f.detail,
        field: items.iter().find_map(|i| i.field_path()),
    }
}

fn call_error(operation: &'static str, id: &str, f: Failure) -> ApiCallError {
    let id = id.to_owned();
    match f.status {
        None => ApiCallError::Transient {
            operation,
            id,
            detail: f.detail,
        },
        Some(s) if s == 429 || s >= 500 => ApiCallError::Transient {
            operation,
            id,
            detail: f.detail,
        },
        Some(404) => ApiCallError::NotFound { operation, id },
        Some(422) => ApiCallError::Unprocessable {
            operation,
            id,
            code: f
                .body
                .codes()
                .into_iter()
                .next()
                .unwrap_or_else(|| "UNPROCESSABLE".into()),
            message: f.detail,
        },
        Some(status) => ApiCallError::Refused {
            operation,
            id,
            status,
            detail: f.detail,
        },
    }
}

fn id_of(v: &Value) -> Result<String, ApiFailure> {
    v.get("id")
        .and_then(|i| i.as_str())
        .map(str::to_owned)
        .ok_or_else(|| ApiFailure {
            status: None,
            code: None,
            message: "response has no id".into(),
            field: None,
        })
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

#[async_trait::async_trait]
impl OnboardingApi for PartnerHttp {
    async fn create_organisation(&self, name: &str) -> Result<CreatedOrganisation, ApiFailure> {
        let v: Value = self
            .call(
                Method::POST,
                "/v1/organisations/",
                Some(&json!({ "name": name })),
            )
            .await
            .map_err(onboarding_failure)?;
        Ok(CreatedOrganisation {
            id: id_of(&v)?,
            mode: text(&v, "mode"),
        })
    }

    async fn get_organisation(&self, id: &str) -> Result<CreatedOrganisation, ApiFailure> {
        let v: Value = self
            .call(Method::GET, &format!("/v1/organisations/{id}"), None)
            .await
            .map_err(onboarding_failure)?;
        Ok(CreatedOrganisation {
            id: id_of(&v)?,
            mode: text(&v, "mode"),
        })
    }

    async fn create_membership(
        &self,
        organisation_id: &str,
        m: &MembershipSpec,
    ) -> Result<String, ApiFailure> {
        let mut body = serde_json::to_value(m).unwrap_or_default();
        body["organisation_id"] = json!(organisation_id);
        let v: Value = self
            .call(Method::POST, "/v1/memberships/", Some(&body))
            .await
            .map_err(onboarding_failure)?;
        id_of(&v)
    }

    async fn create_merchant(
        &self,
        organisation_id: &str,
        m: &MerchantSpec,
    ) -> Result<String, ApiFailure> {
        let body = json!({
            "organisation_id": organisation_id,
            "name": m.name,
            "type": m.merchant_type,
            "external_id": m.external_id,
        });
        let v: Value = self
            .call(Method::POST, "/v1/merchants/", Some(&body))
            .await
            .map_err(onboarding_failure)?;
        id_of(&v)
    }

    async fn find_merchant(
        &self,
        organisation_id: &str,
        external_id: &str,
    ) -> Result<Option<String>, ApiFailure> {
        let v: Value = self
            .call(
                Method::GET,
                &format!("/v1/merchants/?organisation_id={organisation_id}&limit=500"),
                None,
            )
            .await
            .map_err(onboarding_failure)?;
        let items = v
            .get("items")
            .or_else(|| v.get("results"))
            .and_then(|i| i.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(items
            .iter()
            .find(|m| {
                text(m, "external_id") == external_id
                    && text(m, "organisation_id") == organisation_id
            })
            .map(|m| text(m, "id")))
    }

    async fn create_integration(
        &self,
        organisation_id: &str,
        name: &str,
        merchant_ids: &[String],
    ) -> Result<String, ApiFailure> {
        let body = json!({
            "organisation_id": organisation_id,
            "name": name,
            "type": "CUSTOM_ORDERS",
            "status": "ENABLED",
            "merchant_ids": merchant_ids,
        });
        let v: Value = self
            .call(Method::POST, "/v1/integrations/", Some(&body))
            .await
            .map_err(onboarding_failure)?;
        id_of(&v)
    }

    async fn create_enrolment(&self, body: &Value) -> Result<CreatedEnrolment, ApiFailure> {
        let v: Value = self
            .call(Method::POST, "/v2/enrolments/", Some(body))
            .await
            .map_err(onboarding_failure)?;
        Ok(CreatedEnrolment {
            id: id_of(&v)?,
            status: text(&v, "status"),
        })
    }

    async fn simulate_enable(&self, enrolment_id: &str) -> Result<String, ApiFailure> {
        let v: Value = self
            .call(
                Method::PATCH,
                &format!("/v1/simulate/enrolments/{enrolment_id}"),
                Some(&json!({ "status": "ENABLED" })),
            )
            .await
            .map_err(onboarding_failure)?;
        let status = text(&v, "status");
        Ok(if status.is_empty() {
            "ENABLED".into()
        } else {
            status
        })
    }

    async fn create_ruleset(&self, body: &Value) -> Result<String, ApiFailure> {
        let v: Value = self
            .call(Method::POST, "/v1/rulesets/", Some(body))
            .await
            .map_err(onboarding_failure)?;
        id_of(&v)
    }
}

#[async_trait::async_trait]
impl AlertApi for PartnerHttp {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        self.call(Method::GET, &format!("/v1/alerts/{alert_id}"), None)
            .await
            .map_err(|f| call_error("get alert", alert_id, f))
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        let body = serde_json::to_value(update).unwrap_or_default();
        self.call(
            Method::PATCH,
            &format!("/v1/alerts/{alert_id}"),
            Some(&body),
        )
        .await
        .map_err(|f| call_error("update alert", alert_id, f))
    }
}

#[async_trait::async_trait]
impl EnrolmentApi for PartnerHttp {
    async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiCallError> {
        self.call(Method::GET, &format!("/v2/enrolments/{enrolment_id}"), None)
            .await
            .map_err(|f| call_error("get enrolment", enrolment_id, f))
    }
}
