//! Orders (`/v1/orders/`): COMPLETE orders with card transactions, refunds and disputes, which
//! ChargebackStop matches alerts against.
//!
//! Every field is optional in the type so that an incomplete order (from a CSV import or an
//! ops API request) can be represented and then rejected by `validation` with a field-level
//! message, instead of failing to parse with a serde error. `None` fields are never sent.
//! Fields this model does not name (items, deliveries, subscriptions...) are kept in `extra`
//! and passed through unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{CardBrand, Link};
use super::string_enum::nullable::default_if_null;
use super::string_enum::string_enum;

string_enum! {
    /// COMPLETE orders go to a CUSTOM_ORDERS integration; PARTIAL ones enrich a processor one.
    pub enum OrderType {
        Complete = "COMPLETE",
        Partial = "PARTIAL",
    }
}

string_enum! {
    pub enum OrderStatus {
        OpenPending = "OPEN_PENDING",
        OpenPendingReturn = "OPEN_PENDING_RETURN",
        ClosedComplete = "CLOSED_COMPLETE",
        ClosedCancelled = "CLOSED_CANCELLED",
        OtherStatus = "OTHER",
    }
}

string_enum! {
    /// "Usually SETTLED for completed payments"; the others are inferred.
    pub enum AuthorisationStatus {
        Settled = "SETTLED",
        Authorised = "AUTHORISED",
        Declined = "DECLINED",
        Voided = "VOIDED",
        Failed = "FAILED",
    }
}

string_enum! {
    /// "Usually CARD"; the others are inferred.
    pub enum PaymentMethodType {
        Card = "CARD",
        BankTransfer = "BANK_TRANSFER",
        Wallet = "WALLET",
    }
}

string_enum! {
    /// The guide shows SUCCEEDED; the others are inferred.
    pub enum RefundStatus {
        Succeeded = "SUCCEEDED",
        Pending = "PENDING",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
}

string_enum! {
    /// Not in the seeds; inferred from common processor vocabularies.
    pub enum DisputeStatus {
        Open = "OPEN",
        Won = "WON",
        Lost = "LOST",
        Accepted = "ACCEPTED",
        Closed = "CLOSED",
    }
}

string_enum! {
    /// `errors[].code` in a batch response.
    pub enum OrderErrorCode {
        DuplicateOrder = "DUPLICATE_ORDER",
        InvalidOrderType = "INVALID_ORDER_TYPE",
        InvalidIntegration = "INVALID_INTEGRATION",
        MissingField = "MISSING_FIELD",
        RateLimited = "RATE_LIMITED",
    }
}

/// An order, as sent in `POST /v1/orders/` and returned in `results`, `GET` and `PATCH`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// `ord_...`: set by ChargebackStop in responses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<OrderType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// Our stable idempotency key for the create: never regenerated on retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_datetime: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_subtotal_amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_total_amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub transactions: Vec<Transaction>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub refunds: Vec<Refund>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub disputes: Vec<Dispute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "default_if_null"
    )]
    pub links: Vec<Link>,
    /// Fields this model does not name, passed through unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A payment on an order. For alert matching send as many identifiers as possible: ARN first,
/// then authorisation code, then BIN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_type: Option<PaymentMethodType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_status: Option<AuthorisationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorised_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_card_brand: Option<CardBrand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_card_last_4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_card_bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_reference_number: Option<String>,
}

impl Transaction {
    pub fn is_card(&self) -> bool {
        self.payment_method_type == Some(PaymentMethodType::Card)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RefundStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_datetime: Option<DateTime<Utc>>,
}

/// A dispute on a transaction. The seeds name disputes without their fields; these follow the
/// refund's pattern (inferred).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DisputeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_datetime: Option<DateTime<Utc>>,
}

/// Body of `PATCH /v1/orders/{order_id}`: later lifecycle data (refunds, disputes, status...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<Transaction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunds: Option<Vec<Refund>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disputes: Option<Vec<Dispute>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One failed order of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderError {
    /// The order's `reference_id`, when the API echoes it.
    #[serde(default)]
    pub reference_id: Option<String>,
    /// The order's position in the request (0-based), when the API gives it: how an error
    /// without a `reference_id` echo is matched to its order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub code: OrderErrorCode,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// For DUPLICATE_ORDER, when the API says which order already exists (not documented;
    /// otherwise reconcile with `GET /v1/orders/?reference_id=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

