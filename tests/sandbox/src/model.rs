//! The sandbox's own idea of ChargebackStop's objects, written from the seed pages (not from the
//! shared crate's models, so the sandbox is an independent check on them). Serialising one of these
//! gives the wire format.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Timestamps go out as `2026-02-17T10:00:00.000Z`: always milliseconds, always `Z`, so they also
/// sort correctly as strings (mixed precision would not).
pub mod ts {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[serde(rename = "TEST")]
    Test,
    #[serde(rename = "LIVE")]
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "TEST",
            Mode::Live => "LIVE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub rel: String,
    pub uri: String,
}

pub fn self_link(uri: String) -> Vec<Link> {
    vec![Link {
        rel: "self".into(),
        uri,
    }]
}

/// Every ability the guides name; the `--partner-key` keys carry all of them.
pub const ALL_ABILITIES: &[&str] = &[
    "organisations:read",
    "organisations:write",
    "merchants:read",
    "merchants:write",
    "integrations:read",
    "integrations:write",
    "orders:read",
    "orders:write",
    "orders:update",
    "enrolments_v2:read",
    "enrolments_v2:write",
    "alerts:read",
    "alerts:write",
    "rulesets:read",
    "rulesets:write",
    "simulations:alerts",
    "simulations:enrollments",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum KeyScope {
    /// A partner-group key. Admin groups see every organisation of their partner; others only
    /// the organisations assigned to the group. Rate limits are counted per group.
    Partner {
        mode: Mode,
        admin: bool,
        organisation_ids: Vec<String>,
        group_id: String,
    },
    /// An organisation-level key: its own organisation only.
    Organisation { organisation_id: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub key: String,
    #[serde(flatten)]
    pub scope: KeyScope,
    pub abilities: Vec<String>,
    #[serde(with = "ts::option", default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub mode: Mode,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub id: String,
    pub organisation_id: String,
    pub user_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: String,
    pub role: String,
    pub is_alert_action_required_email_enabled: bool,
    pub is_alert_resolved_email_enabled: bool,
    pub is_alert_dismissed_email_enabled: bool,
    pub is_evidence_requested_email_enabled: bool,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merchant {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub external_id: Option<String>,
    pub default_representment_service_type: Option<String>,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Integration {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub merchant_ids: Vec<String>,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EthocaDescriptor {
    pub descriptor: String,
    pub match_type: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EthocaAlert {
    pub descriptors: Vec<EthocaDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiRdr {
    pub bin: Option<String>,
    pub caid: Option<String>,
    pub arns: Option<Vec<String>>,
}

pub const ETHOCA_ALERT: &str = "ETHOCA_ALERT";
pub const VERIFI_RDR: &str = "VERIFI_RDR";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    pub id: String,
    pub organisation_id: String,
    pub merchant_ids: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ethoca_alert: Option<EthocaAlert>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verifi_rdr: Option<VerifiRdr>,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub note: Option<String>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub alert_network_id: String,
    pub organisation_id: String,
    pub merchant_id: String,
    pub enrolment_id: String,
    pub enrolment_type: String,
    pub status: String,
    pub transaction_amount_in_cents: i64,
    pub transaction_currency_code: String,
    #[serde(with = "ts::option")]
    pub transaction_authorised_at: Option<DateTime<Utc>>,
    #[serde(with = "ts::option")]
    pub action_required_deadline: Option<DateTime<Utc>>,
    pub transaction_authorisation_code: Option<String>,
    pub transaction_acquirer_reference_number: Option<String>,
    pub transaction_statement_descriptor: Option<String>,
    pub transaction_card_bin: Option<String>,
    pub transaction_card_last4: Option<String>,
    pub transaction_card_scheme: String,
    pub transaction_card_issuer: Option<String>,
    pub transaction_refund_outcome: Option<String>,
    pub subscription_cancel_outcome: Option<String>,
    pub note: Option<String>,
    pub integration_id: Option<String>,
    pub integration_transaction_id: Option<String>,
    #[serde(with = "ts")]
    pub alert_received_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub parameters: Value,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ruleset {
    pub id: String,
    pub organisation_id: String,
    pub enrolment_ids: Vec<String>,
    pub outcome: String,
    pub join_operator: String,
    pub is_enabled: bool,
    pub rules: Vec<Rule>,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

/// One delivery attempt of one event to one endpoint, as `GET /_sandbox/deliveries` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub idempotency_key: String,
    /// `delivered`, `retrying`, `gave_up`, `duplicate` (the second copy of a first attempt) or
    /// `dropped` (a knob kept it back; attempt 0, nothing was sent).
    pub outcome: String,
    /// Sent by `POST /_sandbox/events/{id}/redeliver`.
    #[serde(default)]
    pub redelivery: bool,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
}

/// A short random id with ChargebackStop's prefixes (`org_`, `mrch_`, `netalrt_`, ...).
pub fn new_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &raw[..20])
}

/// One PATCH of an existing alert, as `GET /_sandbox/alerts/{id}/actions` lists it: what was
/// asked, by which key, and what the sandbox did (`accepted` false with `error_code` when it
/// answered 422, e.g. ALERT_ALREADY_RESOLVED).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertAction {
    pub alert_id: String,
    pub action: Option<String>,
    pub note: Option<String>,
    pub key_id: String,
    pub accepted: bool,
    pub error_code: Option<String>,
    /// The alert's status and outcomes after this PATCH.
    pub status: String,
    pub transaction_refund_outcome: Option<String>,
    pub subscription_cancel_outcome: Option<String>,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
}
