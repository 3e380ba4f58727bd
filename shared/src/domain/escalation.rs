//! The escalation record of an alert a person must take up: unmatched or ambiguous alerts
//! (the match stored on the alert record, `alert_match`). The fields are the ones the Orders
//! guide asks for when escalating an unmatched alert to ChargebackStop ("the alert ID, order
//! reference, transaction reference, ARN, auth code, card brand, BIN, last 4, amount, currency,
//! and timestamps"), plus the match itself (status, method, candidates) and what was decided.
//!
//! Exported as CSV by `cbs escalations export` and `GET /api/escalations.csv` of the ops API,
//! both through [`write_csv`] (quoting by the `csv` crate; a cell a spreadsheet would read as a
//! formula is prefixed with `'`).

use crate::models::alert::Alert;
use crate::ports::alert_store::AlertStore;
use crate::ports::order_outbox::iso;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use crate::records::matching::{IndexedTransaction, MatchStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One alert to escalate, in the Orders guide's words. Order and transaction references are the
/// partner's own: for an ambiguous alert every candidate's, separated by `; `; for an unmatched
/// one the transaction reference ChargebackStop sent (`integration_transaction_id`), if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationRecord {
    pub alert_id: String,
    pub organisation_id: String,
    /// UNMATCHED or AMBIGUOUS.
    pub match_status: String,
    /// The method that found the candidates (ambiguous), empty when nothing was found.
    pub match_method: String,
    pub candidates: usize,
    pub order_reference: String,
    pub transaction_reference: String,
    pub arn: String,
    pub auth_code: String,
    pub card_brand: String,
    pub bin: String,
    pub last4: String,
    pub amount_in_cents: String,
    pub currency: String,
    pub descriptor: String,
    pub transaction_authorised_at: String,
    pub alert_received_at: String,
    pub action_required_deadline: String,
    pub matched_at: String,
    pub alert_status: String,
    /// The rule that left it to a person, e.g. `acme/unmatched`.
    pub rule: String,
    /// What was decided since (the final decision's action or result), empty while nobody has.
    pub decided: String,
}

/// The CSV columns, in order (the first line of every export).
pub const COLUMNS: &[&str] = &[
    "alert_id",
    "organisation_id",
    "match_status",
    "match_method",
    "candidates",
    "order_reference",
    "transaction_reference",
    "arn",
    "auth_code",
    "card_brand",
    "bin",
    "last4",
    "amount_in_cents",
    "currency",
    "descriptor",
    "transaction_authorised_at",
    "alert_received_at",
    "action_required_deadline",
    "matched_at",
    "alert_status",
    "rule",
    "decided",
];

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn time(v: Option<DateTime<Utc>>) -> String {
    v.map(iso).unwrap_or_default()
}

fn joined(candidates: &[IndexedTransaction], field: fn(&IndexedTransaction) -> &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in candidates {
        let v = field(c);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join("; ")
}

/// The escalation record of a stored alert, when it is one a person must take up: an Ethoca
/// alert (not informational) whose stored match is UNMATCHED or AMBIGUOUS. `None` otherwise
/// (matched, or never matched: the policy has not looked at it).
pub fn escalation_record(record: &AlertRecord) -> Option<EscalationRecord> {
    let a: &Alert = &record.alert;
    if record.informational
        || a.enrolment_type != crate::models::enrolment::EnrolmentType::EthocaAlert
    {
        return None;
    }
    let stored = record.alert_match.as_ref()?;
    let m = &stored.matched;
    if m.status == MatchStatus::Matched {
        return None;
    }
    let (order_reference, transaction_reference) = if m.candidates.is_empty() {
        (String::new(), text(&a.integration_transaction_id))
    } else {
        (
            joined(&m.candidates, |c| c.order_reference_id.as_str()),
            joined(&m.candidates, |c| c.transaction_reference_id.as_str()),
        )
    };
    let decided = match record.final_decision() {
        Some(d) => match (&d.action, d.result) {
            (Some(action), crate::records::alert::DecisionResult::Applied) => action.to_string(),
            (_, result) => format!("{result:?}"),
        },
        None => String::new(),
    };
    Some(EscalationRecord {
        alert_id: record.alert_id.clone(),
        organisation_id: a.organisation_id.clone(),
        match_status: m.status.as_str().to_string(),
        match_method: m.method.map(|x| format!("{x:?}")).unwrap_or_default(),
        candidates: m.candidates.len(),
        order_reference,
        transaction_reference,
        arn: text(&a.transaction_acquirer_reference_number),
        auth_code: text(&a.transaction_authorisation_code),
        card_brand: a
            .transaction_card_scheme
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        bin: text(&a.transaction_card_bin),
        last4: text(&a.transaction_card_last4),
        amount_in_cents: a
            .transaction_amount_in_cents
            .map(|c| c.to_string())
            .unwrap_or_default(),
        currency: text(&a.transaction_currency_code),
        descriptor: text(&a.transaction_statement_descriptor),
        transaction_authorised_at: time(a.transaction_authorised_at),
        alert_received_at: time(a.alert_received_at),
        action_required_deadline: time(a.action_required_deadline),
        matched_at: m.matched_at.clone(),
        alert_status: a.status.as_str().to_string(),
        rule: text(&stored.rule),
        decided,
    })
}

/// The escalation records of up to `limit` of the organisation's alerts (newest received
/// first) received at or after `since`. One query of `organisation-index`, never a scan.
pub async fn escalations(
    alerts: &dyn AlertStore,
    organisation_id: &str,
    since: Option<DateTime<Utc>>,
    limit: i32,
) -> Result<Vec<EscalationRecord>, StoreError> {
    Ok(alerts
        .by_organisation(organisation_id, limit)
        .await?
        .iter()
        .filter(|r| since.is_none_or(|s| r.alert.alert_received_at.is_some_and(|at| at >= s)))
        .filter_map(escalation_record)
        .collect())
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
/// prefixed with `'`; alert fields come from outside.
fn defused(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

impl EscalationRecord {
    fn cells(&self) -> [String; 22] {
        [
            self.alert_id.clone(),
            self.organisation_id.clone(),
            self.match_status.clone(),
            self.match_method.clone(),
            self.candidates.to_string(),
            self.order_reference.clone(),
            self.transaction_reference.clone(),
            self.arn.clone(),
            self.auth_code.clone(),
            self.card_brand.clone(),
            self.bin.clone(),
            self.last4.clone(),
            self.amount_in_cents.clone(),
            self.currency.clone(),
            self.descriptor.clone(),
            self.transaction_authorised_at.clone(),
            self.alert_received_at.clone(),
            self.action_required_deadline.clone(),
            self.matched_at.clone(),
            self.alert_status.clone(),
            self.rule.clone(),
            self.decided.clone(),
        ]
    }
}

/// The records as CSV (RFC 4180 quoting), the header line first.
pub fn write_csv<W: std::io::Write>(
    records: &[EscalationRecord],
    out: W,
) -> Result<(), csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(COLUMNS)?;
    for r in records {
        w.write_record(r.cells().iter().map(|c| defused(c).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// [`write_csv`] into a string.
pub fn to_csv(records: &[EscalationRecord]) -> String {
    let mut out = Vec::new();
    write_csv(records, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("every field is UTF-8")
}

#[cfg(test)]
mod tests;
