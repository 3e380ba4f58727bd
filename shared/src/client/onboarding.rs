//! Onboarding endpoints: organisations, memberships, merchants, integrations and v2 enrolments.
//! Creates are sent once (see the module docs of `client`); reads retry.

use reqwest::Method;
use serde::Serialize;

use super::{checked, ApiError, ChargebackStop, Repeat};
use crate::models::{
    CreateEnrolment, CreateIntegration, CreateMembership, CreateMerchant, CreateOrganisation,
    Enrolment, Integration, Membership, Merchant, Organisation, Page,
};
use crate::validation::validate_create_enrolment;

/// Filters and paging of the onboarding list endpoints. Each endpoint reads the filters that
/// apply to it (`organisation_id` on memberships, merchants, integrations, enrolments; `name`
/// on organisations and merchants; `type` on merchants and integrations...). `None` is not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

impl ListQuery {
    pub fn page(limit: u32, offset: u32) -> Self {
        Self {
            limit: Some(limit),
            offset: Some(offset),
            ..Self::default()
        }
    }

    pub fn for_organisation(mut self, organisation_id: impl Into<String>) -> Self {
        self.organisation_id = Some(organisation_id.into());
        self
    }
}

impl ChargebackStop {
    // --- organisations (partner keys) ---

    pub async fn create_organisation(
        &self,
        body: &CreateOrganisation,
    ) -> Result<Organisation, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "organisations"], true),
            Some(body),
            Repeat::Never,
        )
        .await
    }

    pub async fn list_organisations(
        &self,
        query: &ListQuery,
    ) -> Result<Page<Organisation>, ApiError> {
        self.get(self.url(&["v1", "organisations"], true), Some(query))
            .await
    }

    pub async fn get_organisation(&self, organisation_id: &str) -> Result<Organisation, ApiError> {
        self.get::<_, ()>(
            self.url(&["v1", "organisations", organisation_id], false),
            None,
        )
        .await
    }

    // --- memberships ---

    pub async fn create_membership(&self, body: &CreateMembership) -> Result<Membership, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "memberships"], true),
            Some(body),
            Repeat::Never,
        )
        .await
    }

    pub async fn list_memberships(&self, query: &ListQuery) -> Result<Page<Membership>, ApiError> {
        self.get(self.url(&["v1", "memberships"], true), Some(query))
            .await
    }

    // --- merchants ---

    pub async fn create_merchant(&self, body: &CreateMerchant) -> Result<Merchant, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "merchants"], true),
            Some(body),
            Repeat::Never,
        )
        .await
    }

    pub async fn list_merchants(&self, query: &ListQuery) -> Result<Page<Merchant>, ApiError> {
        self.get(self.url(&["v1", "merchants"], true), Some(query))
            .await
    }

    pub async fn get_merchant(&self, merchant_id: &str) -> Result<Merchant, ApiError> {
        self.get::<_, ()>(self.url(&["v1", "merchants", merchant_id], false), None)
            .await
    }

    // --- integrations ---

    pub async fn create_integration(
        &self,
        body: &CreateIntegration,
    ) -> Result<Integration, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "integrations"], true),
            Some(body),
            Repeat::Never,
        )
        .await
    }

    pub async fn list_integrations(
        &self,
        query: &ListQuery,
    ) -> Result<Page<Integration>, ApiError> {
        self.get(self.url(&["v1", "integrations"], true), Some(query))
            .await
    }

    pub async fn get_integration(&self, integration_id: &str) -> Result<Integration, ApiError> {
        self.get::<_, ()>(
            self.url(&["v1", "integrations", integration_id], false),
            None,
        )
        .await
    }

    // --- v2 enrolments (partner keys; all merchants in one organisation) ---

    /// Created in `PENDING`; live only once a webhook or `get_enrolment` says `ENABLED`.
    pub async fn create_enrolment(&self, body: &CreateEnrolment) -> Result<Enrolment, ApiError> {
        let url = self.url(&["v2", "enrolments"], true);
        checked(&Method::POST, &url, validate_create_enrolment(body))?;
        self.send(Method::POST, url, Some(body), Repeat::Never)
            .await
    }

    pub async fn list_enrolments(&self, query: &ListQuery) -> Result<Page<Enrolment>, ApiError> {
        self.get(self.url(&["v2", "enrolments"], true), Some(query))
            .await
    }

    /// The source of truth for an enrolment's status (webhooks may arrive out of order).
    pub async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiError> {
        self.get::<_, ()>(self.url(&["v2", "enrolments", enrolment_id], false), None)
            .await
    }
}
