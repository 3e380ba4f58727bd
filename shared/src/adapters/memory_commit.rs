//! The in-memory `EventCommitter`, for unit tests: every item's condition checked under the
//! stores' locks, then all written, or none, like one DynamoDB `TransactWriteItems`. It can do
//! to us what DynamoDB can: refuse a commit as a whole (throttling, a transaction conflict),
//! refuse it because one condition failed (the event held or completed elsewhere, a lost
//! revision race), and write everything but lose the answer (a timeout after success).

use super::memory::{
    check_alert_put, check_enrolment_put, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog,
};
use super::memory_recovery::{take, MemoryArchive};
use super::memory_transactions::MemoryTransactionIndex;
use crate::ports::event_commit::{CommitError, EventCommit, EventCommitter, EventWrite};
use crate::ports::event_log::EventStatus;
use crate::ports::store_error::StoreError;
use std::sync::{Arc, Mutex};

pub struct MemoryCommitter {
    pub events: Arc<MemoryEventLog>,
    pub alerts: Arc<MemoryAlertStore>,
    pub enrolments: Arc<MemoryEnrolmentStore>,
    /// Where archived deliveries go; `None`: they are dropped (a world without an archive).
    pub archive: Option<Arc<MemoryArchive>>,
    /// Where held index writes go; a commit with some and no index is refused.
    pub index: Option<Arc<MemoryTransactionIndex>>,
    /// The next N commits are refused as a whole, nothing written (throttled).
    pub refuse_next: Mutex<u32>,
    /// The next N commits are written, then answer an error (a timeout after success).
    pub fail_after_next: Mutex<u32>,
    /// The commit asked for with this number (1 = the first) is written, then answers an
    /// error.
    pub fail_after_nth: Mutex<Option<usize>>,
    /// The commit with this number is refused as a whole, nothing written.
    pub refuse_nth: Mutex<Option<usize>>,
    /// Every commit written so far, in order.
    pub log: Mutex<Vec<EventCommit>>,
    /// Commits asked for so far, refused ones included (each one write request).
    pub asked: Mutex<usize>,
}

impl MemoryCommitter {
    pub fn new(
        events: Arc<MemoryEventLog>,
        alerts: Arc<MemoryAlertStore>,
        enrolments: Arc<MemoryEnrolmentStore>,
    ) -> Self {
        Self {
            events,
            alerts,
            enrolments,
            archive: None,
            index: None,
            refuse_next: Mutex::new(0),
            fail_after_next: Mutex::new(0),
            fail_after_nth: Mutex::new(None),
            refuse_nth: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            asked: Mutex::new(0),
        }
    }

    pub fn with_archive(mut self, archive: Arc<MemoryArchive>) -> Self {
        self.archive = Some(archive);
        self
    }

    pub fn with_index(mut self, index: Arc<MemoryTransactionIndex>) -> Self {
        self.index = Some(index);
        self
    }

    /// The commits written so far (each one write request).
    pub fn commits(&self) -> Vec<EventCommit> {
        self.log.lock().unwrap().clone()
    }
}

fn transient(detail: &str) -> StoreError {
    StoreError::Transient {
        operation: "commit event",
        table: "events".into(),
        detail: detail.into(),
    }
}

