//! `POST /v1/orders/`: COMPLETE orders and their transactions, as the Orders guide requires.

use super::{
    blank, currency, digits, non_negative, path, Collector, ValidationErrors, INVALID_VALUE,
    MAX_ORDERS_PER_REQUEST, MISSING_FIELD, TOO_MANY,
};
use crate::models::{Order, OrderType, Transaction};

/// A `COMPLETE` order as the orders guide requires it, with at least one transaction (alert
/// matching needs one). Field paths are relative to the order.
pub fn validate_complete_order(order: &Order) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_order(&mut c, "", order);
    c.finish()
}

/// A batch for `POST /v1/orders/`: 1 to 100 orders, each valid, no `reference_id` twice.
/// Paths are `[i].field`.
pub fn validate_order_batch(orders: &[Order]) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if orders.is_empty() {
        c.push(
            String::new(),
            MISSING_FIELD,
            "at least one order is required",
        );
    }
    if orders.len() > MAX_ORDERS_PER_REQUEST {
        c.push(
            String::new(),
            TOO_MANY,
            format!(
                "{} orders; at most {MAX_ORDERS_PER_REQUEST} per request",
                orders.len()
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, order) in orders.iter().enumerate() {
        let prefix = format!("[{i}]");
        check_order(&mut c, &prefix, order);
        if let Some(reference) = order
            .reference_id
            .as_deref()
            .filter(|r| !r.trim().is_empty())
        {
            if !seen.insert(reference) {
                c.push(
                    path(&prefix, "reference_id"),
                    INVALID_VALUE,
                    format!("{reference:?} appears twice in this batch"),
                );
            }
        }
    }
    c.finish()
}

fn check_order(c: &mut Collector, prefix: &str, order: &Order) {
    match &order.order_type {
        None => c.missing(path(prefix, "type")),
        Some(OrderType::Complete) => {}
        Some(other) => c.push(
            path(prefix, "type"),
            INVALID_VALUE,
            format!("must be COMPLETE (a CUSTOM_ORDERS integration), not {other}"),
        ),
    }
    for (field, value) in [
        ("organisation_id", &order.organisation_id),
        ("integration_id", &order.integration_id),
        ("reference_id", &order.reference_id),
        ("order_number", &order.order_number),
    ] {
        if blank(value) {
            c.missing(path(prefix, field));
        }
    }
    if order.order_datetime.is_none() {
        c.missing(path(prefix, "order_datetime"));
    }
    non_negative(
        c,
        path(prefix, "order_subtotal_amount_in_cents"),
        order.order_subtotal_amount_in_cents,
    );
    non_negative(
        c,
        path(prefix, "order_total_amount_in_cents"),
        order.order_total_amount_in_cents,
    );
    currency(c, path(prefix, "order_currency"), &order.order_currency);
    match &order.order_status {
        None => c.missing(path(prefix, "order_status")),
        Some(status) if !status.is_known() => c.push(
            path(prefix, "order_status"),
            INVALID_VALUE,
            format!(
                "{status} is not one of OPEN_PENDING, OPEN_PENDING_RETURN, CLOSED_COMPLETE, \
                 CLOSED_CANCELLED, OTHER"
            ),
        ),
        Some(_) => {}
    }
    if order.transactions.is_empty() {
        c.push(
            path(prefix, "transactions"),
            MISSING_FIELD,
            "at least one transaction is required for alert matching",
        );
    }
    for (i, t) in order.transactions.iter().enumerate() {
        check_transaction(c, &path(prefix, &format!("transactions[{i}]")), t);
    }
}

/// One transaction of a `COMPLETE` order. Paths are relative to the transaction.
pub fn validate_transaction(transaction: &Transaction) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_transaction(&mut c, "", transaction);
    c.finish()
}

fn check_transaction(c: &mut Collector, prefix: &str, t: &Transaction) {
    for (field, value) in [
        ("reference_id", &t.reference_id),
        (
            "payment_method_reference_id",
            &t.payment_method_reference_id,
        ),
    ] {
        if blank(value) {
            c.missing(path(prefix, field));
        }
    }
    non_negative(c, path(prefix, "amount_in_cents"), t.amount_in_cents);
    currency(c, path(prefix, "currency"), &t.currency);
    if t.payment_method_type.is_none() {
        c.missing(path(prefix, "payment_method_type"));
    }
    if t.authorisation_status.is_none() {
        c.missing(path(prefix, "authorisation_status"));
    }
    if t.authorised_at.is_none() {
        c.missing(path(prefix, "authorised_at"));
    }
    if t.is_card() {
        if t.payment_method_card_brand.is_none() {
            c.push(
                path(prefix, "payment_method_card_brand"),
                MISSING_FIELD,
                "is required for card transactions",
            );
        }
        match t.payment_method_card_last_4.as_deref() {
            None | Some("") => c.push(
                path(prefix, "payment_method_card_last_4"),
                MISSING_FIELD,
                "is required for card transactions",
            ),
            Some(v) if !digits(v, 4, 4) => c.push(
                path(prefix, "payment_method_card_last_4"),
                INVALID_VALUE,
                "must be exactly 4 digits",
            ),
            Some(_) => {}
        }
    }
    if let Some(bin) = t.payment_method_card_bin.as_deref() {
        if !digits(bin, 6, 8) {
            c.push(
                path(prefix, "payment_method_card_bin"),
                INVALID_VALUE,
                "must be 6 to 8 digits",
            );
        }
    }
}
