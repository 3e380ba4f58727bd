//! The bookkeeping journal (`ports::bookkeeping_journal`) in the `archive` table: one item per
//! alert and per enrolment, pk `event_id` = `#journal#alert#<alert_id>` or
//! `#journal#enrolment#<enrolment_id>` (no event id starts with `#`, like the `#dead-letters`
//! counters), sk `delivery_id` = `bookkeeping`; no `received_day`, so never in
//! `received-index`; TTL `expires_at` = the write + the archive's retention. Attributes:
//! `bookkeeping` (a map: `records::bookkeeping`, serde_dynamo), `revision`, `object_kind`,
//! `object_id`, `written_at`.
//!
//! Written only by the stores, inside the request that writes the record
//! (`Table::put_versioned` for `DynamoAlertStore`/`DynamoEnrolmentStore`, the event's
//! `TransactWriteItems` in `event_commit`): a Put without a condition, so the journal item never
//! refuses the request, and it holds what the record's last write held.

use super::table::{Item, Table};
use crate::ports::bookkeeping_journal::BookkeepingJournal;
use crate::ports::event_archive::DEFAULT_ARCHIVE_RETENTION_DAYS;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use crate::records::bookkeeping::{AlertBookkeeping, EnrolmentBookkeeping, Journaled};
use crate::records::enrolment::EnrolmentRecord;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

const ALERT_PK: &str = "#journal#alert#";
const ENROLMENT_PK: &str = "#journal#enrolment#";
const SORT_KEY: &str = "bookkeeping";

#[derive(Serialize, Deserialize)]
struct JournalItem<T> {
    event_id: String,
    delivery_id: String,
    object_kind: String,
    object_id: String,
    bookkeeping: T,
    revision: u64,
    written_at: String,
    expires_at: i64,
}

/// `ARCHIVE_RETENTION_DAYS` when set to a positive number of days, else the default. Read here
/// rather than passed in: every store constructor in every function builds a journal, and the
/// template sets the variable for all of them (Globals).
fn archive_retention_days() -> u32 {
    std::env::var("ARCHIVE_RETENTION_DAYS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_ARCHIVE_RETENTION_DAYS)
}

#[derive(Debug, Clone)]
pub struct DynamoBookkeepingJournal {
    table: Table,
    retention_days: u32,
}

impl DynamoBookkeepingJournal {
    /// On the `archive` table, with the archive's retention (`ARCHIVE_RETENTION_DAYS`, which
    /// the template gives every function, else `DEFAULT_ARCHIVE_RETENTION_DAYS`), counted from
    /// each write; every write of the record renews it, so the entry outlives the archived
    /// deliveries that name the record.
    pub fn new(archive: Table) -> Self {
        Self {
            table: archive,
            retention_days: archive_retention_days(),
        }
    }

    /// The journal beside `table`, named `<prefix>-<own>` as every table is
    /// (`config::TableNames`): on `<prefix>-archive`, with `table`'s client and counters. So a
    /// store built on its own table alone journals too; a table named otherwise gets
    /// `<name>-archive`, which a write then names in its error (never a silent skip).
    pub fn beside(table: &Table, own: &str) -> Self {
        let prefix = table
            .name
            .strip_suffix(own)
            .and_then(|p| p.strip_suffix('-'))
            .unwrap_or(&table.name);
        Self::new(Table::new(
            table.client.clone(),
            format!("{prefix}-archive"),
            table.counters.clone(),
        ))
    }

    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    fn item<T: Serialize>(
        &self,
        kind: &str,
        pk: &str,
        id: &str,
        bookkeeping: T,
        revision: u64,
    ) -> Result<Item, StoreError> {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let item = JournalItem {
            event_id: format!("{pk}{id}"),
            delivery_id: SORT_KEY.into(),
            object_kind: kind.into(),
            object_id: id.into(),
            bookkeeping,
            revision,
            written_at: crate::ports::event_log::iso(now),
            expires_at: (now + chrono::Duration::days(i64::from(self.retention_days))).timestamp(),
        };
        serde_dynamo::to_item(item).map_err(|e| self.table.bad_item("journal bookkeeping", e))
    }

    /// The journal write that goes with a write of `record`.
    pub(crate) fn alert_write(
        &self,
        record: &AlertRecord,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = self.item(
            "alert",
            ALERT_PK,
            &record.alert_id,
            AlertBookkeeping::of(record),
            record.revision,
        )?;
        self.write(item, record.revision)
    }

    /// The journal write that goes with a write of `record`.
    pub(crate) fn enrolment_write(
        &self,
        record: &EnrolmentRecord,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = self.item(
            "enrolment",
            ENROLMENT_PK,
            &record.enrolment_id,
            EnrolmentBookkeeping::of(record),
            record.revision,
        )?;
        self.write(item, record.revision)
    }

    /// A Put without a condition: it never refuses the request it rides in.
    fn write(&self, item: Item, _revision: u64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .build()
            .map_err(|e| self.table.bad_item("journal bookkeeping", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        id: &str,
    ) -> Result<Option<Journaled<T>>, StoreError> {
        let operation = "read bookkeeping journal";
        self.table.counters.read();
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key("event_id", AttributeValue::S(format!("{pk}{id}")))
            .key("delivery_id", AttributeValue::S(SORT_KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.table.error(operation, e))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item::<_, JournalItem<T>>(item)
                    .map(|j| Journaled {
                        bookkeeping: j.bookkeeping,
                        revision: j.revision,
                    })
                    .map_err(|e| self.table.bad_item(operation, e))
            })
            .transpose()
    }
}

#[async_trait::async_trait]
impl BookkeepingJournal for DynamoBookkeepingJournal {
    async fn alert_bookkeeping(
        &self,
        alert_id: &str,
    ) -> Result<Option<Journaled<AlertBookkeeping>>, StoreError> {
        self.read(ALERT_PK, alert_id).await
    }

    async fn enrolment_bookkeeping(
        &self,
        enrolment_id: &str,
    ) -> Result<Option<Journaled<EnrolmentBookkeeping>>, StoreError> {
        self.read(ENROLMENT_PK, enrolment_id).await
    }
}
