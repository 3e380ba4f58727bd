//! v2 enrolments (`/v2/enrolments/`): Ethoca by billing descriptor, Verifi RDR by BIN + CAID or
//! ARNs. An enrolment is live only once ENABLED.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Link, MatchType};
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    /// The alert product; also `enrolment_type` on alerts.
    pub enum EnrolmentType {
        EthocaAlert = "ETHOCA_ALERT",
        VerifiRdr = "VERIFI_RDR",
    }
}

string_enum! {
    pub enum EnrolmentStatus {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        ActionRequired = "ACTION_REQUIRED",
        Enabled = "ENABLED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
        Paused = "PAUSED",
        Unenrolled = "UNENROLLED",
    }
}

impl EnrolmentStatus {
    /// Only ENABLED is live: start expecting alerts for the product and identifier.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Enabled)
    }

    /// Submitted or being configured, not live yet (PENDING, IN_PROGRESS).
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }

    /// Go-live is blocked until someone acts on the enrolment's `note`.
    pub fn needs_attention(&self) -> bool {
        matches!(self, Self::ActionRequired | Self::Failed)
    }

    /// No longer live for new alert traffic (CANCELLED, PAUSED, UNENROLLED).
    pub fn is_inactive(&self) -> bool {
        matches!(self, Self::Cancelled | Self::Paused | Self::Unenrolled)
    }
}

string_enum! {
    /// Status of one Ethoca descriptor inside an enrolment.
    pub enum DescriptorStatus {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        ActionRequired = "ACTION_REQUIRED",
        Enabled = "ENABLED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
        Paused = "PAUSED",
        Unenrolled = "UNENROLLED",
    }
}

/// One billing descriptor of an Ethoca enrolment. `status` only appears in responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthocaDescriptor {
    pub descriptor: String,
    pub match_type: MatchType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DescriptorStatus>,
}

impl EthocaDescriptor {
    pub fn new(descriptor: impl Into<String>, match_type: MatchType) -> Self {
        Self {
            descriptor: descriptor.into(),
            match_type,
            status: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthocaAlertDetails {
    #[serde(default, deserialize_with = "default_if_null")]
    pub descriptors: Vec<EthocaDescriptor>,
}

/// Verifi RDR identifiers: `bin` and `caid` together, or at least one ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiRdrDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arns: Option<Vec<String>>,
}

/// An enrolment as `GET /v2/enrolments/{id}` and the `enrolment.*` webhooks return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    /// `enrl_...`
    pub id: String,
    pub organisation_id: String,
    #[serde(default, deserialize_with = "default_if_null")]
    pub merchant_ids: Vec<String>,
    #[serde(rename = "type")]
    pub enrolment_type: EnrolmentType,
    pub status: EnrolmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethoca_alert: Option<EthocaAlertDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifi_rdr: Option<VerifiRdrDetails>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Customer-facing note, e.g. why the enrolment needs action or failed.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub links: Vec<Link>,
}

impl Enrolment {
    pub fn is_live(&self) -> bool {
        self.status.is_live()
    }
}

/// Body of `POST /v2/enrolments/` (partner keys only; all merchants in one organisation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEnrolment {
    pub merchant_ids: Vec<String>,
    #[serde(rename = "type")]
    pub enrolment_type: EnrolmentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethoca_alert: Option<EthocaAlertDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifi_rdr: Option<VerifiRdrDetails>,
}

impl CreateEnrolment {
    pub fn ethoca(merchant_ids: Vec<String>, descriptors: Vec<EthocaDescriptor>) -> Self {
        Self {
            merchant_ids,
            enrolment_type: EnrolmentType::EthocaAlert,
            ethoca_alert: Some(EthocaAlertDetails { descriptors }),
            verifi_rdr: None,
        }
    }

    pub fn rdr_bin_caid(
        merchant_ids: Vec<String>,
        bin: impl Into<String>,
        caid: impl Into<String>,
    ) -> Self {
        Self {
            merchant_ids,
            enrolment_type: EnrolmentType::VerifiRdr,
            ethoca_alert: None,
            verifi_rdr: Some(VerifiRdrDetails {
                bin: Some(bin.into()),
                caid: Some(caid.into()),
                arns: None,
            }),
        }
    }

    pub fn rdr_arns(merchant_ids: Vec<String>, arns: Vec<String>) -> Self {
        Self {
            merchant_ids,
            enrolment_type: EnrolmentType::VerifiRdr,
            ethoca_alert: None,
            verifi_rdr: Some(VerifiRdrDetails {
                bin: None,
                caid: None,
                arns: Some(arns),
            }),
        }
    }
}

