//! `POST /v1/rulesets/` and rule patches: one rule per type; for Verifi RDR the Orders guide's
//! limits (outcome REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL, published as REFUND; AMOUNT
//! rules in USD).

use super::enrolments::check_match_type;
use super::{
    currency, is_iso_4217, non_negative, path, Collector, ValidationErrors, INVALID_CURRENCY,
    INVALID_VALUE, MISSING_FIELD, TOO_MANY,
};
use crate::models::{CreateRuleset, PatchRule, Rule, RuleParameters, RuleType, RulesetOutcome};

/// A ruleset for any enrolment type: enrolments given, rules well formed, at most one rule of
/// each type. `rdr` adds the Verifi RDR limits: outcome REFUND, ACCEPT_DISPUTE or
/// REFUND_AND_CANCEL, AMOUNT rules in USD. A ruleset with no rule is refused here although the
/// API may take it (the docs are silent; what it would match is unknown), so we never send one.
pub fn validate_create_ruleset(ruleset: &CreateRuleset, rdr: bool) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if ruleset.organisation_id.trim().is_empty() {
        c.missing("organisation_id".into());
    }
    if ruleset.enrolment_ids.is_empty() {
        c.push(
            "enrolment_ids".into(),
            MISSING_FIELD,
            "at least one enrolment id is required",
        );
    }
    if rdr {
        check_rdr_outcome(&mut c, &ruleset.outcome);
    } else if !ruleset.outcome.is_known() {
        c.push(
            "outcome".into(),
            INVALID_VALUE,
            format!(
                "{} is not one of REFUND, CANCEL, REFUND_AND_CANCEL, ACCEPT_DISPUTE",
                ruleset.outcome
            ),
        );
    }
    if !ruleset.join_operator.is_known() {
        c.push(
            "join_operator".into(),
            INVALID_VALUE,
            format!("{} is not one of AND, OR", ruleset.join_operator),
        );
    }
    if ruleset.rules.is_empty() {
        c.push(
            "rules".into(),
            MISSING_FIELD,
            "at least one rule is required",
        );
    }
    for kind in [RuleType::Amount, RuleType::Descriptor] {
        let count = ruleset.rules.iter().filter(|r| r.rule_type == kind).count();
        if count > 1 {
            c.push(
                "rules".into(),
                TOO_MANY,
                format!("{count} {kind} rules; at most one per ruleset"),
            );
        }
    }
    for (i, rule) in ruleset.rules.iter().enumerate() {
        check_rule(
            &mut c,
            &format!("rules[{i}]"),
            &rule.rule_type,
            &rule.parameters,
            rdr,
        );
    }
    c.finish()
}

/// One rule (paths `type`, `parameters.*`).
pub fn validate_rule(rule: &Rule, rdr: bool) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_rule(&mut c, "", &rule.rule_type, &rule.parameters, rdr);
    c.finish()
}

/// `PATCH /v1/rulesets/{id}/rules/{rule_id}`: `current` is the rule's type today (a patch
/// that changes only the parameters keeps it).
pub fn validate_patch_rule(
    patch: &PatchRule,
    current: &RuleType,
    rdr: bool,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if patch.rule_type.is_none() && patch.parameters.is_none() {
        c.push(String::new(), MISSING_FIELD, "give type and/or parameters");
    }
    if let Some(parameters) = &patch.parameters {
        check_rule(
            &mut c,
            "",
            patch.rule_type.as_ref().unwrap_or(current),
            parameters,
            rdr,
        );
    }
    c.finish()
}

/// The Orders guide's RDR outcomes: REFUND or ACCEPT_DISPUTE, and REFUND_AND_CANCEL, which is
/// published to Verifi as REFUND (the cancellation is ours to do). Never CANCEL.
fn check_rdr_outcome(c: &mut Collector, outcome: &RulesetOutcome) {
    if !matches!(
        outcome,
        RulesetOutcome::Refund | RulesetOutcome::AcceptDispute | RulesetOutcome::RefundAndCancel
    ) {
        c.push(
            "outcome".into(),
            INVALID_VALUE,
            format!(
                "{outcome} is not allowed for Verifi RDR: use REFUND, ACCEPT_DISPUTE or \
                 REFUND_AND_CANCEL (published to Verifi as REFUND)"
            ),
        );
    }
}

fn check_rule(
    c: &mut Collector,
    prefix: &str,
    rule_type: &RuleType,
    p: &RuleParameters,
    rdr: bool,
) {
    let params = path(prefix, "parameters");
    match rule_type {
        RuleType::Amount => {
            match &p.operator {
                None => c.missing(path(&params, "operator")),
                Some(op) if !op.is_known() => c.push(
                    path(&params, "operator"),
                    INVALID_VALUE,
                    format!("{op} is not a known operator"),
                ),
                Some(_) => {}
            }
            non_negative(c, path(&params, "amount_in_cents"), p.amount_in_cents);
            currency(c, path(&params, "currency_code"), &p.currency_code);
            if rdr {
                if let Some(code) = p.currency_code.as_deref().filter(|c| is_iso_4217(c)) {
                    if code != "USD" {
                        c.push(
                            path(&params, "currency_code"),
                            INVALID_CURRENCY,
                            format!("RDR amount rules are in USD, not {code}"),
                        );
                    }
                }
            }
        }
        RuleType::Descriptor => match &p.descriptors {
            None => c.missing(path(&params, "descriptors")),
            Some(list) if list.is_empty() => c.push(
                path(&params, "descriptors"),
                MISSING_FIELD,
                "at least one descriptor is required",
            ),
            Some(list) => {
                for (i, d) in list.iter().enumerate() {
                    let at = format!("{params}.descriptors[{i}]");
                    if d.value.trim().is_empty() {
                        c.missing(path(&at, "value"));
                    }
                    check_match_type(c, path(&at, "match_type"), &d.match_type);
                }
            }
        },
        other => c.push(
            path(prefix, "type"),
            INVALID_VALUE,
            format!("{other} is not one of AMOUNT, DESCRIPTOR"),
        ),
    }
}
