//! The rule and evidence an automatic decision recorded, read back from its audit-trail
//! reason (`alert_policy::evaluate` writes `<policy>/<rule>: <why> [<evidence>; ...]`, the late
//! data path prefixes `late data (was UNMATCHED): `), for the ops page's decision list.

/// The `<policy>/<rule>` named in a decision's reason, and the evidence words in its trailing
/// brackets; `(None, [])` for reasons of people and of the sweep that name no rule.
pub fn rule_and_evidence(reason: &str) -> (Option<String>, Vec<String>) {
    let (head, evidence) = match (reason.rfind(" ["), reason.ends_with(']')) {
        (Some(i), true) => (
            &reason[..i],
            reason[i + 2..reason.len() - 1]
                .split("; ")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => (reason, Vec::new()),
    };
    let rule = head
        .split(": ")
        .collect::<Vec<_>>()
        .split_last()
        .and_then(|(_, before)| {
            before.iter().find_map(|segment| {
                let word = segment.rsplit(' ').next()?;
                let (policy, rule) = word.split_once('/')?;
                (!policy.is_empty() && !rule.is_empty() && !rule.contains('/'))
                    .then(|| word.to_string())
            })
        });
    match rule {
        Some(rule) => (Some(rule), evidence),
        None => (None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::rule_and_evidence;

    #[test]
    fn a_policy_reason_gives_its_rule_and_evidence() {
        let (rule, evidence) = rule_and_evidence(
            "acme/refund_when_partner_refunded: the partner's records show the transaction refunded [matched o-1 / txn-o-1 by Arn (98%); fully refunded (4900 cents)]",
        );
        assert_eq!(rule.as_deref(), Some("acme/refund_when_partner_refunded"));
        assert_eq!(
            evidence,
            vec![
                "matched o-1 / txn-o-1 by Arn (98%)",
                "fully refunded (4900 cents)"
            ]
        );
    }

    #[test]
    fn late_data_keeps_the_rule_and_people_name_none() {
        let (rule, evidence) = rule_and_evidence(
            "late data (was UNMATCHED): p/small: amount 900 USD at most 1000 [unmatched (0 candidate(s))]",
        );
        assert_eq!(rule.as_deref(), Some("p/small"));
        assert_eq!(evidence, vec!["unmatched (0 candidate(s))"]);
        assert_eq!(
            rule_and_evidence("Customer confirmed the refund [ticket 12]"),
            (None, Vec::new())
        );
        assert_eq!(
            rule_and_evidence("p/no_amount: the alert has no amount; no amount rule applies"),
            (Some("p/no_amount".into()), Vec::new())
        );
    }
}
