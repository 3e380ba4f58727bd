//! Actioning an Ethoca alert, with its audit trail. `apply_action` is the ONE way anything in
//! the platform actions an alert: the automatic policy (process-events), an operator (ops API)
//! and the deadline sweep all call it, so every action takes the same claim, is re-checked
//! against the API first, and every outcome lands in the alert's `decisions` list with its
//! reason and source.
//!
//! ## One claim per alert
//! Before anything is sent, `apply_action` takes the alert record's `action_claim`
//! (`{owner, source, actor, until}`) with a conditional write after a consistent read
//! (`AlertStore::get` is a strongly consistent GetItem; `put` succeeds only if the revision read
//! is still the stored one). The claim is refused when a final decision is already recorded
//! (`DecisionError::AlreadyDecided`) or another holder's claim has not expired
//! (`DecisionError::ClaimHeld`). So the policy, an operator and the sweep racing on one alert
//! send one PATCH, and the sweep, which finds alerts through the eventually consistent
//! `deadline-index`, acts only on what the table itself says. The claim becomes the decision
//! (the same write records the decision and clears it) or is released on failure. A holder
//! that crashed leaves its claim to expire after `ACTION_CLAIM_TTL` (the sweep takes over a
//! sweep's claim at once: one sweep runs at a time, so it is an earlier run's); whoever takes it over
//! re-fetches the alert from the API after claiming (every holder does), so an action that did
//! land is seen and never sent twice. Should a PATCH whose answer was lost land after the next
//! holder's re-fetch, ChargebackStop itself answers the second PATCH with 422 (a resolved alert
//! cannot be actioned), which is recorded as final below.
//!
//! ## A 422 is final only if the alert stopped waiting
//! A 422 (or a request our validation refused before sending, mapped to the same
//! `Unprocessable`) is followed by a re-fetch. No longer ACTION_REQUIRED → `Rejected`, final.
//! Still ACTION_REQUIRED (or the re-fetch failed, so we cannot tell) → `RefusedStillWaiting`,
//! not final: the alert stays in `action_queue` (deadline-index, the sweep, the ops queue) and
//! a person is notified at once with the code (`alert.action_refused`). The automatic policy
//! then leaves the alert to a person (`AlertRecord::was_left_for_person`); an operator or the
//! sweep at the cutoff may try again.

use super::alert_record::{overlay, record_decision, store_fetched_alert, update_alert_record};
use crate::clock::Clock;
use crate::models::alert::{Alert, AlertAction, UpdateAlert};
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, NotifyError, OpsNotification};
use crate::ports::store_error::StoreError;
use chrono::Duration;

use crate::records::alert::AlertRecord;
pub use crate::records::alert::{ActionClaim, Decision, DecisionResult, DecisionSource};

/// How long an action claim holds. Longer than one `apply_action` can take (two GETs and a
/// PATCH, each at most the client's 20 s retry budget plus its 10 s timeout, and a few writes),
/// so a live holder never loses it mid-call; short enough that a crashed holder blocks the
/// alert for minutes, well inside any cutoff.
pub const ACTION_CLAIM_TTL: Duration = Duration::minutes(3);

/// What a caller asks `apply_action` to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    pub alert_id: String,
    pub action: AlertAction,
    /// Customer-facing note saved on the alert with the action.
    pub note: Option<String>,
    pub source: DecisionSource,
    pub actor: String,
    pub reason: String,
}

/// What happened, and the alert as stored afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionReport {
    pub result: DecisionResult,
    pub record: Option<AlertRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The refusal was recorded nowhere yet: the notification failed first (retry: the PATCH
    /// is refused again and the person told again, never an action sent twice).
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// A final decision is recorded for this alert already: nothing sent.
    #[error("alert {alert_id} already has a final decision ({result:?} by {actor} at {at}): nothing sent")]
    AlreadyDecided {
        alert_id: String,
        result: DecisionResult,
        actor: String,
        at: String,
    },
    /// Someone else is actioning this alert right now: nothing sent; try again after `until`.
    #[error(
        "alert {alert_id} is being actioned by {actor} ({holder:?}) until {until}: nothing sent"
    )]
    ClaimHeld {
        alert_id: String,
        /// Who holds the claim (not `source`: thiserror reserves that name).
        holder: DecisionSource,
        actor: String,
        until: String,
    },
}

impl DecisionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DecisionError::Api(e) => e.is_retryable(),
            DecisionError::Store(e) => e.is_retryable(),
            DecisionError::Notify(e) => e.is_retryable(),
            DecisionError::AlreadyDecided { .. } => false,
            DecisionError::ClaimHeld { .. } => true,
        }
    }
}

