//! Late data: an order taken in after its alert arrived. An unmatched or ambiguous alert left
//! waiting is kept under `waiting#<org>` with its lookups ([`keep_waiting`]); when orders enter
//! the outbox, `IndexedOutbox` checks the new transactions against those lookups in memory
//! ([`waiting_hits`], one read per organisation and intake batch), and an update of an order
//! finds the alerts matched to it under the order's partition. Either way the
//! [`Reevaluator`] matches the alert again and, if it still waits, lets the policy decide on the
//! new evidence through the one action path (`domain::decision::apply_action`).

use super::evidence::evidence_for_alert;
use super::matcher::wait_keys;
use crate::clock::Clock;
use crate::domain::alert_policy::{evaluate, PolicyDecision};
use crate::domain::alert_record::{append_decision, update_alert_record};
use crate::domain::decision::{
    apply_action, ActionRequest, Decision, DecisionError, DecisionResult, DecisionSource,
};
use crate::models::alert::Alert;
use crate::ports::alert_api::AlertApi;
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::PolicySource;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::order_outbox::iso;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::{LateMatchHandler, TransactionIndex};
use crate::records::matching::{IndexBody, IndexItem, MatchRecord, MatchStatus, WaitingAlert};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Waiting alerts read per organisation and intake batch.
pub const MAX_WAITING: usize = 1000;

pub fn waiting_partition(org: &str) -> String {
    format!("waiting#{org}")
}

fn waiting_entry(alert_id: &str) -> String {
    format!("alert#{alert_id}")
}

/// Keeps an unmatched or ambiguous alert where a later order finds it; a matched one is not
/// kept (and dropped if it was).
pub async fn keep_waiting(
    index: &dyn TransactionIndex,
    alert: &Alert,
    matching: &MatchRecord,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let partition = waiting_partition(&alert.organisation_id);
    if matching.matched.status == MatchStatus::Matched {
        return index.delete(&partition, &waiting_entry(&alert.id)).await;
    }
    index
        .put(&[IndexItem {
            lookup: partition,
            entry: waiting_entry(&alert.id),
            body: IndexBody::WaitingAlert {
                alert: WaitingAlert {
                    alert_id: alert.id.clone(),
                    lookups: wait_keys(alert),
                    since: iso(now),
                },
            },
        }])
        .await
}

/// The waiting alerts one of whose lookups a new entry answers (pure).
pub fn waiting_hits(waiting: &[WaitingAlert], new_items: &[IndexItem]) -> Vec<String> {
    waiting
        .iter()
        .filter(|w| {
            w.lookups
                .iter()
                .any(|k| new_items.iter().any(|item| k.answered_by(item)))
        })
        .map(|w| w.alert_id.clone())
        .collect()
}

/// The waiting alerts of `org` that `new_items` may match (one read).
pub async fn alerts_answered_by(
    index: &dyn TransactionIndex,
    org: &str,
    new_items: &[IndexItem],
) -> Result<Vec<String>, StoreError> {
    let waiting: Vec<WaitingAlert> = index
        .query(&waiting_partition(org), None, MAX_WAITING)
        .await?
        .into_iter()
        .filter_map(|item| match item.body {
            IndexBody::WaitingAlert { alert } => Some(alert),
            _ => None,
        })
        .collect();
    Ok(waiting_hits(&waiting, new_items))
}

/// What re-evaluating one alert came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rematch {
    /// Not waiting any more (decided, resolved, unknown): dropped from the waiting list.
    NoLongerWaiting,
    /// Same match and rule as before: nothing written.
    Unchanged,
    /// Acted on by the policy (the action path's result).
    Acted(DecisionResult),
    /// New match or evidence, still a person's: recorded and notified.
    LeftForPerson,
    /// A refund decided on the new data waits for the partner's billing system
    /// (`domain::refund_hook`: no answer yet, the sweep asks again).
    RefundPending,
}

/// Re-evaluates waiting alerts when late data arrives.
pub struct Reevaluator {
    pub alert_api: Arc<dyn AlertApi>,
    pub alerts: Arc<dyn AlertStore>,
    pub notifier: Arc<dyn Notifier>,
    pub policies: Arc<dyn PolicySource>,
    pub index: Arc<dyn TransactionIndex>,
    pub clock: Arc<dyn Clock>,
    /// Refund first when the policy names a refund hook; `None`: refunds sent as decided.
    pub refund_first: Option<Arc<crate::domain::refund_hook::RefundFirst>>,
}

/// How long a re-evaluation may wait for the refund hook (it runs inside an ops API request).
const REFUND_HOOK_BUDGET: chrono::Duration = chrono::Duration::seconds(20);

#[derive(Debug, thiserror::Error)]
pub enum RematchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error(transparent)]
    Notify(#[from] crate::ports::notifier::NotifyError),
}

