//! `cbs policy test`: a policy applied, writing nothing, to an organisation's stored alerts,
//! next to what was decided. Each Ethoca alert is matched and its evidence read as the
//! processor would now (read-only), then the policy evaluated. [`DryRunSummary`] counts the
//! alerts where the policy agrees with what was decided, where it would differ, and where
//! nothing was decided to compare with, overall and per rule.

use super::evidence::evidence_read_only;
use crate::domain::alert_policy::{evaluate, AlertPolicy, PolicyDecision};
use crate::ports::alert_store::AlertStore;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::alert::AlertRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunLine {
    pub alert_id: String,
    pub received_at: Option<String>,
    pub amount: String,
    pub matched: String,
    /// What the policy would decide: an action, or PERSON.
    pub would: String,
    pub rule: String,
    /// The conditions that held and the match and evidence, in words.
    pub evidence: Vec<String>,
    /// What was decided: the final decision's action (or result), PERSON while a person's, or
    /// `-` when nothing was decided (or the alert was never actionable).
    pub decided: String,
    /// The rule recorded with the stored match, when the policy of the time looked at it.
    pub decided_rule: Option<String>,
    pub same: bool,
}

impl DryRunLine {
    /// Whether anything was decided to compare with.
    pub fn compared(&self) -> bool {
        self.decided != "-"
    }
}

/// How the dry run compares with what was decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub alerts: usize,
    /// The policy would decide what was decided.
    pub agree: usize,
    /// Something was decided, and the policy would decide otherwise.
    pub would_differ: usize,
    /// Nothing was decided yet (or the alert was never actionable): nothing to compare.
    pub not_decided: usize,
}

