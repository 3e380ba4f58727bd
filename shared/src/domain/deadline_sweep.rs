//! The deadline sweep: no Ethoca alert passes its `action_required_deadline` unactioned.
//!
//! Each run queries the alerts table's sparse `deadline-index` (never a Scan) for Ethoca alerts
//! still ACTION_REQUIRED whose deadline falls within the widest warning threshold, soonest
//! first. For each one:
//! - inside the cutoff: apply the organisation's default action through the ONE shared
//!   `decision::apply_action` (re-fetches the alert first, records the reason in the audit trail);
//! - inside a warning threshold not yet warned: record the threshold in `warned_thresholds`
//!   (an optimistic conditional write on the alert item, so two sweeps cannot both warn) and
//!   notify operations.
//!
//! RDR and resolved alerts never enter the index; the sweep checks again anyway and leaves
//! them alone.

use super::alert_record::{update_alert_record, AlertRecord};
use super::decision::{apply_action, ActionRequest, DecisionResult, DecisionSource};
use crate::clock::Clock;
use crate::models::alert::AlertAction;
use crate::ports::alert_api::AlertApi;
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::PolicySource;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// One warning threshold, e.g. `24h` before the deadline. The label is what is stored in
/// `warned_thresholds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    pub label: String,
    pub before: Duration,
}

impl Threshold {
    /// Parses `48h,24h,4h`.
    pub fn parse_list(raw: &str) -> Result<Vec<Threshold>, String> {
        let mut list = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|label| {
                let d = super::rate_limit::parse_duration(label)?;
                Ok(Threshold {
                    label: label.to_string(),
                    before: Duration::from_std(d).map_err(|e| e.to_string())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        list.sort_by(|a, b| b.before.cmp(&a.before));
        Ok(list)
    }
}

#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Widest first.
    pub thresholds: Vec<Threshold>,
    /// Overrides every organisation's `cutoff_minutes_before_deadline` when set.
    pub cutoff: Option<Duration>,
    /// The action when the organisation's policy names no `cutoff_action`.
    pub default_action: AlertAction,
    /// Most alerts one run reads from the index.
    pub max_alerts: i32,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            thresholds: Threshold::parse_list("48h,24h,4h").expect("static thresholds"),
            cutoff: None,
            default_action: AlertAction::AcceptDispute,
            max_alerts: 10_000,
        }
    }
}

/// What the sweep should do with one alert now (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepStep {
    /// Inside the cutoff: apply the default action.
    Act,
    /// Warn once, for the tightest threshold crossed; `labels` are all thresholds crossed and
    /// not yet warned (recorded together, so an alert that arrives late gets one warning).
    Warn {
        tightest: String,
        labels: Vec<String>,
    },
    Nothing,
}