impl Reevaluator {
    /// Matches the alert again and lets the policy decide if it still waits.
    pub async fn rematch_one(&self, alert_id: &str) -> Result<Rematch, RematchError> {
        let now = self.clock.now();
        let Some(record) = self.alerts.get(alert_id).await? else {
            return Ok(Rematch::NoLongerWaiting);
        };
        let alert = record.alert.clone();
        let partition = waiting_partition(&alert.organisation_id);
        if record.action_queue.is_none() || record.has_final_decision() {
            self.index
                .delete(&partition, &waiting_entry(alert_id))
                .await?;
            return Ok(Rematch::NoLongerWaiting);
        }
        let evidence = evidence_for_alert(&*self.index, &alert, now).await?;
        let policy = self.policies.policy_for(&alert.organisation_id).await?;
        let evaluation = evaluate(&alert, &policy, &evidence);
        let Some(mut matching) = evidence.matching.clone() else {
            return Ok(Rematch::Unchanged);
        };
        matching.rule = Some(evaluation.rule.clone());
        keep_waiting(&*self.index, &alert, &matching, now).await?;
        let before = record.alert_match.clone();
        let same = before.as_ref().is_some_and(|b| {
            b.matched.status == matching.matched.status
                && b.matched.transaction == matching.matched.transaction
                && b.evidence == matching.evidence
                && b.rule == matching.rule
        });
        if same {
            return Ok(Rematch::Unchanged);
        }
        update_alert_record(&*self.alerts, alert_id, |current| {
            let mut r = current?;
            r.alert_match = Some(matching.clone());
            r.revision += 1;
            Some(r)
        })
        .await?;
        let was = before
            .as_ref()
            .map(|b| b.matched.status.as_str())
            .unwrap_or("never matched");
        match evaluation.decision {
            PolicyDecision::Act { action, reason } => {
                if let Some(first) = &self.refund_first {
                    use crate::domain::refund_hook::{
                        refund_need, Asker, RefundFirstError, RefundFirstOutcome, RefundNeed,
                    };
                    match refund_need(&alert, &policy, Some(&matching), &action) {
                        RefundNeed::SendAsDecided => {}
                        RefundNeed::NoTransaction { .. } => return Ok(Rematch::LeftForPerson),
                        RefundNeed::AskHook { config, request } => {
                            let asker = Asker {
                                source: DecisionSource::AutoPolicy,
                                actor: policy.name.clone(),
                                reason: format!("late data (was {was}): {reason}"),
                                note: policy.note.clone(),
                            };
                            return match first
                                .refund_then_act(
                                    &config,
                                    &request,
                                    &asker,
                                    None,
                                    now + REFUND_HOOK_BUDGET,
                                )
                                .await
                            {
                                Ok(RefundFirstOutcome::Actioned(report)) => {
                                    Ok(Rematch::Acted(report.result))
                                }
                                Ok(RefundFirstOutcome::Refused { .. }) => {
                                    Ok(Rematch::LeftForPerson)
                                }
                                Ok(RefundFirstOutcome::Pending { .. }) => {
                                    Ok(Rematch::RefundPending)
                                }
                                Err(RefundFirstError::Decision(
                                    DecisionError::AlreadyDecided { .. },
                                )) => Ok(Rematch::NoLongerWaiting),
                                Err(RefundFirstError::Decision(e)) => Err(e.into()),
                                Err(RefundFirstError::Store(e)) => Err(e.into()),
                                Err(RefundFirstError::Notify(e)) => Err(e.into()),
                            };
                        }
                    }
                }
                let request = ActionRequest {
                    alert_id: alert_id.to_string(),
                    action,
                    note: policy.note.clone(),
                    source: DecisionSource::AutoPolicy,
                    actor: policy.name.clone(),
                    reason: format!("late data (was {was}): {reason}"),
                };
                match apply_action(
                    &*self.alert_api,
                    &*self.alerts,
                    &*self.notifier,
                    &*self.clock,
                    request,
                )
                .await
                {
                    Ok(report) => Ok(Rematch::Acted(report.result)),
                    Err(DecisionError::AlreadyDecided { .. }) => Ok(Rematch::NoLongerWaiting),
                    Err(e) => Err(e.into()),
                }
            }
            PolicyDecision::LeaveToPerson { reason } => {
                self.notifier
                    .notify(&OpsNotification {
                        kind: "alert.rematched".into(),
                        subject: format!(
                            "Alert {alert_id}: new order data ({}, was {was}); it still waits for a decision",
                            matching.matched.status.as_str()
                        ),
                        organisation_id: Some(alert.organisation_id.clone()),
                        object_id: alert_id.to_string(),
                        status: Some(alert.status.to_string()),
                        note: Some(reason.clone()),
                        at: iso(now),
                    })
                    .await?;
                append_decision(
                    &*self.alerts,
                    alert_id,
                    Decision {
                        at: iso(now),
                        source: DecisionSource::AutoPolicy,
                        actor: policy.name.clone(),
                        action: None,
                        reason: format!("late data (was {was}): {reason}"),
                        note: None,
                        result: DecisionResult::LeftForPerson,
                        detail: None,
                    },
                    None,
                    None,
                    now,
                )
                .await?;
                Ok(Rematch::LeftForPerson)
            }
        }
    }
}

#[async_trait::async_trait]
impl LateMatchHandler for Reevaluator {
    async fn rematch(&self, organisation_id: &str, alert_ids: &[String]) {
        for alert_id in alert_ids {
            match self.rematch_one(alert_id).await {
                Ok(outcome) => {
                    tracing::info!(organisation_id, alert_id = %alert_id, ?outcome, "alert re-evaluated on late order data")
                }
                Err(e) => {
                    // The alert stays waiting (a person was told when it was left waiting); the
                    // failure is told too, so the new data is looked at.
                    tracing::error!(organisation_id, alert_id = %alert_id, error = %e, "re-evaluation on late order data failed");
                    let _ = self
                        .notifier
                        .notify(&OpsNotification {
                            kind: "alert.rematch_failed".into(),
                            subject: format!(
                                "Alert {alert_id}: new order data arrived but re-evaluating it failed"
                            ),
                            organisation_id: Some(organisation_id.to_string()),
                            object_id: alert_id.clone(),
                            status: None,
                            note: Some(e.to_string()),
                            at: iso(self.clock.now()),
                        })
                        .await;
                }
            }
        }
    }
}
