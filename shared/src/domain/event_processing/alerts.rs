//! Alert events: store the re-fetched alert, then let the decision policy act or leave it to
//! a person.

use super::{Applied, ApplyError, EventProcessor};
use crate::domain::alert_policy::{evaluate, PolicyDecision};
use crate::domain::alert_record::{
    append_decision, store_fetched_alert_notifying, update_alert_record,
};
use crate::domain::decision::{
    apply_action, ActionRequest, Decision, DecisionError, DecisionResult, DecisionSource,
};
use crate::ports::alert_api::ApiCallError;
use crate::ports::event_log::iso;
use crate::ports::notifier::OpsNotification;

impl EventProcessor {
    pub(super) async fn apply_alert(&self, alert_id: &str) -> Result<Applied, ApplyError> {
        let fetched = match self.alert_api.get_alert(alert_id).await {
            Ok(alert) => alert,
            Err(ApiCallError::NotFound { .. }) => {
                return Err(ApplyError::NotFound {
                    what: "alert",
                    id: alert_id.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let (record, _stale) = store_fetched_alert_notifying(
            &*self.alerts,
            &*self.notifier,
            &fetched,
            self.clock.now(),
        )
        .await?;
        if record.informational {
            return Ok(Applied::new("alert_informational"));
        }
        if !record.alert.is_actionable() {
            return Ok(Applied::new("alert_stored"));
        }
        if record.has_final_decision() {
            return Ok(Applied::new("alert_already_decided"));
        }
        if record.was_left_for_person() {
            return Ok(Applied::new("alert_awaiting_person"));
        }

        let alert = &record.alert;
        let policy = self.policies.policy_for(&alert.organisation_id).await?;
        let evidence = self.partner_records.evidence_for(alert).await?;
        let evaluation = evaluate(alert, &policy, &evidence);
        if let Some(mut matching) = evidence.matching.clone() {
            // The match, its evidence and the deciding rule, on the record before anything is
            // sent: the audit trail shows what the decision rested on even if the action fails.
            matching.rule = Some(evaluation.rule.clone());
            update_alert_record(&*self.alerts, alert_id, |current| {
                let mut record = current?;
                if record.alert_match.as_ref() == Some(&matching) {
                    return None;
                }
                record.alert_match = Some(matching.clone());
                record.revision += 1;
                Some(record)
            })
            .await?;
            // Unmatched or ambiguous: kept where an order taken in later finds it (late data).
            if matching.matched.status != crate::records::matching::MatchStatus::Matched {
                self.partner_records.left_waiting(alert, &matching).await?;
            }
        }
        match evaluation.decision {
            PolicyDecision::Act { action, reason } => {
                let report = match apply_action(
                    &*self.alert_api,
                    &*self.alerts,
                    &*self.notifier,
                    &*self.clock,
                    ActionRequest {
                        alert_id: alert_id.to_string(),
                        action: action.clone(),
                        note: policy.note.clone(),
                        source: DecisionSource::AutoPolicy,
                        actor: policy.name.clone(),
                        reason,
                    },
                )
                .await
                {
                    Ok(report) => report,
                    // An operator or the sweep decided first (their claim, their decision).
                    Err(DecisionError::AlreadyDecided { .. }) => {
                        return Ok(Applied::new("alert_already_decided"))
                    }
                    Err(e) => return Err(e.into()),
                };
                Ok(match report.result {
                    DecisionResult::Applied => Applied {
                        outcome: format!("alert_actioned:{action}"),
                        actions_taken: 1,
                    },
                    DecisionResult::Rejected => Applied::new("alert_action_rejected"),
                    DecisionResult::RefusedStillWaiting => Applied::new("alert_awaiting_person"),
                    _ => Applied::new("alert_stored"),
                })
            }
            PolicyDecision::LeaveToPerson { reason } => {
                self.notifier
                    .notify(&OpsNotification {
                        kind: "alert.awaiting_decision".into(),
                        subject: format!("Alert {alert_id} waits for a decision"),
                        organisation_id: Some(alert.organisation_id.clone()),
                        object_id: alert_id.to_string(),
                        status: Some(alert.status.to_string()),
                        note: alert
                            .action_required_deadline
                            .map(|d| format!("deadline {}", iso(d))),
                        at: iso(self.clock.now()),
                    })
                    .await?;
                let decision = Decision {
                    at: iso(self.clock.now()),
                    source: DecisionSource::AutoPolicy,
                    actor: policy.name.clone(),
                    action: None,
                    reason,
                    note: None,
                    result: DecisionResult::LeftForPerson,
                    detail: None,
                };
                append_decision(
                    &*self.alerts,
                    alert_id,
                    decision,
                    None,
                    None,
                    self.clock.now(),
                )
                .await?;
                Ok(Applied::new("alert_awaiting_person"))
            }
        }
    }
}
