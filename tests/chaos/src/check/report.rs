//! What the checker answers: the violations per invariant, the counts of the last line, and the
//! table `bin/chaos` prints.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The alert, event, enrolment or `organisation_id/reference_id`.
    pub id: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantResult {
    pub name: String,
    /// How many objects were judged.
    pub checked: usize,
    pub violations: Vec<Violation>,
}

/// The counts of the last line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub events: usize,
    pub alerts: usize,
    pub orders: usize,
    pub lost: usize,
    pub missed_deadlines: usize,
    pub double_actions: usize,
    pub orders_duplicated: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub invariants: Vec<InvariantResult>,
    pub summary: Summary,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.invariants.iter().map(|i| i.violations.len()).sum()
    }

    pub fn ok(&self) -> bool {
        self.violations() == 0
    }

    /// The table `bin/chaos` prints: one row per invariant with the first few offending ids.
    pub fn table(&self) -> String {
        let width = self
            .invariants
            .iter()
            .map(|i| i.name.len())
            .max()
            .unwrap_or(9)
            .max(9);
        let mut out = format!(
            "{:<width$}  {:>7}  {:>10}  first offenders\n",
            "invariant", "checked", "violations"
        );
        for inv in &self.invariants {
            let first: Vec<String> = inv
                .violations
                .iter()
                .take(3)
                .map(|v| format!("{} ({})", v.id, v.detail))
                .collect();
            out.push_str(&format!(
                "{:<width$}  {:>7}  {:>10}  {}\n",
                inv.name,
                inv.checked,
                inv.violations.len(),
                first.join("; ")
            ));
        }
        out
    }

    /// `chaos: <n> events, <n> alerts, <n> orders, lost 0, missed deadlines 0, ...`.
    pub fn last_line(&self) -> String {
        let s = &self.summary;
        format!(
            "chaos: {} events, {} alerts, {} orders, lost {}, missed deadlines {}, double actions {}, orders duplicated {}",
            s.events, s.alerts, s.orders, s.lost, s.missed_deadlines, s.double_actions, s.orders_duplicated
        )
    }
}
