//! What matching an alert to the partner's own transactions produces and stores: the index
//! entries written when orders enter the outbox (`transactions` table), and the match, evidence
//! and deciding rule kept on the alert record (`alert_match`). The rules that build them are in
//! `domain::matching`; `ports::transaction_index` stores the entries.

use serde::{Deserialize, Serialize};

/// One card transaction of the partner as indexed, denormalised onto every entry that points
/// at it (so a match needs no second read to show what it matched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedTransaction {
    pub organisation_id: String,
    /// The order's `reference_id` (the outbox key).
    pub order_reference_id: String,
    /// The transaction's `reference_id`.
    pub transaction_reference_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_bin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_reference_number: Option<String>,
    /// ISO 8601 UTC (milliseconds), as the window queries compare it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorised_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<String>,
}

impl IndexedTransaction {
    /// The identity of the transaction (two index entries may point at the same one).
    pub fn identity(&self) -> (&str, &str) {
        (&self.order_reference_id, &self.transaction_reference_id)
    }
}

/// What the partner's order says about itself: from the order as taken in, and from every
/// later update (refunds, disputes, status) queued for it. One entry per source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    /// SHA-256 of the lower-cased customer e-mail (never the address itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<RefundFact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<DisputeFact>,
    /// The status of the order's subscription, when the order carries one
    /// (`subscriptions[].status` or `subscription_status`, passed through from the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    /// ISO 8601 UTC: when these facts were taken in.
    pub recorded_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundFact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_in_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_reference_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeFact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_reference_id: Option<String>,
}

/// An alert's earlier appearance for the same customer (written once the alert is matched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerAlert {
    pub alert_id: String,
    pub order_reference_id: String,
    /// ISO 8601 UTC.
    pub at: String,
}

/// One item of the `transactions` table: a partition (`lookup`), a sort key (`entry`) and what
/// it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexItem {
    pub lookup: String,
    pub entry: String,
    #[serde(flatten)]
    pub body: IndexBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndexBody {
    Transaction {
        transaction: IndexedTransaction,
    },
    Order {
        facts: OrderFacts,
    },
    /// An alert matched to an order: under the customer's partition (repeat customers) and the
    /// order's (an update to the order re-evaluates the alert while it waits).
    CustomerAlert {
        alert: CustomerAlert,
    },
    /// An unmatched or ambiguous alert still waiting, under `waiting#<org>`: an order taken in
    /// later that fits one of its lookups re-evaluates it.
    WaitingAlert {
        alert: WaitingAlert,
    },
}

/// The lookups an unmatched alert made, kept so that a later transaction can be checked
/// against them without a read per transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingAlert {
    pub alert_id: String,
    pub lookups: Vec<WaitKey>,
    /// ISO 8601 UTC.
    pub since: String,
}

/// One lookup: a partition, and for the card lookup the `entry` range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitKey {
    pub lookup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl WaitKey {
    /// Whether an index entry answers this lookup.
    pub fn answered_by(&self, item: &IndexItem) -> bool {
        item.lookup == self.lookup
            && matches!(item.body, IndexBody::Transaction { .. })
            && self
                .from
                .as_deref()
                .is_none_or(|f| f <= item.entry.as_str())
            && self.to.as_deref().is_none_or(|t| item.entry.as_str() <= t)
    }
}

/// Which method found the transaction, strongest first (the order they are tried in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchMethod {
    /// ChargebackStop's own match: `integration_transaction_id` = our transaction reference.
    IntegrationTransactionId,
    /// Acquirer reference number, exact.
    Arn,
    /// Authorisation code + card last 4 + amount.
    AuthCodeLast4Amount,
    /// BIN + last 4 + amount + currency, authorised within the window around the alert's date.
    BinLast4AmountWindow,
}

impl MatchMethod {
    /// How sure a single candidate found this way is, in percent.
    pub fn confidence(&self) -> u8 {
        match self {
            MatchMethod::IntegrationTransactionId => 100,
            MatchMethod::Arn => 98,
            MatchMethod::AuthCodeLast4Amount => 90,
            MatchMethod::BinLast4AmountWindow => 75,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchStatus {
    /// Exactly one transaction.
    Matched,
    /// More than one transaction fits equally well: a person decides which.
    Ambiguous,
    /// No transaction fits (yet: an order uploaded later is matched on arrival).
    Unmatched,
}

impl MatchStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchStatus::Matched => "MATCHED",
            MatchStatus::Ambiguous => "AMBIGUOUS",
            MatchStatus::Unmatched => "UNMATCHED",
        }
    }
}

/// One method tried, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodTried {
    pub method: MatchMethod,
    /// Why it could not be tried (the alert lacks a field), when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub found: usize,
}

/// The result of matching one alert, kept on the alert record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMatch {
    pub status: MatchStatus,
    /// The method that decided (for AMBIGUOUS: the one that found several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<MatchMethod>,
    /// Percent; 0 when unmatched.
    pub confidence: u8,
    /// Whether the descriptor broke a tie between candidates.
    #[serde(default)]
    pub descriptor_tie_break: bool,
    /// The transaction matched (MATCHED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<IndexedTransaction>,
    /// Every transaction the deciding method found (at most [`MAX_CANDIDATES`]).
    #[serde(default)]
    pub candidates: Vec<IndexedTransaction>,
    /// Every method, in order, with what it found.
    #[serde(default)]
    pub tried: Vec<MethodTried>,
    /// Index reads the match took.
    #[serde(default)]
    pub reads: u32,
    /// ISO 8601 UTC.
    pub matched_at: String,
}

/// Candidates kept per method; a query reads one more to know there were more.
pub const MAX_CANDIDATES: usize = 10;

/// What the partner's records say about the matched transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Refunds of the matched transaction that succeeded (or are pending), summed.
    #[serde(default)]
    pub refunded_cents: i64,
    /// Whether those cover the transaction's amount.
    #[serde(default)]
    pub fully_refunded: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refund_references: Vec<String>,
    #[serde(default)]
    pub disputed: bool,
    #[serde(default)]
    pub order_cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    /// Other alerts of the same customer (by e-mail) recorded before this one.
    #[serde(default)]
    pub earlier_alerts: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_alert_ids: Vec<String>,
}

impl Evidence {
    /// A short text for audit-trail reasons and notifications.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.fully_refunded {
            parts.push(format!("fully refunded ({} cents)", self.refunded_cents));
        } else if self.refunded_cents > 0 {
            parts.push(format!("partly refunded ({} cents)", self.refunded_cents));
        } else {
            parts.push("not refunded".to_string());
        }
        if self.disputed {
            parts.push("disputed".into());
        }
        if self.order_cancelled {
            parts.push("order cancelled".into());
        }
        if let Some(s) = &self.subscription_status {
            parts.push(format!("subscription {s}"));
        }
        if self.earlier_alerts > 0 {
            parts.push(format!(
                "{} earlier alert(s) of the customer",
                self.earlier_alerts
            ));
        }
        parts.join(", ")
    }
}

/// What the alert record keeps about its match and decision: the match, the evidence found,
/// and the policy rule that decided (or left it to a person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRecord {
    #[serde(rename = "match")]
    pub matched: AlertMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The policy and rule that decided, e.g. `acme-2026/refunded-already`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