#[async_trait::async_trait]
impl EventCommitter for MemoryCommitter {
    async fn commit(&self, commit: &EventCommit) -> Result<(), CommitError> {
        if commit.is_empty() {
            return Ok(());
        }
        let number = {
            let mut asked = self.asked.lock().unwrap();
            *asked += 1;
            *asked
        };
        if take(&self.refuse_next) || *self.refuse_nth.lock().unwrap() == Some(number) {
            return Err(CommitError::Store(transient(
                "injected: refused as a whole",
            )));
        }
        if commit.archive.is_some() && self.archive.as_ref().is_some_and(|a| a.refuses_next()) {
            return Err(CommitError::Store(transient("injected: archive throttled")));
        }
        if !commit.index.is_empty() && self.index.is_none() {
            return Err(CommitError::Store(StoreError::Permanent {
                operation: "commit event",
                table: "transactions".into(),
                detail: "index writes but no index to write them to".into(),
            }));
        }
        // One lock order for every commit: events, alerts, enrolments.
        let mut events = self.events.lock();
        let mut alerts = self.alerts.lock();
        let mut enrolments = self.enrolments.lock();
        let now_of = |write: &EventWrite| match write {
            EventWrite::Claim(r) => r.claimed_at.clone(),
            _ => String::new(),
        };

        // Every condition first; the event's refusal is reported before the others.
        if let Some(write) = &commit.event {
            let event_id = write.event_id().to_string();
            let stored = events.get(&event_id).cloned().map(Box::new);
            let refused = |operation: &'static str| CommitError::EventRefused {
                event_id: event_id.clone(),
                stored: stored.clone(),
                conflict: StoreError::Conflict {
                    operation,
                    table: "events".into(),
                    key: event_id.clone(),
                },
            };
            match write {
                EventWrite::Claim(_) => {
                    let at = now_of(write).parse().map_err(|_| {
                        CommitError::Store(transient("claim without a valid claimed_at"))
                    })?;
                    if stored.as_ref().is_some_and(|r| !r.can_be_claimed_at(at)) {
                        return Err(refused("claim"));
                    }
                }
                EventWrite::Finish { token, .. } | EventWrite::Release { token, .. } => {
                    let held = stored.as_ref().is_some_and(|r| {
                        r.status == EventStatus::InProgress
                            && r.claim_token.as_deref() == Some(token.as_str())
                    });
                    if !held {
                        return Err(refused(match write {
                            EventWrite::Release { .. } => "release",
                            _ => "complete",
                        }));
                    }
                }
            }
        }
        if let Some(record) = &commit.alert {
            check_alert_put(&alerts, record).map_err(CommitError::Conflict)?;
        }
        if let Some(record) = &commit.enrolment {
            check_enrolment_put(&enrolments, record).map_err(CommitError::Conflict)?;
        }

        // Then every write.
        if let Some(write) = &commit.event {
            match write {
                EventWrite::Claim(record) => {
                    events.insert(record.event_id.clone(), (**record).clone());
                }
                EventWrite::Finish {
                    event_id,
                    status,
                    outcome,
                    at,
                    ..
                } => {
                    let r = events.get_mut(event_id).expect("checked above");
                    r.status = *status;
                    r.outcome = Some(outcome.clone());
                    if *status == EventStatus::DeadLettered {
                        r.dead_lettered_at = Some(at.clone());
                    } else {
                        r.completed_at = Some(at.clone());
                    }
                    r.in_progress_until = None;
                }
                EventWrite::Release { event_id, .. } => {
                    events.remove(event_id);
                }
            }
        }
        // Each record with its bookkeeping journal entry, as the DynamoDB commit does.
        if let Some(record) = &commit.alert {
            alerts.insert(record.alert_id.clone(), record.clone());
            self.alerts.journal().alert_written(record);
        }
        if let Some(record) = &commit.enrolment {
            enrolments.insert(record.enrolment_id.clone(), record.clone());
            self.enrolments.journal().enrolment_written(record);
        }
        if let (Some(d), Some(archive)) = (&commit.archive, &self.archive) {
            archive.keep_if_absent(d);
        }
        if let Some(index) = &self.index {
            index.apply(&commit.index);
        }
        drop((events, alerts, enrolments));
        self.log.lock().unwrap().push(commit.clone());
        if take(&self.fail_after_next) || *self.fail_after_nth.lock().unwrap() == Some(number) {
            return Err(CommitError::Store(transient(
                "injected: written, then the answer was lost",
            )));
        }
        Ok(())
    }
}
