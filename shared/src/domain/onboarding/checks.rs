//! Everything checked before any call: the spec (each problem naming its field) and the partner
//! key's mode; and the errors onboarding ends with.

use super::api::ApiFailure;
use super::spec::{CustomerSpec, EnrolmentSpec, RulesetSpec};
use crate::config::StackMode;
use crate::ports::store_error::StoreError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// One problem with the spec, naming the field (JSON path) it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecProblem {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("the customer spec is invalid: {}", describe(.0))]
    Invalid(Vec<SpecProblem>),
    #[error("{0}")]
    ModeMismatch(String),
    #[error(
        "customer {customer_id} is being onboarded by another run; try again in a few minutes"
    )]
    Busy { customer_id: String },
    #[error("step {step} failed: {failure}")]
    Api { step: String, failure: ApiFailure },
    #[error("saving progress failed: {0}")]
    Store(#[from] StoreError),
}

fn describe(problems: &[SpecProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The mode a ChargebackStop key names in its prefix, if it names one (`cbs_test_…`,
/// `cbs_live_…`). Keys without such a prefix cannot be told apart and are not refused here; the
/// organisation's `mode` check catches them.
pub fn key_mode(key: &Secret) -> Option<StackMode> {
    let k = key.expose();
    if k.starts_with("cbs_test_") {
        Some(StackMode::Test)
    } else if k.starts_with("cbs_live_") {
        Some(StackMode::Live)
    } else {
        None
    }
}

/// Refuses a partner key that names the other mode. The message never contains the key.
pub fn refuse_key_of_other_mode(stack: StackMode, key: &Secret) -> Result<(), OnboardingError> {
    match key_mode(key) {
        Some(m) if m != stack => Err(OnboardingError::ModeMismatch(format!(
            "this is a {} stack but CBS_API_KEY is a {} key",
            mode_name(stack),
            mode_name(m)
        ))),
        _ => Ok(()),
    }
}

pub(super) fn mode_name(mode: StackMode) -> &'static str {
    match mode {
        StackMode::Test => "TEST",
        StackMode::Live => "LIVE",
    }
}

/// Everything wrong with the spec, each with its field, before anything is sent.
pub fn validate_spec(spec: &CustomerSpec) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: String, message: &str| {
        problems.push(SpecProblem {
            field,
            message: message.to_owned(),
        })
    };
    if !valid_customer_id(&spec.customer_id) {
        problem(
            "customer_id".into(),
            "must be 1-64 characters of letters, digits, '-', '_' or '.'",
        );
    }
    if spec.organisation.name.trim().is_empty() {
        problem("organisation.name".into(), "must not be empty");
    }
    let mut emails = std::collections::HashSet::new();
    for (i, m) in spec.memberships.iter().enumerate() {
        if !m.email.contains('@') || m.email.trim() != m.email {
            problem(
                format!("memberships[{i}].email"),
                "must be an email address",
            );
        } else if !emails.insert(m.email.to_lowercase()) {
            problem(format!("memberships[{i}].email"), "appears twice");
        }
        if m.first_name.trim().is_empty() {
            problem(format!("memberships[{i}].first_name"), "must not be empty");
        }
        if m.last_name.trim().is_empty() {
            problem(format!("memberships[{i}].last_name"), "must not be empty");
        }
    }
    if spec.merchants.is_empty() {
        problem("merchants".into(), "at least one merchant is required");
    }
    let mut external_ids = std::collections::HashSet::new();
    for (i, m) in spec.merchants.iter().enumerate() {
        if m.name.trim().is_empty() {
            problem(format!("merchants[{i}].name"), "must not be empty");
        }
        if m.external_id.trim().is_empty() {
            problem(format!("merchants[{i}].external_id"), "must not be empty");
        } else if !external_ids.insert(m.external_id.as_str()) {
            problem(format!("merchants[{i}].external_id"), "appears twice");
        }
    }
    if let Some(integration) = &spec.integration {
        if integration.name.trim().is_empty() {
            problem("integration.name".into(), "must not be empty");
        }
    }
    for (i, e) in spec.enrolments.iter().enumerate() {
        let at = format!("enrolments[{i}]");
        if let Some(names) = &e.merchants {
            if names.is_empty() {
                problem(
                    format!("{at}.merchants"),
                    "must name at least one merchant or be left out",
                );
            }
            let mut seen = std::collections::HashSet::new();
            for (j, n) in names.iter().enumerate() {
                if !external_ids.contains(n.as_str()) {
                    problem(
                        format!("{at}.merchants[{j}]"),
                        "is not the external_id of a merchant in this spec",
                    );
                } else if !seen.insert(n) {
                    problem(format!("{at}.merchants[{j}]"), "appears twice");
                }
            }
        }
        for p in enrolment_problems(e) {
            problem(format!("{at}.{}", p.field), &p.message);
        }
    }
    if let Some(r) = &spec.rdr_ruleset {
        if !spec
            .enrolments
            .iter()
            .any(|e| e.enrolment_type == "VERIFI_RDR")
        {
            problem(
                "rdr_ruleset".into(),
                "needs a VERIFI_RDR enrolment in this spec to attach to",
            );
        }
        for p in ruleset_problems(r) {
            problem(format!("rdr_ruleset.{}", p.field), &p.message);
        }
    }
    if let Some(policy) = &spec.decision_policy {
        if let Err(invalid) = crate::domain::alert_policy::AlertPolicy::from_json(policy) {
            for p in invalid.0 {
                let field = if p.field == "decision_policy" {
                    p.field
                } else {
                    format!("decision_policy.{}", p.field)
                };
                problem(field, &p.message);
            }
        }
    }
    problems
}

fn valid_customer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn sp(field: &str, message: &str) -> SpecProblem {
    SpecProblem {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// The enrolment rules from the guides: Ethoca is descriptor based (STARTS_WITH/EXACT_MATCH),
/// Verifi RDR needs `bin` and `caid` together or at least one ARN, and each type carries only
/// its own block.
fn enrolment_problems(e: &EnrolmentSpec) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    match e.enrolment_type.as_str() {
        "ETHOCA_ALERT" => {
            if e.verifi_rdr.is_some() {
                out.push(sp("verifi_rdr", "is only for VERIFI_RDR enrolments"));
            }
            let descriptors = e
                .ethoca_alert
                .as_ref()
                .and_then(|v| v.get("descriptors"))
                .and_then(|d| d.as_array());
            match descriptors {
                None => out.push(sp(
                    "ethoca_alert.descriptors",
                    "an Ethoca enrolment needs at least one descriptor",
                )),
                Some(list) if list.is_empty() => out.push(sp(
                    "ethoca_alert.descriptors",
                    "an Ethoca enrolment needs at least one descriptor",
                )),
                Some(list) => {
                    for (i, d) in list.iter().enumerate() {
                        let text = d.get("descriptor").and_then(|v| v.as_str()).unwrap_or("");
                        if text.trim().is_empty() {
                            out.push(sp(
                                &format!("ethoca_alert.descriptors[{i}].descriptor"),
                                "must not be empty",
                            ));
                        }
                        let mt = d.get("match_type").and_then(|v| v.as_str());
                        if !matches!(mt, Some("STARTS_WITH") | Some("EXACT_MATCH")) {
                            out.push(sp(
                                &format!("ethoca_alert.descriptors[{i}].match_type"),
                                "must be STARTS_WITH or EXACT_MATCH",
                            ));
                        }
                    }
                }
            }
        }
        "VERIFI_RDR" => {
            if e.ethoca_alert.is_some() {
                out.push(sp("ethoca_alert", "is only for ETHOCA_ALERT enrolments"));
            }
            let rdr = e.verifi_rdr.as_ref();
            let s = |k: &str| {
                rdr.and_then(|v| v.get(k))
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.trim().is_empty())
            };
            let arns = rdr
                .and_then(|v| v.get("arns"))
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .unwrap_or(0);
            match (s("bin"), s("caid")) {
                (Some(bin), Some(_)) => {
                    if !(bin.len() >= 6
                        && bin.len() <= 8
                        && bin.chars().all(|c| c.is_ascii_digit()))
                    {
                        out.push(sp("verifi_rdr.bin", "must be 6 to 8 digits"));
                    }
                }
                (Some(_), None) => {
                    out.push(sp("verifi_rdr.caid", "bin and caid must be given together"))
                }
                (None, Some(_)) => {
                    out.push(sp("verifi_rdr.bin", "bin and caid must be given together"))
                }
                (None, None) if arns == 0 => out.push(sp(
                    "verifi_rdr",
                    "give either bin and caid, or at least one ARN in arns",
                )),
                (None, None) => {}
            }
        }
        _ => out.push(sp("type", "must be ETHOCA_ALERT or VERIFI_RDR")),
    }
    out
}

/// RDR ruleset rules from the guide: outcome REFUND or ACCEPT_DISPUTE (REFUND_AND_CANCEL is
/// published as REFUND; CANCEL is not for RDR), AND/OR, AMOUNT and DESCRIPTOR rules, one of each
/// type at most, amounts in USD.
fn ruleset_problems(r: &RulesetSpec) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    if !matches!(
        r.outcome.as_str(),
        "REFUND" | "ACCEPT_DISPUTE" | "REFUND_AND_CANCEL"
    ) {
        out.push(sp(
            "outcome",
            "must be REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL for Verifi RDR",
        ));
    }
    if !matches!(r.join_operator.as_str(), "AND" | "OR") {
        out.push(sp("join_operator", "must be AND or OR"));
    }
    if r.rules.is_empty() {
        out.push(sp("rules", "a ruleset needs at least one rule"));
    }
    let mut types = std::collections::HashSet::new();
    for (i, rule) in r.rules.iter().enumerate() {
        let t = rule.get("type").and_then(|v| v.as_str()).unwrap_or("");
        match t {
            "AMOUNT" => {
                let p = rule.get("parameters");
                let cur = p
                    .and_then(|p| p.get("currency_code"))
                    .and_then(|v| v.as_str());
                if cur != Some("USD") {
                    out.push(sp(
                        &format!("rules[{i}].parameters.currency_code"),
                        "must be USD",
                    ));
                }
                if p.and_then(|p| p.get("amount_in_cents"))
                    .and_then(|v| v.as_u64())
                    .is_none()
                {
                    out.push(sp(
                        &format!("rules[{i}].parameters.amount_in_cents"),
                        "must be a non-negative whole number of cents",
                    ));
                }
            }
            "DESCRIPTOR" => {
                let ok = rule
                    .get("parameters")
                    .and_then(|p| p.get("descriptors"))
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| !a.is_empty());
                if !ok {
                    out.push(sp(
                        &format!("rules[{i}].parameters.descriptors"),
                        "needs at least one descriptor",
                    ));
                }
            }
            _ => out.push(sp(
                &format!("rules[{i}].type"),
                "must be AMOUNT or DESCRIPTOR",
            )),
        }
        if !t.is_empty() && !types.insert(t) {
            out.push(sp(
                &format!("rules[{i}].type"),
                "only one rule of each type is allowed per ruleset",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::validate_spec;
    use crate::domain::onboarding::CustomerSpec;

    fn spec_with_rdr_outcome(outcome: &str) -> CustomerSpec {
        serde_json::from_value(serde_json::json!({
            "customer_id": "acme",
            "organisation": { "name": "Acme Fitness" },
            "merchants": [{ "name": "Acme Store", "external_id": "mid_1" }],
            "enrolments": [
                { "type": "VERIFI_RDR", "verifi_rdr": { "bin": "411111", "caid": "CAID1" } }
            ],
            "rdr_ruleset": {
                "outcome": outcome,
                "join_operator": "OR",
                "rules": [{ "type": "AMOUNT", "parameters": {
                    "operator": "LESS_THAN", "currency_code": "USD", "amount_in_cents": 5000 } }]
            }
        }))
        .unwrap()
    }

    /// The Orders guide: REFUND_AND_CANCEL is accepted for RDR and published to Verifi as
    /// REFUND; CANCEL alone is not an RDR outcome.
    #[test]
    fn an_rdr_ruleset_may_refund_and_cancel_but_not_only_cancel() {
        for outcome in ["REFUND", "ACCEPT_DISPUTE", "REFUND_AND_CANCEL"] {
            let problems = validate_spec(&spec_with_rdr_outcome(outcome));
            assert!(problems.is_empty(), "{outcome}: {problems:?}");
        }
        let problems = validate_spec(&spec_with_rdr_outcome("CANCEL"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "rdr_ruleset.outcome");
    }
}