/// Take the alert's action claim, re-fetch it, send `PATCH /v1/alerts/{id} {action, note}` if it
/// is still an Ethoca alert waiting for an action, and record the decision with its reason and
/// source (which releases the claim in the same write).
///
/// - claim refused → `AlreadyDecided` or `ClaimHeld` (see the module comment); nothing sent;
/// - still ACTION_REQUIRED → PATCH; accepted → `Applied` (stored view overlaid with the response);
/// - 422, and the re-fetch shows it no longer actionable → `Rejected`, final: the alert leaves
///   the action queue and the caller must not retry;
/// - 422, and the alert still waits → `RefusedStillWaiting`, not final: stays queued, a person
///   is notified with the code (`notifier`);
/// - no longer actionable at the re-fetch → `NotActionable`, nothing sent;
/// - 5xx/429/timeout (`DecisionError::is_retryable`) → nothing recorded, the claim released;
///   retry later. A retry claims and re-fetches first, so an action that did land is never
///   sent twice.
pub async fn apply_action(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: ActionRequest,
) -> Result<ActionReport, DecisionError> {
    act(api, store, notifier, clock, request, None).await
}

/// How old a view of the alert the caller fetched itself may be for `apply_action_on_view` to
/// act on it without fetching it again.
pub const FRESH_VIEW_MAX_AGE: Duration = Duration::seconds(10);

/// `apply_action` for a caller that has just fetched the alert (process-events fetches every
/// alert event's object first), with that view and when it was fetched (`None`: no usable view,
/// exactly `apply_action`). One `GET /v1/alerts/{id}` per decision instead of two, so a
/// customer's burst meets ChargebackStop's 100 requests/min per endpoint at twice the alerts.
/// The view replaces the re-fetch only when it is at most `FRESH_VIEW_MAX_AGE` old and the
/// claim was free: an earlier holder's claim (expired, or the sweep's taken over) means its
/// PATCH may have landed since, so the alert is fetched again as usual. A PATCH that lands
/// between the view and ours is answered 422 by ChargebackStop and handled as below.
pub async fn apply_action_on_view(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: ActionRequest,
    view: Option<(&Alert, chrono::DateTime<chrono::Utc>)>,
) -> Result<ActionReport, DecisionError> {
    act(api, store, notifier, clock, request, view).await
}

async fn act(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: ActionRequest,
    view: Option<(&Alert, chrono::DateTime<chrono::Utc>)>,
) -> Result<ActionReport, DecisionError> {
    let owner = uuid::Uuid::new_v4().to_string();
    let took_over = claim_action(api, store, clock, &request, &owner).await?;
    let view = view
        .filter(|(_, at)| !took_over && clock.now() - *at <= FRESH_VIEW_MAX_AGE)
        .map(|(alert, _)| alert);
    let outcome = act_holding_claim(api, store, notifier, clock, &request, &owner, view).await;
    if outcome.is_err() {
        // Best effort: an unreleased claim only delays the next holder until it expires.
        if let Err(e) = release_claim(store, &request.alert_id, &owner).await {
            tracing::warn!(alert_id = %request.alert_id, error = %e,
                "could not release the action claim; it expires by itself");
        }
    }
    outcome
}

/// `apply_action_on_view` for a caller that took the claim itself under `owner` (the refund
/// hook calls the partner's billing system while holding it, so the sweep or an operator
/// cannot action the alert meanwhile, and one claim covers the hook call and the PATCH).
/// The claim is released on failure, as `apply_action` does.
pub(crate) async fn act_claimed(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: ActionRequest,
    owner: &str,
    view: Option<(&Alert, chrono::DateTime<chrono::Utc>)>,
) -> Result<ActionReport, DecisionError> {
    let view = view
        .filter(|(_, at)| clock.now() - *at <= FRESH_VIEW_MAX_AGE)
        .map(|(alert, _)| alert);
    let outcome = act_holding_claim(api, store, notifier, clock, &request, owner, view).await;
    if outcome.is_err() {
        if let Err(e) = release_claim(store, &request.alert_id, owner).await {
            tracing::warn!(alert_id = %request.alert_id, error = %e,
                "could not release the action claim; it expires by itself");
        }
    }
    outcome
}