/// Body of `PATCH /v1/simulate/enrolments/{id}` (TEST only): `ENABLED` or `UNENROLLED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulateEnrolmentStatus {
    pub status: EnrolmentStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    const ETHOCA_RESPONSE: &str = r#"{
      "id": "enrl_ethoca123",
      "organisation_id": "org_abc123",
      "merchant_ids": ["mrch_abc123"],
      "type": "ETHOCA_ALERT",
      "status": "PENDING",
      "ethoca_alert": {
        "descriptors": [
          {"descriptor": "ACMEFIT", "match_type": "STARTS_WITH", "status": "PENDING"}
        ]
      },
      "created_at": "2026-02-17T10:03:00Z",
      "updated_at": "2026-02-17T10:03:00Z",
      "note": null,
      "links": [{"rel": "self", "uri": "/v2/enrolments/enrl_ethoca123"}]
    }"#;

    // The partner guide's variant: no descriptor status, no links.
    const ETHOCA_RESPONSE_PARTNER_GUIDE: &str = r#"{
      "id": "enrl_ethoca123",
      "organisation_id": "org_abc123",
      "merchant_ids": ["mrch_abc123"],
      "type": "ETHOCA_ALERT",
      "status": "PENDING",
      "ethoca_alert": {"descriptors": [{"descriptor": "ACMEFIT", "match_type": "STARTS_WITH"}]},
      "created_at": "2026-02-17T10:03:00Z",
      "updated_at": "2026-02-17T10:03:00Z",
      "note": null
    }"#;

    const RDR_RESPONSE: &str = r#"{
      "id": "enrl_rdr123",
      "organisation_id": "org_abc123",
      "merchant_ids": ["mrch_abc123"],
      "type": "VERIFI_RDR",
      "status": "PENDING",
      "verifi_rdr": {"bin": "424242", "caid": "ACMEFITCAID01", "arns": null},
      "created_at": "2026-02-17T10:04:00Z",
      "updated_at": "2026-02-17T10:04:00Z",
      "note": null,
      "links": [{"rel": "self", "uri": "/v2/enrolments/enrl_rdr123"}]
    }"#;

    #[test]
    fn parses_the_ethoca_responses() {
        for raw in [ETHOCA_RESPONSE, ETHOCA_RESPONSE_PARTNER_GUIDE] {
            let e: Enrolment = serde_json::from_str(raw).unwrap();
            assert_eq!(e.enrolment_type, EnrolmentType::EthocaAlert);
            assert_eq!(e.status, EnrolmentStatus::Pending);
            let d = &e.ethoca_alert.as_ref().unwrap().descriptors[0];
            assert_eq!(d.descriptor, "ACMEFIT");
            assert_eq!(d.match_type, MatchType::StartsWith);
            assert!(!e.is_live());
        }
        let e: Enrolment = serde_json::from_str(ETHOCA_RESPONSE).unwrap();
        assert_eq!(
            e.ethoca_alert.unwrap().descriptors[0].status,
            Some(DescriptorStatus::Pending)
        );
    }

    #[test]
    fn parses_the_rdr_response_with_null_arns() {
        let e: Enrolment = serde_json::from_str(RDR_RESPONSE).unwrap();
        let rdr = e.verifi_rdr.unwrap();
        assert_eq!(rdr.bin.as_deref(), Some("424242"));
        assert_eq!(rdr.caid.as_deref(), Some("ACMEFITCAID01"));
        assert_eq!(rdr.arns, None);
        assert_eq!(e.links.len(), 1);
    }

    #[test]
    fn statuses_classify_as_the_guide_says() {
        use EnrolmentStatus::*;
        assert!(Enabled.is_live());
        for s in [
            Pending,
            InProgress,
            ActionRequired,
            Failed,
            Cancelled,
            Paused,
            Unenrolled,
        ] {
            assert!(!s.is_live(), "{s}");
        }
        assert!(Pending.is_pending() && InProgress.is_pending());
        assert!(ActionRequired.needs_attention() && Failed.needs_attention());
        assert!(Cancelled.is_inactive() && Paused.is_inactive() && Unenrolled.is_inactive());
        assert!(!Other("NEW".into()).is_live());
    }

    #[test]
    fn unknown_status_keeps_the_enrolment() {
        let raw = RDR_RESPONSE.replace(r#""status": "PENDING""#, r#""status": "UNDER_REVIEW""#);
        let e: Enrolment = serde_json::from_str(&raw).unwrap();
        assert_eq!(e.status, EnrolmentStatus::Other("UNDER_REVIEW".into()));
        assert_eq!(e.id, "enrl_rdr123");
    }

    #[test]
    fn create_requests_match_the_guide() {
        let ethoca = CreateEnrolment::ethoca(
            vec!["mrch_abc123".into()],
            vec![EthocaDescriptor::new("ACMEFIT", MatchType::StartsWith)],
        );
        assert_eq!(
            serde_json::to_value(&ethoca).unwrap(),
            serde_json::json!({"merchant_ids": ["mrch_abc123"], "type": "ETHOCA_ALERT",
                "ethoca_alert": {"descriptors": [{"descriptor": "ACMEFIT", "match_type": "STARTS_WITH"}]}})
        );
        let rdr = CreateEnrolment::rdr_bin_caid(vec!["mrch_abc123".into()], "424242", "ABC1234567");
        assert_eq!(
            serde_json::to_value(&rdr).unwrap(),
            serde_json::json!({"merchant_ids": ["mrch_abc123"], "type": "VERIFI_RDR",
                "verifi_rdr": {"bin": "424242", "caid": "ABC1234567"}})
        );
        let arns = CreateEnrolment::rdr_arns(
            vec!["mrch_abc123".into()],
            vec!["74027012345678901234567".into()],
        );
        assert_eq!(
            serde_json::to_value(&arns).unwrap(),
            serde_json::json!({"merchant_ids": ["mrch_abc123"], "type": "VERIFI_RDR",
                "verifi_rdr": {"arns": ["74027012345678901234567"]}})
        );
        assert_round_trips(&arns);
    }

    #[test]
    fn round_trips() {
        for raw in [ETHOCA_RESPONSE, ETHOCA_RESPONSE_PARTNER_GUIDE, RDR_RESPONSE] {
            let e: Enrolment = serde_json::from_str(raw).unwrap();
            assert_round_trips(&e);
        }
        let body = SimulateEnrolmentStatus {
            status: EnrolmentStatus::Enabled,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"status": "ENABLED"})
        );
    }
}