pub fn select(
    record: &AlertRecord,
    now: DateTime<Utc>,
    thresholds: &[Threshold],
    cutoff: Duration,
) -> SweepStep {
    if !record.alert.is_actionable() || record.informational || record.has_final_decision() {
        return SweepStep::Nothing;
    }
    let Some(left) = record.alert.time_to_deadline(now) else {
        return SweepStep::Nothing;
    };
    if left <= cutoff {
        return SweepStep::Act;
    }
    let labels: Vec<String> = thresholds
        .iter()
        .filter(|t| left <= t.before && !record.warned_thresholds.contains(&t.label))
        .map(|t| t.label.clone())
        .collect();
    match thresholds
        .iter()
        .filter(|t| labels.contains(&t.label))
        .min_by_key(|t| t.before)
    {
        Some(tightest) => SweepStep::Warn {
            tightest: tightest.label.clone(),
            labels,
        },
        None => SweepStep::Nothing,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Items the index query returned.
    pub read: usize,
    pub warned: usize,
    pub actioned: usize,
    /// Re-fetch showed it resolved (or not Ethoca): nothing sent.
    pub not_actionable: usize,
    /// The PATCH got a 422.
    pub rejected: usize,
    /// Failed this run (API or store trouble); tried again next run.
    pub errors: usize,
}

pub struct DeadlineSweep {
    pub alerts: Arc<dyn AlertStore>,
    pub api: Arc<dyn AlertApi>,
    pub notifier: Arc<dyn Notifier>,
    pub policies: Arc<dyn PolicySource>,
    pub clock: Arc<dyn Clock>,
    pub config: SweepConfig,
}

impl DeadlineSweep {
    /// The widest horizon any alert can need attention within.
    fn horizon(&self) -> Duration {
        let widest = self
            .config
            .thresholds
            .iter()
            .map(|t| t.before)
            .max()
            .unwrap_or_else(Duration::zero);
        // Policies may set cutoffs wider than the thresholds; 7 days covers Ethoca's windows.
        widest.max(self.config.cutoff.unwrap_or_else(|| Duration::hours(48)))
    }

    pub async fn run(&self) -> Result<SweepReport, StoreError> {
        let now = self.clock.now();
        let due = self
            .alerts
            .awaiting_action_until(&iso(now + self.horizon()), self.config.max_alerts)
            .await?;
        let mut report = SweepReport {
            read: due.len(),
            ..Default::default()
        };
        for record in due {
            if let Err(e) = self.sweep_one(&record, now, &mut report).await {
                report.errors += 1;
                tracing::error!(alert_id = %record.alert_id, error = %e, "deadline sweep could not handle an alert");
            }
        }
        tracing::info!(
            read = report.read,
            warned = report.warned,
            actioned = report.actioned,
            not_actionable = report.not_actionable,
            rejected = report.rejected,
            errors = report.errors,
            "deadline sweep finished"
        );
        Ok(report)
    }

    async fn sweep_one(
        &self,
        record: &AlertRecord,
        now: DateTime<Utc>,
        report: &mut SweepReport,
    ) -> Result<(), String> {
        let org = record.alert.organisation_id.clone();
        let policy = self
            .policies
            .policy_for(&org)
            .await
            .map_err(|e| e.to_string())?;
        let cutoff = self
            .config
            .cutoff
            .unwrap_or_else(|| Duration::minutes(policy.cutoff_minutes_before_deadline.max(0)));
        match select(record, now, &self.config.thresholds, cutoff) {
            SweepStep::Nothing => Ok(()),
            SweepStep::Warn { tightest, labels } => {
                if self
                    .claim_warning(&record.alert_id, &labels)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    let sent = self
                        .notify(
                            record,
                            "alert.deadline_warning",
                            &format!("within {tightest} of its deadline"),
                        )
                        .await;
                    if let Err(e) = sent {
                        // Give the threshold back so the next run warns again.
                        let _ = self.release_warning(&record.alert_id, &labels).await;
                        return Err(e);
                    }
                    report.warned += 1;
                }
                Ok(())
            }
            SweepStep::Act => {
                let action = policy
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
                    note: policy.note.clone(),
                    source: DecisionSource::Sweep,
                    actor: "deadline-sweep".into(),
                    reason: format!(
                        "no decision {} min before the deadline {deadline} (cutoff {} min): organisation default {action}",
                        left.num_minutes(),
                        cutoff.num_minutes()
                    ),
                };
                let outcome = apply_action(
                    &*self.api,
                    &*self.alerts,
                    &*self.notifier,
                    &*self.clock,
                    request,
                )
                .await
                .map_err(|e| e.to_string())?;
                match outcome.result {
                    DecisionResult::Applied => {
                        report.actioned += 1;
                        let _ = self
                            .notify(
                                record,
                                "alert.auto_actioned",
                                &format!("actioned {action} at the cutoff"),
                            )
                            .await;
                    }
                    DecisionResult::Rejected => report.rejected += 1,
                    _ => report.not_actionable += 1,
                }
                Ok(())
            }
        }
    }

    /// Adds the labels to `warned_thresholds` unless another sweep already did; true when this
    /// call added them.
    async fn claim_warning(&self, alert_id: &str, labels: &[String]) -> Result<bool, StoreError> {
        let mut claimed = false;
        update_alert_record(&*self.alerts, alert_id, |current| {
            claimed = false;
            let mut record = current?;
            if labels.iter().all(|l| record.warned_thresholds.contains(l)) {
                return None;
            }
            for l in labels {
                if !record.warned_thresholds.contains(l) {
                    record.warned_thresholds.push(l.clone());
                }
            }
            record.revision += 1;
            claimed = true;
            Some(record)
        })
        .await?;
        Ok(claimed)
    }

    async fn release_warning(&self, alert_id: &str, labels: &[String]) -> Result<(), StoreError> {
        update_alert_record(&*self.alerts, alert_id, |current| {
            let mut record = current?;
            record.warned_thresholds.retain(|l| !labels.contains(l));
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
}

#[cfg(test)]
mod tests;
