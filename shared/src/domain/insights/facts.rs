//! What an alert or an order contributes to the insights counters (pure): the facts of a record
//! as it stands now. The store counts each fact of a subject once, so these functions can be
//! called on every write of the record; a fact appears when its state exists (an outcome once
//! the alert is final) and never changes its day or counters afterwards for the same record
//! state.
//!
//! Counter names (per organisation per day, and the same across all organisations):
//!
//! | counter | counted when | day |
//! | --- | --- | --- |
//! | `alerts:<PROVIDER>`, `scheme_alerts:<SCHEME>` | an alert is first stored | received |
//! | `outcome:<PROVIDER>:<outcome>` | the alert is final (`AlertOutcome`) | received |
//! | `scheme_disputes:<SCHEME>` | final and the dispute proceeds (accepted, cancelled, expired, RDR declined) | received |
//! | `scheme_rdr_resolved:<SCHEME>` | RDR alert resolved with a refund | received |
//! | `decided_by:policy:<policy>/<rule>` (the rule that fired, from the alert's match record; `decided_by:policy:<policy>` when none is recorded), `decided_by:operator:<name>`, `decided_by:sweep`, `decided_by:elsewhere`, `decided_by:nobody` | Ethoca alert final | received |
//! | `deadline_tracked`, `latency:<bucket>`, `decided_24h_early`, `missed` (+ `missed_alert_ids`) | Ethoca alert final, with a deadline | received |
//! | `refunds`, `refunded_cents:<CCY>` | Ethoca alert refunded | received |
//! | `match:<matched\|unmatched\|ambiguous>` | the matching work's first verdict (`match_fact`) | received |
//! | `orders_taken_in`, `card_txns`, `card_txns_arn`, `card_txns_auth_code`, `card_txns_bin` | an order is taken into the outbox | taken in |
//! | `settled:<SCHEME>` | a SETTLED card transaction of an order taken in | the transaction's |
//! | `orders:<accepted\|failed\|duplicate>` | the upload's final outcome | recorded |
//! | `orders:rate_limited` | an upload attempt answered 429 (once per order and run) | recorded |

use crate::models::alert::{Alert, AlertAction, AlertStatus, RefundOutcome};
use crate::models::enrolment::EnrolmentType;
use crate::models::order::{AuthorisationStatus, Order};
use crate::ports::insights_store::{Fact, Subject};
use crate::ports::order_outbox::{OutboxOrder, UploadOutcome};
use crate::records::alert::{AlertRecord, DecisionResult, DecisionSource};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// How an alert ended, as the insights charts name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertOutcome {
    Refunded,
    Accepted,
    Cancelled,
    Expired,
    Invalid,
    RdrRefunded,
    RdrDeclined,
}

impl AlertOutcome {
    pub const ALL: [AlertOutcome; 7] = [
        AlertOutcome::Refunded,
        AlertOutcome::Accepted,
        AlertOutcome::Cancelled,
        AlertOutcome::Expired,
        AlertOutcome::Invalid,
        AlertOutcome::RdrRefunded,
        AlertOutcome::RdrDeclined,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            AlertOutcome::Refunded => "refunded",
            AlertOutcome::Accepted => "accepted",
            AlertOutcome::Cancelled => "cancelled",
            AlertOutcome::Expired => "expired",
            AlertOutcome::Invalid => "invalid",
            AlertOutcome::RdrRefunded => "rdr_refunded",
            AlertOutcome::RdrDeclined => "rdr_declined",
        }
    }

    /// The dispute goes on to the card scheme (counted against the merchant).
    pub fn dispute_proceeds(&self) -> bool {
        matches!(
            self,
            AlertOutcome::Accepted
                | AlertOutcome::Cancelled
                | AlertOutcome::Expired
                | AlertOutcome::RdrDeclined
        )
    }
}

/// The matching work's verdict for an alert (issue 12 calls `match_fact` with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOutcome {
    Matched,
    Unmatched,
    Ambiguous,
}

impl MatchOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchOutcome::Matched => "matched",
            MatchOutcome::Unmatched => "unmatched",
            MatchOutcome::Ambiguous => "ambiguous",
        }
    }
}

/// Latency buckets: the share of the time the deadline allowed (received → deadline) that had
/// passed when the alert was decided.
pub const LATENCY_BUCKETS: [&str; 7] =
    ["0-10", "10-25", "25-50", "50-75", "75-90", "90-100", "late"];

pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn parse(at: &str) -> Option<DateTime<Utc>> {
    at.parse().ok()
}

