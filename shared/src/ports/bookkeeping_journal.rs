//! The bookkeeping journal: for each alert and enrolment, its bookkeeping (what neither
//! ChargebackStop nor the archive holds: decisions, warnings, claims, the enrolment status
//! history; `records::bookkeeping`) as of the record's last write. The stores write it in the
//! same request as every write of the record (`ports::alert_store`, `ports::enrolment_store`,
//! `ports::event_commit`), so it never disagrees with the table: an entry holds what the
//! record's last write held. When the table loses a record the entry stays (another table), and
//! `cbs rebuild` restores from it (`domain::recovery::journal_restore`).
//!
//! DynamoDB: one item per record in the `archive` table (`adapters::dynamo::journal`), with the
//! archive's retention counted from the write.

use super::store_error::StoreError;
use crate::records::bookkeeping::{AlertBookkeeping, EnrolmentBookkeeping, Journaled};

#[async_trait::async_trait]
pub trait BookkeepingJournal: Send + Sync {
    /// The alert's journaled bookkeeping; `None`: never journaled (written before the journal
    /// existed, or expired).
    async fn alert_bookkeeping(
        &self,
        alert_id: &str,
    ) -> Result<Option<Journaled<AlertBookkeeping>>, StoreError>;

    async fn enrolment_bookkeeping(
        &self,
        enrolment_id: &str,
    ) -> Result<Option<Journaled<EnrolmentBookkeeping>>, StoreError>;
}