/// Everything after the claim. Every path that records a decision releases the claim with it.
async fn act_holding_claim(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: &ActionRequest,
    owner: &str,
    fresh_view: Option<&Alert>,
) -> Result<ActionReport, DecisionError> {
    // The re-fetch AFTER the claim: whatever a previous (crashed or timed-out) holder sent and
    // ChargebackStop applied shows here. A caller's view of a moment ago, with no earlier
    // holder, stands in for it (`apply_action_on_view`).
    let current = match fresh_view {
        Some(view) => view.clone(),
        None => api.get_alert(&request.alert_id).await?,
    };
    // What is stored now: the decision below is appended to it without reading it again.
    let (stored, _) = store_fetched_alert(store, &current, clock.now()).await?;
    let decided = send_holding_claim(api, notifier, clock, request, &current).await?;
    let record = record_decision(
        store,
        &request.alert_id,
        decided.decision,
        decided.view.as_ref(),
        Some(stored),
        Some(owner),
        clock.now(),
    )
    .await?;
    Ok(ActionReport {
        result: decided.result,
        record,
    })
}

/// What acting decided, before anything is recorded: the decision and the view of the alert to
/// record with it (the PATCH response over `current`, or the 422's re-fetch).
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub result: DecisionResult,
    pub decision: Decision,
    pub view: Option<Alert>,
}

/// The part of acting that talks to ChargebackStop, holding the claim, on `current` (the alert
/// as just fetched): nothing if it no longer waits, else the PATCH; a 422 is followed by a
/// re-fetch and, while the alert still waits, a person is told before anything is recorded.
/// Writes nothing: the caller records `Decided` (with the claim's release) in one write.
pub async fn send_holding_claim(
    api: &dyn AlertApi,
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: &ActionRequest,
    current: &Alert,
) -> Result<Decided, DecisionError> {
    let decision = |result: DecisionResult, detail: Option<String>| Decision {
        at: iso(clock.now()),
        source: request.source,
        actor: request.actor.clone(),
        action: Some(request.action.clone()),
        reason: request.reason.clone(),
        note: request.note.clone(),
        result,
        detail,
    };

    if !current.is_actionable() {
        let result = DecisionResult::NotActionable;
        let d = decision(
            result,
            Some(format!("{} {}", current.enrolment_type, current.status)),
        );
        return Ok(Decided {
            result,
            decision: d,
            view: None,
        });
    }

    let mut update = UpdateAlert::action(request.action.clone());
    update.note = request.note.clone();
    match api.update_alert(&request.alert_id, &update).await {
        Ok(response) => {
            let after = overlay(current, &response);
            let result = DecisionResult::Applied;
            let d = decision(result, Some(after.status.to_string()));
            Ok(Decided {
                result,
                decision: d,
                view: Some(after),
            })
        }
        Err(ApiCallError::Unprocessable { code, message, .. }) => {
            // Final only if the alert stopped waiting (most likely resolved meanwhile). When the
            // re-fetch fails we cannot tell, and keeping it queued is the safe side: the next
            // fetch (event, reconciliation, sweep) corrects it.
            let latest = api.get_alert(&request.alert_id).await.ok();
            let still_waiting = latest.as_ref().is_none_or(Alert::is_actionable);
            let refusal = format!("422 {code}: {message}");
            if !still_waiting {
                let result = DecisionResult::Rejected;
                let d = decision(result, Some(refusal));
                return Ok(Decided {
                    result,
                    decision: d,
                    view: latest,
                });
            }
            // Tell a person before recording: if the notification fails, nothing is recorded
            // and the caller's retry refuses and tells again (at least once, never lost).
            let view = latest.as_ref().unwrap_or(current);
            notify_refusal(notifier, clock, request, view, &refusal, latest.is_none()).await?;
            let result = DecisionResult::RefusedStillWaiting;
            let detail = match latest {
                Some(_) => refusal,
                None => format!("{refusal} (re-fetch failed; kept waiting)"),
            };
            let d = decision(result, Some(detail));
            tracing::warn!(alert_id = %request.alert_id, code = %code, source = ?request.source,
                "action refused while the alert still waits: left for a person");
            Ok(Decided {
                result,
                decision: d,
                view: latest,
            })
        }
        Err(other) => Err(other.into()),
    }
}

