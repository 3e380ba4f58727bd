//! The `alerts` table (pk `alert_id`; `deadline-index`: `action_queue` + `action_required_deadline`,
//! sparse; `organisation-index`: `organisation_id` + `alert_received_at`).

use super::table::{normalise_timestamps, Table};
use crate::domain::alert_record::{AlertRecord, ACTION_QUEUE};
use crate::ports::alert_store::AlertStore;
use crate::ports::store_error::{StoreError, UndecodableItem};

/// Index sort keys, stored in the tables' one ISO format.
const SORT_KEY_TIMESTAMPS: &[&str] = &["action_required_deadline", "alert_received_at"];

#[derive(Debug, Clone)]
pub struct DynamoAlertStore {
    table: Table,
}

impl DynamoAlertStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait::async_trait]
impl AlertStore for DynamoAlertStore {
    async fn get(&self, alert_id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.table
            .get_by_key("get alert", "alert_id", alert_id)
            .await
    }

    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        let mut item =
            serde_json::to_value(record).map_err(|e| self.table.bad_item("put alert", e))?;
        normalise_timestamps(&mut item, SORT_KEY_TIMESTAMPS);
        self.table
            .put_versioned(
                "put alert",
                "alert_id",
                &record.alert_id,
                item,
                record.revision,
                &record.version_key,
            )
            .await
    }

    async fn awaiting_action_until(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.table
            .query_index(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", ACTION_QUEUE),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
            )
            .await
    }

    async fn awaiting_action_each(
        &self,
        deadline_at_or_before: &str,
        limit: i32,
    ) -> Result<(Vec<AlertRecord>, Vec<UndecodableItem>), StoreError> {
        self.table
            .query_index_each(
                "alerts awaiting action",
                "deadline-index",
                ("action_queue", ACTION_QUEUE),
                Some(("action_required_deadline", deadline_at_or_before)),
                false,
                Some(limit),
                "alert_id",
            )
            .await
    }

    async fn by_organisation(
        &self,
        organisation_id: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.table
            .query_index(
                "alerts of organisation",
                "organisation-index",
                ("organisation_id", organisation_id),
                None,
                true,
                Some(limit),
            )
            .await
    }
}
