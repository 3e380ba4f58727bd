//! Alert events: store the re-fetched alert, then let the decision policy act or leave it to
//! a person.
//!
//! The record is read once (strongly consistent) and everything the event changes on it (the
//! fetched view, the match, a "left for a person" decision) is written in the event's one
//! commit, with the event COMPLETED. An alert the policy actions takes two commits, because the
//! PATCH is irreversible: first its action claim with the event's IN_PROGRESS claim (so an
//! operator, the sweep or a second run can never send a second PATCH), then, after the PATCH,
//! the decision (which releases the action claim) with the event's completion.

use super::refund_first::RefundPath;
use super::{Applied, ApplyError, EventProcessor, Pending};
use crate::domain::alert_policy::{AlertPolicy, PolicyDecision};
use crate::domain::alert_record::{
    append_decision, merge_fetched, version_key, with_decision, Merge,
};
use crate::domain::decision::{
    apply_action_on_view, send_holding_claim, take_claim, ActionRequest, Decided, Decision,
    DecisionError, DecisionResult, DecisionSource, FRESH_VIEW_MAX_AGE,
};
use crate::domain::matching::on_record::{evaluate_match, put_match};
use crate::event::WebhookEvent;
use crate::models::alert::{Alert, AlertAction};
use crate::ports::alert_api::ApiCallError;
use crate::ports::event_commit::EventWrite;
use crate::ports::event_log::{iso, new_claim_token, EventStatus};
use crate::ports::notifier::OpsNotification;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use chrono::{DateTime, Utc};

/// How many times the decision's commit is tried after the PATCH (a lost revision race re-reads
/// the record; a commit whose answer was lost is found landed by the next try).
const DECISION_COMMIT_ATTEMPTS: usize = 3;

/// The record to write over `base` (the revision stored now): one revision more, however many
/// changes were merged into it.
fn next_revision(mut record: AlertRecord, base: u64) -> AlertRecord {
    record.revision = base + 1;
    record
}

fn outcome_of(result: DecisionResult, action: &AlertAction) -> Applied {
    match result {
        DecisionResult::Applied => Applied {
            outcome: format!("alert_actioned:{action}"),
            actions_taken: 1,
        },
        DecisionResult::Rejected => Applied::new("alert_action_rejected"),
        DecisionResult::RefusedStillWaiting => Applied::new("alert_awaiting_person"),
        _ => Applied::new("alert_stored"),
    }
}

/// Whether `event` carries a version of the alert (`data.object`, the Alerts API's shape) that
/// `stored` already holds or is newer than, on an alert that no longer waits for us: decided
/// (a final decision) or resolved. An object that does not parse, or has no `updated_at`, is
/// never "already current": the alert is fetched.
fn already_current(stored: &AlertRecord, event: &WebhookEvent) -> bool {
    let Ok(carried) = serde_json::from_value::<Alert>(event.data.object.clone()) else {
        return false;
    };
    if carried.id != stored.alert_id || carried.updated_at.is_none() {
        return false;
    }
    let done = stored.has_final_decision() || !stored.alert.is_actionable();
    done && stored.action_claim.is_none() && version_key(&carried) <= stored.version_key
}

/// The alert as stored, with the fetched view merged in.
struct Merged {
    record: AlertRecord,
    /// The stored revision (0: not stored yet).
    base: u64,
    /// The fetched view was older than the stored one.
    stale: bool,
    /// Something to write.
    changed: bool,
}

