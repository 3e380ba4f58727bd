//! Alerts (`/v1/alerts/`): Ethoca alerts that wait for an action before a deadline, and Verifi
//! RDR alerts that arrive already resolved at the network level.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{CardBrand, Link};
use super::enrolment::EnrolmentType;
use super::string_enum::string_enum;

string_enum! {
    pub enum AlertStatus {
        ActionRequired = "ACTION_REQUIRED",
        Resolved = "RESOLVED",
        Invalid = "INVALID",
    }
}

string_enum! {
    /// What `PATCH /v1/alerts/{id}` can do with an Ethoca alert.
    pub enum AlertAction {
        Refund = "REFUND",
        Cancel = "CANCEL",
        RefundAndCancel = "REFUND_AND_CANCEL",
        AcceptDispute = "ACCEPT_DISPUTE",
    }
}

impl AlertAction {
    /// Whether the action tells the provider the transaction was refunded (REFUND,
    /// REFUND_AND_CANCEL): the alert then ends with `transaction_refund_outcome = REFUNDED`.
    pub fn refunds(&self) -> bool {
        matches!(self, Self::Refund | Self::RefundAndCancel)
    }

    /// Whether the action asks for the subscription to be cancelled.
    pub fn cancels(&self) -> bool {
        matches!(self, Self::Cancel | Self::RefundAndCancel)
    }
}

string_enum! {
    pub enum RefundOutcome {
        Refunded = "REFUNDED",
        NotRefunded = "NOT_REFUNDED",
    }
}

string_enum! {
    /// `subscription_cancel_outcome`. The seeds only show `null`; these names follow the refund
    /// outcome's pattern (inferred), and anything else is kept in `Other`.
    pub enum CancelOutcome {
        Cancelled = "CANCELLED",
        NotCancelled = "NOT_CANCELLED",
    }
}

string_enum! {
    /// The `sort` parameter of `GET /v1/alerts`.
    pub enum AlertSort {
        ReceivedNewestFirst = "-alert_received_at",
        ReceivedOldestFirst = "alert_received_at",
        DeadlineLatestFirst = "-action_required_deadline",
        DeadlineSoonestFirst = "action_required_deadline",
    }
}

/// One alert as the API returns it (list, get, PATCH, simulator, `alert.*` webhooks).
/// Only the fields every sample carries are required; the PATCH response, for example, is a
/// subset of the full object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `netalrt_...`
    pub id: String,
    #[serde(default)]
    pub alert_network_id: Option<String>,
    pub organisation_id: String,
    #[serde(default)]
    pub merchant_id: Option<String>,
    #[serde(default)]
    pub enrolment_id: Option<String>,
    pub enrolment_type: EnrolmentType,
    pub status: AlertStatus,
    #[serde(default)]
    pub transaction_amount_in_cents: Option<i64>,
    #[serde(default)]
    pub transaction_currency_code: Option<String>,
    #[serde(default)]
    pub transaction_authorised_at: Option<DateTime<Utc>>,
    /// When an Ethoca alert must be actioned by; after it the dispute proceeds.
    #[serde(default)]
    pub action_required_deadline: Option<DateTime<Utc>>,
    #[serde(default)]
    pub transaction_authorisation_code: Option<String>,
    #[serde(default)]
    pub transaction_acquirer_reference_number: Option<String>,
    #[serde(default)]
    pub transaction_statement_descriptor: Option<String>,
    #[serde(default)]
    pub transaction_card_bin: Option<String>,
    #[serde(default)]
    pub transaction_card_last4: Option<String>,
    #[serde(default)]
    pub transaction_card_scheme: Option<CardBrand>,
    #[serde(default)]
    pub transaction_card_issuer: Option<String>,
    #[serde(default)]
    pub transaction_refund_outcome: Option<RefundOutcome>,
    #[serde(default)]
    pub subscription_cancel_outcome: Option<CancelOutcome>,
    /// Customer-facing note saved on the alert.
    #[serde(default)]
    pub note: Option<String>,
    /// Set when ChargebackStop matched the alert to a transaction of this integration.
    #[serde(default)]
    pub integration_id: Option<String>,
    #[serde(default)]
    pub integration_transaction_id: Option<String>,
    /// What the list filters and sorts on.
    #[serde(default)]
    pub alert_received_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::string_enum::nullable::default_if_null"
    )]
    pub links: Vec<Link>,
}

impl Alert {
    /// An Ethoca alert waiting for our action. RDR alerts are never actionable: they are
    /// resolved at the network level and the action API is Ethoca-only.
    pub fn is_actionable(&self) -> bool {
        self.enrolment_type == EnrolmentType::EthocaAlert
            && self.status == AlertStatus::ActionRequired
    }

