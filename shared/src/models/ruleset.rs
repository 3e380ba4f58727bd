//! Resolution rulesets (`/v1/rulesets/`, developer preview): decide automatically what happens
//! to alerts of some enrolments. One rule per type; for RDR only REFUND or ACCEPT_DISPUTE and
//! USD amounts (see `validation`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::MatchType;
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    pub enum RulesetOutcome {
        Refund = "REFUND",
        Cancel = "CANCEL",
        RefundAndCancel = "REFUND_AND_CANCEL",
        AcceptDispute = "ACCEPT_DISPUTE",
    }
}

string_enum! {
    pub enum JoinOperator {
        And = "AND",
        Or = "OR",
    }
}

string_enum! {
    pub enum RuleType {
        Amount = "AMOUNT",
        Descriptor = "DESCRIPTOR",
    }
}

string_enum! {
    /// The seeds show GREATER_THAN; the others are inferred.
    pub enum AmountOperator {
        GreaterThan = "GREATER_THAN",
        GreaterThanOrEqual = "GREATER_THAN_OR_EQUAL",
        LessThan = "LESS_THAN",
        LessThanOrEqual = "LESS_THAN_OR_EQUAL",
        Equal = "EQUAL",
    }
}

/// One descriptor criterion of a DESCRIPTOR rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorCriterion {
    pub value: String,
    pub match_type: MatchType,
}

/// A rule's `parameters`. One flat shape for every rule type so that a rule of a type this
/// version does not know still parses: AMOUNT uses operator/currency_code/amount_in_cents,
/// DESCRIPTOR uses descriptors; anything else lands in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<AmountOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptors: Option<Vec<DescriptorCriterion>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A rule in a ruleset. `id` and the timestamps appear in responses only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    #[serde(default)]
    pub parameters: RuleParameters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Rule {
    pub fn amount(
        operator: AmountOperator,
        currency_code: impl Into<String>,
        amount_in_cents: i64,
    ) -> Self {
        Self {
            id: None,
            rule_type: RuleType::Amount,
            parameters: RuleParameters {
                operator: Some(operator),
                currency_code: Some(currency_code.into()),
                amount_in_cents: Some(amount_in_cents),
                ..Default::default()
            },
            created_at: None,
            updated_at: None,
        }
    }

    pub fn descriptor(descriptors: Vec<DescriptorCriterion>) -> Self {
        Self {
            id: None,
            rule_type: RuleType::Descriptor,
            parameters: RuleParameters {
                descriptors: Some(descriptors),
                ..Default::default()
            },
            created_at: None,
            updated_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// `rset_...`
    pub id: String,
    pub organisation_id: String,
    #[serde(default, deserialize_with = "default_if_null")]
    pub enrolment_ids: Vec<String>,
    pub outcome: RulesetOutcome,
    pub join_operator: JoinOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    #[serde(default, deserialize_with = "default_if_null")]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Body of `POST /v1/rulesets/`. A create with an invalid rule rolls back whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRuleset {
    pub organisation_id: String,
    pub enrolment_ids: Vec<String>,
    pub outcome: RulesetOutcome,
    pub join_operator: JoinOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    pub rules: Vec<Rule>,
}

/// Body of `PATCH /v1/rulesets/{id}`. Never carries rules: those go through `PatchRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRuleset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RulesetOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_operator: Option<JoinOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
}

/// Body of `PATCH /v1/rulesets/{id}/rules/{rule_id}`: new criteria for one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchRule {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<RuleType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<RuleParameters>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET_RESPONSE: &str = r#"{
      "id": "rset_abc123",
      "organisation_id": "org_abc123",
      "enrolment_ids": ["enrl_rdr123"],
      "outcome": "ACCEPT_DISPUTE",
      "join_operator": "OR",
      "rules": [
        {
          "id": "resrule_amount123",
          "type": "AMOUNT",
          "parameters": {"operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 10000},
          "created_at": "2026-02-17T10:10:00Z",
          "updated_at": "2026-02-17T10:10:00Z"
        },
        {
          "id": "resrule_descriptor123",
          "type": "DESCRIPTOR",
          "parameters": {"descriptors": [{"value": "ACMEFIT HIGHVALUE", "match_type": "STARTS_WITH"}]},
          "created_at": "2026-02-17T10:10:00Z",
          "updated_at": "2026-02-17T10:10:00Z"
        }
      ],
      "created_at": "2026-02-17T10:10:00Z",
      "updated_at": "2026-02-17T10:10:00Z"
    }"#;

    #[test]
    fn parses_the_guide_response() {
        let r: Ruleset = serde_json::from_str(RULESET_RESPONSE).unwrap();
        assert_eq!(r.outcome, RulesetOutcome::AcceptDispute);
        assert_eq!(r.join_operator, JoinOperator::Or);
        assert_eq!(r.rules[0].rule_type, RuleType::Amount);
        assert_eq!(
            r.rules[0].parameters.operator,
            Some(AmountOperator::GreaterThan)
        );
        assert_eq!(r.rules[0].parameters.amount_in_cents, Some(10000));
        let d = r.rules[1].parameters.descriptors.as_ref().unwrap();
        assert_eq!(d[0].match_type, MatchType::StartsWith);
        let original: serde_json::Value = serde_json::from_str(RULESET_RESPONSE).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), original);
    }

    #[test]
    fn create_requests_match_the_guide() {
        let rdr = CreateRuleset {
            organisation_id: "org_abc123".into(),
            enrolment_ids: vec!["enrl_verifi123".into()],
            outcome: RulesetOutcome::AcceptDispute,
            join_operator: JoinOperator::And,
            is_enabled: None,
            rules: vec![Rule::amount(AmountOperator::GreaterThan, "USD", 5000)],
        };
        assert_eq!(
            serde_json::to_value(&rdr).unwrap(),
            serde_json::json!({"organisation_id": "org_abc123", "enrolment_ids": ["enrl_verifi123"],
                "outcome": "ACCEPT_DISPUTE", "join_operator": "AND",
                "rules": [{"type": "AMOUNT", "parameters": {"operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 5000}}]})
        );
        let ethoca = Rule::descriptor(vec![DescriptorCriterion {
            value: "ACMEFIT".into(),
            match_type: MatchType::StartsWith,
        }]);
        assert_eq!(
            serde_json::to_value(&ethoca).unwrap(),
            serde_json::json!({"type": "DESCRIPTOR", "parameters": {"descriptors": [{"value": "ACMEFIT", "match_type": "STARTS_WITH"}]}})
        );
    }

    #[test]
    fn unknown_rule_types_keep_their_parameters() {
        let rule: Rule =
            serde_json::from_str(r#"{"type": "COUNTRY", "parameters": {"countries": ["GB"]}}"#)
                .unwrap();
        assert_eq!(rule.rule_type, RuleType::Other("COUNTRY".into()));
        assert_eq!(rule.parameters.extra["countries"][0], "GB");
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            serde_json::json!({"type": "COUNTRY", "parameters": {"countries": ["GB"]}})
        );
    }

    #[test]
    fn patches_send_only_what_changes() {
        let patch = PatchRuleset {
            outcome: Some(RulesetOutcome::Refund),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({"outcome": "REFUND"})
        );
        let rule = PatchRule {
            rule_type: None,
            parameters: Some(Rule::amount(AmountOperator::GreaterThan, "USD", 2000).parameters),
        };
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            serde_json::json!({"parameters": {"operator": "GREATER_THAN", "currency_code": "USD", "amount_in_cents": 2000}})
        );
    }
}
