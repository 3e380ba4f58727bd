//! What the operator asks for (`customer.json`, `POST /onboarding`), and the request bodies
//! built from it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    /// Our own stable id for the customer (the `customers` table key).
    pub customer_id: String,
    pub organisation: OrganisationSpec,
    #[serde(default)]
    pub memberships: Vec<MembershipSpec>,
    pub merchants: Vec<MerchantSpec>,
    /// The CUSTOM_ORDERS integration; defaults to "<organisation name> Orders".
    #[serde(default)]
    pub integration: Option<IntegrationSpec>,
    #[serde(default)]
    pub enrolments: Vec<EnrolmentSpec>,
    /// Optional RDR ruleset, attached to the customer's VERIFI_RDR enrolments.
    #[serde(default)]
    pub rdr_ruleset: Option<RulesetSpec>,
    /// How automatic decisions are taken for this customer; stored as given.
    #[serde(default)]
    pub decision_policy: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipSpec {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default = "default_role")]
    pub role: String,
    #[serde(default = "yes")]
    pub is_alert_action_required_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_alert_resolved_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_alert_dismissed_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_evidence_requested_email_enabled: bool,
}

fn default_role() -> String {
    "ADMIN".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantSpec {
    pub name: String,
    #[serde(rename = "type", default = "default_merchant_type")]
    pub merchant_type: String,
    /// The merchant identifier our team recognises (MID, CAID, provider account); also the key
    /// that maps a merchant in the spec to the id ChargebackStop returned.
    pub external_id: String,
}

fn default_merchant_type() -> String {
    "GENERIC".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentSpec {
    /// `ETHOCA_ALERT` or `VERIFI_RDR`.
    #[serde(rename = "type")]
    pub enrolment_type: String,
    /// External ids of the spec's merchants to enrol; all of them when absent.
    #[serde(default)]
    pub merchants: Option<Vec<String>>,
    #[serde(default)]
    pub ethoca_alert: Option<serde_json::Value>,
    #[serde(default)]
    pub verifi_rdr: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetSpec {
    pub outcome: String,
    #[serde(default = "default_join")]
    pub join_operator: String,
    #[serde(default = "yes")]
    pub is_enabled: bool,
    pub rules: Vec<serde_json::Value>,
}

fn default_join() -> String {
    "AND".into()
}

impl EnrolmentSpec {
    /// The key under which the enrolment's id is stored: type and position among enrolments of
    /// that type (`ETHOCA_ALERT#1`), so re-runs of the same file map to the same enrolment.
    pub(super) fn key(&self, position_in_type: usize) -> String {
        format!("{}#{}", self.enrolment_type, position_in_type + 1)
    }

    /// The `POST /v2/enrolments/` body, given the merchant ids.
    pub fn request_body(&self, merchant_ids: &[String]) -> serde_json::Value {
        let mut body = serde_json::json!({
            "merchant_ids": merchant_ids,
            "type": self.enrolment_type,
        });
        if let Some(e) = &self.ethoca_alert {
            body["ethoca_alert"] = e.clone();
        }
        if let Some(v) = &self.verifi_rdr {
            body["verifi_rdr"] = v.clone();
        }
        body
    }
}

impl RulesetSpec {
    /// The `POST /v1/rulesets/` body.
    pub fn request_body(
        &self,
        organisation_id: &str,
        enrolment_ids: &[String],
    ) -> serde_json::Value {
        serde_json::json!({
            "organisation_id": organisation_id,
            "enrolment_ids": enrolment_ids,
            "outcome": self.outcome,
            "join_operator": self.join_operator,
            "is_enabled": self.is_enabled,
            "rules": self.rules,
        })
    }
}
