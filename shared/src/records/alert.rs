//! An alert as kept in the `alerts` table: the API's view, our decisions (the audit trail) and
//! the one action claim. The rules that write it are in `domain::alert_record` (merging fetched
//! views) and `domain::decision` (actioning); `ports::alert_store` stores it.

use crate::models::alert::{Alert, AlertAction};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The value of the sparse `action_queue` attribute (pk of `deadline-index`) while an Ethoca
/// alert is ACTION_REQUIRED; absent otherwise, so resolved alerts leave the index.
pub const ACTION_QUEUE: &str = "ETHOCA_ACTION_REQUIRED";

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionSource {
    /// The organisation's decision policy, applied when the alert arrived.
    AutoPolicy,
    /// A person through the ops API.
    Operator,
    /// The deadline sweep's default at the cutoff.
    Sweep,
    /// Not ours: the API showed the alert resolved by someone else.
    Observed,
}

/// What came of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionResult {
    /// The PATCH was accepted.
    Applied,
    /// The PATCH got a 422 and the re-fetch showed the alert no longer actionable (e.g. it was
    /// resolved meanwhile): recorded as final, not retried.
    Rejected,
    /// The PATCH got a 422 (or was refused before sending, e.g. a note our validation refuses)
    /// but the re-fetch shows the alert still ACTION_REQUIRED: NOT final. The alert stays in the
    /// action queue (deadline-index, sweep, ops queue) and a person is notified with the code.
    RefusedStillWaiting,
    /// The re-fetch showed the alert no longer ACTION_REQUIRED (or not Ethoca): nothing sent.
    NotActionable,
    /// The policy chose no automatic action: a person (or the sweep at the cutoff) decides.
    LeftForPerson,
    /// The alert was resolved without an action recorded here.
    ResolvedElsewhere,
}

impl DecisionResult {
    /// Final results end the alert's life in the action queue.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            DecisionResult::LeftForPerson | DecisionResult::RefusedStillWaiting
        )
    }
}

/// One entry of an alert's `decisions` audit list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// ISO 8601 UTC.
    pub at: String,
    pub source: DecisionSource,
    /// The policy name, the operator's id, or `deadline-sweep`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AlertAction>,
    pub reason: String,
    /// The customer-facing note sent with the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub result: DecisionResult,
    /// e.g. the 422's error code, or the status the re-fetch found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The one claim every caller of `domain::decision::apply_action` takes before it re-fetches
/// and PATCHes: at most one holder acts on an alert at a time. Held until `until`; a holder
/// that crashed leaves it to expire, and the next holder re-fetches the alert first, so an
/// action that did land is never sent twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionClaim {
    /// A token unique to one `apply_action` call.
    pub owner: String,
    pub source: DecisionSource,
    /// Who asked (policy name, operator id, `deadline-sweep`), for the "in progress" message.
    pub actor: String,
    /// ISO 8601 UTC; the claim is void after this.
    pub until: String,
}

impl ActionClaim {
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.until
            .parse::<DateTime<Utc>>()
            .is_ok_and(|until| now < until)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Table key (= `alert.id`).
    pub alert_id: String,
    /// Every field as last fetched from the API, stored top-level (GSI keys among them).
    #[serde(flatten)]
    pub alert: Alert,
    pub version_key: String,
    pub fetched_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_queue: Option<String>,
    /// The audit trail: every decision, automatic or not, with its reason and source.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// Deadline warnings already sent (owned by the deadline sweep).
    #[serde(default)]
    pub warned_thresholds: Vec<String>,
    /// A deadline warning claimed by a sweep and not yet confirmed sent (owned by the deadline
    /// sweep): once `until` has passed, a later run sends it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_warning: Option<PendingWarning>,
    /// RDR alerts: stored for information, never actioned.
    #[serde(default)]
    pub informational: bool,
    /// Set while someone is actioning the alert (`domain::decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_claim: Option<ActionClaim>,
    /// When operations were told that this actionable Ethoca alert has no
    /// `action_required_deadline` (so the sweep cannot act on it): told once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_deadline_notified_at: Option<String>,
    /// The match to the partner's transaction, its evidence and the rule that decided
    /// (`domain::matching`), written when the policy looks at the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_match: Option<crate::records::matching::MatchRecord>,
    /// The refund asked of the partner's billing system before a REFUND is sent
    /// (`domain::refund_hook`): state, reference or reason, attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_hook: Option<crate::records::refund_hook::RefundHookRecord>,
    /// Optimistic-concurrency counter, +1 on every write.
    pub revision: u64,
}

/// A deadline warning being sent: the thresholds it covers, and until when the run that claimed
/// it may still send it (its invocation's deadline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWarning {
    pub labels: Vec<String>,
    pub tightest: String,
    /// ISO 8601 UTC.
    pub until: String,
}

impl AlertRecord {
    /// Whether any decision already produced (or found) a final outcome.
    pub fn has_final_decision(&self) -> bool {
        self.decisions.iter().any(|d| d.result.is_final())
    }

    /// The first final decision, if any.
    pub fn final_decision(&self) -> Option<&Decision> {
        self.decisions.iter().find(|d| d.result.is_final())
    }

    /// Whether the alert is a person's to decide: the policy left it to one, or an action was
    /// refused while the alert kept waiting (a person was told with the code). The automatic
    /// policy does not try again on later events; a person, or the sweep at the cutoff, does.
    pub fn was_left_for_person(&self) -> bool {
        self.decisions.iter().any(|d| {
            matches!(
                d.result,
                DecisionResult::LeftForPerson | DecisionResult::RefusedStillWaiting
            )
        })
    }

    /// The action claim, if someone else holds it at `now`.
    pub fn live_claim(&self, now: DateTime<Utc>) -> Option<&ActionClaim> {
        self.action_claim.as_ref().filter(|c| c.is_live_at(now))
    }

    /// An Ethoca alert waiting for an action that the deadline sweep cannot see coming: the API
    /// gave it no `action_required_deadline`.
    pub fn waits_without_deadline(&self) -> bool {
        self.action_queue.is_some() && self.alert.action_required_deadline.is_none()
    }
}
