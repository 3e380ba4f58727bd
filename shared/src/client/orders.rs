//! Orders: `POST /v1/orders/` (an array, partial success), lookup by our `reference_id`, PATCH.

use reqwest::Method;
use serde::Serialize;

use super::{ApiError, ChargebackStop, Repeat};
use crate::models::{Order, OrderBatchResponse, Page, PatchOrder};

/// At most this many orders per `POST /v1/orders/` (chargebackstop-facts.md); the same limit
/// `validation::validate_order_batch` checks, kept in one place.
pub const MAX_ORDERS_PER_POST: usize = crate::validation::MAX_ORDERS_PER_REQUEST;

#[derive(Serialize)]
struct ByReference<'a> {
    reference_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    organisation_id: Option<&'a str>,
}

impl ChargebackStop {
    /// Creates up to 100 orders. Each order succeeds or fails on its own: read
    /// `results`/`errors` (`DUPLICATE_ORDER` means an earlier attempt already created it).
    /// Retried like a GET: ChargebackStop deduplicates by `reference_id`, so a repeat cannot
    /// create an order twice. Callers must therefore set `reference_id` on every order.
    pub async fn create_orders(&self, orders: &[Order]) -> Result<OrderBatchResponse, ApiError> {
        let url = self.url(&["v1", "orders"], true);
        if orders.len() > MAX_ORDERS_PER_POST {
            return Err(ApiError::Config(format!(
                "{} orders in one POST /v1/orders/; at most {MAX_ORDERS_PER_POST}",
                orders.len()
            )));
        }
        // Without a reference_id the API cannot deduplicate, so such a batch is sent once.
        let repeat = if orders
            .iter()
            .all(|o| o.reference_id.as_deref().is_some_and(|r| !r.is_empty()))
        {
            Repeat::Safe
        } else {
            Repeat::Never
        };
        self.send(Method::POST, url, Some(orders), repeat).await
    }

    /// The order created with our `reference_id`, if any (how a `DUPLICATE_ORDER` is
    /// reconciled). `organisation_id` narrows the search for partner keys, which see many
    /// organisations whose reference ids may collide.
    pub async fn find_order_by_reference(
        &self,
        organisation_id: Option<&str>,
        reference_id: &str,
    ) -> Result<Option<Order>, ApiError> {
        let page: Page<Order> = self
            .get(
                self.url(&["v1", "orders"], true),
                Some(&ByReference {
                    reference_id,
                    organisation_id,
                }),
            )
            .await?;
        Ok(page
            .items
            .into_iter()
            .find(|o| o.reference_id.as_deref() == Some(reference_id)))
    }

    pub async fn get_order(&self, order_id: &str) -> Result<Order, ApiError> {
        self.get::<_, ()>(self.url(&["v1", "orders", order_id], false), None)
            .await
    }

    /// Adds or updates lifecycle data (refunds, disputes, status). Setting the same values
    /// again is harmless, so it is retried.
    pub async fn update_order(
        &self,
        order_id: &str,
        patch: &PatchOrder,
    ) -> Result<Order, ApiError> {
        self.send(
            Method::PATCH,
            self.url(&["v1", "orders", order_id], false),
            Some(patch),
            Repeat::Safe,
        )
        .await
    }
}