impl EventProcessor {
    pub(super) async fn apply_alert(
        &self,
        alert_id: &str,
        event: &WebhookEvent,
        pending: &mut Pending,
    ) -> Result<Applied, ApplyError> {
        // An event about a version we already hold, of an alert already decided or resolved
        // (above all the `alert.updated` our own PATCH causes: the PATCH's answer is stored with
        // the decision) can change nothing and lead to no action: completed without a GET,
        // which leaves ChargebackStop's per-organisation GET budget to the alerts that wait.
        let stored = self.alerts.get(alert_id).await?;
        if let Some(record) = stored.as_ref().filter(|r| already_current(r, event)) {
            let m = Merged {
                base: record.revision,
                record: record.clone(),
                stale: true,
                changed: false,
            };
            return self.finish(pending, m, "alert_already_current").await;
        }
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
        let mut m = self.merge_stored(stored, &fetched).await?;
        if m.record.informational {
            return self.finish(pending, m, "alert_informational").await;
        }
        if !m.record.alert.is_actionable() {
            return self.finish(pending, m, "alert_stored").await;
        }
        if m.record.has_final_decision() {
            return self.finish(pending, m, "alert_already_decided").await;
        }
        if m.record.was_left_for_person() {
            return self.finish(pending, m, "alert_awaiting_person").await;
        }

        let alert = m.record.alert.clone();
        let policy = self.policies.policy_for(&alert.organisation_id).await?;
        // The match on the record first (the same rule `cbs rebuild` runs), written with it.
        let (evaluation, matching) =
            evaluate_match(&*self.partner_records, &policy, &alert).await?;
        if let Some(matching) = matching {
            m.changed |= put_match(&mut m.record, &matching);
        }
        match evaluation.decision {
            PolicyDecision::Act { action, reason } => {
                // The alert was fetched moments ago (above): no second GET unless an earlier
                // holder's claim is found, or the stored record was newer than that view.
                let fresh_view = (!m.stale).then_some((fetched, fetched_at));
                if self.refunds_first(&policy, &action) {
                    return self
                        .refund_first_then_act(pending, m, &policy, action, reason, fresh_view)
                        .await;
                }
                self.act(pending, m, &policy, action, reason, fresh_view)
                    .await
            }
            PolicyDecision::LeaveToPerson { reason } => {
                self.notify_awaiting_decision(&alert).await?;
                let decision = self.left_for_person(&policy, reason);
                let now = self.clock.now();
                m.record = with_decision(Some(m.record), &decision, None, None, now)
                    .expect("a stored record");
                m.changed = true;
                self.finish(pending, m, "alert_awaiting_person").await
            }
        }
    }

    /// The stored record (one consistent read) with `fetched` merged in, out-of-order safe; an
    /// Ethoca alert waiting without a deadline is told to a person first, once.
    async fn merge_stored(
        &self,
        existing: Option<AlertRecord>,
        fetched: &Alert,
    ) -> Result<Merged, ApplyError> {
        let base = existing.as_ref().map_or(0, |r| r.revision);
        let now = self.clock.now();
        let unchanged = existing.as_ref().is_some_and(|old| old.alert == *fetched);
        let mut m = match merge_fetched(existing.clone(), fetched.clone(), now) {
            Merge::Stale(record) => Merged {
                record,
                base,
                stale: true,
                changed: false,
            },
            Merge::Updated(_) if unchanged => Merged {
                record: existing.expect("unchanged implies stored"),
                base,
                stale: false,
                changed: false,
            },
            Merge::Updated(record) => Merged {
                record,
                base,
                stale: false,
                changed: true,
            },
        };
        if m.record.waits_without_deadline() && m.record.no_deadline_notified_at.is_none() {
            // Told before it is marked: a failed notice writes nothing and the redelivery tells
            // again (at least once); a failed commit after it may tell twice, never never.
            self.notify_no_deadline(&m.record).await?;
            m.record.no_deadline_notified_at = Some(iso(now));
            m.changed = true;
        }
        Ok(m)
    }

    /// One commit: the record (if it changed) and the event COMPLETED with `outcome`.
    async fn finish(
        &self,
        pending: &mut Pending,
        m: Merged,
        outcome: &str,
    ) -> Result<Applied, ApplyError> {
        let write = pending.finish(self.clock.now(), EventStatus::Completed, outcome);
        let record = m.changed.then(|| next_revision(m.record, m.base));
        self.commit(pending, Some(write), record).await?;
        Ok(Applied::new(outcome))
    }

