//! Alert events: store the re-fetched alert, then let the decision policy act or leave it to
//! a person.

use super::refund_first::RefundPath;
use super::{Applied, ApplyError, EventProcessor};
use crate::domain::alert_policy::PolicyDecision;
use crate::domain::alert_record::{append_decision, store_fetched_alert_notifying};
use crate::domain::decision::{
    apply_action_on_view, ActionRequest, Decision, DecisionError, DecisionResult, DecisionSource,
};
use crate::domain::matching::record_match;
use crate::ports::alert_api::ApiCallError;
use crate::ports::event_log::iso;
use crate::ports::notifier::OpsNotification;

impl EventProcessor {
    /// `until`: when this invocation ends (a refund hook's attempts stop before it).
    pub(super) async fn apply_alert(
        &self,
        alert_id: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Applied, ApplyError> {
        let fetched_at = self.clock.now();
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
        let (record, stale) = store_fetched_alert_notifying(
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
        // The match on the record first (the same path `cbs rebuild` runs).
        let evaluation =
            record_match(&*self.alerts, &*self.partner_records, &policy, alert).await?;
        match evaluation.decision {
            PolicyDecision::Act { action, reason } => {
                // The alert was fetched moments ago (above): no second GET unless an earlier
                // holder's claim is found, or the stored record was newer than that view.
                let fresh_view = (!stale).then_some(&fetched);
                // Refund first in the partner's billing system when the policy names a hook.
                let (action, reason) = match self
                    .refund_first_if_needed(
                        &policy, alert, action, reason, fresh_view, fetched_at, until,
                    )
                    .await?
                {
                    RefundPath::Decided(applied) => return Ok(applied),
                    RefundPath::SendAsDecided { action, reason } => (action, reason),
                    RefundPath::LeaveToPerson { reason } => {
                        return self.leave_to_person(&policy, alert, reason).await
                    }
                };
                let report = match apply_action_on_view(
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
                    fresh_view.map(|view| (view, fetched_at)),
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
                self.leave_to_person(&policy, alert, reason).await
            }
        }
    }

    async fn leave_to_person(
        &self,
        policy: &crate::domain::alert_policy::AlertPolicy,
        alert: &crate::models::alert::Alert,
        reason: String,
    ) -> Result<Applied, ApplyError> {
        let alert_id = alert.id.as_str();
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