    /// Whether the alert has matched one of our transactions.
    pub fn is_matched(&self) -> bool {
        self.integration_transaction_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
    }

    /// Time left before the deadline (negative once passed); `None` without a deadline.
    pub fn time_to_deadline(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.action_required_deadline.map(|deadline| deadline - now)
    }
}

/// Body of `PATCH /v1/alerts/{id}`: an action, a note, or both. Absent fields are not sent
/// (sending `"note": null` could clear a note).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAlert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AlertAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl UpdateAlert {
    pub fn action(action: AlertAction) -> Self {
        Self {
            action: Some(action),
            note: None,
        }
    }

    pub fn note(note: impl Into<String>) -> Self {
        Self {
            action: None,
            note: Some(note.into()),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// Filters, sort and paging of `GET /v1/alerts`. `None` parameters are not sent.
/// `validation::validate_alert_query` checks `alert_received_at_gte <= alert_received_at_lte`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AlertStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// Received at or after (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_received_at_gte: Option<DateTime<Utc>>,
    /// Received at or before (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_received_at_lte: Option<DateTime<Utc>>,
    /// Default on the API side: newest received first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<AlertSort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

impl AlertQuery {
    /// The fallback poll: Ethoca alerts still waiting, soonest deadline first.
    pub fn action_required() -> Self {
        Self {
            status: Some(AlertStatus::ActionRequired),
            sort: Some(AlertSort::DeadlineSoonestFirst),
            ..Default::default()
        }
    }

    pub fn for_organisation(mut self, organisation_id: impl Into<String>) -> Self {
        self.organisation_id = Some(organisation_id.into());
        self
    }

    pub fn page(mut self, limit: u32, offset: u32) -> Self {
        self.limit = Some(limit);
        self.offset = Some(offset);
        self
    }
}

/// Body of `POST /v1/simulate/alerts` (TEST organisations only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimulateAlert {
    pub organisation_id: String,
    pub enrolment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AlertStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_scheme: Option<CardBrand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_acquirer_reference_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_authorisation_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_statement_descriptor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_card_bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_card_last4: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::assert_round_trips;

    const SIMULATED_ALERT: &str = r#"{
      "id": "netalrt_abc123",
      "alert_network_id": "SIM123456",
      "organisation_id": "org_abc123",
      "merchant_id": "mrch_abc123",
      "enrolment_id": "enrl_ethoca123",
      "enrolment_type": "ETHOCA_ALERT",
      "status": "ACTION_REQUIRED",
      "transaction_amount_in_cents": 4900,
      "transaction_currency_code": "USD",
      "transaction_authorised_at": "2026-02-10T10:30:00Z",
      "action_required_deadline": "2026-02-19T10:30:00Z",
      "transaction_authorisation_code": "123456",
      "transaction_acquirer_reference_number": "74027012345678901234567",
      "transaction_statement_descriptor": "ACMEFIT",
      "transaction_card_bin": "400000",
      "transaction_card_last4": "1234",
      "transaction_card_scheme": "VISA",
      "transaction_card_issuer": "Bank of America",
      "transaction_refund_outcome": null,
      "subscription_cancel_outcome": null,
      "note": null,
      "integration_id": null,
      "integration_transaction_id": null
    }"#;

    const PATCH_RESPONSE: &str = r#"{
      "id": "netalrt_abc123",
      "organisation_id": "org_abc123",
      "merchant_id": "mrch_abc123",
      "enrolment_id": "enrl_ethoca123",
      "enrolment_type": "ETHOCA_ALERT",
      "status": "RESOLVED",
      "transaction_refund_outcome": "REFUNDED",
      "note": "Refund completed in partner platform before actioning alert.",
      "links": [{"rel": "self", "uri": "/v1/alerts/netalrt_abc123"}]
    }"#;

    fn ts(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_simulated_alert_response() {
        let alert: Alert = serde_json::from_str(SIMULATED_ALERT).unwrap();
        assert_eq!(alert.id, "netalrt_abc123");
        assert_eq!(alert.alert_network_id.as_deref(), Some("SIM123456"));
        assert_eq!(alert.enrolment_type, EnrolmentType::EthocaAlert);
        assert_eq!(alert.status, AlertStatus::ActionRequired);
        assert_eq!(alert.transaction_amount_in_cents, Some(4900));
        assert_eq!(
            alert.action_required_deadline,
            Some(ts("2026-02-19T10:30:00Z"))
        );
        assert_eq!(
            alert.transaction_authorised_at,
            Some(ts("2026-02-10T10:30:00Z"))
        );
        assert_eq!(alert.transaction_card_scheme, Some(CardBrand::Visa));
        assert_eq!(
            alert.transaction_card_issuer.as_deref(),
            Some("Bank of America")
        );
        assert_eq!(alert.transaction_refund_outcome, None);
        assert_eq!(alert.integration_id, None);
        assert!(alert.is_actionable());
        assert!(!alert.is_matched());
        assert_eq!(
            alert.time_to_deadline(ts("2026-02-19T09:30:00Z")),
            Some(chrono::Duration::hours(1))
        );
    }

    #[test]
    fn parses_the_partial_patch_response() {
        let alert: Alert = serde_json::from_str(PATCH_RESPONSE).unwrap();
        assert_eq!(alert.status, AlertStatus::Resolved);
        assert_eq!(
            alert.transaction_refund_outcome,
            Some(RefundOutcome::Refunded)
        );
        assert_eq!(alert.links[0].uri, "/v1/alerts/netalrt_abc123");
        assert_eq!(alert.action_required_deadline, None);
        assert!(!alert.is_actionable());
    }

    #[test]
    fn rdr_alerts_are_never_actionable() {
        let raw = SIMULATED_ALERT.replace("ETHOCA_ALERT", "VERIFI_RDR");
        let alert: Alert = serde_json::from_str(&raw).unwrap();
        assert!(!alert.is_actionable());
    }

    #[test]
    fn unknown_enum_values_and_extra_fields_keep_the_rest() {
        let raw = SIMULATED_ALERT
            .replace(
                r#""status": "ACTION_REQUIRED""#,
                r#""status": "UNDER_REVIEW""#,
            )
            .replace(
                r#""transaction_card_scheme": "VISA""#,
                r#""transaction_card_scheme": "ELO""#,
            )
            .replace(
                r#""note": null"#,
                r#""note": null, "brand_new_field": {"x": 1}"#,
            );
        let alert: Alert = serde_json::from_str(&raw).unwrap();
        assert_eq!(alert.status, AlertStatus::Other("UNDER_REVIEW".into()));
        assert_eq!(
            alert.transaction_card_scheme,
            Some(CardBrand::Other("ELO".into()))
        );
        assert_eq!(alert.transaction_amount_in_cents, Some(4900));
        assert!(!alert.is_actionable());
    }

    #[test]
    fn round_trips() {
        for raw in [SIMULATED_ALERT, PATCH_RESPONSE] {
            let alert: Alert = serde_json::from_str(raw).unwrap();
            assert_round_trips(&alert);
        }
    }

    #[test]
    fn update_alert_sends_only_what_is_set() {
        let body = serde_json::to_value(UpdateAlert::action(AlertAction::Refund)).unwrap();
        assert_eq!(body, serde_json::json!({"action": "REFUND"}));
        let body = serde_json::to_value(UpdateAlert::note("hi")).unwrap();
        assert_eq!(body, serde_json::json!({"note": "hi"}));
        let body =
            serde_json::to_value(UpdateAlert::action(AlertAction::AcceptDispute).with_note("n"))
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"action": "ACCEPT_DISPUTE", "note": "n"})
        );
    }

    #[test]
    fn alert_query_sends_only_what_is_set() {
        let q = AlertQuery::action_required()
            .for_organisation("org_1")
            .page(50, 100);
        assert_eq!(
            serde_json::to_value(&q).unwrap(),
            serde_json::json!({"status": "ACTION_REQUIRED", "organisation_id": "org_1",
                "sort": "action_required_deadline", "limit": 50, "offset": 100})
        );
        assert_eq!(
            serde_json::to_value(AlertQuery::default()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn action_semantics_follow_the_guide() {
        assert!(AlertAction::Refund.refunds() && !AlertAction::Refund.cancels());
        assert!(AlertAction::RefundAndCancel.refunds() && AlertAction::RefundAndCancel.cancels());
        assert!(!AlertAction::Cancel.refunds() && AlertAction::Cancel.cancels());
        assert!(!AlertAction::AcceptDispute.refunds() && !AlertAction::AcceptDispute.cancels());
    }

    #[test]
    fn simulate_alert_serialises_the_guide_request() {
        let body = SimulateAlert {
            organisation_id: "org_abc123".into(),
            enrolment_id: "enrl_ethoca123".into(),
            status: Some(AlertStatus::ActionRequired),
            card_scheme: Some(CardBrand::Visa),
            amount_in_cents: Some(4900),
            currency_code: Some("USD".into()),
            transaction_acquirer_reference_number: Some("74027012345678901234567".into()),
            transaction_authorisation_code: Some("123456".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "organisation_id": "org_abc123",
                "enrolment_id": "enrl_ethoca123",
                "status": "ACTION_REQUIRED",
                "card_scheme": "VISA",
                "amount_in_cents": 4900,
                "currency_code": "USD",
                "transaction_acquirer_reference_number": "74027012345678901234567",
                "transaction_authorisation_code": "123456"
            })
        );
    }
}
