//! Integrations (`/v1/integrations/`): a CUSTOM_ORDERS integration is the feed COMPLETE orders
//! are uploaded to.

use serde::{Deserialize, Serialize};

use super::common::Link;
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    /// The seeds use CUSTOM_ORDERS; processor integrations are inferred and kept in `Other`
    /// when unknown.
    pub enum IntegrationType {
        CustomOrders = "CUSTOM_ORDERS",
        Stripe = "STRIPE",
        Adyen = "ADYEN",
        Shopify = "SHOPIFY",
    }
}

string_enum! {
    pub enum IntegrationStatus {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    /// `int_...`
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    pub status: IntegrationStatus,
    #[serde(default, deserialize_with = "default_if_null")]
    pub merchant_ids: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub links: Vec<Link>,
}

/// Body of `POST /v1/integrations/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIntegration {
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    pub status: IntegrationStatus,
    pub merchant_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    #[test]
    fn parses_the_guide_samples() {
        for raw in [
            r#"{"id": "int_abc123", "organisation_id": "org_abc123", "name": "Acme Fitness Orders",
                "type": "CUSTOM_ORDERS", "status": "ENABLED", "merchant_ids": ["mrch_abc123"]}"#,
            r#"{"id": "int_abc123", "organisation_id": "org_abc123", "name": "Acme Fitness Orders API",
                "type": "CUSTOM_ORDERS", "status": "ENABLED", "merchant_ids": ["mrch_abc123"],
                "links": [{"rel": "self", "uri": "/v1/integrations/int_abc123"}]}"#,
        ] {
            let i: Integration = serde_json::from_str(raw).unwrap();
            assert_eq!(i.integration_type, IntegrationType::CustomOrders);
            assert_eq!(i.status, IntegrationStatus::Enabled);
            assert_eq!(i.merchant_ids, vec!["mrch_abc123".to_string()]);
            assert_round_trips(&i);
        }
    }

    #[test]
    fn create_request_matches_the_guide() {
        let req = CreateIntegration {
            organisation_id: "org_abc123".into(),
            name: "Acme Fitness Orders".into(),
            integration_type: IntegrationType::CustomOrders,
            status: IntegrationStatus::Enabled,
            merchant_ids: vec!["mrch_abc123".into()],
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"organisation_id": "org_abc123", "name": "Acme Fitness Orders",
                "type": "CUSTOM_ORDERS", "status": "ENABLED", "merchant_ids": ["mrch_abc123"]})
        );
    }
}
