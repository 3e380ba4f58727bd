//! The `enrolments` table: each enrolment as last fetched, its `live` flag, the customer-facing
//! note and the status history. Same optimistic write rule as the alert store.

use super::store_error::StoreError;
use crate::records::enrolment::EnrolmentRecord;

#[async_trait::async_trait]
pub trait EnrolmentStore: Send + Sync {
    async fn get(&self, enrolment_id: &str) -> Result<Option<EnrolmentRecord>, StoreError>;

    /// `record.revision == 1`: must not exist yet; otherwise the stored revision must be
    /// `record.revision - 1` and the stored `version_key` at most `record.version_key`.
    async fn put(&self, record: &EnrolmentRecord) -> Result<(), StoreError>;

    /// An organisation's enrolments (`organisation-index`).
    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<EnrolmentRecord>, StoreError>;
}