    /// The policy's action: claim (with the event's claim), PATCH, decision (with the event's
    /// completion). Two commits.
    async fn act(
        &self,
        pending: &mut Pending,
        mut m: Merged,
        policy: &AlertPolicy,
        action: AlertAction,
        reason: String,
        fresh_view: Option<(Alert, DateTime<Utc>)>,
    ) -> Result<Applied, ApplyError> {
        let alert_id = m.record.alert_id.clone();
        let owner = uuid::Uuid::new_v4().to_string();
        let request = ActionRequest {
            alert_id: alert_id.clone(),
            action: action.clone(),
            note: policy.note.clone(),
            source: DecisionSource::AutoPolicy,
            actor: policy.name.clone(),
            reason,
        };
        let now = self.clock.now();
        let took_over = match take_claim(&mut m.record, &request, &owner, now) {
            Ok(took_over) => took_over,
            // Checked above on the same read; kept for safety.
            Err(DecisionError::AlreadyDecided { .. }) => {
                return self.finish(pending, m, "alert_already_decided").await
            }
            Err(e) => return Err(e.into()),
        };
        let token = new_claim_token();
        let claimed = next_revision(m.record, m.base);
        let event_claim = EventWrite::Claim(Box::new(pending.claim_record(now, &token)));
        self.commit(pending, Some(event_claim), Some(claimed.clone()))
            .await?;

        // Holding both claims. An earlier holder's claim means its PATCH may have landed since
        // our view: fetched again, as every holder taking over does.
        let view = fresh_view
            .filter(|(_, at)| !took_over && self.clock.now() - *at <= FRESH_VIEW_MAX_AGE)
            .map(|(alert, _)| alert);
        let sent = async {
            let current = match view {
                Some(view) => view,
                None => self.alert_api.get_alert(&alert_id).await?,
            };
            let decided = send_holding_claim(
                &*self.alert_api,
                &*self.notifier,
                &*self.clock,
                &request,
                &current,
            )
            .await?;
            Ok::<_, DecisionError>((current, decided))
        }
        .await;
        let (current, decided) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                self.release_claims(pending, &claimed, &owner).await;
                return Err(e.into());
            }
        };
        let applied = outcome_of(decided.result, &action);
        self.commit_decision(
            pending,
            claimed,
            &current,
            &decided,
            &owner,
            &applied.outcome,
        )
        .await?;
        Ok(applied)
    }

    /// After the PATCH: the decision (the claim released with it) and the event COMPLETED, in
    /// one commit. A lost race on the record re-reads it; a commit found landed (its answer was
    /// lost) is done; if our event claim was taken over meanwhile, the decision is still recorded
    /// on the alert before the event is handed back.
    async fn commit_decision(
        &self,
        pending: &mut Pending,
        claimed: AlertRecord,
        current: &Alert,
        decided: &Decided,
        owner: &str,
        outcome: &str,
    ) -> Result<(), ApplyError> {
        let token = pending.claimed.clone().unwrap_or_default();
        let mut base = claimed;
        let mut last = None;
        for _ in 0..DECISION_COMMIT_ATTEMPTS {
            let now = self.clock.now();
            let revision = base.revision;
            // The view this decision was taken on, as `store_fetched_alert` would have stored it.
            let mut record = base.clone();
            if record.alert != *current {
                if let Merge::Updated(r) = merge_fetched(Some(record.clone()), current.clone(), now)
                {
                    record = r;
                }
            }
            let record = with_decision(
                Some(record),
                &decided.decision,
                decided.view.as_ref(),
                Some(owner),
                now,
            )
            .expect("a stored record");
            let write = pending.finish(now, EventStatus::Completed, outcome);
            match self
                .commit(pending, Some(write), Some(next_revision(record, revision)))
                .await
            {
                Ok(()) => {
                    pending.claimed = None;
                    return Ok(());
                }
                Err(ApplyError::Taken { stored, event_id }) => {
                    if stored.as_ref().is_some_and(|r| {
                        r.status == EventStatus::Completed
                            && r.claim_token.as_deref() == Some(token.as_str())
                    }) {
                        // Our own earlier try landed.
                        pending.claimed = None;
                        return Ok(());
                    }
                    crate::domain::alert_record::record_decision(
                        &*self.alerts,
                        &base.alert_id,
                        decided.decision.clone(),
                        decided.view.as_ref(),
                        None,
                        Some(owner),
                        self.clock.now(),
                    )
                    .await?;
                    pending.claimed = None;
                    return Err(ApplyError::Taken { event_id, stored });
                }
                Err(ApplyError::Store(e @ StoreError::Conflict { .. })) => {
                    last = Some(ApplyError::Store(e));
                    match self.alerts.get(&base.alert_id).await? {
                        Some(stored) => base = stored,
                        None => break,
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            ApplyError::Store(StoreError::Conflict {
                operation: "record decision",
                table: "alerts".into(),
                key: base.alert_id.clone(),
            })
        }))
    }

    /// After a failure between the two commits: both claims dropped in one commit, best effort
    /// (each expires by itself).
    async fn release_claims(&self, pending: &mut Pending, claimed: &AlertRecord, owner: &str) {
        let Some(token) = pending.claimed.clone() else {
            return;
        };
        let mut record = claimed.clone();
        let ours = record
            .action_claim
            .as_ref()
            .is_some_and(|c| c.owner == owner);
        let alert = ours.then(|| {
            record.action_claim = None;
            next_revision(record, claimed.revision)
        });
        let release = EventWrite::Release {
            event_id: pending.arrival.event_id.clone(),
            token,
        };
        if let Err(e) = self.commit(pending, Some(release), alert).await {
            tracing::warn!(alert_id = %claimed.alert_id, error = %e,
                "could not release the claims; they expire by themselves");
        }
    }

    /// The refund-hook path (`refund_first`): the record and the event's claim first, then the
    /// partner's billing system and the action through the alert store, then the event's
    /// completion. It takes more writes than the policy's own action (the hook's state is kept
    /// on the record between its steps).
    async fn refund_first_then_act(
        &self,
        pending: &mut Pending,
        m: Merged,
        policy: &AlertPolicy,
        action: AlertAction,
        reason: String,
        fresh_view: Option<(Alert, DateTime<Utc>)>,
    ) -> Result<Applied, ApplyError> {
        let now = self.clock.now();
        let token = new_claim_token();
        let alert = m.record.alert.clone();
        let record = m.changed.then(|| next_revision(m.record, m.base));
        let claim = EventWrite::Claim(Box::new(pending.claim_record(now, &token)));
        self.commit(pending, Some(claim), record).await?;
        let until = pending.until;
        let (view, fetched_at) = match &fresh_view {
            Some((view, at)) => (Some(view), *at),
            None => (None, now),
        };
        let applied = match self
            .refund_first_if_needed(policy, &alert, action, reason, view, fetched_at, until)
            .await?
        {
            RefundPath::Decided(applied) => applied,
            RefundPath::SendAsDecided { action, reason } => {
                self.act_through_store(policy, &alert.id, action, reason, view, fetched_at)
                    .await?
            }
            RefundPath::LeaveToPerson { reason } => {
                self.notify_awaiting_decision(&alert).await?;
                let decision = self.left_for_person(policy, reason);
                append_decision(
                    &*self.alerts,
                    &alert.id,
                    decision,
                    None,
                    None,
                    self.clock.now(),
                )
                .await?;
                Applied::new("alert_awaiting_person")
            }
        };
        let write = pending.finish(self.clock.now(), EventStatus::Completed, &applied.outcome);
        self.commit(pending, Some(write), None).await?;
        pending.claimed = None;
        Ok(applied)
    }

    /// `apply_action` through the alert store (its own claim, PATCH and decision writes).
    async fn act_through_store(
        &self,
        policy: &AlertPolicy,
        alert_id: &str,
        action: AlertAction,
        reason: String,
        view: Option<&Alert>,
        fetched_at: DateTime<Utc>,
    ) -> Result<Applied, ApplyError> {
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
            view.map(|v| (v, fetched_at)),
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
        Ok(outcome_of(report.result, &action))
    }

    fn refunds_first(&self, policy: &AlertPolicy, action: &AlertAction) -> bool {
        self.refund_first.is_some()
            && policy.refund_hook.is_some()
            && matches!(action, AlertAction::Refund | AlertAction::RefundAndCancel)
    }

    fn left_for_person(&self, policy: &AlertPolicy, reason: String) -> Decision {
        Decision {
            at: iso(self.clock.now()),
            source: DecisionSource::AutoPolicy,
            actor: policy.name.clone(),
            action: None,
            reason,
            note: None,
            result: DecisionResult::LeftForPerson,
            detail: None,
        }
    }

    async fn notify_awaiting_decision(&self, alert: &Alert) -> Result<(), ApplyError> {
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
        Ok(())
    }

    async fn notify_no_deadline(&self, record: &AlertRecord) -> Result<(), ApplyError> {
        self.notifier
            .notify(&OpsNotification {
                kind: "alert.no_deadline".into(),
                subject: format!(
                    "Alert {} waits for an action but has no deadline: decide it by hand",
                    record.alert_id
                ),
                organisation_id: Some(record.alert.organisation_id.clone()),
                object_id: record.alert_id.clone(),
                status: Some(record.alert.status.to_string()),
                note: Some(
                    "ChargebackStop gave no action_required_deadline; the deadline sweep cannot act on it"
                        .into(),
                ),
                at: iso(self.clock.now()),
            })
            .await?;
        tracing::warn!(alert_id = %record.alert_id, "actionable alert without a deadline: operations told");
        Ok(())
    }
}
