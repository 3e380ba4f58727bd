//! The partitions of the `transactions` table, one per way a match looks a transaction up.
//! Every key starts with its kind and the organisation, so organisations never share a
//! partition; identifiers are normalised (trimmed, upper-cased, spaces dropped) so an ARN or an
//! authorisation code written two ways finds itself.

use crate::models::order::{Order, PatchOrder, Transaction};
use crate::ports::order_outbox::iso;
use crate::records::matching::{
    DisputeFact, IndexBody, IndexItem, IndexedTransaction, OrderFacts, RefundFact,
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Trimmed, upper-cased, inner spaces dropped; `None` when nothing is left.
pub fn normalise(value: Option<&str>) -> Option<String> {
    let v: String = value?
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    (!v.is_empty()).then_some(v)
}

pub fn integration_transaction_key(org: &str, transaction_reference: &str) -> String {
    format!("itid#{org}#{transaction_reference}")
}

pub fn arn_key(org: &str, arn: &str) -> String {
    format!("arn#{org}#{arn}")
}

pub fn auth_key(org: &str, code: &str, last4: &str, amount: i64) -> String {
    format!("auth#{org}#{code}#{last4}#{amount}")
}

pub fn card_key(org: &str, bin: &str, last4: &str, amount: i64, currency: &str) -> String {
    format!("card#{org}#{bin}#{last4}#{amount}#{currency}")
}

pub fn order_key(org: &str, order_reference: &str) -> String {
    format!("order#{org}#{order_reference}")
}

pub fn customer_key_partition(org: &str, customer_key: &str) -> String {
    format!("customer#{org}#{customer_key}")
}

/// SHA-256 (hex) of the trimmed, lower-cased e-mail: customers are recognised without the
/// address being stored in the index.
pub fn customer_key(email: Option<&str>) -> Option<String> {
    let email = email?.trim().to_lowercase();
    if email.is_empty() {
        return None;
    }
    Some(hex::encode(Sha256::digest(email.as_bytes())))
}

/// The entry (sort key) of a transaction under the exact-key partitions.
fn transaction_entry(t: &IndexedTransaction) -> String {
    format!("{}#{}", t.order_reference_id, t.transaction_reference_id)
}

/// The entry under the card partition: the authorisation time first, so a window is a range.
/// Without a time the entry sorts before every time and only an unbounded query finds it.
fn card_entry(t: &IndexedTransaction) -> String {
    format!(
        "{}#{}",
        t.authorised_at.as_deref().unwrap_or("0000"),
        transaction_entry(t)
    )
}

/// The indexed form of one transaction of an order.
pub fn indexed_transaction(
    org: &str,
    order: &Order,
    t: &Transaction,
) -> Option<IndexedTransaction> {
    Some(IndexedTransaction {
        organisation_id: org.to_string(),
        order_reference_id: order.reference_id.clone()?,
        transaction_reference_id: t.reference_id.clone()?,
        amount_in_cents: t.amount_in_cents,
        currency: normalise(t.currency.as_deref()),
        card_brand: t.payment_method_card_brand.as_ref().map(|b| b.to_string()),
        card_bin: normalise(t.payment_method_card_bin.as_deref()),
        card_last4: normalise(t.payment_method_card_last_4.as_deref()),
        authorisation_code: normalise(t.authorisation_code.as_deref()),
        acquirer_reference_number: normalise(t.acquirer_reference_number.as_deref()),
        authorised_at: t.authorised_at.map(iso),
        descriptor: t.descriptor.clone(),
    })
}

/// Every index entry of one transaction: one per lookup its fields allow.
pub fn transaction_entries(t: &IndexedTransaction) -> Vec<IndexItem> {
    let org = &t.organisation_id;
    let mut keys = vec![(
        integration_transaction_key(org, &t.transaction_reference_id),
        transaction_entry(t),
    )];
    if let Some(arn) = &t.acquirer_reference_number {
        keys.push((arn_key(org, arn), transaction_entry(t)));
    }
    if let (Some(code), Some(last4), Some(amount)) =
        (&t.authorisation_code, &t.card_last4, t.amount_in_cents)
    {
        keys.push((auth_key(org, code, last4, amount), transaction_entry(t)));
    }
    if let (Some(bin), Some(last4), Some(amount), Some(currency)) =
        (&t.card_bin, &t.card_last4, t.amount_in_cents, &t.currency)
    {
        keys.push((card_key(org, bin, last4, amount, currency), card_entry(t)));
    }
    keys.into_iter()
        .map(|(lookup, entry)| IndexItem {
            lookup,
            entry,
            body: IndexBody::Transaction {
                transaction: t.clone(),
            },
        })
        .collect()
}

/// The subscription status an order carries, if any: `subscription_status`, or the first
/// `subscriptions[].status` (fields the order model passes through unchanged).
fn subscription_status(extra: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if let Some(s) = extra.get("subscription_status").and_then(|v| v.as_str()) {
        return Some(s.to_string());
    }
    extra
        .get("subscriptions")
        .and_then(|v| v.as_array())
        .and_then(|subs| subs.iter().find_map(|s| s.get("status")?.as_str()))
        .map(str::to_string)
}

fn refund_facts(refunds: &[crate::models::order::Refund]) -> Vec<RefundFact> {
    refunds
        .iter()
        .map(|r| RefundFact {
            reference_id: r.reference_id.clone(),
            amount_in_cents: r.amount_in_cents,
            status: r.status.as_ref().map(|s| s.to_string()),
            original_transaction_reference_id: r.original_transaction_reference_id.clone(),
        })
        .collect()
}

fn dispute_facts(disputes: &[crate::models::order::Dispute]) -> Vec<DisputeFact> {
    disputes
        .iter()
        .map(|d| DisputeFact {
            reference_id: d.reference_id.clone(),
            status: d.status.as_ref().map(|s| s.to_string()),
            original_transaction_reference_id: d.original_transaction_reference_id.clone(),
        })
        .collect()
}

/// Every index entry of an order entering the outbox: its transactions' lookups and its facts.
pub fn order_entries(order: &Order, now: DateTime<Utc>) -> Vec<IndexItem> {
    let (Some(org), Some(reference)) = (&order.organisation_id, &order.reference_id) else {
        return Vec::new();
    };
    let mut items: Vec<IndexItem> = order
        .transactions
        .iter()
        .filter_map(|t| indexed_transaction(org, order, t))
        .flat_map(|t| transaction_entries(&t))
        .collect();
    items.push(IndexItem {
        lookup: order_key(org, reference),
        entry: "order".into(),
        body: IndexBody::Order {
            facts: OrderFacts {
                order_status: order.order_status.as_ref().map(|s| s.to_string()),
                customer_key: customer_key(order.customer_email.as_deref()),
                refunds: refund_facts(&order.refunds),
                disputes: dispute_facts(&order.disputes),
                subscription_status: subscription_status(&order.extra),
                recorded_at: iso(now),
            },
        },
    });
    items
}

/// The entries of an update queued for an order: its facts under the order's partition (one
/// entry per update id, so a re-queued update replaces itself), and the lookups of any
/// transactions it adds.
pub fn update_entries(
    org: &str,
    order_reference: &str,
    update_id: &str,
    patch: &PatchOrder,
    now: DateTime<Utc>,
) -> Vec<IndexItem> {
    let order = Order {
        organisation_id: Some(org.to_string()),
        reference_id: Some(order_reference.to_string()),
        ..Order::default()
    };
    let mut items: Vec<IndexItem> = patch
        .transactions
        .iter()
        .flatten()
        .filter_map(|t| indexed_transaction(org, &order, t))
        .flat_map(|t| transaction_entries(&t))
        .collect();
    items.push(IndexItem {
        lookup: order_key(org, order_reference),
        entry: format!("update#{update_id}"),
        body: IndexBody::Order {
            facts: OrderFacts {
                order_status: patch.order_status.as_ref().map(|s| s.to_string()),
                customer_key: customer_key(patch.customer_email.as_deref()),
                refunds: refund_facts(patch.refunds.as_deref().unwrap_or_default()),
                disputes: dispute_facts(patch.disputes.as_deref().unwrap_or_default()),
                subscription_status: subscription_status(&patch.extra),
                recorded_at: iso(now),
            },
        },
    });
    items
}