impl Tally {
    fn count(&mut self, line: &DryRunLine) {
        self.alerts += 1;
        if !line.compared() {
            self.not_decided += 1;
        } else if line.same {
            self.agree += 1;
        } else {
            self.would_differ += 1;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRunSummary {
    #[serde(flatten)]
    pub total: Tally,
    /// Per rule of the tested policy that would decide.
    pub by_rule: BTreeMap<String, Tally>,
    /// Per pair "decided → would" where they differ, e.g. `PERSON → REFUND`.
    pub changes: BTreeMap<String, usize>,
}

/// Counts the lines (pure).
pub fn summarise(lines: &[DryRunLine]) -> DryRunSummary {
    let mut s = DryRunSummary::default();
    for line in lines {
        s.total.count(line);
        s.by_rule.entry(line.rule.clone()).or_default().count(line);
        if line.compared() && !line.same {
            *s.changes
                .entry(format!("{} → {}", line.decided, line.would))
                .or_default() += 1;
        }
    }
    s
}

/// Whether the organisation is one we know: an onboarded customer's, or one with stored alerts
/// (two small reads). The CLI refuses an unknown one instead of printing an empty report.
pub async fn organisation_known(
    customers: &dyn crate::ports::customer_store::CustomerStore,
    alerts: &dyn AlertStore,
    organisation_id: &str,
) -> Result<bool, StoreError> {
    Ok(
        !customers.by_organisation(organisation_id).await?.is_empty()
            || !alerts.by_organisation(organisation_id, 1).await?.is_empty(),
    )
}

/// What was decided for a stored alert, in the dry run's words.
pub fn decided(record: &AlertRecord) -> String {
    if let Some(d) = record.final_decision() {
        return match (&d.action, d.result) {
            (Some(a), crate::records::alert::DecisionResult::Applied) => a.to_string(),
            (_, result) => format!("{result:?}"),
        };
    }
    if record.was_left_for_person() {
        return "PERSON".into();
    }
    "-".into()
}

/// Dry run over up to `limit` of the organisation's alerts received at or after `since`.
pub async fn policy_dry_run(
    alerts: &dyn AlertStore,
    index: &dyn TransactionIndex,
    policy: &AlertPolicy,
    organisation_id: &str,
    since: Option<DateTime<Utc>>,
    limit: i32,
    now: DateTime<Utc>,
) -> Result<Vec<DryRunLine>, StoreError> {
    policy_dry_run_with_progress(
        alerts,
        index,
        policy,
        organisation_id,
        since,
        limit,
        now,
        &mut |_, _| {},
    )
    .await
}

/// [`policy_dry_run`], calling `progress(done, of)` after each alert evaluated (`of`: the
/// alerts read, before those not in scope are left out).
#[allow(clippy::too_many_arguments)]
pub async fn policy_dry_run_with_progress(
    alerts: &dyn AlertStore,
    index: &dyn TransactionIndex,
    policy: &AlertPolicy,
    organisation_id: &str,
    since: Option<DateTime<Utc>>,
    limit: i32,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<DryRunLine>, StoreError> {
    let mut lines = Vec::new();
    let records = alerts.by_organisation(organisation_id, limit).await?;
    let of = records.len();
    for (i, record) in records.into_iter().enumerate() {
        let a = &record.alert;
        if record.informational
            || a.enrolment_type != crate::models::enrolment::EnrolmentType::EthocaAlert
        {
            continue;
        }
        if since.is_some_and(|s| a.alert_received_at.is_none_or(|r| r < s)) {
            continue;
        }
        let evidence = evidence_read_only(index, a, now).await?;
        let evaluation = evaluate(a, policy, &evidence);
        let would = match &evaluation.decision {
            PolicyDecision::Act { action, .. } => action.to_string(),
            PolicyDecision::LeaveToPerson { .. } => "PERSON".into(),
        };
        let matched = evidence
            .matching
            .as_ref()
            .map(|m| match m.matched.method {
                Some(method) => format!("{} {method:?}", m.matched.status.as_str()),
                None => m.matched.status.as_str().to_string(),
            })
            .unwrap_or_else(|| "-".into());
        let was = decided(&record);
        lines.push(DryRunLine {
            alert_id: record.alert_id.clone(),
            received_at: a.alert_received_at.map(crate::ports::order_outbox::iso),
            amount: format!(
                "{} {}",
                a.transaction_amount_in_cents
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "?".into()),
                a.transaction_currency_code.as_deref().unwrap_or("")
            ),
            matched,
            same: was == would,
            would,
            rule: evaluation.rule,
            evidence: evaluation.evidence,
            decided: was,
            decided_rule: record.alert_match.as_ref().and_then(|m| m.rule.clone()),
        });
        progress(i + 1, of);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(rule: &str, would: &str, decided: &str) -> DryRunLine {
        DryRunLine {
            alert_id: format!("{rule}-{would}-{decided}"),
            received_at: None,
            amount: "100 USD".into(),
            matched: "MATCHED Arn".into(),
            would: would.into(),
            rule: rule.into(),
            evidence: Vec::new(),
            decided: decided.into(),
            decided_rule: None,
            same: would == decided,
        }
    }

    #[test]
    fn the_summary_counts_agreement_differences_and_undecided_alerts_per_rule() {
        let lines = vec![
            line("p/refund_when_partner_refunded", "REFUND", "REFUND"),
            line("p/refund_when_partner_refunded", "REFUND", "PERSON"),
            line("p/small", "ACCEPT_DISPUTE", "-"),
            line("p/small", "ACCEPT_DISPUTE", "ACCEPT_DISPUTE"),
            line("p/no_rule_matched", "PERSON", "REFUND"),
        ];
        let s = summarise(&lines);
        assert_eq!(
            s.total,
            Tally {
                alerts: 5,
                agree: 2,
                would_differ: 2,
                not_decided: 1
            }
        );
        assert_eq!(
            s.by_rule["p/refund_when_partner_refunded"],
            Tally {
                alerts: 2,
                agree: 1,
                would_differ: 1,
                not_decided: 0
            }
        );
        assert_eq!(
            s.by_rule["p/small"],
            Tally {
                alerts: 2,
                agree: 1,
                would_differ: 0,
                not_decided: 1
            }
        );
        assert_eq!(s.changes["PERSON → REFUND"], 1);
        assert_eq!(s.changes["REFUND → PERSON"], 1);
        assert_eq!(s.changes.len(), 2);
    }
}
