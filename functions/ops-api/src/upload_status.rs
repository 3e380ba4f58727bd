//! Reading the orders outbox by organisation and upload state, for the upload-status endpoint
//! and the page's "recent upload failures". One Query on the table's partition key
//! (`organisation_id`) with a filter on `state`, projecting only keys and `updated_at`; then the
//! most recent few are read through the outbox itself, so the item format stays the outbox's
//! business. No Scan.

use shared::ports::order_outbox::{OrderOutbox, OutboxOrder};
use shared::ports::store_error::StoreError;
use std::sync::Arc;

#[async_trait::async_trait]
pub trait UploadStatusReader: Send + Sync {
    /// One organisation's orders, optionally only those in `state` (PENDING, FAILED, ...),
    /// most recently updated first, at most `limit`.
    async fn orders_of(
        &self,
        organisation_id: &str,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxOrder>, StoreError>;
}

pub struct DynamoUploadStatus {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub outbox: Arc<dyn OrderOutbox>,
}

#[async_trait::async_trait]
impl UploadStatusReader for DynamoUploadStatus {
    async fn orders_of(
        &self,
        organisation_id: &str,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxOrder>, StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as AV;
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("organisation_id = :org")
                .expression_attribute_values(":org", AV::S(organisation_id.to_owned()))
                .projection_expression("reference_id, updated_at")
                .set_exclusive_start_key(start.take());
            if let Some(s) = state {
                q = q
                    .filter_expression("#state = :state")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":state", AV::S(s.to_owned()));
            }
            let page = q.send().await.map_err(|e| StoreError::Transient {
                operation: "query upload status",
                table: self.table.clone(),
                detail: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
            })?;
            for item in page.items.unwrap_or_default() {
                let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                if let Some(r) = get("reference_id") {
                    keys.push((get("updated_at").unwrap_or_default(), r));
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        keys.sort_by(|a, b| b.cmp(a));
        keys.truncate(limit);
        let mut out = Vec::with_capacity(keys.len());
        for (_, reference) in keys {
            if let Some(o) = self.outbox.get(organisation_id, &reference).await? {
                out.push(o);
            }
        }
        Ok(out)
    }
}
