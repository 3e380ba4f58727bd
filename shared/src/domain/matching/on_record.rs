//! The match on the alert record: process-events runs it before the policy acts, and
//! `cbs rebuild` runs it again for every alert it restores from the archive, so a rebuilt
//! record carries the same `alert_match` as the one it replaces (one code path, no copy).

use crate::domain::alert_policy::{evaluate, AlertPolicy, Evaluation};
use crate::domain::alert_record::update_alert_record;
use crate::models::alert::Alert;
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::PartnerRecords;
use crate::ports::store_error::StoreError;
use crate::records::matching::MatchStatus;

/// Matches `alert` (the partner's records: the match and its evidence), lets `policy` evaluate
/// it, and stores the match, its evidence and the deciding rule on the alert's record (written
/// only when it changed). An unmatched or ambiguous alert is kept where an order taken in
/// later finds it (late data). Returns the evaluation, for the caller to act on or not.
pub async fn record_match(
    alerts: &dyn AlertStore,
    partner_records: &dyn PartnerRecords,
    policy: &AlertPolicy,
    alert: &Alert,
) -> Result<Evaluation, StoreError> {
    let evidence = partner_records.evidence_for(alert).await?;
    let evaluation = evaluate(alert, policy, &evidence);
    if let Some(mut matching) = evidence.matching.clone() {
        // The match, its evidence and the deciding rule, on the record before anything is
        // sent: the audit trail shows what the decision rested on even if the action fails.
        matching.rule = Some(evaluation.rule.clone());
        update_alert_record(alerts, &alert.id, |current| {
            let mut record = current?;
            if record.alert_match.as_ref() == Some(&matching) {
                return None;
            }
            record.alert_match = Some(matching.clone());
            record.revision += 1;
            Some(record)
        })
        .await?;
        if matching.matched.status != MatchStatus::Matched {
            partner_records.left_waiting(alert, &matching).await?;
        }
    }
    Ok(evaluation)
}