pub fn alert_subject_key(alert_id: &str) -> String {
    format!("alert#{alert_id}")
}

pub fn order_subject_key(organisation_id: &str, reference_id: &str) -> String {
    format!("order#{organisation_id}#{reference_id}")
}

/// When the alert was received (what the charts' days are): `alert_received_at`, else its
/// `created_at`, else when we first fetched it.
pub fn received_at(record: &AlertRecord) -> Option<DateTime<Utc>> {
    record
        .alert
        .alert_received_at
        .or(record.alert.created_at)
        .or_else(|| parse(&record.fetched_at))
}

fn scheme(alert: &Alert) -> String {
    alert
        .transaction_card_scheme
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "UNKNOWN".into())
}

/// Our own decision that was sent and accepted (policy, operator, sweep), if any.
fn applied_decision(record: &AlertRecord) -> Option<&crate::records::alert::Decision> {
    record.decisions.iter().find(|d| {
        d.result == DecisionResult::Applied
            && matches!(
                d.source,
                DecisionSource::AutoPolicy | DecisionSource::Operator | DecisionSource::Sweep
            )
    })
}

/// When the alert stopped waiting, if it did: our applied decision's time, else the time the
/// resolution was seen (the API's `updated_at`, the final decision's time, the fetch).
fn resolved_at(record: &AlertRecord) -> Option<DateTime<Utc>> {
    if let Some(d) = applied_decision(record) {
        return parse(&d.at);
    }
    record
        .alert
        .updated_at
        .or_else(|| record.final_decision().and_then(|d| parse(&d.at)))
        .or_else(|| parse(&record.fetched_at))
}

/// The rule that made the automatic decision of `policy`: the `<policy>/<rule>` the alert's match
/// record keeps (written before the action, by process-events and the late-data rematch alike),
/// or the policy's name when no rule is recorded (no partner records to match against) or the
/// rule recorded is another policy's.
pub fn policy_rule(record: &AlertRecord, policy: &str) -> String {
    record
        .alert_match
        .as_ref()
        .and_then(|m| m.rule.as_deref())
        .filter(|rule| {
            rule.strip_prefix(policy)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.is_empty())
        })
        .unwrap_or(policy)
        .to_string()
}

/// The alert's outcome, once it has one.
pub fn alert_outcome(record: &AlertRecord) -> Option<AlertOutcome> {
    let alert = &record.alert;
    if alert.enrolment_type == EnrolmentType::VerifiRdr {
        return match alert.status {
            AlertStatus::Resolved
                if alert.transaction_refund_outcome == Some(RefundOutcome::Refunded) =>
            {
                Some(AlertOutcome::RdrRefunded)
            }
            AlertStatus::Resolved | AlertStatus::Invalid => Some(AlertOutcome::RdrDeclined),
            _ => None,
        };
    }
    if let Some(action) = applied_decision(record).and_then(|d| d.action.as_ref()) {
        return Some(match action {
            AlertAction::Refund | AlertAction::RefundAndCancel => AlertOutcome::Refunded,
            AlertAction::Cancel => AlertOutcome::Cancelled,
            AlertAction::AcceptDispute | AlertAction::Other(_) => AlertOutcome::Accepted,
        });
    }
    match alert.status {
        AlertStatus::Resolved => {
            if alert.transaction_refund_outcome == Some(RefundOutcome::Refunded) {
                return Some(AlertOutcome::Refunded);
            }
            let past_deadline = match (alert.action_required_deadline, resolved_at(record)) {
                (Some(deadline), Some(at)) => at >= deadline,
                _ => false,
            };
            Some(if past_deadline {
                AlertOutcome::Expired
            } else {
                AlertOutcome::Accepted
            })
        }
        AlertStatus::Invalid => Some(AlertOutcome::Invalid),
        _ => None,
    }
}

fn latency_bucket(used: f64) -> &'static str {
    match used {
        u if u < 0.10 => "0-10",
        u if u < 0.25 => "10-25",
        u if u < 0.50 => "25-50",
        u if u < 0.75 => "50-75",
        u if u < 0.90 => "75-90",
        u if u <= 1.0 => "90-100",
        _ => "late",
    }
}

