//! The alert path's refund first (`domain::refund_hook`): when the policy decides a refund of a
//! matched transaction the partner has not refunded and the organisation names a refund hook,
//! the billing system is asked before anything is sent; a pending answer completes the event
//! (the deadline sweep asks again), so one partner's billing outage never holds back its other
//! events in the FIFO queue.

use super::{Applied, ApplyError, EventProcessor};
use crate::domain::alert_policy::AlertPolicy;
use crate::domain::decision::{DecisionError, DecisionResult, DecisionSource};
use crate::domain::refund_hook::{
    refund_need, Asker, RefundFirstError, RefundFirstOutcome, RefundNeed,
};
use crate::models::alert::{Alert, AlertAction};
use chrono::{DateTime, Utc};

/// Time kept back from the invocation's end when the hook is asked (writes follow the answer).
const HOOK_STOP_MARGIN: chrono::Duration = chrono::Duration::seconds(5);

pub(super) enum RefundPath {
    /// Handled here (actioned after a confirmation, refused, pending).
    Decided(Applied),
    /// No hook needed: the action path as before.
    SendAsDecided { action: AlertAction, reason: String },
    /// A hook is configured and nothing was matched to refund: a person decides.
    LeaveToPerson { reason: String },
}

impl EventProcessor {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refund_first_if_needed(
        &self,
        policy: &AlertPolicy,
        alert: &Alert,
        action: AlertAction,
        reason: String,
        fresh_view: Option<&Alert>,
        fetched_at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<RefundPath, ApplyError> {
        let Some(refund_first) = &self.refund_first else {
            return Ok(RefundPath::SendAsDecided { action, reason });
        };
        if policy.refund_hook.is_none()
            || !matches!(action, AlertAction::Refund | AlertAction::RefundAndCancel)
        {
            return Ok(RefundPath::SendAsDecided { action, reason });
        }
        // The match `record_match` just stored (one read, only on this path).
        let matching = self
            .alerts
            .get(&alert.id)
            .await?
            .and_then(|r| r.alert_match);
        let (config, request) = match refund_need(alert, policy, matching.as_ref(), &action) {
            RefundNeed::SendAsDecided => return Ok(RefundPath::SendAsDecided { action, reason }),
            RefundNeed::NoTransaction { reason: why } => {
                return Ok(RefundPath::LeaveToPerson {
                    reason: format!("{reason}; {why}"),
                })
            }
            RefundNeed::AskHook { config, request } => (config, request),
        };
        let asker = Asker {
            source: DecisionSource::AutoPolicy,
            actor: policy.name.clone(),
            reason,
            note: policy.note.clone(),
        };
        let outcome = refund_first
            .refund_then_act(
                &config,
                &request,
                &asker,
                fresh_view.map(|v| (v, fetched_at)),
                until - HOOK_STOP_MARGIN,
            )
            .await;
        let applied = match outcome {
            Ok(RefundFirstOutcome::Actioned(report)) => match report.result {
                DecisionResult::Applied => Applied {
                    outcome: format!(
                        "alert_actioned:{}",
                        report
                            .record
                            .as_ref()
                            .and_then(|r| r.decisions.last())
                            .and_then(|d| d.action.clone())
                            .unwrap_or(action)
                    ),
                    actions_taken: 1,
                },
                DecisionResult::Rejected => Applied::new("alert_action_rejected"),
                DecisionResult::RefusedStillWaiting => Applied::new("alert_awaiting_person"),
                _ => Applied::new("alert_stored"),
            },
            Ok(RefundFirstOutcome::Refused { .. }) => Applied::new("alert_refund_refused"),
            Ok(RefundFirstOutcome::Pending { .. }) => Applied::new("alert_refund_pending"),
            Err(RefundFirstError::Decision(DecisionError::AlreadyDecided { .. })) => {
                Applied::new("alert_already_decided")
            }
            Err(e) => return Err(e.into()),
        };
        Ok(RefundPath::Decided(applied))
    }
}
