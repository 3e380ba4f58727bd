//! Refund first, then action. When the policy decides REFUND or REFUND_AND_CANCEL for a
//! matched transaction the partner has not refunded, and the organisation's policy names a
//! `refund_hook`, the partner's billing system is asked to refund before ChargebackStop is told
//! (the Orders guide: "treat REFUND as a declaration that your system has already refunded").
//!
//! ## One claim for the hook call and the PATCH
//! The caller takes the alert's action claim (`decision::claim_action`, the same claim the
//! policy, operators and the sweep take) before the POST, and the PATCH is sent under that same
//! claim (`decision::act_claimed`). So while the billing system is being asked, nobody else
//! actions the alert (the sweep's cutoff action waits), and two deliveries of the alert's events
//! ask one at a time. The hook is idempotent by alert id (`Idempotency-Key`): a repeat of a
//! request the billing system already refunded answers the same refund, so a POST whose answer
//! was lost is asked again safely, and a confirmation already stored is never asked again.
//!
//! ## Outcomes, on the alert record (`refund_hook`) and in the audit trail
//! - refunded → `CONFIRMED` with the reference; the refund is queued as an order update
//!   (`PATCH /v1/orders/{id}` by order-upload: ChargebackStop sees the refund on the order);
//!   then REFUND (REFUND_AND_CANCEL when the billing system also cancelled the subscription)
//!   with a note naming the partner's refund reference; the decision's reason says so;
//! - refused → `REFUSED` with the reason: the alert is a person's (LEFT_FOR_PERSON, it stays in
//!   the action queue), a person is told (`refund_hook.refused`), counted (`RefundHookRefused`);
//! - no answer (timeouts, 5xx, 429 after the retries this call's time allows) → `PENDING` with
//!   the reason, counted (`RefundHookNoAnswer`), the claim given back.
//!
//! ## Who retries a pending refund: the deadline sweep
//! Not SQS redelivery: the edge queue is FIFO per alert (message group = the alert's id), so a
//! failing message holds back the alert's later events, and a billing outage of hours would
//! burn the messages' receives towards the dead-letter queue.
//! The event completes (`alert_refund_pending`), and the deadline sweep, which reads every
//! waiting alert within its horizon each run, asks again (`DeadlineSweep` with `refund_first`)
//! while the alert is before its cutoff, under the same claim and idempotency key. At the cutoff
//! the cutoff action applies as for any undecided alert, and a person is told that the refund
//! was never confirmed (`refund_hook.unconfirmed_at_cutoff`).

mod need;
#[cfg(test)]
mod tests;

pub use need::{refund_need, RefundNeed};

