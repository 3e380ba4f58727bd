//! Which part of a `POST /v1/orders/` answer belongs to which order we sent: a result by its
//! `reference_id`; an error by its `reference_id` echo or, when the error does not echo one,
//! by its `index` in the request. Pure.

use crate::models::order::{Order, OrderBatchResponse, OrderErrorCode};
use crate::ports::order_outbox::UploadOutcome;

/// What the batch answer says about one order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    /// Created, refused, or a duplicate whose id the API gave.
    Final(UploadOutcome),
    /// DUPLICATE_ORDER without the existing id: look it up by reference.
    Lookup,
    /// Not done (a per-order RATE_LIMITED, or no word about it): send it again later; a second
    /// create of the same reference comes back as DUPLICATE_ORDER.
    Again { reason: String },
}

/// One answer per order of `orders`, in order.
pub(super) fn answers(orders: &[Order], response: &OrderBatchResponse) -> Vec<(String, Answer)> {
    orders
        .iter()
        .enumerate()
        .map(|(index, order)| {
            let reference = order.reference_id.clone().unwrap_or_default();
            let answer = classify(response, index, &reference);
            (reference, answer)
        })
        .collect()
}

fn classify(response: &OrderBatchResponse, index: usize, reference: &str) -> Answer {
    if let Some(order_id) = response.result_for(reference).and_then(|o| o.id.clone()) {
        return Answer::Final(UploadOutcome::Created { order_id });
    }
    match response.error_for_order(index, reference) {
        Some(e) if e.code == OrderErrorCode::DuplicateOrder => match &e.order_id {
            Some(order_id) => Answer::Final(UploadOutcome::Duplicate {
                order_id: order_id.clone(),
            }),
            None => Answer::Lookup,
        },
        Some(e) if e.code == OrderErrorCode::RateLimited => Answer::Again {
            reason: "RATE_LIMITED".into(),
        },
        Some(e) => Answer::Final(UploadOutcome::Failed {
            code: e.code.as_str().to_string(),
            field: e.field.clone(),
            message: e.message.clone(),
        }),
        None => Answer::Again {
            reason: "missing from the batch response".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::order::OrderError;

    fn order(reference: &str) -> Order {
        Order {
            reference_id: Some(reference.into()),
            ..Default::default()
        }
    }

    fn error(reference: Option<&str>, index: Option<usize>, code: &str) -> OrderError {
        OrderError {
            reference_id: reference.map(str::to_string),
            index,
            code: code.into(),
            field: Some("integration_id".into()),
            message: None,
            order_id: None,
        }
    }

    #[test]
    fn errors_are_matched_by_reference_or_else_by_index() {
        let orders = [order("a"), order("b"), order("c"), order("d")];
        let response = OrderBatchResponse {
            results: vec![Order {
                id: Some("ord_b".into()),
                ..order("b")
            }],
            errors: vec![
                // No echo at all: its position says it is "c".
                error(None, Some(2), "INVALID_INTEGRATION"),
                error(Some("a"), Some(0), "DUPLICATE_ORDER"),
            ],
            ..Default::default()
        };
        let got = answers(&orders, &response);
        assert_eq!(got[0], ("a".into(), Answer::Lookup));
        assert_eq!(
            got[1],
            (
                "b".into(),
                Answer::Final(UploadOutcome::Created {
                    order_id: "ord_b".into()
                })
            )
        );
        assert!(
            matches!(&got[2].1, Answer::Final(UploadOutcome::Failed { code, .. }) if code == "INVALID_INTEGRATION"),
            "{:?}",
            got[2]
        );
        // Nothing said about "d": sent again later, never assumed created.
        assert!(matches!(got[3].1, Answer::Again { .. }));
    }

    #[test]
    fn a_duplicate_without_echo_or_id_is_looked_up() {
        let orders = [order("a"), order("b")];
        let response = OrderBatchResponse {
            errors: vec![
                error(None, Some(0), "DUPLICATE_ORDER"),
                error(Some(""), Some(1), "DUPLICATE_ORDER"),
            ],
            ..Default::default()
        };
        let got = answers(&orders, &response);
        assert_eq!(got[0].1, Answer::Lookup);
        assert_eq!(got[1].1, Answer::Lookup);
    }
}
