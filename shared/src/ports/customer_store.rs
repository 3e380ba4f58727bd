//! The `customers` table: one record per onboarded customer with every id ChargebackStop returned
//! and how far onboarding got, so a re-run resumes instead of creating duplicates.

use crate::ports::store_error::{StoreError, UndecodableItem};
use crate::records::customer::CustomerRecord;

/// What a Scan of the customers table found, item by item.
#[derive(Debug, Clone, Default)]
pub struct CustomerScan {
    pub records: Vec<CustomerRecord>,
    /// Items that do not decode: skipped, never the end of the read.
    pub skipped: Vec<UndecodableItem>,
    /// True when the scan stopped at its limit with items left.
    pub truncated: bool,
}

#[async_trait::async_trait]
pub trait CustomerStore: Send + Sync {
    async fn get(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError>;

    /// Takes the run lease: succeeds when there is no record, or its lease is free or expired
    /// (`run_lease_until < now`). Writes `record` (which carries the new `run_token` and
    /// `run_lease_until`). Another run holding the lease is `StoreError::Conflict`.
    async fn claim(&self, record: &CustomerRecord, now: &str) -> Result<(), StoreError>;

    /// Saves progress, only while `record.run_token` still holds the lease (else `Conflict`).
    async fn save(&self, record: &CustomerRecord) -> Result<(), StoreError>;

    /// Customers of one organisation (the `organisation-index`). Items that do not decode are
    /// skipped and logged.
    async fn by_organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Vec<CustomerRecord>, StoreError>;

    /// Every customer, up to `limit`. The table holds one small item per customer, so this is
    /// a bounded Scan (the alert queue itself never scans).
    async fn list(&self, limit: usize) -> Result<Vec<CustomerRecord>, StoreError> {
        Ok(self.scan(limit).await?.records)
    }

    /// Every customer up to `limit`, decoding item by item: one malformed item is reported in
    /// `skipped` and the rest are read.
    async fn scan(&self, limit: usize) -> Result<CustomerScan, StoreError>;
}
