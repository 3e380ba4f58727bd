//! In-memory implementations of the ports, for unit tests only. Each follows the same rules as
//! its DynamoDB twin (conditional claims, revision-checked writes), so domain tests exercise the
//! real decisions.

use crate::models::alert::{Alert, AlertStatus, RefundOutcome, UpdateAlert};
use crate::models::enrolment::Enrolment;
use crate::ports::alert_api::{AlertApi, ApiCallError};
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::event_log::{
    iso, new_claim_token, Claim, EventArrival, EventLog, EventRecord, EventStatus,
};
use crate::ports::notifier::{Notifier, NotifyError, OpsNotification};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub struct MemoryEventLog {
    records: Mutex<HashMap<String, EventRecord>>,
}

impl MemoryEventLog {
    pub fn record(&self, event_id: &str) -> Option<EventRecord> {
        self.records.lock().unwrap().get(event_id).cloned()
    }

    /// The records, locked (`memory_commit` checks and writes under it).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, EventRecord>> {
        self.records.lock().unwrap()
    }

    /// Simulates a crash after the claim: the record stays IN_PROGRESS.
    pub fn insert(&self, record: EventRecord) {
        self.records
            .lock()
            .unwrap()
            .insert(record.event_id.clone(), record);
    }
}

#[async_trait::async_trait]
impl EventLog for MemoryEventLog {
    async fn claim(
        &self,
        arrival: &EventArrival,
        now: DateTime<Utc>,
        in_progress_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let mut records = self.records.lock().unwrap();
        if let Some(existing) = records.get(&arrival.event_id) {
            if !existing.can_be_claimed_at(now) {
                return Ok(match existing.status {
                    EventStatus::Completed => Claim::AlreadyCompleted {
                        outcome: existing.outcome.clone(),
                    },
                    EventStatus::InProgress | EventStatus::DeadLettered => {
                        Claim::InProgressElsewhere {
                            until: existing.in_progress_until.clone(),
                        }
                    }
                });
            }
        }
        let token = new_claim_token();
        records.insert(
            arrival.event_id.clone(),
            EventRecord::in_progress(arrival, now, in_progress_until, &token),
        );
        Ok(Claim::Acquired { token })
    }

    async fn complete(
        &self,
        event_id: &str,
        token: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        let record = held_claim(&mut records, event_id, token, "complete")?;
        record.status = EventStatus::Completed;
        record.outcome = Some(outcome.to_string());
        record.completed_at = Some(iso(now));
        record.in_progress_until = None;
        Ok(())
    }

    async fn release(&self, event_id: &str, token: &str) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        if held_claim(&mut records, event_id, token, "release").is_ok() {
            records.remove(event_id);
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        event_id: &str,
        token: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        let record = held_claim(&mut records, event_id, token, "dead_letter")?;
        record.status = EventStatus::DeadLettered;
        record.outcome = Some(reason.to_string());
        record.dead_lettered_at = Some(iso(now));
        record.in_progress_until = None;
        Ok(())
    }

