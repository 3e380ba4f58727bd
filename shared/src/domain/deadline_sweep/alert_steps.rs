//! What the sweep does for one alert, once `DeadlineSweep::run` has chosen it: warn before a
//! threshold, ask the refund hook again, or act at the cutoff, and tell operations what it
//! could not do.

use super::*;

impl DeadlineSweep {
    pub(super) async fn handle(
        &self,
        work: Work,
        now: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Outcome {
        if work.retry_refund {
            return self.retry_refund(&work, ends_at).await;
        }
        match &work.step {
            SweepStep::Nothing => Outcome::Nothing,
            SweepStep::Warn { tightest, labels } => {
                self.warn(&work.record, tightest, labels, now, ends_at)
                    .await
            }
            SweepStep::Act => match self.act_at_cutoff(&work, now).await {
                Ok(result) => Outcome::Decided(result),
                Err(DecisionError::ClaimHeld { .. }) => Outcome::ClaimedElsewhere,
                Err(DecisionError::AlreadyDecided { .. }) => Outcome::AlreadyDecided,
                Err(e) => Outcome::Failed(e.to_string()),
            },
        }
    }

    /// Claim, notify, confirm. See the module docs for what happens when a step fails.
    async fn warn(
        &self,
        record: &AlertRecord,
        tightest: &str,
        labels: &[String],
        now: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Outcome {
        let claim = PendingWarning {
            labels: labels.to_vec(),
            tightest: tightest.to_string(),
            until: iso(ends_at),
        };
        match self.claim_warning(&record.alert_id, &claim, now).await {
            Ok(true) => {}
            Ok(false) => return Outcome::WarningInFlight,
            Err(e) => return Outcome::Failed(e.to_string()),
        }
        let sent = self
            .notify(
                record,
                "alert.deadline_warning",
                &format!("within {tightest} of its deadline"),
            )
            .await;
        if let Err(e) = sent {
            // Give the claim back so the next run warns again; if even that fails, the claim
            // expires at `until` and a later run sends the warning then.
            if let Err(release) = self.settle_warning(&record.alert_id, &claim, false).await {
                tracing::error!(alert_id = %record.alert_id, error = %release, until = %claim.until,
                    "warning not sent and its claim not released; a run after the claim expires sends it");
            }
            return Outcome::Failed(e);
        }
        if let Err(e) = self.settle_warning(&record.alert_id, &claim, true).await {
            tracing::error!(alert_id = %record.alert_id, error = %e,
                "warning sent but not recorded; a later run may send it again");
        }
        Outcome::Warned
    }

    /// Asks the refund hook again for a pending refund, within the run's time.
    async fn retry_refund(&self, work: &Work, ends_at: DateTime<Utc>) -> Outcome {
        use crate::domain::refund_hook::{Asker, RefundFirstError, RefundFirstOutcome};
        let (Some(first), Some(config), Some(hook)) = (
            &self.refund_first,
            &work.policy.refund_hook,
            &work.record.refund_hook,
        ) else {
            return Outcome::Nothing;
        };
        let asker = Asker {
            source: DecisionSource::AutoPolicy,
            actor: work.policy.name.clone(),
            reason: hook.reason.clone(),
            note: work.policy.note.clone(),
        };
        match first
            .refund_then_act(config, &hook.request, &asker, None, ends_at)
            .await
        {
            Ok(RefundFirstOutcome::Actioned(report)) => Outcome::RefundRetried(Some(report.result)),
            Ok(_) => Outcome::RefundRetried(None),
            Err(RefundFirstError::Decision(DecisionError::ClaimHeld { .. })) => {
                Outcome::ClaimedElsewhere
            }
            Err(RefundFirstError::Decision(DecisionError::AlreadyDecided { .. })) => {
                Outcome::AlreadyDecided
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// The ONE place the sweep actions an alert (through `decision::apply_action`).
    async fn act_at_cutoff(
        &self,
        work: &Work,
        now: DateTime<Utc>,
    ) -> Result<DecisionResult, DecisionError> {
        let record = &work.record;
        let action = work
            .policy
            .cutoff_action
            .clone()
            .unwrap_or_else(|| self.config.default_action.clone());
        let deadline = record
            .alert
            .action_required_deadline
            .map(iso)
            .unwrap_or_default();
        let left = record
            .alert
            .time_to_deadline(now)
            .unwrap_or_else(Duration::zero);
        let request = ActionRequest {
            alert_id: record.alert_id.clone(),
            action: action.clone(),
            note: work.policy.note.clone(),
            source: DecisionSource::Sweep,
            actor: "deadline-sweep".into(),
            reason: format!(
                "no decision {} min before the deadline {deadline} (cutoff {} min): organisation default {action}",
                left.num_minutes(),
                work.cutoff.num_minutes()
            ),
        };
        let outcome = apply_action(
            &*self.api,
            &*self.alerts,
            &*self.notifier,
            &*self.clock,
            request,
        )
        .await?;
        if outcome.result == DecisionResult::Applied
            && crate::domain::refund_hook::unconfirmed(record)
        {
            let why = record
                .refund_hook
                .as_ref()
                .and_then(|h| h.detail.clone())
                .unwrap_or_default();
            if let Err(e) = self
                .notify(
                    record,
                    "refund_hook.unconfirmed_at_cutoff",
                    &format!(
                        "reached its cutoff without the partner's billing system confirming the refund ({why}): {action} applied instead"
                    ),
                )
                .await
            {
                tracing::error!(alert_id = %record.alert_id, error = %e, "unconfirmed refund not notified");
            }
        }
        if outcome.result == DecisionResult::Applied {
            if let Err(e) = self
                .notify(
                    record,
                    "alert.auto_actioned",
                    &format!("actioned {action} at the cutoff"),
                )
                .await
            {
                tracing::error!(alert_id = %record.alert_id, error = %e, "auto-action not notified");
            }
        }
        Ok(outcome.result)
    }

    /// Claims the warning unless it was sent already or another run holds a live claim; true
    /// when this call claimed it.
    async fn claim_warning(
        &self,
        alert_id: &str,
        claim: &PendingWarning,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut claimed = false;
        let now_iso = iso(now);
        update_alert_record(&*self.alerts, alert_id, |current| {
            claimed = false;
            let mut record = current?;
            if claim
                .labels
                .iter()
                .all(|l| record.warned_thresholds.contains(l))
            {
                return None;
            }
            if record
                .pending_warning
                .as_ref()
                .is_some_and(|p| p.until > now_iso)
            {
                return None;
            }
            record.pending_warning = Some(claim.clone());
            record.revision += 1;
            claimed = true;
            Some(record)
        })
        .await?;
        Ok(claimed)
    }

    /// Ends this run's claim: `sent` records the thresholds as warned; otherwise the claim is
    /// given back. A claim another run took over meanwhile is left alone.
    async fn settle_warning(
        &self,
        alert_id: &str,
        claim: &PendingWarning,
        sent: bool,
    ) -> Result<(), StoreError> {
        update_alert_record(&*self.alerts, alert_id, |current| {
            let mut record = current?;
            if record.pending_warning.as_ref() == Some(claim) {
                record.pending_warning = None;
            } else if !sent {
                return None;
            }
            if sent {
                for l in &claim.labels {
                    if !record.warned_thresholds.contains(l) {
                        record.warned_thresholds.push(l.clone());
                    }
                }
            }
            record.revision += 1;
            Some(record)
        })
        .await
        .map(|_| ())
    }

    async fn notify(&self, record: &AlertRecord, kind: &str, what: &str) -> Result<(), String> {
        let deadline = record
            .alert
            .action_required_deadline
            .map(iso)
            .unwrap_or_default();
        self.notifier
            .notify(&OpsNotification {
                kind: kind.into(),
                subject: format!("Alert {} {what}", record.alert_id),
                organisation_id: Some(record.alert.organisation_id.clone()),
                object_id: record.alert_id.clone(),
                status: Some(record.alert.status.to_string()),
                note: Some(format!("deadline {deadline}")),
                at: iso(self.clock.now()),
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Logs and notifies one index item that does not decode.
    pub(super) async fn report_undecodable(&self, item: &UndecodableItem) {
        tracing::error!(table = %item.table, key = %item.key, reason = %item.reason,
            "deadline-index item does not decode; skipped");
        let sent = self
            .notifier
            .notify(&OpsNotification {
                kind: "alert.undecodable_item".into(),
                subject: format!(
                    "Alert item {} in {} does not decode; the deadline sweep skips it",
                    item.key, item.table
                ),
                organisation_id: None,
                object_id: item.key.clone(),
                status: None,
                note: Some(item.reason.clone()),
                at: iso(self.clock.now()),
            })
            .await;
        if let Err(e) = sent {
            tracing::error!(error = %e, "could not notify an undecodable item");
        }
    }
}
