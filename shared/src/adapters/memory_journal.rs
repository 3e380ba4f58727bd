//! The in-memory bookkeeping journal (`ports::bookkeeping_journal`), for unit tests: the memory
//! alert and enrolment stores and the memory committer write it with every record write, under
//! the record's lock (one request, like DynamoDB's): an entry holds what the record's last write
//! held. Emptying a store
//! (`MemoryAlertStore::clear`) leaves the journal, as dropping the alerts table leaves the
//! archive table.

use crate::ports::bookkeeping_journal::BookkeepingJournal;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use crate::records::bookkeeping::{AlertBookkeeping, EnrolmentBookkeeping, Journaled};
use crate::records::enrolment::EnrolmentRecord;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryJournal {
    alerts: Mutex<BTreeMap<String, Journaled<AlertBookkeeping>>>,
    enrolments: Mutex<BTreeMap<String, Journaled<EnrolmentBookkeeping>>>,
    /// The next N reads fail (transient), like a throttled GetItem.
    pub fail_next_reads: Mutex<u32>,
}

fn journal<T>(entries: &mut BTreeMap<String, Journaled<T>>, id: &str, entry: Journaled<T>) {
    entries.insert(id.to_string(), entry);
}

impl MemoryJournal {
    /// Journals a write of `record` (the stores call it with the record's write).
    pub(crate) fn alert_written(&self, record: &AlertRecord) {
        let entry = Journaled {
            bookkeeping: AlertBookkeeping::of(record),
            revision: record.revision,
        };
        journal(&mut self.alerts.lock().unwrap(), &record.alert_id, entry);
    }

    pub(crate) fn enrolment_written(&self, record: &EnrolmentRecord) {
        let entry = Journaled {
            bookkeeping: EnrolmentBookkeeping::of(record),
            revision: record.revision,
        };
        journal(
            &mut self.enrolments.lock().unwrap(),
            &record.enrolment_id,
            entry,
        );
    }

    /// The alert's entry as it stands.
    pub fn alert(&self, alert_id: &str) -> Option<Journaled<AlertBookkeeping>> {
        self.alerts.lock().unwrap().get(alert_id).cloned()
    }

    pub fn enrolment(&self, enrolment_id: &str) -> Option<Journaled<EnrolmentBookkeeping>> {
        self.enrolments.lock().unwrap().get(enrolment_id).cloned()
    }

    /// Drops the alert's entry (a record written before the journal existed, or expired).
    pub fn forget_alert(&self, alert_id: &str) {
        self.alerts.lock().unwrap().remove(alert_id);
    }

    pub fn forget_enrolment(&self, enrolment_id: &str) {
        self.enrolments.lock().unwrap().remove(enrolment_id);
    }

    fn read_fails(&self) -> Result<(), StoreError> {
        let mut n = self.fail_next_reads.lock().unwrap();
        if *n > 0 {
            *n -= 1;
            return Err(StoreError::Transient {
                operation: "read bookkeeping journal",
                table: "archive".into(),
                detail: "injected: throttled".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl BookkeepingJournal for MemoryJournal {
    async fn alert_bookkeeping(
        &self,
        alert_id: &str,
    ) -> Result<Option<Journaled<AlertBookkeeping>>, StoreError> {
        self.read_fails()?;
        Ok(self.alert(alert_id))
    }

    async fn enrolment_bookkeeping(
        &self,
        enrolment_id: &str,
    ) -> Result<Option<Journaled<EnrolmentBookkeeping>>, StoreError> {
        self.read_fails()?;
        Ok(self.enrolment(enrolment_id))
    }
}