use super::decision::{
    act_claimed, claim_action, release_claim, ActionReport, ActionRequest, DecisionError,
    DecisionResult, DecisionSource,
};
use crate::clock::Clock;
use crate::domain::alert_record::{record_decision, update_alert_record};
use crate::models::alert::{Alert, AlertAction};
use crate::models::order::{PatchOrder, Refund, RefundStatus};
use crate::ports::alert_api::AlertApi;
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, NotifyError, OpsNotification};
use crate::ports::order_outbox::{OrderOutbox, UpdateQueued};
use crate::ports::refund_hook::{HookAnswer, HookCallError, RefundHook};
use crate::ports::store_error::StoreError;
use crate::records::alert::{AlertRecord, Decision};
use crate::records::refund_hook::{
    RefundHookConfig, RefundHookRecord, RefundHookState, RefundRequest,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// What came of refunding first.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundFirstOutcome {
    /// Confirmed, then actioned through the one action path (its report).
    Actioned(ActionReport),
    /// The billing system refused: left to a person (told, counted).
    Refused { reason: String },
    /// No answer: stored PENDING; the sweep asks again before the cutoff.
    Pending { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RefundFirstError {
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

impl RefundFirstError {
    pub fn is_retryable(&self) -> bool {
        match self {
            RefundFirstError::Decision(e) => e.is_retryable(),
            RefundFirstError::Store(e) => e.is_retryable(),
            RefundFirstError::Notify(e) => e.is_retryable(),
        }
    }
}

/// The refund-first path: the hook, the stores, the action path.
pub struct RefundFirst {
    pub hook: Arc<dyn RefundHook>,
    pub alert_api: Arc<dyn AlertApi>,
    pub alerts: Arc<dyn AlertStore>,
    /// Where the confirmed refund is queued as an order update for ChargebackStop; `None`: not
    /// queued (the partner sends its refunds through its own order feed).
    pub outbox: Option<Arc<dyn OrderOutbox>>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// The first pause between POSTs (doubled each time, at most 2 s).
    pub backoff: Duration,
}

/// Who asks, and why (the policy's decision).
#[derive(Debug, Clone)]
pub struct Asker {
    pub source: DecisionSource,
    /// The policy's name.
    pub actor: String,
    /// The policy's reason for the refund.
    pub reason: String,
    /// The policy's customer-facing note.
    pub note: Option<String>,
}

/// A stored hook state that lets nobody ask now: the claim is someone else's call, or the
/// answer is final.
fn in_flight_elsewhere(record: &AlertRecord, now: DateTime<Utc>) -> bool {
    record.refund_hook.as_ref().is_some_and(|h| {
        h.state == RefundHookState::InFlight
            && h.in_flight_until
                .as_deref()
                .and_then(|u| u.parse::<DateTime<Utc>>().ok())
                .is_some_and(|u| now < u)
    })
}

impl RefundFirst {
    /// Refunds in the partner's billing system, then (confirmed) actions the alert, all under
    /// the alert's action claim; `deadline` bounds the hook's attempts (the caller's time).
    /// `view`: the alert as the caller fetched it, and when.
    pub async fn refund_then_act(
        &self,
        config: &RefundHookConfig,
        request: &RefundRequest,
        asker: &Asker,
        view: Option<(&Alert, DateTime<Utc>)>,
        deadline: DateTime<Utc>,
    ) -> Result<RefundFirstOutcome, RefundFirstError> {
        let alert_id = request.alert_id.clone();
        let owner = uuid::Uuid::new_v4().to_string();
        let claim_request = ActionRequest {
            alert_id: alert_id.clone(),
            action: request.requested_action.clone(),
            note: asker.note.clone(),
            source: asker.source,
            actor: asker.actor.clone(),
            reason: asker.reason.clone(),
        };
        let took_over = claim_action(
            &*self.alert_api,
            &*self.alerts,
            &*self.clock,
            &claim_request,
            &owner,
        )
        .await?;
        let view = view.filter(|_| !took_over);
        match self
            .holding_claim(config, request, asker, &owner, view, deadline)
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                if let Err(release) = release_claim(&*self.alerts, &alert_id, &owner).await {
                    tracing::warn!(alert_id = %alert_id, error = %release,
                        "could not release the action claim; it expires by itself");
                }
                Err(e)
            }
        }
    }

    async fn holding_claim(
        &self,
        config: &RefundHookConfig,
        request: &RefundRequest,
        asker: &Asker,
        owner: &str,
        view: Option<(&Alert, DateTime<Utc>)>,
        deadline: DateTime<Utc>,
    ) -> Result<RefundFirstOutcome, RefundFirstError> {
        let alert_id = &request.alert_id;
        let now = self.clock.now();
        // Mark the call in flight, or find the answer stored already.
        let mut stored_answer = None;
        let mut busy = false;
        update_alert_record(&*self.alerts, alert_id, |current| {
            stored_answer = None;
            busy = false;
            let mut record = current?;
            if let Some(h) = &record.refund_hook {
                if matches!(
                    h.state,
                    RefundHookState::Confirmed | RefundHookState::Refused
                ) {
                    stored_answer = Some(h.clone());
                    return None;
                }
            }
            if in_flight_elsewhere(&record, now) {
                busy = true;
                return None;
            }
            let previous = record.refund_hook.take();
            record.refund_hook = Some(RefundHookRecord {
                state: RefundHookState::InFlight,
                // A retry asks exactly what was asked first.
                request: previous
                    .as_ref()
                    .map(|p| p.request.clone())
                    .unwrap_or_else(|| request.clone()),
                reason: previous
                    .as_ref()
                    .map(|p| p.reason.clone())
                    .unwrap_or_else(|| asker.reason.clone()),
                attempts: previous.as_ref().map_or(0, |p| p.attempts),
                refund_reference: None,
                subscription_cancelled: false,
                detail: previous.and_then(|p| p.detail),
                updated_at: iso(now),
                in_flight_until: Some(iso(deadline)),
                order_update_queued: false,
            });
            record.revision += 1;
            Some(record)
        })
        .await?;
        if busy {
            // Another caller is asking right now (its claim expired under it): give ours back
            // and leave the answer to that caller.
            release_claim(&*self.alerts, alert_id, owner).await?;
            return Ok(RefundFirstOutcome::Pending {
                reason: "another call to the refund hook is in flight".into(),
            });
        }
        let hook = match stored_answer {
            Some(stored) => stored,
            None => self.ask(config, request, deadline).await?,
        };
        match hook.state {
            RefundHookState::Confirmed => self.act_confirmed(hook, asker, owner, view).await,
            RefundHookState::Refused => self.leave_refused(hook, asker, owner).await,
            _ => {
                let reason = hook.detail.clone().unwrap_or_default();
                count("RefundHookNoAnswer", self.clock.now());
                tracing::warn!(alert_id = %alert_id, attempts = hook.attempts, reason = %reason,
                    "refund hook did not answer; pending, the sweep asks again before the cutoff");
                self.settle(alert_id, hook, Some(owner)).await?;
                Ok(RefundFirstOutcome::Pending { reason })
            }
        }
    }

    /// POSTs with backoff while attempts and time last; returns the record to store.
    async fn ask(
        &self,
        config: &RefundHookConfig,
        request: &RefundRequest,
        deadline: DateTime<Utc>,
    ) -> Result<RefundHookRecord, RefundFirstError> {
        let stored = self
            .alerts
            .get(&request.alert_id)
            .await?
            .and_then(|r| r.refund_hook);
        let asked = stored
            .as_ref()
            .map(|h| h.request.clone())
            .unwrap_or_else(|| request.clone());
        let mut attempts = 0u32;
        let timeout = Duration::from_millis(config.timeout_ms);
        let answer = loop {
            let left = (deadline - self.clock.now()).to_std().unwrap_or_default();
            if left < timeout {
                break Err(HookCallError::NoAnswer {
                    reason: format!(
                        "no time left in this run for a {} ms attempt",
                        config.timeout_ms
                    ),
                });
            }
            attempts += 1;
            // The adapter has its own timeout; this one holds whatever the hook does.
            let result = match tokio::time::timeout(
                timeout + Duration::from_millis(500),
                self.hook.post_once(config, &asked),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(HookCallError::NoAnswer {
                    reason: format!("timed out after {} ms", config.timeout_ms),
                }),
            };
            match result {
                Ok(answer) => break Ok(answer),
                Err(e) if !e.is_retryable() || attempts >= config.max_attempts => break Err(e),
                Err(e) => {
                    let pause = self
                        .backoff
                        .saturating_mul(1 << (attempts - 1).min(4))
                        .min(Duration::from_secs(2));
                    let left = (deadline - self.clock.now()).to_std().unwrap_or_default();
                    if left < pause + timeout {
                        break Err(e);
                    }
                    tracing::info!(alert_id = %asked.alert_id, attempt = attempts, error = %e,
                        "refund hook attempt failed; trying again");
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let previous_attempts = stored.as_ref().map_or(0, |h| h.attempts);
        let reason = stored
            .as_ref()
            .map(|h| h.reason.clone())
            .unwrap_or_default();
        let mut record = RefundHookRecord {
            state: RefundHookState::Pending,
            request: asked,
            reason,
            attempts: previous_attempts + attempts,
            refund_reference: None,
            subscription_cancelled: false,
            detail: None,
            updated_at: iso(self.clock.now()),
            in_flight_until: None,
            order_update_queued: false,
        };
        match answer {
            Ok(HookAnswer::Refunded {
                refund_reference,
                subscription_cancelled,
            }) => {
                record.state = RefundHookState::Confirmed;
                record.refund_reference = Some(refund_reference);
                record.subscription_cancelled = subscription_cancelled;
            }
            Ok(HookAnswer::Refused { reason }) => {
                record.state = RefundHookState::Refused;
                record.detail = Some(reason);
            }
            Err(e) => record.detail = Some(e.to_string()),
        }
        Ok(record)
    }

    /// Stores the hook state; `release`: also clears our claim in the same write.
    async fn settle(
        &self,
        alert_id: &str,
        hook: RefundHookRecord,
        release: Option<&str>,
    ) -> Result<(), StoreError> {
        update_alert_record(&*self.alerts, alert_id, |current| {
            let mut record = current?;
            if record.refund_hook.as_ref() == Some(&hook)
                && release.is_none_or(|o| record.action_claim.as_ref().is_none_or(|c| c.owner != o))
            {
                return None;
            }
            record.refund_hook = Some(hook.clone());
            if let Some(owner) = release {
                if record
                    .action_claim
                    .as_ref()
                    .is_some_and(|c| c.owner == owner)
                {
                    record.action_claim = None;
                }
            }
            record.revision += 1;
            Some(record)
        })
        .await
        .map(|_| ())
    }

    /// Confirmed: queue the refund for ChargebackStop's order, then the action with the note
    /// naming the partner's refund reference, under our claim.
    async fn act_confirmed(
        &self,
        mut hook: RefundHookRecord,
        asker: &Asker,
        owner: &str,
        view: Option<(&Alert, DateTime<Utc>)>,
    ) -> Result<RefundFirstOutcome, RefundFirstError> {
        let alert_id = hook.request.alert_id.clone();
        let reference = hook.refund_reference.clone().unwrap_or_default();
        if !hook.order_update_queued {
            if let Some(outbox) = &self.outbox {
                let patch = PatchOrder {
                    refunds: Some(vec![Refund {
                        reference_id: Some(reference.clone()),
                        amount_in_cents: hook.request.amount_in_cents,
                        currency: hook.request.currency.clone(),
                        status: Some(RefundStatus::Succeeded),
                        original_transaction_reference_id: Some(
                            hook.request.transaction_reference_id.clone(),
                        ),
                        refund_datetime: Some(self.clock.now()),
                    }]),
                    ..Default::default()
                };
                let queued = outbox
                    .queue_update(
                        &hook.request.organisation_id,
                        &hook.request.order_reference_id,
                        &format!("refund-hook-{alert_id}"),
                        &patch,
                        self.clock.now(),
                    )
                    .await?;
                if queued != UpdateQueued::Queued {
                    tracing::warn!(alert_id = %alert_id, order = %hook.request.order_reference_id, ?queued,
                        "the confirmed refund could not be queued for the order at ChargebackStop");
                }
            }
            hook.order_update_queued = true;
        }
        hook.in_flight_until = None;
        hook.updated_at = iso(self.clock.now());
        self.settle(&alert_id, hook.clone(), None).await?;
        let action = if hook.subscription_cancelled {
            AlertAction::RefundAndCancel
        } else {
            AlertAction::Refund
        };
        let named = format!("Refunded in the partner's billing system, refund {reference}");
        let note = match &asker.note {
            Some(n) => format!("{n} ({named})"),
            None => named,
        };
        let request = ActionRequest {
            alert_id: alert_id.clone(),
            action,
            note: Some(note.chars().take(1000).collect()),
            source: asker.source,
            actor: asker.actor.clone(),
            reason: format!(
                "{}; refund hook CONFIRMED: refund {reference}{} after {} attempt(s)",
                hook.reason,
                if hook.subscription_cancelled {
                    ", subscription cancelled"
                } else {
                    ""
                },
                hook.attempts
            ),
        };
        let report = act_claimed(
            &*self.alert_api,
            &*self.alerts,
            &*self.notifier,
            &*self.clock,
            request,
            owner,
            view,
        )
        .await?;
        Ok(RefundFirstOutcome::Actioned(report))
    }

    /// Refused: tell a person, count it, then record it with the decision (which releases our
    /// claim). Telling first: if the write fails, the retry asks again (the same refusal, by
    /// idempotency key) and tells again, never silently.
    async fn leave_refused(
        &self,
        hook: RefundHookRecord,
        asker: &Asker,
        owner: &str,
    ) -> Result<RefundFirstOutcome, RefundFirstError> {
        let alert_id = hook.request.alert_id.clone();
        let reason = hook.detail.clone().unwrap_or_default();
        let now = self.clock.now();
        let stored = self.alerts.get(&alert_id).await?;
        let already_recorded = stored.as_ref().is_some_and(|r| {
            r.refund_hook
                .as_ref()
                .is_some_and(|h| h.state == RefundHookState::Refused)
                && r.was_left_for_person()
        });
        if already_recorded {
            release_claim(&*self.alerts, &alert_id, owner).await?;
            return Ok(RefundFirstOutcome::Refused { reason });
        }
        self.notifier
            .notify(&OpsNotification {
                kind: "refund_hook.refused".into(),
                subject: format!(
                    "Alert {alert_id}: the partner's billing system refused the refund ({reason}); it waits for a person"
                ),
                organisation_id: Some(hook.request.organisation_id.clone()),
                object_id: alert_id.clone(),
                status: stored.as_ref().map(|r| r.alert.status.to_string()),
                note: Some(format!(
                    "order {} transaction {}; {}",
                    hook.request.order_reference_id,
                    hook.request.transaction_reference_id,
                    stored
                        .as_ref()
                        .and_then(|r| r.alert.action_required_deadline)
                        .map(|d| format!("deadline {}", iso(d)))
                        .unwrap_or_else(|| "no deadline given".into())
                )),
                at: iso(now),
            })
            .await?;
        count("RefundHookRefused", now);
        tracing::warn!(alert_id = %alert_id, attempts = hook.attempts,
            "refund hook refused; left for a person");
        self.settle(&alert_id, hook.clone(), None).await?;
        record_decision(
            &*self.alerts,
            &alert_id,
            Decision {
                at: iso(now),
                source: asker.source,
                actor: asker.actor.clone(),
                action: Some(hook.request.requested_action.clone()),
                reason: hook.reason.clone(),
                note: None,
                result: DecisionResult::LeftForPerson,
                detail: Some(format!(
                    "refund hook REFUSED after {} attempt(s): {reason}",
                    hook.attempts
                )),
            },
            None,
            None,
            Some(owner),
            now,
        )
        .await?;
        Ok(RefundFirstOutcome::Refused { reason })
    }
}

/// One EMF count line (CloudWatch metric), e.g. `RefundHookRefused`.
fn count(metric: &str, now: DateTime<Utc>) {
    println!(
        "{}",
        crate::telemetry::emf_counts_line(&[(metric, 1)], now.timestamp_millis())
    );
}

/// A pending refund the sweep should ask about again now: PENDING, or IN_FLIGHT whose caller
/// is gone (its time passed).
pub fn needs_retry(record: &AlertRecord, now: DateTime<Utc>) -> bool {
    record.refund_hook.as_ref().is_some_and(|h| match h.state {
        RefundHookState::Pending => true,
        RefundHookState::InFlight => !in_flight_elsewhere(record, now),
        _ => false,
    })
}

/// The refund was asked and never confirmed (for the sweep's notice at the cutoff).
pub fn unconfirmed(record: &AlertRecord) -> bool {
    record.refund_hook.as_ref().is_some_and(|h| {
        matches!(
            h.state,
            RefundHookState::Pending | RefundHookState::InFlight
        )
    })
}
