//! The stores a rebuild writes through: the alert and enrolment stores, except that the first
//! write of a record in the run puts the record's journaled bookkeeping
//! (`ports::bookkeeping_journal`) on it, in that same write, when the entry is newer than what
//! the table holds: always for a record the table lost (the write creates it), and for one a
//! restore from an older backup set back. What the record holds that the entry does not is kept
//! (`merged_with`).
//!
//! In the same write, because every write of a record replaces its journal entry: a rebuild that
//! stored the re-fetched record first and restored after would, cut off in between, have
//! replaced the entry with the bare record's for good. Each record's entry is read once, before
//! its first write in the run, and put on every write of it in the run (a notice or a match
//! written after the first write keeps it too).

use crate::ports::alert_store::AlertStore;
use crate::ports::bookkeeping_journal::BookkeepingJournal;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::store_error::{StoreError, UndecodableItem};
use crate::records::alert::AlertRecord;
use crate::records::bookkeeping::{AlertBookkeeping, EnrolmentBookkeeping, Journaled};
use crate::records::enrolment::EnrolmentRecord;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What a run read of the journal, and what it put back.
#[derive(Default)]
struct Entries<T> {
    /// Every entry read in the run (`None`: the journal has none).
    read: Mutex<HashMap<String, Option<Journaled<T>>>>,
    /// The entries put on each record (newer than the table's), by record.
    applied: Mutex<HashMap<String, Journaled<T>>>,
    /// Records written with their entry's bookkeeping.
    restored: Mutex<BTreeSet<String>>,
}

impl<T: Clone> Entries<T> {
    /// The entry to put on a write of revision `revision` of `id`: read before its first write
    /// in the run, and kept if newer than the revision that write replaces.
    async fn for_write<F, Fut>(
        &self,
        id: &str,
        revision: u64,
        read: F,
    ) -> Result<Option<Journaled<T>>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Journaled<T>>, StoreError>>,
    {
        if let Some(entry) = self.applied.lock().unwrap().get(id) {
            return Ok(Some(entry.clone()));
        }
        if self.read.lock().unwrap().contains_key(id) {
            return Ok(None);
        }
        let entry = read().await?;
        self.read
            .lock()
            .unwrap()
            .insert(id.to_string(), entry.clone());
        let newer = entry.filter(|e| e.revision + 1 > revision);
        if let Some(e) = &newer {
            self.applied
                .lock()
                .unwrap()
                .insert(id.to_string(), e.clone());
        }
        Ok(newer)
    }

    fn written(&self, id: &str) {
        self.restored.lock().unwrap().insert(id.to_string());
    }
}

/// What a rebuild learned of a record's journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// Written with the entry's bookkeeping on it.
    Restored,
    /// Read, no newer than the table's record.
    Current,
    /// Read: none.
    Missing,
    /// Not read in this run (the record was not written).
    Unread,
}

impl<T> Entries<T> {
    fn state(&self, id: &str) -> EntryState {
        if self.restored.lock().unwrap().contains(id) {
            return EntryState::Restored;
        }
        match self.read.lock().unwrap().get(id) {
            Some(Some(_)) => EntryState::Current,
            Some(None) => EntryState::Missing,
            None => EntryState::Unread,
        }
    }
}

pub(crate) struct RestoringAlerts {
    pub inner: Arc<dyn AlertStore>,
    pub journal: Arc<dyn BookkeepingJournal>,
    entries: Entries<AlertBookkeeping>,
}

impl RestoringAlerts {
    pub fn new(inner: Arc<dyn AlertStore>, journal: Arc<dyn BookkeepingJournal>) -> Self {
        Self {
            inner,
            journal,
            entries: Entries::default(),
        }
    }

    pub fn state(&self, id: &str) -> EntryState {
        self.entries.state(id)
    }

    /// Whether the alert's entry, read in this run, says the record had a match; `Some(true)`
    /// with no entry (written before the journal: matched, as a rebuild always did); `None`
    /// when not read (the run did not write the record: the table still holds it).
    pub fn was_matched(&self, id: &str) -> Option<bool> {
        match self.entries.read.lock().unwrap().get(id) {
            Some(Some(entry)) => Some(entry.bookkeeping.has_match),
            Some(None) => Some(true),
            None => None,
        }
    }

    /// `record` (as stored) written again with its entry's bookkeeping if the entry is newer;
    /// nothing written otherwise (the entry is read either way, for `state`).
    pub async fn restore_if_newer(&self, mut record: AlertRecord) -> Result<(), StoreError> {
        record.revision += 1;
        let id = record.alert_id.clone();
        let newer = self
            .entries
            .for_write(&id, record.revision, || self.journal.alert_bookkeeping(&id))
            .await?;
        if newer.is_none() {
            return Ok(());
        }
        self.put(&record).await
    }
}

#[async_trait::async_trait]
impl AlertStore for RestoringAlerts {
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.inner.get(alert_id).await
    }

    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        let id = &record.alert_id;
        let entry = self
            .entries
            .for_write(id, record.revision, || self.journal.alert_bookkeeping(id))
            .await?;
        let Some(entry) = entry else {
            return self.inner.put(record).await;
        };
        let mut restored = record.clone();
        entry.bookkeeping.merged_with(record).put_on(&mut restored);
        self.inner.put(&restored).await?;
        self.entries.written(id);
        Ok(())
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner
            .awaiting_action_until(deadline_at_or_before, limit)
            .await
    }

    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        self.inner
            .awaiting_action_each(deadline_at_or_before, limit)
            .await
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner.by_organisation(organisation_id, limit).await
    }
}

pub(crate) struct RestoringEnrolments {
    pub inner: Arc<dyn EnrolmentStore>,
    pub journal: Arc<dyn BookkeepingJournal>,
    entries: Entries<EnrolmentBookkeeping>,
}

impl RestoringEnrolments {
    pub fn new(inner: Arc<dyn EnrolmentStore>, journal: Arc<dyn BookkeepingJournal>) -> Self {
        Self {
            inner,
            journal,
            entries: Entries::default(),
        }
    }

    pub fn state(&self, id: &str) -> EntryState {
        self.entries.state(id)
    }

    /// As [`RestoringAlerts::restore_if_newer`].
    pub async fn restore_if_newer(&self, mut record: EnrolmentRecord) -> Result<(), StoreError> {
        record.revision += 1;
        let id = record.enrolment_id.clone();
        let newer = self
            .entries
            .for_write(&id, record.revision, || {
                self.journal.enrolment_bookkeeping(&id)
            })
            .await?;
        if newer.is_none() {
            return Ok(());
        }
        self.put(&record).await
    }
}

#[async_trait::async_trait]
impl EnrolmentStore for RestoringEnrolments {
    async fn get(&self, enrolment_id: &str) -> Result<Option<EnrolmentRecord>, StoreError> {
        self.inner.get(enrolment_id).await
    }

    async fn put(&self, record: &EnrolmentRecord) -> Result<(), StoreError> {
        let id = &record.enrolment_id;
        let entry = self
            .entries
            .for_write(id, record.revision, || {
                self.journal.enrolment_bookkeeping(id)
            })
            .await?;
        let Some(entry) = entry else {
            return self.inner.put(record).await;
        };
        let mut restored = record.clone();
        entry.bookkeeping.merged_with(record).put_on(&mut restored);
        self.inner.put(&restored).await?;
        self.entries.written(id);
        Ok(())
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<EnrolmentRecord>, StoreError> {
        self.inner.by_organisation(organisation_id).await
    }
}
