//! The deadline sweep: no Ethoca alert passes its `action_required_deadline` unactioned.
//!
//! Each run reads every organisation's policy once ([`PolicyCatalogue::load`]), then queries
//! the alerts table's sparse `deadline-index` (never a Scan) for Ethoca alerts still
//! ACTION_REQUIRED whose deadline falls within the horizon (the widest warning threshold or
//! policy cutoff), soonest first. Alerts past their cutoff are handled first, then warnings,
//! each soonest deadline first, a few at a time, and only while the run's [`RunBudget`] lasts:
//! - inside the cutoff: apply the organisation's default action through the ONE shared
//!   `decision::apply_action` (re-fetches the alert first, records the reason in the audit trail);
//! - inside a warning threshold not yet warned: claim the warning on the alert item
//!   (`pending_warning`, held until the run's end, so two sweeps cannot both warn), notify
//!   operations, then record the thresholds in `warned_thresholds`. A warning whose notify
//!   failed and whose claim could not be given back is sent by a later run once the claim
//!   has expired.
//!
//! - a refund the partner's billing system has not confirmed yet (`refund_hook` PENDING, see
//!   `domain::refund_hook`), before the cutoff: ask the hook again (same idempotency key, under
//!   the action claim); at the cutoff the cutoff action applies and a person is told the refund
//!   was never confirmed (`refund_hook.unconfirmed_at_cutoff`).
//!
//! RDR and resolved alerts never enter the index; the sweep checks again anyway and leaves
//! them alone. An index item that does not decode is skipped and reported, never the end of
//! the run.

mod alert_steps;
mod budget;
mod scheduled_run;

pub use budget::RunBudget;
pub use scheduled_run::{RunReport, ScheduledSweep};

use super::alert_policy::{AlertPolicy, PolicyLoad};
use super::alert_record::{update_alert_record, AlertRecord, PendingWarning};
use super::decision::{apply_action, ActionRequest, DecisionError, DecisionResult, DecisionSource};
use crate::clock::Clock;
use crate::models::alert::AlertAction;
use crate::ports::alert_api::AlertApi;
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::PolicyCatalogue;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, OpsNotification};
use crate::ports::store_error::{StoreError, UndecodableItem};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
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
    /// Alerts handled at the same time (API calls in flight).
    pub concurrency: usize,
    /// Most customer records one run reads for policies.
    pub max_customers: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            thresholds: Threshold::parse_list("48h,24h,4h").expect("static thresholds"),
            cutoff: None,
            default_action: AlertAction::AcceptDispute,
            max_alerts: 10_000,
            concurrency: 4,
            max_customers: 10_000,
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
    /// Index items that do not decode: skipped and reported.
    pub skipped_items: usize,
    /// Due work not started because the run's time was up: the next run takes it first.
    pub deferred: usize,
    /// Work abandoned in flight at the run's end: the next run resumes it.
    pub interrupted: usize,
    /// Due alerts someone else was actioning (their claim held) or had decided already: nothing
    /// sent, and not an error.
    pub decided_elsewhere: usize,
    /// Pending refund-hook refunds asked again (whatever the answer).
    pub refund_hook_retried: usize,
}

impl SweepReport {
    /// Adds another pass's counts to this one.
    pub fn add(&mut self, other: &SweepReport) {
        self.read += other.read;
        self.warned += other.warned;
        self.actioned += other.actioned;
        self.not_actionable += other.not_actionable;
        self.rejected += other.rejected;
        self.errors += other.errors;
        self.skipped_items += other.skipped_items;
        self.deferred = other.deferred;
        self.interrupted += other.interrupted;
        self.decided_elsewhere += other.decided_elsewhere;
        self.refund_hook_retried += other.refund_hook_retried;
    }
}

#[derive(Clone)]
pub struct DeadlineSweep {
    pub alerts: Arc<dyn AlertStore>,
    pub api: Arc<dyn AlertApi>,
    pub notifier: Arc<dyn Notifier>,
    pub policies: Arc<dyn PolicyCatalogue>,
    pub clock: Arc<dyn Clock>,
    pub config: SweepConfig,
    /// Asks pending refund hooks again before the cutoff; `None`: they wait for the cutoff.
    pub refund_first: Option<Arc<crate::domain::refund_hook::RefundFirst>>,
}

/// One piece of due work, with the policy that applies.
struct Work {
    record: AlertRecord,
    policy: AlertPolicy,
    cutoff: Duration,
    step: SweepStep,
    /// Ask the refund hook again (a pending refund, before the cutoff).
    retry_refund: bool,
}

/// What came of one piece of work.
enum Outcome {
    Nothing,
    Warned,
    WarningInFlight,
    Decided(DecisionResult),
    /// A pending refund asked again; the decision's result when it was actioned.
    RefundRetried(Option<DecisionResult>),
    /// An operator or the automatic policy holds the alert's action claim right now: nothing
    /// sent, not an error; the next run looks again if it is still waiting.
    ClaimedElsewhere,
    /// Decided already (by someone else since the index copy was read): nothing sent.
    AlreadyDecided,
    Failed(String),
}

/// Policies of one run: the loaded ones, and each other organisation looked up at most once.
struct RunPolicies<'a> {
    load: &'a PolicyLoad,
    source: &'a dyn PolicyCatalogue,
    looked_up: HashMap<String, AlertPolicy>,
}

