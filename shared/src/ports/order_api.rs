//! What the order upload needs from ChargebackStop's Orders API: create in batches, find an
//! order by our `reference_id` (DUPLICATE_ORDER reconciliation), and PATCH later lifecycle data.
//! The reqwest client implements it (`adapters::order_api`); unit tests use a fake.

use crate::models::order::{Order, OrderBatchResponse, PatchOrder};
use std::time::Duration;

/// How a call failed, in the terms the upload decides on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OrderApiError {
    /// 429: wait (for `retry_after` when the API said) and send the same orders again.
    #[error("rate limited by ChargebackStop")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, a timeout, a dropped connection: safe to retry with the same `reference_id`s.
    #[error("ChargebackStop call failed, worth retrying: {0}")]
    Retryable(String),
    /// 422 schema validation of the whole request: no order of the batch was processed.
    #[error("ChargebackStop refused the request ({status}): {code} {message}")]
    Rejected {
        status: u16,
        code: String,
        field: Option<String>,
        message: String,
    },
    /// 401/403/404 and the like: configuration a person must fix; the orders stay queued.
    #[error("ChargebackStop call not allowed ({status}): {message}")]
    Fatal { status: u16, message: String },
}

#[async_trait::async_trait]
pub trait OrderApi: Send + Sync {
    /// `POST /v1/orders/` with at most 100 orders; partial success comes back per order.
    async fn create_orders(&self, orders: &[Order]) -> Result<OrderBatchResponse, OrderApiError>;

    /// `GET /v1/orders/?reference_id=`: the `order_id` of an order we already created.
    async fn find_order_id(
        &self,
        organisation_id: &str,
        reference_id: &str,
    ) -> Result<Option<String>, OrderApiError>;

    /// `PATCH /v1/orders/{order_id}`.
    async fn patch_order(&self, order_id: &str, patch: &PatchOrder) -> Result<(), OrderApiError>;
}