/// The facts of an alert as stored now: `received` always (with a usable day), `outcome` once
/// it is final.
pub fn alert_facts(record: &AlertRecord) -> Subject {
    let mut subject = Subject {
        key: alert_subject_key(&record.alert_id),
        facts: Vec::new(),
    };
    let Some(received) = received_at(record) else {
        return subject;
    };
    let alert = &record.alert;
    let org = &alert.organisation_id;
    let day = day_of(received);
    let provider = alert.enrolment_type.to_string();
    let scheme = scheme(alert);
    subject.facts.push(
        Fact::new("received", org, &day)
            .inc(format!("alerts:{provider}"), 1)
            .inc(format!("scheme_alerts:{scheme}"), 1),
    );
    let Some(outcome) = alert_outcome(record) else {
        return subject;
    };
    let mut fact =
        Fact::new("outcome", org, &day).inc(format!("outcome:{provider}:{}", outcome.as_str()), 1);
    if outcome.dispute_proceeds() {
        fact = fact.inc(format!("scheme_disputes:{scheme}"), 1);
    }
    if outcome == AlertOutcome::RdrRefunded {
        fact = fact.inc(format!("scheme_rdr_resolved:{scheme}"), 1);
    }
    if alert.enrolment_type != EnrolmentType::VerifiRdr {
        let applied = applied_decision(record);
        let who = match applied {
            Some(d) => match d.source {
                DecisionSource::AutoPolicy => {
                    format!("decided_by:policy:{}", policy_rule(record, &d.actor))
                }
                DecisionSource::Operator => format!("decided_by:operator:{}", d.actor),
                _ => "decided_by:sweep".to_string(),
            },
            None if outcome == AlertOutcome::Expired => "decided_by:nobody".into(),
            None => "decided_by:elsewhere".into(),
        };
        fact = fact.inc(who, 1);
        if let (Some(deadline), Some(at)) = (alert.action_required_deadline, resolved_at(record)) {
            let allowed = (deadline - received).num_milliseconds().max(1) as f64;
            let used = (at - received).num_milliseconds() as f64 / allowed;
            let missed = outcome == AlertOutcome::Expired || at > deadline;
            let bucket = if missed { "late" } else { latency_bucket(used) };
            fact = fact
                .inc("deadline_tracked", 1)
                .inc(format!("latency:{bucket}"), 1);
            if !missed && deadline - at > Duration::hours(24) {
                fact = fact.inc("decided_24h_early", 1);
            }
            if missed {
                fact = fact.inc("missed", 1);
                fact.missed_alert_ids.insert(record.alert_id.clone());
            }
        }
        if outcome == AlertOutcome::Refunded {
            fact = fact.inc("refunds", 1);
            if let Some(cents) = alert.transaction_amount_in_cents {
                let ccy = alert
                    .transaction_currency_code
                    .clone()
                    .unwrap_or_else(|| "XXX".into())
                    .to_uppercase();
                fact = fact.inc(format!("refunded_cents:{ccy}"), cents);
            }
        }
    }
    subject.facts.push(fact);
    subject
}

/// The matching verdict for an alert, counted once per alert (the first verdict counts).
pub fn match_fact(record: &AlertRecord, outcome: MatchOutcome) -> Subject {
    let facts = received_at(record)
        .map(|at| {
            vec![
                Fact::new("match", &record.alert.organisation_id, &day_of(at))
                    .inc(format!("match:{}", outcome.as_str()), 1),
            ]
        })
        .unwrap_or_default();
    Subject {
        key: alert_subject_key(&record.alert_id),
        facts,
    }
}

