//! The in-memory alert and enrolment stores, for unit tests: revision-checked writes like the
//! DynamoDB conditions, each write journaled (`memory_journal`) under the record's lock as the
//! DynamoDB stores journal in the same request. Re-exported from `memory`.

use super::memory_journal::MemoryJournal;
use crate::ports::alert_store::AlertStore;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_log::iso;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use crate::records::enrolment::EnrolmentRecord;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) fn check_revision(
    table: &str,
    key: &str,
    stored: Option<(u64, &str)>,
    revision: u64,
    version_key: &str,
) -> Result<(), StoreError> {
    let ok = match stored {
        None => revision == 1,
        Some((stored_revision, stored_key)) => {
            stored_revision + 1 == revision && stored_key <= version_key
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            operation: "put",
            table: table.into(),
            key: key.into(),
        })
    }
}

/// The alert write's condition against `records` (`put`, and `memory_commit` under the lock).
pub(crate) fn check_alert_put(
    records: &BTreeMap<String, AlertRecord>,
    record: &AlertRecord,
) -> Result<(), StoreError> {
    let stored = records
        .get(&record.alert_id)
        .map(|r| (r.revision, r.version_key.as_str()));
    check_revision(
        "alerts",
        &record.alert_id,
        stored,
        record.revision,
        &record.version_key,
    )
}

/// The enrolment write's condition against `records`, as [`check_alert_put`].
pub(crate) fn check_enrolment_put(
    records: &BTreeMap<String, EnrolmentRecord>,
    record: &EnrolmentRecord,
) -> Result<(), StoreError> {
    let stored = records
        .get(&record.enrolment_id)
        .map(|r| (r.revision, r.version_key.as_str()));
    check_revision(
        "enrolments",
        &record.enrolment_id,
        stored,
        record.revision,
        &record.version_key,
    )
}

#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    records: Mutex<BTreeMap<String, AlertRecord>>,
    interleave: bool,
    /// Written with every record write (`memory_journal`).
    journal: Arc<MemoryJournal>,
}

impl MemoryAlertStore {
    /// Every call first yields to the runtime, so concurrent callers (`tokio::join!`)
    /// interleave between a read and the write that depends on it, like two Lambdas do.
    pub fn interleaved() -> Self {
        Self {
            interleave: true,
            ..Self::default()
        }
    }

    /// Journals into `journal` (shared with an enrolment store, for one archive table).
    pub fn with_journal(mut self, journal: Arc<MemoryJournal>) -> Self {
        self.journal = journal;
        self
    }

    /// The bookkeeping journal this store writes.
    pub fn journal(&self) -> Arc<MemoryJournal> {
        self.journal.clone()
    }

    /// The records, locked (`memory_commit` checks and writes under it).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AlertRecord>> {
        self.records.lock().unwrap()
    }

    /// Store a record as it is (e.g. one a crashed holder left behind), bypassing the checks;
    /// journaled like any write.
    pub fn insert(&self, record: AlertRecord) {
        let mut records = self.records.lock().unwrap();
        self.journal.alert_written(&record);
        records.insert(record.alert_id.clone(), record);
    }

    /// Every record dropped (the table emptied); the journal stays, as the archive table does.
    pub fn clear(&self) {
        self.records.lock().unwrap().clear();
    }

    /// A record set back as a restore of the table from a backup does: not a write, so the
    /// journal (another table) keeps what it holds.
    pub fn restore_from_backup(&self, record: AlertRecord) {
        self.records
            .lock()
            .unwrap()
            .insert(record.alert_id.clone(), record);
    }

    async fn pause(&self) {
        if self.interleave {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait::async_trait]
impl AlertStore for MemoryAlertStore {
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.pause().await;
        Ok(self.records.lock().unwrap().get(alert_id).cloned())
    }

    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        self.pause().await;
        let mut records = self.records.lock().unwrap();
        check_alert_put(&records, record)?;
        records.insert(record.alert_id.clone(), record.clone());
        self.journal.alert_written(record);
        Ok(())
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.pause().await;
        let records = self.records.lock().unwrap();
        // Like the DynamoDB store: a waiting alert without a deadline sorts before every one.
        let mut due: Vec<AlertRecord> = records
            .values()
            .filter(|r| r.action_queue.is_some())
            .filter(|r| {
                r.alert
                    .action_required_deadline
                    .is_none_or(|d| iso(d).as_str() <= deadline_at_or_before)
            })
            .cloned()
            .collect();
        due.sort_by_key(|r| r.alert.action_required_deadline);
        due.truncate(limit.max(0) as usize);
        Ok(due)
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let records = self.records.lock().unwrap();
        let mut found: Vec<AlertRecord> = records
            .values()
            .filter(|r| r.alert.organisation_id == organisation_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| b.alert.alert_received_at.cmp(&a.alert.alert_received_at));
        found.truncate(limit.max(0) as usize);
        Ok(found)
    }
}

#[derive(Debug, Default)]
pub struct MemoryEnrolmentStore {
    records: Mutex<BTreeMap<String, EnrolmentRecord>>,
    /// Written with every record write (`memory_journal`).
    journal: Arc<MemoryJournal>,
}

impl MemoryEnrolmentStore {
    /// Journals into `journal` (shared with an alert store, for one archive table).
    pub fn with_journal(mut self, journal: Arc<MemoryJournal>) -> Self {
        self.journal = journal;
        self
    }

    /// The bookkeeping journal this store writes.
    pub fn journal(&self) -> Arc<MemoryJournal> {
        self.journal.clone()
    }

    /// Every record dropped (the table emptied); the journal stays.
    pub fn clear(&self) {
        self.records.lock().unwrap().clear();
    }

    /// The records, locked (`memory_commit` checks and writes under it).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EnrolmentRecord>> {
        self.records.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl EnrolmentStore for MemoryEnrolmentStore {
    async fn get(&self, enrolment_id: &str) -> Result<Option<EnrolmentRecord>, StoreError> {
        Ok(self.records.lock().unwrap().get(enrolment_id).cloned())
    }

    async fn put(&self, record: &EnrolmentRecord) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        check_enrolment_put(&records, record)?;
        records.insert(record.enrolment_id.clone(), record.clone());
        self.journal.enrolment_written(record);
        Ok(())
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<EnrolmentRecord>, StoreError> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.enrolment.organisation_id == organisation_id)
            .cloned()
            .collect())
    }
}
