//! Alert ↔ order matching, as the Orders guide describes it: an uploaded COMPLETE order's
//! transaction matches an alert of the same organisation by, strongest first,
//! 1. the acquirer reference number (ARN);
//! 2. the authorisation code with the card's last 4;
//! 3. the card BIN, last 4, amount, currency and authorisation date.
//!
//! A matched alert carries the order's `integration_id` and, as `integration_transaction_id`,
//! the transaction's `reference_id` (the docs: "transaction ID matched to this alert"; for a
//! CUSTOM_ORDERS feed that is our transaction id). Unmatched alerts carry nulls. The guide says
//! the real simulator may not match inline: the `match_orders` knob turns matching off.

use crate::model::Alert;
use crate::state::Store;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedTransaction {
    pub integration_id: String,
    pub transaction_reference_id: String,
    /// The order lists `subscriptions`: the alert has a subscription associated.
    pub order_has_subscription: bool,
}

/// The best match among the organisation's COMPLETE orders, if any.
pub fn find_transaction(store: &Store, alert: &Alert) -> Option<MatchedTransaction> {
    let mut best: Option<(u8, MatchedTransaction)> = None;
    let orders = store.orders.values().filter(|o| {
        o["organisation_id"].as_str() == Some(alert.organisation_id.as_str())
            && o["type"].as_str() == Some("COMPLETE")
    });
    for order in orders {
        let transactions = order["transactions"].as_array().into_iter().flatten();
        for t in transactions {
            let Some(strength) = strength(alert, t) else {
                continue;
            };
            if best.as_ref().is_some_and(|(s, _)| *s <= strength) {
                continue;
            }
            let found = MatchedTransaction {
                integration_id: order["integration_id"].as_str()?.to_string(),
                transaction_reference_id: t["reference_id"].as_str()?.to_string(),
                order_has_subscription: order["subscriptions"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
            };
            best = Some((strength, found));
        }
    }
    best.map(|(_, m)| m)
}

/// 1 (ARN), 2 (auth code + last 4) or 3 (BIN + last 4 + amount + currency + date); None when
/// the transaction does not match.
fn strength(alert: &Alert, t: &Value) -> Option<u8> {
    let text = |field: &str| t[field].as_str().filter(|v| !v.is_empty());
    let same = |ours: Option<&str>, theirs: &Option<String>| {
        ours.is_some() && ours == theirs.as_deref().filter(|v| !v.is_empty())
    };
    if same(
        text("acquirer_reference_number"),
        &alert.transaction_acquirer_reference_number,
    ) {
        return Some(1);
    }
    let last4 = same(
        text("payment_method_card_last_4"),
        &alert.transaction_card_last4,
    );
    if last4
        && same(
            text("authorisation_code"),
            &alert.transaction_authorisation_code,
        )
    {
        return Some(2);
    }
    let same_day = text("authorised_at")
        .and_then(crate::fields::parse_iso_8601)
        .zip(alert.transaction_authorised_at)
        .is_some_and(|(a, b)| a.date_naive() == b.date_naive());
    if last4
        && same(text("payment_method_card_bin"), &alert.transaction_card_bin)
        && t["amount_in_cents"].as_i64() == Some(alert.transaction_amount_in_cents)
        && text("currency") == Some(alert.transaction_currency_code.as_str())
        && same_day
    {
        return Some(3);
    }
    None
}
