//! Evidence from the matched order: refunds (as taken in and as queued later), disputes, the
//! order's and subscription's status, and the customer's earlier alerts. Two reads: the order's
//! partition, the customer's partition; one write: this alert under the customer.

use super::keys::{customer_key_partition, order_key};
use super::matcher::match_alert;
use crate::clock::Clock;
use crate::models::alert::Alert;
use crate::ports::decision_inputs::{PartnerEvidence, PartnerRecords};
use crate::ports::order_outbox::iso;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::TransactionIndex;
use crate::records::matching::{
    AlertMatch, CustomerAlert, Evidence, IndexBody, IndexItem, IndexedTransaction, MatchRecord,
    MatchStatus, OrderFacts,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Lifecycle entries read per order (the order and its updates).
const MAX_ORDER_ENTRIES: usize = 200;
/// Earlier alerts of one customer read (a repeat customer needs only a few).
const MAX_CUSTOMER_ALERTS: usize = 50;

/// What the order's facts say about `transaction` (pure). `facts` in the order they were
/// recorded (the order first, then its updates).
pub fn evidence_of(
    transaction: &IndexedTransaction,
    alert: &Alert,
    facts: &[OrderFacts],
) -> Evidence {
    let mine = |original: &Option<String>| {
        original
            .as_deref()
            .is_none_or(|o| o == transaction.transaction_reference_id)
    };
    // A refund sent again in a later update (same reference) counts once: the last word wins.
    let mut refunds = BTreeMap::new();
    let mut anonymous = Vec::new();
    let mut evidence = Evidence::default();
    for f in facts {
        for r in f
            .refunds
            .iter()
            .filter(|r| mine(&r.original_transaction_reference_id))
        {
            match &r.reference_id {
                Some(id) => {
                    refunds.insert(id.clone(), r.clone());
                }
                None => anonymous.push(r.clone()),
            }
        }
        if f.disputes
            .iter()
            .any(|d| mine(&d.original_transaction_reference_id))
        {
            evidence.disputed = true;
        }
        if let Some(status) = &f.order_status {
            evidence.order_status = Some(status.clone());
        }
        if let Some(status) = &f.subscription_status {
            evidence.subscription_status = Some(status.clone());
        }
    }
    for r in refunds.values().chain(anonymous.iter()) {
        // No status means the partner reported it done; FAILED / CANCELLED / PENDING do not count.
        if r.status.as_deref().is_none_or(|s| s == "SUCCEEDED") {
            evidence.refunded_cents += r.amount_in_cents.unwrap_or(0);
            if let Some(id) = &r.reference_id {
                evidence.refund_references.push(id.clone());
            }
        }
    }
    let amount = transaction
        .amount_in_cents
        .or(alert.transaction_amount_in_cents)
        .unwrap_or(i64::MAX);
    evidence.fully_refunded = evidence.refunded_cents > 0 && evidence.refunded_cents >= amount;
    evidence.order_cancelled = evidence.order_status.as_deref() == Some("CLOSED_CANCELLED");
    evidence
}

/// Reads the order's facts, the customer's earlier alerts, and records this alert under the
/// customer (idempotent by alert id).
pub async fn gather_evidence(
    index: &dyn TransactionIndex,
    alert: &Alert,
    transaction: &IndexedTransaction,
    now: chrono::DateTime<chrono::Utc>,
    record: bool,
) -> Result<Evidence, StoreError> {
    let org = &alert.organisation_id;
    let entries = index
        .query(
            &order_key(org, &transaction.order_reference_id),
            None,
            MAX_ORDER_ENTRIES,
        )
        .await?;
    let mut facts: Vec<OrderFacts> = entries
        .into_iter()
        .filter_map(|item| match item.body {
            IndexBody::Order { facts } => Some((item.entry, facts)),
            _ => None,
        })
        .map(|(_, f)| f)
        .collect();
    facts.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at));
    let mut evidence = evidence_of(transaction, alert, &facts);
    let seen = CustomerAlert {
        alert_id: alert.id.clone(),
        order_reference_id: transaction.order_reference_id.clone(),
        at: alert.alert_received_at.map(iso).unwrap_or_else(|| iso(now)),
    };
    // The alert under its order: an update of the order re-evaluates it while it waits.
    let mut writes = vec![IndexItem {
        lookup: order_key(org, &transaction.order_reference_id),
        entry: format!("alert#{}", alert.id),
        body: IndexBody::CustomerAlert {
            alert: seen.clone(),
        },
    }];
    if let Some(customer) = facts.iter().rev().find_map(|f| f.customer_key.clone()) {
        let partition = customer_key_partition(org, &customer);
        let earlier: Vec<String> = index
            .query(&partition, None, MAX_CUSTOMER_ALERTS)
            .await?
            .into_iter()
            .filter_map(|item| match item.body {
                IndexBody::CustomerAlert { alert: a } if a.alert_id != alert.id => Some(a.alert_id),
                _ => None,
            })
            .collect();
        evidence.earlier_alerts = earlier.len() as u32;
        evidence.earlier_alert_ids = earlier;
        writes.push(IndexItem {
            lookup: partition,
            entry: format!("alert#{}", alert.id),
            body: IndexBody::CustomerAlert { alert: seen },
        });
    }
    if record {
        index.put(&writes).await?;
    }
    Ok(evidence)
}

/// The real [`PartnerRecords`]: matches the alert through the index, then gathers the evidence
/// of the matched order.
pub struct IndexedPartnerRecords {
    index: Arc<dyn TransactionIndex>,
    clock: Arc<dyn Clock>,
}

impl IndexedPartnerRecords {
    pub fn new(index: Arc<dyn TransactionIndex>, clock: Arc<dyn Clock>) -> Self {
        Self { index, clock }
    }
}

/// Match and evidence for one alert (what [`IndexedPartnerRecords`] answers); records the
/// alert under its order and customer.
pub async fn evidence_for_alert(
    index: &dyn TransactionIndex,
    alert: &Alert,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PartnerEvidence, StoreError> {
    evidence_with(index, alert, now, true).await
}

/// [`evidence_for_alert`] writing nothing (dry runs): the alert itself is not counted among
/// its customer's alerts unless an earlier run recorded it.
pub async fn evidence_read_only(
    index: &dyn TransactionIndex,
    alert: &Alert,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PartnerEvidence, StoreError> {
    evidence_with(index, alert, now, false).await
}

async fn evidence_with(
    index: &dyn TransactionIndex,
    alert: &Alert,
    now: chrono::DateTime<chrono::Utc>,
    record: bool,
) -> Result<PartnerEvidence, StoreError> {
    let matched: AlertMatch = match_alert(index, alert, now).await?;
    let evidence = match (&matched.status, &matched.transaction) {
        (MatchStatus::Matched, Some(t)) => {
            Some(gather_evidence(index, alert, t, now, record).await?)
        }
        _ => None,
    };
    Ok(PartnerEvidence {
        refunded: evidence.as_ref().map(|e| e.fully_refunded),
        matching: Some(MatchRecord {
            matched,
            evidence,
            rule: None,
        }),
    })
}

#[async_trait::async_trait]
impl PartnerRecords for IndexedPartnerRecords {
    async fn evidence_for(&self, alert: &Alert) -> Result<PartnerEvidence, StoreError> {
        evidence_for_alert(&*self.index, alert, self.clock.now()).await
    }

    async fn left_waiting(&self, alert: &Alert, matching: &MatchRecord) -> Result<(), StoreError> {
        super::late::keep_waiting(&*self.index, alert, matching, self.clock.now()).await
    }
}
