//! The `enrolments` table (pk `enrolment_id`; `organisation-index`: `organisation_id` + `enrolment_id`).
//! Every write also journals the status history (`journal`), in the same request.

use super::journal::DynamoBookkeepingJournal;
use super::table::Table;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::store_error::StoreError;
use crate::records::enrolment::EnrolmentRecord;

#[derive(Debug, Clone)]
pub struct DynamoEnrolmentStore {
    table: Table,
    journal: DynamoBookkeepingJournal,
}

impl DynamoEnrolmentStore {
    /// On the `enrolments` table (`<prefix>-enrolments`); every write journals the record's
    /// status history in the same request, on the `archive` table beside it
    /// (`DynamoBookkeepingJournal::beside`).
    pub fn new(table: Table) -> Self {
        let journal = DynamoBookkeepingJournal::beside(&table, "enrolments");
        Self { table, journal }
    }

    /// The journal written with every write (the archive table beside this one unless set).
    pub fn with_journal(mut self, journal: DynamoBookkeepingJournal) -> Self {
        self.journal = journal;
        self
    }
}

#[async_trait::async_trait]
impl EnrolmentStore for DynamoEnrolmentStore {
    async fn get(&self, enrolment_id: &str) -> Result<Option<EnrolmentRecord>, StoreError> {
        self.table
            .get_by_key("get enrolment", "enrolment_id", enrolment_id)
            .await
    }

    async fn put(&self, record: &EnrolmentRecord) -> Result<(), StoreError> {
        let item =
            serde_json::to_value(record).map_err(|e| self.table.bad_item("put enrolment", e))?;
        self.table
            .put_versioned(
                "put enrolment",
                "enrolment_id",
                &record.enrolment_id,
                item,
                record.revision,
                &record.version_key,
                self.journal.enrolment_write(record)?,
            )
            .await
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<EnrolmentRecord>, StoreError> {
        self.table
            .query_index(
                "enrolments of organisation",
                "organisation-index",
                ("organisation_id", organisation_id),
                None,
                false,
                None,
            )
            .await
    }
}