fn present(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// The facts of an order taken into the outbox at `taken_in`: what it carries for matching,
/// and its settled card transactions on their own days (for the scheme gauges).
pub fn order_taken_in_facts(
    organisation_id: &str,
    reference_id: &str,
    order: &Order,
    taken_in: DateTime<Utc>,
) -> Subject {
    let day = day_of(taken_in);
    let cards: Vec<_> = order.transactions.iter().filter(|t| t.is_card()).collect();
    let count = |f: &dyn Fn(&&crate::models::order::Transaction) -> bool| {
        cards.iter().filter(|t| f(t)).count() as i64
    };
    let mut facts = vec![Fact::new("taken_in", organisation_id, &day)
        .inc("orders_taken_in", 1)
        .inc("card_txns", cards.len() as i64)
        .inc(
            "card_txns_arn",
            count(&|t| present(&t.acquirer_reference_number)),
        )
        .inc(
            "card_txns_auth_code",
            count(&|t| present(&t.authorisation_code)),
        )
        .inc(
            "card_txns_bin",
            count(&|t| present(&t.payment_method_card_bin)),
        )];
    let mut settled: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for t in cards
        .iter()
        .filter(|t| t.authorisation_status == Some(AuthorisationStatus::Settled))
    {
        let at = t.authorised_at.or(order.order_datetime).unwrap_or(taken_in);
        let brand = t
            .payment_method_card_brand
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_else(|| "UNKNOWN".into());
        *settled
            .entry(day_of(at))
            .or_default()
            .entry(format!("settled:{brand}"))
            .or_default() += 1;
    }
    for (tx_day, add) in settled {
        let mut fact = Fact::new(format!("settled@{tx_day}"), organisation_id, &tx_day);
        fact.add = add;
        facts.push(fact);
    }
    Subject {
        key: order_subject_key(organisation_id, reference_id),
        facts,
    }
}

/// An upload outcome recorded for an order at `now` by the run `owner`: final outcomes once per
/// order and outcome, a 429 once per order and run.
pub fn order_outcome_fact(
    organisation_id: &str,
    reference_id: &str,
    outcome: &UploadOutcome,
    owner: &str,
    now: DateTime<Utc>,
) -> Option<Subject> {
    let day = day_of(now);
    let fact = match outcome {
        UploadOutcome::Created { .. } => {
            Fact::new("upload:accepted", organisation_id, &day).inc("orders:accepted", 1)
        }
        UploadOutcome::Duplicate { .. } => {
            Fact::new("upload:duplicate", organisation_id, &day).inc("orders:duplicate", 1)
        }
        UploadOutcome::Failed { .. } => {
            Fact::new("upload:failed", organisation_id, &day).inc("orders:failed", 1)
        }
        UploadOutcome::Retry { reason, .. } if is_rate_limited(reason) => {
            Fact::new(format!("rate_limited#{owner}"), organisation_id, &day)
                .inc("orders:rate_limited", 1)
        }
        _ => return None,
    };
    Some(Subject {
        key: order_subject_key(organisation_id, reference_id),
        facts: vec![fact],
    })
}

fn is_rate_limited(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("429") || r.contains("rate limit") || r.contains("rate_limit")
}

/// The facts a stored outbox order shows (the backfill): taken in, and its final outcome on
/// the day it was last updated. A 429 leaves no trace in a stored order unless it is the last
/// error, so past rate limits are only partly rebuilt.
pub fn stored_order_facts(order: &OutboxOrder) -> Subject {
    let taken_in = parse(&order.enqueued_at).or_else(|| parse(&order.updated_at));
    let mut subject = match taken_in {
        Some(at) => order_taken_in_facts(
            &order.organisation_id,
            &order.reference_id,
            &order.order,
            at,
        ),
        None => Subject {
            key: order_subject_key(&order.organisation_id, &order.reference_id),
            facts: Vec::new(),
        },
    };
    let Some(updated) = parse(&order.updated_at) else {
        return subject;
    };
    use crate::ports::order_outbox::UploadState;
    let outcome = match order.state {
        UploadState::Created => Some(UploadOutcome::Created {
            order_id: String::new(),
        }),
        UploadState::Duplicate => Some(UploadOutcome::Duplicate {
            order_id: String::new(),
        }),
        UploadState::Failed => Some(UploadOutcome::Failed {
            code: String::new(),
            field: None,
            message: None,
        }),
        _ => None,
    };
    if let Some(o) = outcome {
        if let Some(s) = order_outcome_fact(
            &order.organisation_id,
            &order.reference_id,
            &o,
            "backfill",
            updated,
        ) {
            subject.facts.extend(s.facts);
        }
    }
    if order.last_error.as_deref().is_some_and(is_rate_limited) {
        subject.facts.push(
            Fact::new(
                "rate_limited#backfill",
                &order.organisation_id,
                &day_of(updated),
            )
            .inc("orders:rate_limited", 1),
        );
    }
    subject
}

/// What `CountingAlertStore` counts for a record it writes: its alert facts and, once matching
/// has given it a verdict (`alert_match`), the match outcome, counted once per alert like every
/// fact (the first verdict). The insights page's match rate comes from these.
pub fn alert_facts_with_match(record: &AlertRecord) -> Subject {
    let mut subject = alert_facts(record);
    if let Some(m) = &record.alert_match {
        let outcome = match m.matched.status {
            crate::records::matching::MatchStatus::Matched => MatchOutcome::Matched,
            crate::records::matching::MatchStatus::Ambiguous => MatchOutcome::Ambiguous,
            crate::records::matching::MatchStatus::Unmatched => MatchOutcome::Unmatched,
        };
        subject.facts.extend(match_fact(record, outcome).facts);
    }
    subject
}