impl RunPolicies<'_> {
    async fn of(&mut self, organisation_id: &str) -> Result<AlertPolicy, StoreError> {
        if let Some(p) = self.load.by_organisation.get(organisation_id) {
            return Ok(p.clone());
        }
        if self.load.complete {
            return Ok(self.load.default.clone());
        }
        if let Some(p) = self.looked_up.get(organisation_id) {
            return Ok(p.clone());
        }
        let p = self.source.lookup(organisation_id).await?;
        self.looked_up
            .insert(organisation_id.to_string(), p.clone());
        Ok(p)
    }
}

impl DeadlineSweep {
    /// The widest horizon any alert can need attention within: the widest warning threshold,
    /// and the cutoff override or else every loaded policy's cutoff.
    pub fn horizon(&self, load: &PolicyLoad) -> Duration {
        let widest = self
            .config
            .thresholds
            .iter()
            .map(|t| t.before)
            .max()
            .unwrap_or_else(Duration::zero);
        widest.max(self.config.cutoff.unwrap_or_else(|| load.widest_cutoff()))
    }

    /// One pass over the due alerts within `budget`.
    pub async fn run(
        &self,
        load: &PolicyLoad,
        budget: &RunBudget,
    ) -> Result<SweepReport, StoreError> {
        let now = self.clock.now();
        let until = now
            .checked_add_signed(self.horizon(load))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (due, skipped) = self
            .alerts
            .awaiting_action_each(&iso(until), self.config.max_alerts)
            .await?;
        let mut report = SweepReport {
            read: due.len(),
            skipped_items: skipped.len(),
            ..Default::default()
        };
        for item in &skipped {
            self.report_undecodable(item).await;
        }

        // Plan: what each alert needs, with its organisation's policy (read once per run).
        let mut policies = RunPolicies {
            load,
            source: &*self.policies,
            looked_up: HashMap::new(),
        };
        let mut acts = Vec::new();
        let mut retries = Vec::new();
        let mut warnings = Vec::new();
        for record in due {
            let policy = match policies.of(&record.alert.organisation_id).await {
                Ok(p) => p,
                Err(e) => {
                    report.errors += 1;
                    tracing::error!(alert_id = %record.alert_id, error = %e, "no policy for the alert's organisation this run");
                    continue;
                }
            };
            let cutoff = self.config.cutoff.unwrap_or_else(|| policy.cutoff());
            let step = select(&record, now, &self.config.thresholds, cutoff);
            if step != SweepStep::Act
                && self.refund_first.is_some()
                && policy.refund_hook.is_some()
                && !record.has_final_decision()
                && crate::domain::refund_hook::needs_retry(&record, now)
            {
                retries.push(Work {
                    record: record.clone(),
                    policy: policy.clone(),
                    cutoff,
                    step: SweepStep::Nothing,
                    retry_refund: true,
                });
            }
            let work = Work {
                record,
                policy,
                cutoff,
                step,
                retry_refund: false,
            };
            match work.step {
                SweepStep::Act => acts.push(work),
                SweepStep::Warn { .. } => warnings.push(work),
                SweepStep::Nothing => {}
            }
        }

        // Past the cutoff first, then pending refunds, then warnings; the index gives each list
        // soonest first.
        let mut queue = acts.into_iter().chain(retries).chain(warnings);
        let mut in_flight = tokio::task::JoinSet::new();
        let concurrency = self.config.concurrency.max(1);
        loop {
            while in_flight.len() < concurrency && budget.has_time() {
                let Some(work) = queue.next() else { break };
                let this = self.clone();
                let ends_at = budget.ends_at;
                let cut_at = budget.cut_at;
                in_flight.spawn(async move {
                    let id = work.record.alert_id.clone();
                    let outcome =
                        tokio::time::timeout_at(cut_at, this.handle(work, now, ends_at)).await;
                    (id, outcome)
                });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            match joined {
                Ok((_, Ok(Outcome::Warned))) => report.warned += 1,
                Ok((_, Ok(Outcome::WarningInFlight | Outcome::Nothing))) => {}
                Ok((_, Ok(Outcome::Decided(DecisionResult::Applied)))) => report.actioned += 1,
                Ok((_, Ok(Outcome::Decided(DecisionResult::Rejected)))) => report.rejected += 1,
                Ok((_, Ok(Outcome::Decided(_)))) => report.not_actionable += 1,
                Ok((_, Ok(Outcome::RefundRetried(result)))) => {
                    report.refund_hook_retried += 1;
                    if result == Some(DecisionResult::Applied) {
                        report.actioned += 1;
                    }
                }
                Ok((_, Ok(Outcome::ClaimedElsewhere | Outcome::AlreadyDecided))) => {
                    report.decided_elsewhere += 1
                }
                Ok((id, Ok(Outcome::Failed(e)))) => {
                    report.errors += 1;
                    tracing::error!(alert_id = %id, error = %e, "deadline sweep could not handle an alert");
                }
                Ok((id, Err(_elapsed))) => {
                    report.interrupted += 1;
                    tracing::warn!(alert_id = %id, "deadline sweep ran out of time with this alert in flight; the next run resumes it");
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::error!(error = %e, "deadline sweep task failed");
                }
            }
        }
        report.deferred = queue.count();
        if report.deferred > 0 {
            tracing::warn!(
                deferred = report.deferred,
                "deadline sweep out of time; the next run starts with the soonest of these"
            );
        }
        tracing::info!(
            read = report.read,
            warned = report.warned,
            actioned = report.actioned,
            not_actionable = report.not_actionable,
            rejected = report.rejected,
            errors = report.errors,
            skipped_items = report.skipped_items,
            deferred = report.deferred,
            interrupted = report.interrupted,
            decided_elsewhere = report.decided_elsewhere,
            "deadline sweep pass finished"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
