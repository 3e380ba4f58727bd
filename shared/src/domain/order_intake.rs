//! The order intake: the one door into the order outbox, used by the ops API's HTTP endpoint
//! and by `cbs import-orders`. Every order is validated with the shared validators first; an
//! invalid one is answered with field-level errors and never stored, a valid one is never
//! dropped (stored PENDING, or reported as already queued when its `reference_id` is known).

use crate::models::order::{Order, PatchOrder};
use crate::ports::order_outbox::{Enqueued, OrderOutbox, Requeued, UpdateQueued, UploadState};
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;

/// One problem with one field of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// A path into the order, e.g. `transactions[0].payment_method_card_last_4`.
    pub field: String,
    pub message: String,
}

/// An order the intake refused, by its position in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedOrder {
    pub index: usize,
    pub reference_id: Option<String>,
    pub errors: Vec<FieldProblem>,
}

/// The answer to one intake request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntakeReport {
    /// Newly stored as PENDING.
    pub stored: Vec<String>,
    /// Already in the outbox (left as they are): a re-sent or resumed import.
    pub already_queued: Vec<String>,
    pub rejected: Vec<RejectedOrder>,
}

/// Validates every order of the request and stores the valid ones in the outbox.
/// `orders` are raw JSON objects, so a wrongly typed field is a field-level error too.
pub async fn intake_orders(
    outbox: &dyn OrderOutbox,
    orders: Vec<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<IntakeReport, StoreError> {
    let mut report = IntakeReport::default();
    let mut valid = Vec::new();
    let mut seen = HashSet::new();
    for (index, raw) in orders.into_iter().enumerate() {
        let reference_id = raw
            .get("reference_id")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let order: Order = match serde_json::from_value(raw) {
            Ok(order) => order,
            Err(e) => {
                report.rejected.push(RejectedOrder {
                    index,
                    reference_id,
                    errors: vec![parse_problem(&e)],
                });
                continue;
            }
        };
        let mut errors = validate(&order);
        let key = (order.organisation_id.clone(), order.reference_id.clone());
        if errors.is_empty() && !seen.insert(key) {
            errors.push(FieldProblem {
                field: "reference_id".into(),
                message: "appears more than once in this request".into(),
            });
        }
        if errors.is_empty() {
            valid.push(order);
        } else {
            report.rejected.push(RejectedOrder {
                index,
                reference_id,
                errors,
            });
        }
    }
    for chunk in valid.chunks(100) {
        let results = outbox.enqueue(chunk, now).await?;
        for (order, result) in chunk.iter().zip(results) {
            let reference = order.reference_id.clone().unwrap_or_default();
            match result {
                Enqueued::Stored => report.stored.push(reference),
                Enqueued::AlreadyQueued => report.already_queued.push(reference),
            }
        }
    }
    Ok(report)
}

/// Queues a refund/dispute/status update for an order already in the outbox; it goes out as
/// `PATCH /v1/orders/{order_id}` once the order has been created.
pub async fn queue_order_update(
    outbox: &dyn OrderOutbox,
    organisation_id: &str,
    reference_id: &str,
    update_id: &str,
    patch: &PatchOrder,
    now: DateTime<Utc>,
) -> Result<UpdateQueued, StoreError> {
    outbox
        .queue_update(organisation_id, reference_id, update_id, patch, now)
        .await
}

/// The answer to an operator's requeue of a FAILED order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequeueAnswer {
    /// PENDING again: the next upload run sends it (attempts from zero).
    Requeued,
    /// The corrected order is invalid: nothing changed. Fields are paths into the order.
    Invalid(Vec<FieldProblem>),
    UnknownOrder,
    /// Only a FAILED order can be requeued.
    NotFailed(UploadState),
}

