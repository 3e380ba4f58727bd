//! The ChargebackStop calls onboarding needs (implemented over the shared client in
//! `client::ports`), and what a refused call tells onboarding.

use super::spec::{MembershipSpec, MerchantSpec};

/// A refused or failed ChargebackStop call, as much as onboarding needs of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    /// HTTP status when there was a response.
    pub status: Option<u16>,
    /// ChargebackStop's error code, when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// The request field ChargebackStop named, when it named one.
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOrganisation {
    pub id: String,
    /// `TEST` or `LIVE` as ChargebackStop reports it.
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedEnrolment {
    pub id: String,
    pub status: String,
}

#[async_trait::async_trait]
pub trait OnboardingApi: Send + Sync {
    async fn create_organisation(&self, name: &str) -> Result<CreatedOrganisation, ApiFailure>;
    async fn get_organisation(&self, id: &str) -> Result<CreatedOrganisation, ApiFailure>;
    async fn create_membership(
        &self,
        organisation_id: &str,
        spec: &MembershipSpec,
    ) -> Result<String, ApiFailure>;
    async fn create_merchant(
        &self,
        organisation_id: &str,
        spec: &MerchantSpec,
    ) -> Result<String, ApiFailure>;
    /// A merchant of the organisation with this external id, if one exists: covers a crash
    /// between ChargebackStop creating the merchant and us saving its id.
    async fn find_merchant(
        &self,
        organisation_id: &str,
        external_id: &str,
    ) -> Result<Option<String>, ApiFailure>;
    async fn create_integration(
        &self,
        organisation_id: &str,
        name: &str,
        merchant_ids: &[String],
    ) -> Result<String, ApiFailure>;
    async fn create_enrolment(
        &self,
        body: &serde_json::Value,
    ) -> Result<CreatedEnrolment, ApiFailure>;
    /// TEST only: `PATCH /v1/simulate/enrolments/{id}` `{"status": "ENABLED"}`. Ok once the
    /// PATCH succeeded, with the enrolment's status when it could be learnt: the docs show no
    /// answer body (it may be the enrolment, an empty 200 or a 204), and a failed look-up after
    /// a successful enable must not fail onboarding.
    async fn simulate_enable(&self, enrolment_id: &str) -> Result<Option<String>, ApiFailure>;
    async fn create_ruleset(&self, body: &serde_json::Value) -> Result<String, ApiFailure>;
}
