//! The policy's own rules beyond amount: conditions on the alert (card scheme, BIN ranges,
//! descriptor prefix, currency and amount) and on the partner's evidence (match status, refunds,
//! dispute, cancellation, subscription, repeat customer). In the policy JSON as `rules`, tried in
//! order, first match wins; every condition given must hold.
//!
//! ```json
//! {"rules": [
//!   {"name": "unmatched-to-person", "when": {"match_status": ["UNMATCHED", "AMBIGUOUS"]}, "then": "PERSON"},
//!   {"name": "repeat-customer", "when": {"earlier_alerts_at_least": 2}, "then": "ACCEPT_DISPUTE"},
//!   {"name": "small-eur", "when": {"currencies": ["EUR"], "amount_at_most_cents": 2000}, "then": "REFUND"},
//!   {"name": "amex-high", "when": {"card_schemes": ["AMEX"], "amount_above_cents": 30000}, "then": "ACCEPT_DISPUTE"},
//!   {"name": "test-bins", "when": {"bin_ranges": [{"from": "400000", "to": "400099"}]}, "then": "PERSON"},
//!   {"name": "gym", "when": {"descriptor_prefixes": ["ACMEFIT"], "subscription_status": ["ACTIVE"]}, "then": "REFUND_AND_CANCEL"}
//! ]}
//! ```

use crate::models::alert::Alert;
use crate::ports::decision_inputs::PartnerEvidence;
use crate::records::matching::MatchStatus;

/// The rules' types live in `records` with the policy that holds them; re-exported here for
/// the code that always found them here.
pub use crate::records::alert_policy::{
    BinRange, PolicyRule, RefundState, RuleConditions, RuleOutcome,
};

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

fn bin_in(bin: &str, range: &BinRange) -> bool {
    let n = range.from.len();
    if bin.len() < n {
        return false;
    }
    let head = &bin[..n];
    range.from.as_str() <= head && head <= range.to.as_str()
}

impl RuleConditions {
    /// Whether every condition given holds; `Err` names the first that does not (for the
    /// dry run's explanations), `Ok` lists what held (the evidence the decision rests on).
    pub fn check(&self, alert: &Alert, evidence: &PartnerEvidence) -> Result<Vec<String>, String> {
        let mut held = Vec::new();
        let mut need = |ok: bool, what: String| {
            if ok {
                held.push(what);
                Ok(())
            } else {
                Err(what)
            }
        };
        if let Some(schemes) = &self.card_schemes {
            let scheme = alert
                .transaction_card_scheme
                .as_ref()
                .map(|s| s.to_string());
            need(
                scheme
                    .as_deref()
                    .is_some_and(|s| schemes.iter().any(|x| norm(x) == s)),
                format!(
                    "card scheme {} in {schemes:?}",
                    scheme.as_deref().unwrap_or("(none)")
                ),
            )?;
        }
        if let Some(ranges) = &self.bin_ranges {
            let bin = alert.transaction_card_bin.as_deref().map(norm);
            need(
                bin.as_deref()
                    .is_some_and(|b| ranges.iter().any(|r| bin_in(b, r))),
                format!(
                    "BIN {} in the rule's ranges",
                    bin.as_deref().unwrap_or("(none)")
                ),
            )?;
        }
        if let Some(prefixes) = &self.descriptor_prefixes {
            let d = alert.transaction_statement_descriptor.as_deref().map(norm);
            need(
                d.as_deref()
                    .is_some_and(|d| prefixes.iter().any(|p| d.starts_with(&norm(p)))),
                format!(
                    "descriptor {} starts with {prefixes:?}",
                    d.as_deref().unwrap_or("(none)")
                ),
            )?;
        }
        if let Some(currencies) = &self.currencies {
            let c = alert.transaction_currency_code.as_deref().map(norm);
            need(
                c.as_deref()
                    .is_some_and(|c| currencies.iter().any(|x| norm(x) == c)),
                format!(
                    "currency {} in {currencies:?}",
                    c.as_deref().unwrap_or("(none)")
                ),
            )?;
        }
        let amount = alert.transaction_amount_in_cents;
        if let Some(limit) = self.amount_at_most_cents {
            need(
                amount.is_some_and(|a| a <= limit),
                format!("amount {} at most {limit}", fmt_amount(amount)),
            )?;
        }
        if let Some(limit) = self.amount_above_cents {
            need(
                amount.is_some_and(|a| a > limit),
                format!("amount {} above {limit}", fmt_amount(amount)),
            )?;
        }
        let status = evidence.match_status().unwrap_or(MatchStatus::Unmatched);
        if let Some(statuses) = &self.match_status {
            need(
                statuses.contains(&status),
                format!("match {}", status.as_str()),
            )?;
        }
        let ev = evidence.evidence();
        if let Some(states) = &self.partner_refunded {
            let state = ev.map(|e| {
                if e.fully_refunded {
                    RefundState::Fully
                } else if e.refunded_cents > 0 {
                    RefundState::Partly
                } else {
                    RefundState::None
                }
            });
            need(
                state.is_some_and(|s| states.contains(&s)),
                format!("partner refund state {state:?}"),
            )?;
        }
        if let Some(want) = self.disputed {
            let got = ev.map(|e| e.disputed);
            need(got == Some(want), format!("disputed {got:?}"))?;
        }
        if let Some(want) = self.order_cancelled {
            let got = ev.map(|e| e.order_cancelled);
            need(got == Some(want), format!("order cancelled {got:?}"))?;
        }
        if let Some(statuses) = &self.subscription_status {
            let s = ev.and_then(|e| e.subscription_status.clone());
            need(
                s.as_deref()
                    .is_some_and(|s| statuses.iter().any(|x| norm(x) == norm(s))),
                format!("subscription {}", s.as_deref().unwrap_or("(none)")),
            )?;
        }
        if let Some(n) = self.earlier_alerts_at_least {
            let got = ev.map(|e| e.earlier_alerts).unwrap_or(0);
            need(
                got >= n,
                format!("{got} earlier alert(s) of the customer (at least {n})"),
            )?;
        }
        Ok(held)
    }
}

