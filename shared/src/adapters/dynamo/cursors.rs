//! The `cursors` table (pk `cursor_id`): where scheduled jobs resume. Reconciliation stores one
//! item per organisation, `cursor_id = reconcile#<organisation_id>`.

use super::table::Table;
use crate::domain::reconcile::ReconcileCursor;
use crate::ports::reconcile_cursors::CursorStore;
use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoCursorStore {
    table: Table,
}

impl DynamoCursorStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait::async_trait]
impl CursorStore for DynamoCursorStore {
    async fn reconcile_cursors(&self) -> Result<Vec<ReconcileCursor>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            self.table.counters.read();
            let page = self
                .table
                .client
                .scan()
                .table_name(&self.table.name)
                .filter_expression("begins_with(cursor_id, :p)")
                .expression_attribute_values(":p", AttributeValue::S("reconcile#".into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.table.error("list reconcile cursors", e))?;
            for item in page.items.unwrap_or_default() {
                match self.table.decode_item(item, "cursor_id") {
                    Ok(cursor) => out.push(cursor),
                    Err(s) => tracing::error!(key = %s.key, reason = %s.reason,
                        "reconcile cursor does not decode; that organisation starts a fresh pass"),
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(cursor)
            .map_err(|e| self.table.bad_item("save reconcile cursor", e))?;
        self.table.counters.write();
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.table.error("save reconcile cursor", e))?;
        Ok(())
    }
}