async fn notify_refusal(
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    request: &ActionRequest,
    alert: &Alert,
    refusal: &str,
    refetch_failed: bool,
) -> Result<(), NotifyError> {
    let deadline = alert
        .action_required_deadline
        .map(|d| format!("deadline {}", iso(d)))
        .unwrap_or_else(|| "no deadline given".into());
    let status = if refetch_failed {
        "unknown (re-fetch failed)".to_string()
    } else {
        alert.status.to_string()
    };
    notifier
        .notify(&OpsNotification {
            kind: "alert.action_refused".into(),
            subject: format!(
                "Alert {}: {} refused ({refusal}); it still waits for a decision",
                request.alert_id, request.action
            ),
            organisation_id: Some(alert.organisation_id.clone()),
            object_id: request.alert_id.clone(),
            status: Some(status),
            note: Some(format!(
                "{refusal}; {deadline}; asked by {} ({:?})",
                request.actor, request.source
            )),
            at: iso(clock.now()),
        })
        .await
}

/// The deadline sweep runs one invocation at a time (its run lease), so a live claim the sweep
/// holds when the sweep asks again is an earlier run's, cut off at its time budget mid-call:
/// waiting for it to expire would keep a due alert from its action for `ACTION_CLAIM_TTL`.
/// The sweep takes it over and re-fetches first, like any holder taking over.
fn sweep_takes_over(claim: &ActionClaim, source: DecisionSource) -> bool {
    claim.source == DecisionSource::Sweep && source == DecisionSource::Sweep
}

/// Take the claim: a strongly consistent read, then a write conditional on nothing having
/// changed since (the store's revision check). True when it took over an earlier holder's. An alert not stored yet is fetched and stored
/// first (the claim lives on the record).
pub(crate) async fn claim_action(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    clock: &dyn Clock,
    request: &ActionRequest,
    owner: &str,
) -> Result<bool, DecisionError> {
    for _ in 0..2 {
        let now = clock.now();
        let mut refused = None;
        let mut missing = false;
        let mut took_over = false;
        update_alert_record(store, &request.alert_id, |current| {
            refused = None;
            missing = false;
            took_over = false;
            let Some(mut record) = current else {
                missing = true;
                return None;
            };
            match take_claim(&mut record, request, owner, now) {
                Ok(over) => {
                    took_over = over;
                    Some(record)
                }
                Err(refusal) => {
                    refused = Some(refusal);
                    None
                }
            }
        })
        .await?;
        if let Some(refusal) = refused {
            return Err(refusal);
        }
        if !missing {
            return Ok(took_over);
        }
        let fetched = api.get_alert(&request.alert_id).await?;
        store_fetched_alert(store, &fetched, clock.now()).await?;
    }
    Err(StoreError::Conflict {
        operation: "claim alert action",
        table: "alerts".into(),
        key: request.alert_id.clone(),
    }
    .into())
}

/// Put `owner`'s action claim on `record` (pure; one revision more), or say why not: a final
/// decision is recorded (`AlreadyDecided`) or another holder's claim has not expired
/// (`ClaimHeld`). `Ok(true)` when it took over an earlier holder's claim: that holder's PATCH may
/// have landed, so the alert must be fetched again after the claim is written.
pub fn take_claim(
    record: &mut AlertRecord,
    request: &ActionRequest,
    owner: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DecisionError> {
    if let Some(d) = record.final_decision() {
        return Err(DecisionError::AlreadyDecided {
            alert_id: request.alert_id.clone(),
            result: d.result,
            actor: d.actor.clone(),
            at: d.at.clone(),
        });
    }
    if let Some(c) = record
        .live_claim(now)
        .filter(|c| c.owner != owner && !sweep_takes_over(c, request.source))
    {
        return Err(DecisionError::ClaimHeld {
            alert_id: request.alert_id.clone(),
            holder: c.source,
            actor: c.actor.clone(),
            until: c.until.clone(),
        });
    }
    let mut took_over = false;
    if let Some(stale) = &record.action_claim {
        took_over = stale.owner != owner;
        tracing::warn!(alert_id = %request.alert_id, holder = %stale.actor,
            until = %stale.until, "taking over an earlier holder's action claim");
    }
    record.action_claim = Some(ActionClaim {
        owner: owner.to_string(),
        source: request.source,
        actor: request.actor.clone(),
        until: iso(now + ACTION_CLAIM_TTL),
    });
    record.revision += 1;
    Ok(took_over)
}

/// Clear the claim if it is still ours.
pub(crate) async fn release_claim(
    store: &dyn AlertStore,
    alert_id: &str,
    owner: &str,
) -> Result<(), StoreError> {
    update_alert_record(store, alert_id, |current| {
        let mut record = current?;
        if record
            .action_claim
            .as_ref()
            .is_none_or(|c| c.owner != owner)
        {
            return None;
        }
        record.action_claim = None;
        record.revision += 1;
        Some(record)
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests;
