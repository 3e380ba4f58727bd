//! Where reconciliation of one organisation stands between runs, as kept in the `cursors` table.
//! The rules that move it are in `domain::reconcile`; `ports::reconcile_cursors` stores it.

use serde::{Deserialize, Serialize};

/// Which part of a pass an organisation is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Between passes: the next run starts a new one.
    #[default]
    Done,
    Alerts,
    Enrolments,
}

/// Where an organisation's reconciliation stands (one item in the `cursors` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileCursor {
    /// `reconcile#<organisation_id>`.
    pub cursor_id: String,
    pub organisation_id: String,
    pub phase: Phase,
    /// Alerts: the next page starts at alerts received at or after this (ISO 8601)...
    #[serde(default)]
    pub received_from: Option<String>,
    /// ...skipping this many received at exactly that time (already read).
    #[serde(default)]
    pub received_skip: u32,
    /// Enrolments: the next page's offset.
    #[serde(default)]
    pub enrolment_offset: u32,
    #[serde(default)]
    pub pass_started_at: Option<String>,
    #[serde(default)]
    pub last_pass_completed_at: Option<String>,
    #[serde(default)]
    pub passes_completed: u64,
    pub updated_at: String,
}

impl ReconcileCursor {
    /// The table key (`cursor_id`) of an organisation's cursor.
    pub fn id_of(organisation_id: &str) -> String {
        format!("reconcile#{organisation_id}")
    }
}