fn fmt_amount(a: Option<i64>) -> String {
    a.map(|a| a.to_string()).unwrap_or_else(|| "(none)".into())
}

/// The range and vocabulary checks of one rule, as (field under `rules[i]`, message).
pub fn rule_problems(rule: &PolicyRule) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut p = |field: &str, message: String| problems.push((field.to_string(), message));
    if rule.name.trim().is_empty() {
        p("name", "must not be empty".into());
    }
    let w = &rule.when;
    for (field, list) in [
        ("when.card_schemes", &w.card_schemes),
        ("when.descriptor_prefixes", &w.descriptor_prefixes),
        ("when.currencies", &w.currencies),
        ("when.subscription_status", &w.subscription_status),
    ] {
        if list
            .as_ref()
            .is_some_and(|l| l.is_empty() || l.iter().any(|x| x.trim().is_empty()))
        {
            p(field, "must list at least one non-empty value".into());
        }
    }
    if let Some(schemes) = &w.card_schemes {
        for s in schemes {
            if !crate::models::common::CardBrand::from_wire(&norm(s)).is_known() {
                p(
                    "when.card_schemes",
                    format!(
                        "{s:?} is not a card scheme (expected one of {})",
                        crate::models::common::CardBrand::KNOWN.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(currencies) = &w.currencies {
        for c in currencies {
            if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
                p(
                    "when.currencies",
                    format!("{c:?} is not an ISO 4217 code (3 capital letters)"),
                );
            }
        }
    }
    if let Some(ranges) = &w.bin_ranges {
        if ranges.is_empty() {
            p("when.bin_ranges", "must list at least one range".into());
        }
        for (i, r) in ranges.iter().enumerate() {
            let digits =
                |s: &str| !s.is_empty() && s.len() <= 11 && s.chars().all(|c| c.is_ascii_digit());
            if !digits(&r.from) || !digits(&r.to) || r.from.len() != r.to.len() {
                p(
                    &format!("when.bin_ranges[{i}]"),
                    "from and to must be digits of the same length (up to 11)".into(),
                );
            } else if r.from > r.to {
                p(
                    &format!("when.bin_ranges[{i}]"),
                    "from must not exceed to".into(),
                );
            }
        }
    }
    for (field, v) in [
        ("when.amount_at_most_cents", w.amount_at_most_cents),
        ("when.amount_above_cents", w.amount_above_cents),
    ] {
        if v.is_some_and(|v| v < 0) {
            p(field, "must not be negative".into());
        }
    }
    if let (Some(most), Some(above)) = (w.amount_at_most_cents, w.amount_above_cents) {
        if above >= most {
            p(
                "when",
                format!("amount above {above} and at most {most} never holds"),
            );
        }
    }
    if w.match_status.as_ref().is_some_and(Vec::is_empty)
        || w.partner_refunded.as_ref().is_some_and(Vec::is_empty)
    {
        p(
            "when",
            "match_status and partner_refunded must list at least one value".into(),
        );
    }
    problems
}

#[cfg(test)]
mod tests;
