//! Memberships (`/v1/memberships/`): customer users who can log in to ChargebackStop.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::Link;
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    /// The seeds show ADMIN; MEMBER is inferred. Other roles are kept in `Other`.
    pub enum MembershipRole {
        Admin = "ADMIN",
        Member = "MEMBER",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// `mem_...`
    pub id: String,
    pub organisation_id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    pub email: String,
    pub role: MembershipRole,
    #[serde(default)]
    pub is_alert_action_required_email_enabled: Option<bool>,
    #[serde(default)]
    pub is_alert_resolved_email_enabled: Option<bool>,
    #[serde(default)]
    pub is_alert_dismissed_email_enabled: Option<bool>,
    #[serde(default)]
    pub is_evidence_requested_email_enabled: Option<bool>,
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

/// Body of `POST /v1/memberships/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMembership {
    pub organisation_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: MembershipRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_alert_action_required_email_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_alert_resolved_email_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_alert_dismissed_email_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_evidence_requested_email_enabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    #[test]
    fn parses_the_guide_sample_and_request() {
        let m: Membership = serde_json::from_str(
            r#"{
              "id": "mem_abc123", "organisation_id": "org_abc123", "user_id": "usr_abc123",
              "first_name": "Casey", "last_name": "Jordan", "email": "casey.jordan@acmefitness.com",
              "role": "ADMIN",
              "is_alert_action_required_email_enabled": true, "is_alert_resolved_email_enabled": true,
              "is_alert_dismissed_email_enabled": true, "is_evidence_requested_email_enabled": true,
              "created_at": "2026-02-17T10:01:00Z", "updated_at": "2026-02-17T10:01:00Z"
            }"#,
        )
        .unwrap();
        assert_eq!(m.role, MembershipRole::Admin);
        assert_eq!(m.user_id.as_deref(), Some("usr_abc123"));
        assert_eq!(m.is_evidence_requested_email_enabled, Some(true));

        let req: CreateMembership = serde_json::from_str(
            r#"{
              "organisation_id": "org_abc123", "first_name": "Casey", "last_name": "Jordan",
              "email": "casey.jordan@acmefitness.com", "role": "ADMIN",
              "is_alert_action_required_email_enabled": true, "is_alert_resolved_email_enabled": true,
              "is_alert_dismissed_email_enabled": true, "is_evidence_requested_email_enabled": true
            }"#,
        )
        .unwrap();
        assert_eq!(req.email, "casey.jordan@acmefitness.com");
        assert_round_trips(&req);
    }

    #[test]
    fn unknown_role_is_kept() {
        let m: Membership = serde_json::from_str(
            r#"{"id": "mem_1", "organisation_id": "org_1", "email": "a@b.c", "role": "VIEWER"}"#,
        )
        .unwrap();
        assert_eq!(m.role, MembershipRole::Other("VIEWER".into()));
    }
}
