//! Our own bookkeeping on an alert or enrolment record: what neither ChargebackStop nor the
//! webhook archive holds, so a rebuild of the tables (`domain::recovery::rebuild`) could not get
//! it back by re-fetching. Every write of a record also writes this part of it to the
//! bookkeeping journal (`ports::bookkeeping_journal`), in the same request; a rebuild restores
//! it from there.
//!
//! What is NOT here, and why: the API's view (`alert`, `enrolment`, and what derives from it:
//! `version_key`, `action_queue`, `informational`, `live`) comes back by re-fetching;
//! `fetched_at` is when we fetched, so a re-fetch sets it anew; the match (`alert_match`) is
//! computed again by the same code from the partner's transactions (`domain::matching`), so
//! only its `matched_at` differs: the journal says only whether the record had one
//! (`has_match`; process-events matches an alert only when its policy looks at it, so a rebuild
//! must not match the others); `revision` is the optimistic-write counter of the item, which
//! restarts with the item (the journal keeps it to tell which write it mirrors).

use super::alert::{ActionClaim, AlertRecord, Decision, PendingWarning};
use super::enrolment::{EnrolmentRecord, StatusChange};
use super::refund_hook::RefundHookRecord;
use serde::{Deserialize, Serialize};

/// The bookkeeping of an alert record (`AlertRecord`'s fields of the same names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBookkeeping {
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub warned_thresholds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_warning: Option<PendingWarning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_deadline_notified_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_claim: Option<ActionClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_hook: Option<RefundHookRecord>,
    /// Whether the record carried a match (`alert_match`); not put back by `put_on`: a rebuild
    /// matches again where it did (`domain::recovery::rebuild`).
    #[serde(default)]
    pub has_match: bool,
}

/// The bookkeeping of an enrolment record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentBookkeeping {
    #[serde(default)]
    pub status_history: Vec<StatusChange>,
}

/// One journal entry: a record's bookkeeping as of the write of `revision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journaled<T> {
    pub bookkeeping: T,
    /// The record's `revision` this entry was written with.
    pub revision: u64,
}

impl AlertBookkeeping {
    pub fn of(record: &AlertRecord) -> Self {
        Self {
            decisions: record.decisions.clone(),
            warned_thresholds: record.warned_thresholds.clone(),
            pending_warning: record.pending_warning.clone(),
            no_deadline_notified_at: record.no_deadline_notified_at.clone(),
            action_claim: record.action_claim.clone(),
            refund_hook: record.refund_hook.clone(),
            has_match: record.alert_match.is_some(),
        }
    }

    /// Puts this bookkeeping on `record`, replacing what it has. A final decision among it
    /// takes the alert off the action queue, as recording it did (`with_decision`), whatever
    /// the view says.
    pub fn put_on(&self, record: &mut AlertRecord) {
        record.decisions = self.decisions.clone();
        record.warned_thresholds = self.warned_thresholds.clone();
        record.pending_warning = self.pending_warning.clone();
        record.no_deadline_notified_at = self.no_deadline_notified_at.clone();
        record.action_claim = self.action_claim.clone();
        record.refund_hook = self.refund_hook.clone();
        if record.has_final_decision() {
            record.action_queue = None;
        }
    }

    /// This (older, journaled) bookkeeping with what `record` gained since: its decisions and
    /// warnings that this does not hold appended; each single field this one's, or the
    /// record's where this has none.
    pub fn merged_with(&self, record: &AlertRecord) -> Self {
        let mut merged = self.clone();
        for d in &record.decisions {
            if !merged.decisions.contains(d) {
                merged.decisions.push(d.clone());
            }
        }
        for w in &record.warned_thresholds {
            if !merged.warned_thresholds.contains(w) {
                merged.warned_thresholds.push(w.clone());
            }
        }
        or(&mut merged.pending_warning, &record.pending_warning);
        or(
            &mut merged.no_deadline_notified_at,
            &record.no_deadline_notified_at,
        );
        or(&mut merged.action_claim, &record.action_claim);
        or(&mut merged.refund_hook, &record.refund_hook);
        merged.has_match |= record.alert_match.is_some();
        merged
    }
}

/// `a`, or `b` where `a` has none.
fn or<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
    if a.is_none() {
        *a = b.clone();
    }
}

impl EnrolmentBookkeeping {
    pub fn of(record: &EnrolmentRecord) -> Self {
        Self {
            status_history: record.status_history.clone(),
        }
    }

    pub fn put_on(&self, record: &mut EnrolmentRecord) {
        record.status_history = self.status_history.clone();
    }

    /// This (older, journaled) history with the record's changes it does not hold (the same
    /// status at the same time is the same change, whichever event led to it) appended.
    pub fn merged_with(&self, record: &EnrolmentRecord) -> Self {
        let mut merged = self.clone();
        for c in &record.status_history {
            if !merged
                .status_history
                .iter()
                .any(|h| h.status == c.status && h.at == c.at)
            {
                merged.status_history.push(c.clone());
            }
        }
        merged
    }
}
