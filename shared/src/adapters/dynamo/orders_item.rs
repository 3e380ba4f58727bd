//! The `orders` table's item, as stored (`super`'s outbox reads and writes it).

use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{OutboxOrder, UploadState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The item as stored. The order travels as its JSON text: it is sent exactly as validated,
/// and fields this version does not model survive untouched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OrderItem {
    pub(super) organisation_id: String,
    pub(super) reference_id: String,
    pub(super) state: UploadState,
    pub(super) order_json: String,
    /// When the order is next due: the pending-index sort key.
    pub(super) queued_at: String,
    /// When it was taken in (absent on items written before it existed: `queued_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) enqueued_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pending_organisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) lease_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) lease_owner: Option<String>,
    #[serde(default)]
    pub(super) attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error: Option<String>,
    /// update id -> PATCH body as JSON text.
    #[serde(default)]
    pub(super) pending_updates: BTreeMap<String, String>,
    pub(super) updated_at: String,
}

impl OrderItem {
    pub(super) fn into_order(self) -> Result<OutboxOrder, String> {
        let order: Order = serde_json::from_str(&self.order_json).map_err(|e| e.to_string())?;
        let mut updates = BTreeMap::new();
        for (id, raw) in self.pending_updates {
            updates.insert(
                id,
                serde_json::from_str::<PatchOrder>(&raw).map_err(|e| e.to_string())?,
            );
        }
        Ok(OutboxOrder {
            organisation_id: self.organisation_id,
            reference_id: self.reference_id,
            state: self.state,
            order,
            enqueued_at: self.enqueued_at.unwrap_or_else(|| self.queued_at.clone()),
            queued_at: self.queued_at,
            lease_until: self.lease_until,
            lease_owner: self.lease_owner,
            attempts: self.attempts,
            order_id: self.order_id,
            error_code: self.error_code,
            error_field: self.error_field,
            error_message: self.error_message,
            last_error: self.last_error,
            pending_updates: updates,
            updated_at: self.updated_at,
        })
    }
}
