//! The `enrolments` table (pk `enrolment_id`; `organisation-index`: `organisation_id` + `enrolment_id`).

use super::table::Table;
use crate::domain::enrolment_lifecycle::EnrolmentRecord;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::store_error::StoreError;

#[derive(Debug, Clone)]
pub struct DynamoEnrolmentStore {
    table: Table,
}

impl DynamoEnrolmentStore {
    pub fn new(table: Table) -> Self {
        Self { table }
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
