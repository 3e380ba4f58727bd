//! Organisations (`/v1/organisations/`): one per customer. A TEST partner creates TEST
//! organisations (names prefixed `[TEST] `), which alone may use the simulation endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::Link;
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    pub enum OrganisationMode {
        Test = "TEST",
        Live = "LIVE",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    /// `org_...`
    pub id: String,
    pub name: String,
    pub mode: OrganisationMode,
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

/// Body of `POST /v1/organisations/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrganisation {
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    #[test]
    fn parses_both_guide_samples() {
        let live: Organisation = serde_json::from_str(
            r#"{"id": "org_abc123", "name": "Acme Fitness", "mode": "LIVE",
                "created_at": "2026-02-17T10:00:00Z", "updated_at": "2026-02-17T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(live.mode, OrganisationMode::Live);
        assert!(live.links.is_empty());
        let test: Organisation = serde_json::from_str(
            r#"{"id": "org_abc123", "name": "[TEST] Acme Fitness", "mode": "TEST",
                "created_at": "2026-02-17T10:00:00Z", "updated_at": "2026-02-17T10:00:00Z",
                "links": [{"rel": "self", "uri": "/v1/organisations/org_abc123"}]}"#,
        )
        .unwrap();
        assert_eq!(test.mode, OrganisationMode::Test);
        assert_eq!(test.links[0].rel, "self");
        assert_round_trips(&test);
    }

    #[test]
    fn unknown_mode_is_kept() {
        let org: Organisation =
            serde_json::from_str(r#"{"id": "org_1", "name": "x", "mode": "STAGING"}"#).unwrap();
        assert_eq!(org.mode, OrganisationMode::Other("STAGING".into()));
    }
}