/// Response of `POST /v1/orders/`: partial success, one result or error per order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderBatchResponse {
    #[serde(default)]
    pub created: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default, deserialize_with = "default_if_null")]
    pub results: Vec<Order>,
    #[serde(default, deserialize_with = "default_if_null")]
    pub errors: Vec<OrderError>,
}

impl OrderBatchResponse {
    /// The error for one of our orders, by its `reference_id`.
    pub fn error_for(&self, reference_id: &str) -> Option<&OrderError> {
        self.errors
            .iter()
            .find(|e| e.reference_id.as_deref() == Some(reference_id))
    }

    /// The error for the order at `index` of the request: by its `reference_id` echo, or, for
    /// an error that does not echo one (absent, null or empty), by its `index`.
    pub fn error_for_order(&self, index: usize, reference_id: &str) -> Option<&OrderError> {
        self.error_for(reference_id).or_else(|| {
            self.errors.iter().find(|e| {
                e.reference_id.as_deref().is_none_or(str::is_empty) && e.index == Some(index)
            })
        })
    }

    /// The created order for one of our orders, by its `reference_id`.
    pub fn result_for(&self, reference_id: &str) -> Option<&Order> {
        self.results
            .iter()
            .find(|o| o.reference_id.as_deref() == Some(reference_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_REQUEST: &str = r#"[
    {
      "type": "COMPLETE",
      "organisation_id": "org_abc123",
      "integration_id": "int_abc123",
      "reference_id": "order-10001",
      "order_datetime": "2026-02-17T09:59:00Z",
      "order_number": "AF-10001",
      "order_subtotal_amount_in_cents": 4900,
      "order_currency": "USD",
      "order_total_amount_in_cents": 4900,
      "order_status": "CLOSED_COMPLETE",
      "customer_email": "casey.jordan@example.com",
      "transactions": [
        {
          "reference_id": "txn-10001",
          "amount_in_cents": 4900,
          "currency": "USD",
          "payment_method_type": "CARD",
          "authorisation_status": "SETTLED",
          "payment_method_reference_id": "pay_10001",
          "authorised_at": "2026-02-17T09:59:05Z",
          "descriptor": "ACMEFIT MONTHLY",
          "payment_method_card_brand": "VISA",
          "payment_method_card_last_4": "4242",
          "payment_method_card_bin": "424242",
          "authorisation_code": "123456",
          "acquirer_reference_number": "74027012345678901234567"
        }
      ]
    }
  ]"#;

    const BATCH_RESPONSE: &str = r#"{
      "created": 1,
      "failed": 0,
      "results": [
        {
          "id": "ord_abc123",
          "reference_id": "order-10001",
          "type": "COMPLETE",
          "organisation_id": "org_abc123",
          "integration_id": "int_abc123",
          "created_at": "2026-02-17T10:05:00Z",
          "transactions": [
            {
              "reference_id": "txn-10001",
              "amount_in_cents": 4900,
              "currency": "USD",
              "payment_method_type": "CARD",
              "authorisation_status": "SETTLED",
              "payment_method_reference_id": "pay_10001",
              "authorised_at": "2026-02-17T09:59:05Z",
              "payment_method_card_brand": "VISA",
              "payment_method_card_last_4": "4242",
              "payment_method_card_bin": "424242",
              "authorisation_code": "123456",
              "acquirer_reference_number": "74027012345678901234567"
            }
          ],
          "links": [{"rel": "self", "uri": "/v1/orders/ord_abc123"}]
        }
      ],
      "errors": []
    }"#;

    #[test]
    fn parses_the_guide_request_and_writes_it_back_unchanged() {
        let orders: Vec<Order> = serde_json::from_str(ORDER_REQUEST).unwrap();
        let o = &orders[0];
        assert_eq!(o.order_type, Some(OrderType::Complete));
        assert_eq!(o.order_status, Some(OrderStatus::ClosedComplete));
        assert_eq!(o.order_total_amount_in_cents, Some(4900));
        let t = &o.transactions[0];
        assert!(t.is_card());
        assert_eq!(t.payment_method_card_brand, Some(CardBrand::Visa));
        assert_eq!(t.authorisation_status, Some(AuthorisationStatus::Settled));
        assert_eq!(t.descriptor.as_deref(), Some("ACMEFIT MONTHLY"));
        let original: serde_json::Value = serde_json::from_str(ORDER_REQUEST).unwrap();
        assert_eq!(serde_json::to_value(&orders).unwrap(), original);
    }

    #[test]
    fn parses_the_batch_response() {
        let r: OrderBatchResponse = serde_json::from_str(BATCH_RESPONSE).unwrap();
        assert_eq!((r.created, r.failed), (1, 0));
        let created = r.result_for("order-10001").unwrap();
        assert_eq!(created.id.as_deref(), Some("ord_abc123"));
        assert_eq!(created.links[0].uri, "/v1/orders/ord_abc123");
        assert!(r.error_for("order-10001").is_none());
    }

    #[test]
    fn parses_partial_failures_with_unknown_codes() {
        let r: OrderBatchResponse = serde_json::from_str(
            r#"{"created": 0, "failed": 3, "results": [], "errors": [
                {"reference_id": "order-1", "code": "DUPLICATE_ORDER", "field": "reference_id", "message": "exists"},
                {"reference_id": "order-2", "code": "MISSING_FIELD", "field": "transactions[0].currency", "message": "required"},
                {"reference_id": "order-3", "code": "SOMETHING_NEW", "field": null, "message": null}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            r.error_for("order-1").unwrap().code,
            OrderErrorCode::DuplicateOrder
        );
        assert_eq!(
            r.error_for("order-2").unwrap().field.as_deref(),
            Some("transactions[0].currency")
        );
        assert_eq!(
            r.error_for("order-3").unwrap().code,
            OrderErrorCode::Other("SOMETHING_NEW".into())
        );
    }

    #[test]
    fn errors_without_a_reference_echo_are_matched_by_index() {
        let r: OrderBatchResponse = serde_json::from_str(
            r#"{"created": 1, "failed": 2, "results": [{"id": "ord_1", "reference_id": "order-2"}],
                "errors": [
                {"index": 0, "code": "MISSING_FIELD", "field": "order_currency", "message": "required"},
                {"index": 2, "reference_id": null, "code": "DUPLICATE_ORDER", "field": "reference_id"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            r.error_for_order(0, "order-1").unwrap().field.as_deref(),
            Some("order_currency")
        );
        assert!(r.error_for_order(1, "order-2").is_none());
        assert_eq!(
            r.error_for_order(2, "order-3").unwrap().code,
            OrderErrorCode::DuplicateOrder
        );
        // An echo wins over a position: an error that names another order is not ours.
        let echoed: OrderBatchResponse = serde_json::from_str(
            r#"{"errors": [{"index": 0, "reference_id": "order-9", "code": "MISSING_FIELD"}]}"#,
        )
        .unwrap();
        assert!(echoed.error_for_order(0, "order-1").is_none());
    }

    #[test]
    fn unknown_fields_and_values_pass_through() {
        let raw = r#"{"type": "COMPLETE", "reference_id": "o-1", "order_status": "ON_HOLD",
                      "items": [{"sku": "A"}], "transactions": null}"#;
        let o: Order = serde_json::from_str(raw).unwrap();
        assert_eq!(o.order_status, Some(OrderStatus::Other("ON_HOLD".into())));
        assert!(o.transactions.is_empty());
        assert_eq!(o.extra["items"][0]["sku"], "A");
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"type": "COMPLETE", "reference_id": "o-1", "order_status": "ON_HOLD", "items": [{"sku": "A"}]})
        );
    }

    #[test]
    fn other_is_a_known_order_status() {
        let s: OrderStatus = serde_json::from_str(r#""OTHER""#).unwrap();
        assert_eq!(s, OrderStatus::OtherStatus);
        assert!(s.is_known());
    }

    #[test]
    fn patch_order_sends_the_guide_refund() {
        let raw = r#"{"refunds": [{"reference_id": "refund-10001", "amount_in_cents": 4900, "currency": "USD",
            "status": "SUCCEEDED", "original_transaction_reference_id": "txn-10001",
            "refund_datetime": "2026-02-17T11:20:00Z"}]}"#;
        let patch: PatchOrder = serde_json::from_str(raw).unwrap();
        let refund = &patch.refunds.as_ref().unwrap()[0];
        assert_eq!(refund.status, Some(RefundStatus::Succeeded));
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::from_str::<serde_json::Value>(raw).unwrap()
        );
    }
}
