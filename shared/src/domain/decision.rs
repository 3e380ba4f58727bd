//! Actioning an Ethoca alert, with its audit trail. `apply_action` is the ONE way anything in
//! the platform actions an alert: the automatic policy (process-events), an operator (ops API)
//! and the deadline sweep all call it, so every action is re-checked against the API first and
//! every outcome lands in the alert's `decisions` list with its reason and source.

use super::alert_record::{append_decision, overlay, store_fetched_alert, AlertRecord};
use crate::clock::Clock;
use crate::models::alert::{AlertAction, UpdateAlert};
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::store_error::StoreError;
use serde::{Deserialize, Serialize};

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
    /// The PATCH got a 422 (e.g. the alert was already resolved): recorded as final, not retried.
    Rejected,
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
        !matches!(self, DecisionResult::LeftForPerson)
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
}

impl DecisionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DecisionError::Api(e) => e.is_retryable(),
            DecisionError::Store(e) => e.is_retryable(),
        }
    }
}

/// Re-fetch the alert, send `PATCH /v1/alerts/{id} {action, note}` if it is still an Ethoca
/// alert waiting for an action, and record the decision with its reason and source.
///
/// - still ACTION_REQUIRED → PATCH; accepted → `Applied` (stored view overlaid with the response);
/// - 422 → `Rejected`, final: recorded with the error code, the alert leaves the action queue,
///   and the caller must not retry;
/// - no longer actionable at the re-fetch → `NotActionable`, nothing sent;
/// - 5xx/429/timeout (`DecisionError::is_retryable`) → nothing recorded; retry later. A retry
///   re-fetches first, so an action that did land is never sent twice.
pub async fn apply_action(
    api: &dyn AlertApi,
    store: &dyn AlertStore,
    clock: &dyn Clock,
    request: ActionRequest,
) -> Result<ActionReport, DecisionError> {
    let current = api.get_alert(&request.alert_id).await?;
    // What is stored now: the decision below is appended to it without reading it again.
    let (stored, _) = store_fetched_alert(store, &current, clock.now()).await?;
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
        let d = decision(
            DecisionResult::NotActionable,
            Some(format!("{} {}", current.enrolment_type, current.status)),
        );
        let record =
            append_decision(store, &request.alert_id, d, None, Some(stored), clock.now()).await?;
        return Ok(ActionReport {
            result: DecisionResult::NotActionable,
            record,
        });
    }

    let mut update = UpdateAlert::action(request.action.clone());
    update.note = request.note.clone();
    match api.update_alert(&request.alert_id, &update).await {
        Ok(response) => {
            let after = overlay(&current, &response);
            let d = decision(DecisionResult::Applied, Some(after.status.to_string()));
            let record = append_decision(
                store,
                &request.alert_id,
                d,
                Some(&after),
                Some(stored),
                clock.now(),
            )
            .await?;
            Ok(ActionReport {
                result: DecisionResult::Applied,
                record,
            })
        }
        Err(ApiCallError::Unprocessable { code, message, .. }) => {
            // Final: most likely resolved meanwhile. Take the latest view if we can get it; the
            // decision is recorded either way and clears the action queue.
            let latest = api.get_alert(&request.alert_id).await.ok();
            let d = decision(
                DecisionResult::Rejected,
                Some(format!("422 {code}: {message}")),
            );
            let record = append_decision(
                store,
                &request.alert_id,
                d,
                latest.as_ref(),
                Some(stored),
                clock.now(),
            )
            .await?;
            Ok(ActionReport {
                result: DecisionResult::Rejected,
                record,
            })
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore};
    use crate::clock::FixedClock;
    use crate::domain::test_support::{alert, ts};
    use crate::models::alert::AlertStatus;

    fn request(source: DecisionSource) -> ActionRequest {
        ActionRequest {
            alert_id: "netalrt_1".into(),
            action: AlertAction::Refund,
            note: Some("Refunded by the partner".into()),
            source,
            actor: "op_1".into(),
            reason: "customer asked".into(),
        }
    }

    #[tokio::test]
    async fn applies_and_records_with_reason_and_source() {
        let api = FakeChargebackStop::default();
        api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900));
        let store = MemoryAlertStore::default();
        let clock = FixedClock::at(ts("2026-11-24T10:00:00Z"));
        let report = apply_action(&api, &store, &clock, request(DecisionSource::Operator))
            .await
            .unwrap();
        assert_eq!(report.result, DecisionResult::Applied);
        let stored = store.get("netalrt_1").await.unwrap().unwrap();
        assert_eq!(stored.alert.status, AlertStatus::Resolved);
        assert_eq!(stored.action_queue, None);
        assert_eq!(stored.decisions.len(), 1);
        let d = &stored.decisions[0];
        assert_eq!(
            (d.source, d.result),
            (DecisionSource::Operator, DecisionResult::Applied)
        );
        assert_eq!(d.reason, "customer asked");
        assert_eq!(d.actor, "op_1");
        assert_eq!(api.patches("netalrt_1").len(), 1);
        assert_eq!(
            api.patches("netalrt_1")[0].note.as_deref(),
            Some("Refunded by the partner")
        );
    }

    #[tokio::test]
    async fn a_422_is_final_and_recorded() {
        let api = FakeChargebackStop::default();
        api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900));
        api.reject_patches_with_422("netalrt_1");
        let store = MemoryAlertStore::default();
        let clock = FixedClock::at(ts("2026-11-24T10:00:00Z"));
        let report = apply_action(&api, &store, &clock, request(DecisionSource::Sweep))
            .await
            .unwrap();
        assert_eq!(report.result, DecisionResult::Rejected);
        let stored = store.get("netalrt_1").await.unwrap().unwrap();
        assert_eq!(
            stored.action_queue, None,
            "a 422 takes the alert off the queue"
        );
        // One entry: the 422 explains the resolution, so no "resolved elsewhere" note besides it.
        assert_eq!(stored.decisions.len(), 1, "{:?}", stored.decisions);
        assert_eq!(stored.decisions[0].result, DecisionResult::Rejected);
        assert_eq!(
            stored.alert.status,
            AlertStatus::Resolved,
            "the final state is stored"
        );
        assert!(stored.decisions[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("422"));
    }

    #[tokio::test]
    async fn an_alert_resolved_meanwhile_is_not_patched() {
        let api = FakeChargebackStop::default();
        api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 4900));
        let store = MemoryAlertStore::default();
        let clock = FixedClock::at(ts("2026-11-24T10:00:00Z"));
        let report = apply_action(&api, &store, &clock, request(DecisionSource::AutoPolicy))
            .await
            .unwrap();
        assert_eq!(report.result, DecisionResult::NotActionable);
        assert!(api.patches("netalrt_1").is_empty());
    }

    #[tokio::test]
    async fn a_5xx_on_patch_is_retryable_and_records_nothing() {
        let api = FakeChargebackStop::default();
        api.put_alert(alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900));
        api.fail_next_calls(0, 1);
        let store = MemoryAlertStore::default();
        let clock = FixedClock::at(ts("2026-11-24T10:00:00Z"));
        let err = apply_action(&api, &store, &clock, request(DecisionSource::Sweep))
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        let stored = store.get("netalrt_1").await.unwrap().unwrap();
        assert!(stored.decisions.is_empty());
        assert!(stored.action_queue.is_some(), "still waiting for an action");
    }
}