/// Puts a FAILED order back in the upload queue under the same `reference_id`, optionally
/// replaced by a corrected order (validated like any intake; it must keep the organisation and
/// reference). The one door for the ops API's requeue route and `cbs orders requeue`.
pub async fn requeue_failed_order(
    outbox: &dyn OrderOutbox,
    organisation_id: &str,
    reference_id: &str,
    corrected: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<RequeueAnswer, StoreError> {
    let order = match corrected {
        None => None,
        Some(raw) => {
            let order: Order = match serde_json::from_value(raw) {
                Ok(order) => order,
                Err(e) => return Ok(RequeueAnswer::Invalid(vec![parse_problem(&e)])),
            };
            let mut problems = validate(&order);
            for (field, value, wanted) in [
                (
                    "organisation_id",
                    order.organisation_id.as_deref(),
                    organisation_id,
                ),
                ("reference_id", order.reference_id.as_deref(), reference_id),
            ] {
                if value.is_some_and(|v| v != wanted) {
                    problems.push(FieldProblem {
                        field: field.into(),
                        message: format!(
                            "must stay {wanted:?}: a requeue keeps the order's {field}"
                        ),
                    });
                }
            }
            if !problems.is_empty() {
                return Ok(RequeueAnswer::Invalid(problems));
            }
            Some(order)
        }
    };
    Ok(
        match outbox
            .requeue(organisation_id, reference_id, order.as_ref(), now)
            .await?
        {
            Requeued::Requeued => RequeueAnswer::Requeued,
            Requeued::UnknownOrder => RequeueAnswer::UnknownOrder,
            Requeued::NotFailed(state) => RequeueAnswer::NotFailed(state),
        },
    )
}

fn parse_problem(e: &serde_json::Error) -> FieldProblem {
    // serde's message names the expected type; the field is the part in backticks when present.
    let text = e.to_string();
    let field = text
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "(order)".into());
    FieldProblem {
        field,
        message: text,
    }
}

