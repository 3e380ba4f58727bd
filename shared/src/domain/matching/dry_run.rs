//! `cbs policy test`: a policy applied, writing nothing, to an organisation's stored alerts,
//! next to what was decided. Each Ethoca alert is matched and its evidence read as the
//! processor would now (read-only), then the policy evaluated.

use super::evidence::evidence_read_only;
use crate::domain::alert_policy::{evaluate, AlertPolicy, PolicyDecision};
use crate::ports::alert_store::AlertStore;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::alert::AlertRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunLine {
    pub alert_id: String,
    pub received_at: Option<String>,
    pub amount: String,
    pub matched: String,
    /// What the policy would decide: an action, or PERSON.
    pub would: String,
    pub rule: String,
    /// What was decided: the final decision's action (or result), PERSON while a person's, or
    /// `-` when nothing was decided (or the alert was never actionable).
    pub decided: String,
    pub same: bool,
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
    let mut lines = Vec::new();
    for record in alerts.by_organisation(organisation_id, limit).await? {
        let a = &record.alert;
        if record.informational
            || a.enrolment_type != crate::models::enrolment::EnrolmentType::EthocaAlert
        {
            continue;
        }
        if since.is_some_and(|s| a.alert_received_at.is_some_and(|r| r < s)) {
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
            decided: was,
        });
    }
    Ok(lines)
}