    async fn get(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.record(event_id))
    }

    async fn reopen(&self, event_id: &str, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(event_id) {
            Some(r) if r.status == EventStatus::Completed => {
                r.expires_at = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The record, if it is IN_PROGRESS under `token` (the DynamoDB condition of `complete`,
/// `release` and `dead_letter`); otherwise the conflict DynamoDB would answer.
fn held_claim<'a>(
    records: &'a mut HashMap<String, EventRecord>,
    event_id: &str,
    token: &str,
    operation: &'static str,
) -> Result<&'a mut EventRecord, StoreError> {
    records
        .get_mut(event_id)
        .filter(|r| r.status == EventStatus::InProgress && r.claim_token.as_deref() == Some(token))
        .ok_or_else(|| StoreError::Conflict {
            operation,
            table: "events".into(),
            key: event_id.into(),
        })
}

// alerts and enrolments: `memory_records`
pub(crate) use super::memory_records::{check_alert_put, check_enrolment_put};
pub use super::memory_records::{MemoryAlertStore, MemoryEnrolmentStore};

// ---------------------------------------------------------------------------------------------
// ChargebackStop
// ---------------------------------------------------------------------------------------------

/// A scriptable ChargebackStop: holds alerts and enrolments, resolves alerts on PATCH like the
/// API (a resolved alert answers 422), and does to us what the real one can: fail the next
/// calls with a 5xx, refuse a PATCH with 422 while the alert stays ACTION_REQUIRED, apply a
/// PATCH and then lose the answer (a timeout after success), and interleave concurrent callers.
#[derive(Debug, Default)]
pub struct FakeChargebackStop {
    alerts: Mutex<HashMap<String, Alert>>,
    enrolments: Mutex<HashMap<String, Enrolment>>,
    patches: Mutex<Vec<(String, UpdateAlert)>>,
    /// PATCHes of these alerts answer 422 after resolving the alert.
    reject_with_422: Mutex<Vec<String>>,
    /// PATCHes of these alerts answer 422 with this code and leave the alert as it is.
    refuse_without_resolving: Mutex<HashMap<String, String>>,
    failing_gets: Mutex<u32>,
    failing_patches: Mutex<u32>,
    /// The next PATCHes are applied, then answered with a timeout.
    lost_patch_answers: Mutex<u32>,
    interleave: bool,
    gets: Mutex<u32>,
}

impl FakeChargebackStop {
    pub fn put_alert(&self, alert: Alert) {
        self.alerts.lock().unwrap().insert(alert.id.clone(), alert);
    }

    pub fn put_enrolment(&self, enrolment: Enrolment) {
        self.enrolments
            .lock()
            .unwrap()
            .insert(enrolment.id.clone(), enrolment);
    }

    pub fn alert(&self, id: &str) -> Option<Alert> {
        self.alerts.lock().unwrap().get(id).cloned()
    }

    /// Every PATCH body sent for this alert, in order.
    pub fn patches(&self, alert_id: &str) -> Vec<UpdateAlert> {
        self.patches
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id == alert_id)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// GET calls answered so far (alerts and enrolments).
    pub fn gets(&self) -> u32 {
        *self.gets.lock().unwrap()
    }

    /// Every call first yields to the runtime, so concurrent callers (`tokio::join!`)
    /// interleave between a GET and the PATCH that depends on it.
    pub fn interleaved() -> Self {
        Self {
            interleave: true,
            ..Self::default()
        }
    }

    /// Answer PATCHes of this alert with 422 (as if someone resolved it in between).
    pub fn reject_patches_with_422(&self, alert_id: &str) {
        self.reject_with_422
            .lock()
            .unwrap()
            .push(alert_id.to_string());
    }

    /// Answer PATCHes of this alert with 422 `code` and leave it ACTION_REQUIRED (the API
    /// refusing one action, e.g. one the merchant cannot take, while the alert still waits).
    pub fn refuse_patches_without_resolving(&self, alert_id: &str, code: &str) {
        self.refuse_without_resolving
            .lock()
            .unwrap()
            .insert(alert_id.to_string(), code.to_string());
    }

    /// The next `patches` PATCHes are applied, and then the caller gets a timeout.
    pub fn lose_next_patch_answers(&self, patches: u32) {
        *self.lost_patch_answers.lock().unwrap() = patches;
    }

    /// The next `gets` GETs and `patches` PATCHes answer 503.
    pub fn fail_next_calls(&self, gets: u32, patches: u32) {
        *self.failing_gets.lock().unwrap() = gets;
        *self.failing_patches.lock().unwrap() = patches;
    }

    fn take_failure(counter: &Mutex<u32>) -> bool {
        let mut left = counter.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    }

    fn unavailable(operation: &'static str, id: &str) -> ApiCallError {
        ApiCallError::Transient {
            operation,
            id: id.into(),
            detail: "503 Service Unavailable".into(),
        }
    }
}

#[async_trait::async_trait]
impl AlertApi for FakeChargebackStop {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        if self.interleave {
            tokio::task::yield_now().await;
        }
        *self.gets.lock().unwrap() += 1;
        if Self::take_failure(&self.failing_gets) {
            return Err(Self::unavailable("get alert", alert_id));
        }
        self.alert(alert_id).ok_or_else(|| ApiCallError::NotFound {
            operation: "get alert",
            id: alert_id.into(),
        })
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        if self.interleave {
            tokio::task::yield_now().await;
        }
        if Self::take_failure(&self.failing_patches) {
            return Err(Self::unavailable("update alert", alert_id));
        }
        self.patches
            .lock()
            .unwrap()
            .push((alert_id.into(), update.clone()));
        let answer = self.apply_patch(alert_id, update);
        if answer.is_ok() && Self::take_failure(&self.lost_patch_answers) {
            return Err(ApiCallError::Transient {
                operation: "update alert",
                id: alert_id.into(),
                detail: "timed out waiting for the answer (the PATCH was applied)".into(),
            });
        }
        answer
    }
}

impl FakeChargebackStop {
    fn apply_patch(&self, alert_id: &str, update: &UpdateAlert) -> Result<Alert, ApiCallError> {
        if let Some(code) = self.refuse_without_resolving.lock().unwrap().get(alert_id) {
            return Err(ApiCallError::Unprocessable {
                operation: "update alert",
                id: alert_id.into(),
                code: code.clone(),
                message: "The action cannot be taken on this alert".into(),
            });
        }
        let mut alerts = self.alerts.lock().unwrap();
        let alert = alerts
            .get_mut(alert_id)
            .ok_or_else(|| ApiCallError::NotFound {
                operation: "update alert",
                id: alert_id.into(),
            })?;
        let rejected = self
            .reject_with_422
            .lock()
            .unwrap()
            .iter()
            .any(|id| id == alert_id);
        if rejected || (update.action.is_some() && alert.status != AlertStatus::ActionRequired) {
            alert.status = AlertStatus::Resolved;
            return Err(ApiCallError::Unprocessable {
                operation: "update alert",
                id: alert_id.into(),
                code: "ALERT_ALREADY_RESOLVED".into(),
                message: "Resolved alerts cannot be actioned".into(),
            });
        }
        if let Some(action) = &update.action {
            alert.status = AlertStatus::Resolved;
            alert.transaction_refund_outcome = Some(if action.refunds() {
                RefundOutcome::Refunded
            } else {
                RefundOutcome::NotRefunded
            });
        }
        if let Some(note) = &update.note {
            alert.note = Some(note.clone());
        }
        // Like the API, answer with a subset of the alert.
        let mut partial = alert.clone();
        partial.action_required_deadline = None;
        partial.transaction_amount_in_cents = None;
        Ok(partial)
    }
}

#[async_trait::async_trait]
impl EnrolmentApi for FakeChargebackStop {
    async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiCallError> {
        *self.gets.lock().unwrap() += 1;
        if Self::take_failure(&self.failing_gets) {
            return Err(Self::unavailable("get enrolment", enrolment_id));
        }
        self.enrolments
            .lock()
            .unwrap()
            .get(enrolment_id)
            .cloned()
            .ok_or_else(|| ApiCallError::NotFound {
                operation: "get enrolment",
                id: enrolment_id.into(),
            })
    }
}

// ---------------------------------------------------------------------------------------------
// notifications
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<OpsNotification>>,
}

impl RecordingNotifier {
    pub fn sent(&self) -> Vec<OpsNotification> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &OpsNotification) -> Result<(), NotifyError> {
        self.sent.lock().unwrap().push(notification.clone());
        Ok(())
    }
}