/// The shared validators, as field problems.
// TEMPORARY until `crate::validation` lands: the guide's required COMPLETE-order fields.
fn validate(order: &Order) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let mut need = |present: bool, field: String| {
        if !present {
            problems.push(FieldProblem {
                field,
                message: "is required".into(),
            });
        }
    };
    need(order.order_type.is_some(), "type".into());
    need(order.organisation_id.is_some(), "organisation_id".into());
    need(order.integration_id.is_some(), "integration_id".into());
    need(
        order.reference_id.as_deref().is_some_and(|r| !r.is_empty()),
        "reference_id".into(),
    );
    need(order.order_datetime.is_some(), "order_datetime".into());
    need(order.order_number.is_some(), "order_number".into());
    need(
        order.order_subtotal_amount_in_cents.is_some(),
        "order_subtotal_amount_in_cents".into(),
    );
    need(order.order_currency.is_some(), "order_currency".into());
    need(
        order.order_total_amount_in_cents.is_some(),
        "order_total_amount_in_cents".into(),
    );
    need(order.order_status.is_some(), "order_status".into());
    for (i, t) in order.transactions.iter().enumerate() {
        need(
            t.reference_id.is_some(),
            format!("transactions[{i}].reference_id"),
        );
        need(
            t.payment_method_card_last_4.is_some() || !t.is_card(),
            format!("transactions[{i}].payment_method_card_last_4"),
        );
    }
    problems
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::adapters::memory_orders::MemoryOutbox;
    use crate::ports::order_outbox::UploadState;

    pub(crate) fn valid_order(reference: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "COMPLETE",
            "organisation_id": "org_1",
            "integration_id": "int_1",
            "reference_id": reference,
            "order_datetime": "2026-02-17T09:59:00Z",
            "order_number": format!("AF-{reference}"),
            "order_subtotal_amount_in_cents": 4900,
            "order_currency": "USD",
            "order_total_amount_in_cents": 4900,
            "order_status": "CLOSED_COMPLETE",
            "transactions": [{
                "reference_id": format!("txn-{reference}"),
                "amount_in_cents": 4900,
                "currency": "USD",
                "payment_method_type": "CARD",
                "authorisation_status": "SETTLED",
                "payment_method_reference_id": format!("pay-{reference}"),
                "authorised_at": "2026-02-17T09:59:05Z",
                "payment_method_card_brand": "VISA",
                "payment_method_card_last_4": "4242"
            }]
        })
    }

    fn now() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn stores_the_valid_and_answers_the_invalid_field_by_field() {
        let outbox = MemoryOutbox::default();
        let mut missing_last4 = valid_order("o-2");
        missing_last4["transactions"][0]
            .as_object_mut()
            .unwrap()
            .remove("payment_method_card_last_4");
        let mut wrong_type = valid_order("o-3");
        wrong_type["order_total_amount_in_cents"] = serde_json::json!("lots");
        let report = intake_orders(
            &outbox,
            vec![
                valid_order("o-1"),
                missing_last4,
                wrong_type,
                valid_order("o-4"),
            ],
            now(),
        )
        .await
        .unwrap();
        assert_eq!(report.stored, vec!["o-1", "o-4"]);
        assert_eq!(report.rejected.len(), 2);
        assert_eq!(report.rejected[0].index, 1);
        assert_eq!(report.rejected[0].reference_id.as_deref(), Some("o-2"));
        assert!(
            report.rejected[0]
                .errors
                .iter()
                .any(|e| e.field.contains("payment_method_card_last_4")),
            "{:?}",
            report.rejected[0].errors
        );
        assert_eq!(report.rejected[1].index, 2);
        let stored: Vec<String> = outbox
            .snapshot()
            .into_iter()
            .map(|o| o.reference_id)
            .collect();
        assert_eq!(stored, vec!["o-1", "o-4"], "nothing invalid stored");
        assert!(outbox
            .snapshot()
            .iter()
            .all(|o| o.state == UploadState::Pending));
    }

    #[tokio::test]
    async fn a_second_intake_of_the_same_orders_resumes_without_overwriting() {
        let outbox = MemoryOutbox::default();
        intake_orders(&outbox, vec![valid_order("o-1")], now())
            .await
            .unwrap();
        outbox.edit("org_1", "o-1", |o| o.state = UploadState::Created);
        let report = intake_orders(&outbox, vec![valid_order("o-1"), valid_order("o-2")], now())
            .await
            .unwrap();
        assert_eq!(report.stored, vec!["o-2"]);
        assert_eq!(report.already_queued, vec!["o-1"]);
        assert_eq!(
            outbox.get("org_1", "o-1").await.unwrap().unwrap().state,
            UploadState::Created
        );
    }

    #[tokio::test]
    async fn a_failed_order_is_requeued_only_with_a_valid_correction_of_the_same_order() {
        let outbox = MemoryOutbox::default();
        intake_orders(&outbox, vec![valid_order("o-1"), valid_order("o-2")], now())
            .await
            .unwrap();
        outbox.edit("org_1", "o-1", |o| {
            o.state = UploadState::Failed;
            o.attempts = 8;
            o.error_code = Some("INVALID_INTEGRATION".into());
        });
        let mut no_currency = valid_order("o-1");
        no_currency
            .as_object_mut()
            .unwrap()
            .remove("order_currency");
        let answer = requeue_failed_order(&outbox, "org_1", "o-1", Some(no_currency), now())
            .await
            .unwrap();
        assert!(
            matches!(&answer, RequeueAnswer::Invalid(p) if p.iter().any(|p| p.field == "order_currency")),
            "{answer:?}"
        );
        let other_reference = valid_order("o-9");
        let answer = requeue_failed_order(&outbox, "org_1", "o-1", Some(other_reference), now())
            .await
            .unwrap();
        assert!(
            matches!(&answer, RequeueAnswer::Invalid(p) if p.iter().any(|p| p.field == "reference_id")),
            "{answer:?}"
        );
        assert_eq!(
            outbox.get("org_1", "o-1").await.unwrap().unwrap().state,
            UploadState::Failed,
            "nothing changed by an invalid correction"
        );
        let mut fixed = valid_order("o-1");
        fixed["integration_id"] = serde_json::json!("int_2");
        let later = now() + chrono::Duration::hours(1);
        assert_eq!(
            requeue_failed_order(&outbox, "org_1", "o-1", Some(fixed), later)
                .await
                .unwrap(),
            RequeueAnswer::Requeued
        );
        let o = outbox.get("org_1", "o-1").await.unwrap().unwrap();
        assert_eq!((o.state, o.attempts), (UploadState::Pending, 0));
        assert_eq!(o.order.integration_id.as_deref(), Some("int_2"));
        assert_eq!(o.error_code, None);
        assert!(outbox.in_pending_index("org_1", "o-1"));
        assert_eq!(
            requeue_failed_order(&outbox, "org_1", "o-2", None, now())
                .await
                .unwrap(),
            RequeueAnswer::NotFailed(UploadState::Pending)
        );
        assert_eq!(
            requeue_failed_order(&outbox, "org_1", "o-404", None, now())
                .await
                .unwrap(),
            RequeueAnswer::UnknownOrder
        );
    }

    #[tokio::test]
    async fn the_same_reference_twice_in_one_request_is_refused_once() {
        let outbox = MemoryOutbox::default();
        let report = intake_orders(&outbox, vec![valid_order("o-1"), valid_order("o-1")], now())
            .await
            .unwrap();
        assert_eq!(report.stored, vec!["o-1"]);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].errors[0].field, "reference_id");
    }
}
