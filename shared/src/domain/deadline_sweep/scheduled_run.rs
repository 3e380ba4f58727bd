//! One scheduled run of the deadline-sweep function, in priority order within its budget:
//! 1. every organisation's policy, read once (invalid ones and undecodable customer items are
//!    notified and skipped; the default applies);
//! 2. the sweep: act on alerts past their cutoff, then warn, soonest deadline first;
//! 3. reconciliation with the time left, resuming each organisation from its stored cursor;
//! 4. when reconciliation stored alerts we did not hold, one more sweep pass so they are
//!    warned about or acted on in this run rather than the next.

use super::{DeadlineSweep, RunBudget, SweepReport};
use crate::domain::alert_policy::PolicyLoadProblem;
use crate::domain::reconcile::{ReconcileReport, Reconciler};
use crate::ports::event_log::iso;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    /// None when reconciliation is off.
    pub reconcile: Option<ReconcileReport>,
    pub sweep: SweepReport,
    /// Customer items or policies that could not be used (the default applied).
    pub policy_problems: usize,
    /// The index query failed: nothing was swept this run.
    pub sweep_failed: bool,
}

impl RunReport {
    pub fn errors(&self) -> usize {
        self.sweep.errors
            + self.reconcile.as_ref().map(|r| r.errors).unwrap_or(0)
            + usize::from(self.sweep_failed)
    }
}

pub struct ScheduledSweep {
    pub sweep: DeadlineSweep,
    /// None: reconciliation is off.
    pub reconciler: Option<Reconciler>,
    /// Organisations to reconcile besides every onboarded customer's.
    pub extra_organisations: Vec<String>,
}

impl ScheduledSweep {
    pub async fn run(&self, budget: &RunBudget) -> RunReport {
        let load = self
            .sweep
            .policies
            .load(self.sweep.config.max_customers)
            .await;
        let mut report = RunReport {
            policy_problems: load.problems.len(),
            ..Default::default()
        };
        for problem in &load.problems {
            self.report_policy_problem(problem).await;
        }

        match self.sweep.run(&load, budget).await {
            Ok(sweep) => report.sweep = sweep,
            Err(e) => {
                report.sweep_failed = true;
                tracing::error!(error = %e, "deadline sweep could not read the deadline-index");
            }
        }

        let Some(reconciler) = &self.reconciler else {
            return report;
        };
        let organisations: Vec<String> = load
            .organisations
            .iter()
            .chain(&self.extra_organisations)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let reconciled = reconciler.run(&organisations, budget).await;
        let found_new = !reconciled.recovered.is_empty();
        report.reconcile = Some(reconciled);
        if found_new && budget.has_time() {
            match self.sweep.run(&load, budget).await {
                Ok(again) => report.sweep.add(&again),
                Err(e) => {
                    tracing::error!(error = %e, "second sweep pass could not read the deadline-index")
                }
            }
        }
        report
    }

    async fn report_policy_problem(&self, problem: &PolicyLoadProblem) {
        let notification = problem.notification(iso(self.sweep.clock.now()));
        tracing::error!(kind = %notification.kind, object_id = %notification.object_id,
            reason = ?notification.note, "customer record not usable");
        if let Err(e) = self.sweep.notifier.notify(&notification).await {
            tracing::error!(error = %e, "could not notify a customer record problem");
        }
    }
}
