//! Merchants (`/v1/merchants/`): the customer's merchant accounts (MID, CAID, provider account).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::Link;
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    /// The seeds use GENERIC; the processor names are inferred and others kept in `Other`.
    pub enum MerchantType {
        Generic = "GENERIC",
        Stripe = "STRIPE",
        Adyen = "ADYEN",
        Shopify = "SHOPIFY",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merchant {
    /// `mrch_...`
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub merchant_type: MerchantType,
    /// The identifier the partner recognises (MID, CAID, provider account id).
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub default_representment_service_type: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub links: Vec<Link>,
}

/// Body of `POST /v1/merchants/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMerchant {
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub merchant_type: MerchantType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    #[test]
    fn parses_the_guide_sample() {
        let m: Merchant = serde_json::from_str(
            r#"{
              "id": "mrch_abc123", "organisation_id": "org_abc123", "name": "Acme Fitness Main Store",
              "type": "GENERIC", "external_id": "mid_123456789",
              "default_representment_service_type": null,
              "created_at": "2026-02-17T10:02:00Z", "updated_at": "2026-02-17T10:02:00Z",
              "links": [{"rel": "self", "uri": "/v1/merchants/mrch_abc123"}]
            }"#,
        )
        .unwrap();
        assert_eq!(m.merchant_type, MerchantType::Generic);
        assert_eq!(m.external_id.as_deref(), Some("mid_123456789"));
        assert_eq!(m.default_representment_service_type, None);
        assert_round_trips(&m);
    }

    #[test]
    fn create_request_matches_the_guide() {
        let req = CreateMerchant {
            organisation_id: "org_abc123".into(),
            name: "Acme Fitness Main Store".into(),
            merchant_type: MerchantType::Generic,
            external_id: Some("acct_1ABCDEF2345678".into()),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"organisation_id": "org_abc123", "name": "Acme Fitness Main Store",
                "type": "GENERIC", "external_id": "acct_1ABCDEF2345678"})
        );
    }
}
