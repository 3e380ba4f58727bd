//! The seed plan of the insights browser stack (`insights_page.rs`): the customers, what each
//! seeded alert and order is and what it implies for the page (`Expect`, computed from the plan,
//! not from the counters), and the older days' facts summed per organisation-day.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::json;
use shared::domain::alert_record::version_key;
use shared::domain::insights::MatchOutcome;
use shared::models::alert::Alert;
use shared::ports::insights_store::{Fact, Subject};
use shared::ports::order_outbox::{OutboxOrder, UploadState};
use shared::records::alert::{AlertRecord, Decision, DecisionResult, DecisionSource, ACTION_QUEUE};
use shared::records::matching::MatchRecord;
use std::collections::BTreeMap;

pub const OPERATOR: &str = "Dana Whitfield";

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub struct Customer {
    pub slug: &'static str,
    pub name: &'static str,
    pub alerts: usize,
    pub orders: usize,
    /// Every alert Visa and Ethoca (except every 17th, an RDR refund) — the VAMP case.
    pub visa_heavy: bool,
    /// The decision policy its automatic decisions carry (Hyperion has its own; the others
    /// the partner's default).
    pub policy: &'static str,
}

pub const CUSTOMERS: [Customer; 4] = [
    Customer {
        slug: "hyperion",
        name: "Hyperion Games",
        alerts: 1700,
        orders: 25_000,
        visa_heavy: true,
        policy: "hyperion-2026",
    },
    Customer {
        slug: "northwind",
        name: "Northwind Outfitters",
        alerts: 320,
        orders: 4000,
        visa_heavy: false,
        policy: "partner-default",
    },
    Customer {
        slug: "bluebird",
        name: "Bluebird Apps",
        alerts: 260,
        orders: 3000,
        visa_heavy: false,
        policy: "partner-default",
    },
    Customer {
        slug: "copperleaf",
        name: "Copperleaf Health",
        alerts: 180,
        orders: 2000,
        visa_heavy: false,
        policy: "partner-default",
    },
];

/// Where the page's expected figures accumulate.
#[derive(Default)]
pub struct Expect {
    pub outcomes: BTreeMap<String, i64>,
    pub per_day: BTreeMap<String, BTreeMap<String, i64>>,
    pub received: BTreeMap<String, i64>,
    pub pending: i64,
    pub pending_by_provider: BTreeMap<String, i64>,
    pub tracked: i64,
    pub early: i64,
    pub buckets: BTreeMap<String, i64>,
    pub missed: Vec<String>,
    pub decided_by: BTreeMap<String, i64>,
    pub refunds: i64,
    pub refunded_cents: i64,
    pub orders: BTreeMap<String, i64>,
    /// day → accepted / failed / duplicate / rate_limited
    pub orders_per_day: BTreeMap<String, BTreeMap<String, i64>>,
    pub matching: BTreeMap<String, i64>,
    /// alert id → the CSV's match columns (status, order, method, rule), for alerts matched.
    pub csv_matches: BTreeMap<String, [String; 4]>,
    /// org → month → counter
    pub months: BTreeMap<String, BTreeMap<String, BTreeMap<String, i64>>>,
}

impl Expect {
    pub fn month(&mut self, org: &str, day: &str, k: &str, n: i64) {
        *self
            .months
            .entry(org.into())
            .or_default()
            .entry(day[..7].into())
            .or_default()
            .entry(k.into())
            .or_default() += n;
    }
}

pub fn bucket(f: f64) -> &'static str {
    match f {
        f if f < 0.10 => "0-10",
        f if f < 0.25 => "10-25",
        f if f < 0.50 => "25-50",
        f if f < 0.75 => "50-75",
        f if f < 0.90 => "75-90",
        f if f <= 1.0 => "90-100",
        _ => "late",
    }
}

/// The days a plan seeds, and the instant it is drawn at.
pub struct SeededRange {
    pub days: Vec<NaiveDate>,
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// Which alerts still wait is decided against this instant.
    pub plan_now: DateTime<Utc>,
}

/// The month seeded for a wall-clock `now`: this one from day 1 to today, or the previous one
/// early in a month. The plan is drawn at `now`, or at the end of the previous month's last day:
/// measured from the wall clock, no alert waited from about 36 h after that month ended until the
/// 5th, and the page's queue was empty (those that wait may be overdue by now, as the page shows
/// them).
pub fn seeded_range(now: DateTime<Utc>) -> SeededRange {
    let today = now.date_naive();
    let (first, last) = if today.day() >= 5 {
        (today.with_day(1).unwrap(), today)
    } else {
        let prev_last = today.with_day(1).unwrap() - Duration::days(1);
        (prev_last.with_day(1).unwrap(), prev_last)
    };
    let days = first.iter_days().take_while(|d| *d <= last).collect();
    let end_of_last = Utc.from_utc_datetime(&last.and_hms_opt(23, 59, 59).unwrap());
    SeededRange {
        days,
        first,
        last,
        plan_now: now.min(end_of_last),
    }
}

/// Half of the alert numbers, with no period a month's length could line up with (the top bit
/// of a Fibonacci hash).
fn in_waiting_half(i: usize) -> bool {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63 == 0
}

/// When alert `i` of a day arrives: 08:00 to 15:00.
fn received_at(day: NaiveDate, i: usize) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(8 + (i % 8) as u32, 0, 0).unwrap())
}

/// Whether alert `i` of customer `c` is a Verifi RDR alert (else Ethoca).
fn is_rdr(c: &Customer, i: usize) -> bool {
    if c.visa_heavy {
        i % 17 == 0
    } else {
        i % 4 == 3
    }
}

/// What happens to alert `i` of customer `c`, received at `received`, as seen at `now`.
fn alert_kind(c: &Customer, i: usize, received: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    // Half of the last day and a half's alerts still wait: the queue and the "still waiting"
    // figures of both providers have some. Which half is a hash of `i`, not `(i / 7) % 2` as
    // until 2026-12-02: alerts land on day `i % days`, so with 14 or 28 days seeded (the 14th
    // and the 28th) every alert of the last two days had an odd `i / 7` and none waited.
    let recent_waiting = now - received < Duration::hours(36) && in_waiting_half(i);
    if is_rdr(c, i) {
        if recent_waiting {
            "rdr_pending"
        } else if c.visa_heavy || i % 8 == 3 {
            "rdr_refunded"
        } else {
            "rdr_declined"
        }
    } else if c.slug == "northwind" && (i == 5 || i == 77) {
        "expired"
    } else if c.slug == "northwind" && i == 150 {
        "late_operator"
    } else if recent_waiting {
        "pending"
    } else {
        [
            "policy_refund",
            "operator_refund",
            "operator_accept",
            "sweep_cancel",
            "policy_refund",
            "policy_accept",
            "invalid",
            "operator_refund_cancel",
        ][i % 8]
    }
}

/// One alert of the plan: its record and what it implies.
#[allow(clippy::too_many_arguments)]
pub fn plan_alert(
    e: &mut Expect,
    org: &str,
    enrolment: &str,
    c: &Customer,
    i: usize,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> AlertRecord {
    let received = received_at(day, i);
    let deadline = received + Duration::hours(72);
    let rdr = is_rdr(c, i);
    let scheme = if c.visa_heavy || i % 3 != 0 {
        "VISA"
    } else {
        "MASTERCARD"
    };
    let cents = 1000 + (i % 50) as i64 * 100;
    let fractions = [0.05, 0.15, 0.3, 0.6, 0.8, 0.95, 0.02];
    let mut f = fractions[i % fractions.len()];
    let kind = alert_kind(c, i, received, now);
    if kind == "sweep_cancel" {
        f = 0.95;
    }
    let (status, refund_outcome) = match kind {
        "pending" | "rdr_pending" => ("ACTION_REQUIRED", None),
        "invalid" => ("INVALID", None),
        "rdr_refunded" | "policy_refund" | "operator_refund" | "operator_refund_cancel" => {
            ("RESOLVED", Some("REFUNDED"))
        }
        "late_operator" => ("RESOLVED", Some("REFUNDED")),
        _ => ("RESOLVED", Some("NOT_REFUNDED")),
    };
    let decided_at = match kind {
        "late_operator" => deadline + Duration::hours(1),
        "expired" => deadline + Duration::minutes(5),
        _ => received + Duration::milliseconds((f * 72.0 * 3_600_000.0) as i64),
    };
    let provider = if rdr { "VERIFI_RDR" } else { "ETHOCA_ALERT" };
    let id = format!("netalrt_{}_{i:05}", c.slug);
    let alert: Alert = serde_json::from_value(json!({
        "id": id,
        "organisation_id": org,
        "merchant_id": format!("mrch_{}", c.slug),
        "enrolment_id": enrolment,
        "enrolment_type": provider,
        "status": status,
        "transaction_amount_in_cents": cents,
        "transaction_currency_code": "USD",
        "transaction_card_scheme": scheme,
        "transaction_refund_outcome": refund_outcome,
        "transaction_statement_descriptor": format!("{}*SUB", c.slug.to_uppercase()),
        "transaction_acquirer_reference_number": if i % 2 == 0 { Some(format!("7402{i:019}")) } else { None },
        "action_required_deadline": if rdr { None } else { Some(iso(deadline)) },
        "alert_received_at": iso(received),
        "created_at": iso(received),
        "updated_at": if kind.ends_with("pending") { iso(received) } else { iso(decided_at) },
    }))
    .expect("alert");
    // Our match (Ethoca only; none for every 9th, as without partner records) and the policy
    // rule that fired: the refund rules, the partner-refunded one only for a matched order.
    let verdict = if rdr || i % 9 == 4 {
        None
    } else if i % 2 == 0 {
        Some(MatchOutcome::Matched)
    } else if i % 10 == 3 {
        Some(MatchOutcome::Ambiguous)
    } else {
        Some(MatchOutcome::Unmatched)
    };
    let matched = verdict == Some(MatchOutcome::Matched);
    let rule = match kind {
        "policy_refund" if matched && i % 3 == 0 => "refund_when_partner_refunded",
        "policy_refund" if c.policy == "hyperion-2026" => "small-usd",
        "policy_refund" => "refund_at_or_below_cents",
        "policy_accept" => "repeat-customer",
        _ if !matched => "unmatched",
        _ => "no_rule_matched",
    };
    let rule = format!("{}/{rule}", c.policy);
    let alert_match = verdict.map(|v| seeded_match(c, i, v, &rule, received));
    let mut decisions = Vec::new();
    let decision = |source, actor: &str, action: &str| Decision {
        at: iso(decided_at),
        source,
        actor: actor.into(),
        action: Some(serde_json::from_value(json!(action)).unwrap()),
        reason: format!("{rule}: seeded"),
        note: None,
        result: DecisionResult::Applied,
        detail: None,
    };
    // The page counts an automatic decision by its rule, or by the policy's name when no match
    // record keeps one.
    let by_rule = if alert_match.is_some() {
        format!("policy:{rule}")
    } else {
        format!("policy:{}", c.policy)
    };
    let who = match kind {
        "policy_refund" => {
            decisions.push(decision(DecisionSource::AutoPolicy, c.policy, "REFUND"));
            Some(by_rule.as_str())
        }
        "policy_accept" => {
            decisions.push(decision(
                DecisionSource::AutoPolicy,
                c.policy,
                "ACCEPT_DISPUTE",
            ));
            Some(by_rule.as_str())
        }
        "operator_refund" | "late_operator" => {
            decisions.push(decision(DecisionSource::Operator, OPERATOR, "REFUND"));
            Some("operator:Dana Whitfield")
        }
        "operator_refund_cancel" => {
            decisions.push(decision(
                DecisionSource::Operator,
                "Sam Okafor",
                "REFUND_AND_CANCEL",
            ));
            Some("operator:Sam Okafor")
        }
        "operator_accept" => {
            decisions.push(decision(
                DecisionSource::Operator,
                OPERATOR,
                "ACCEPT_DISPUTE",
            ));
            Some("operator:Dana Whitfield")
        }
        "sweep_cancel" => {
            decisions.push(decision(DecisionSource::Sweep, "deadline-sweep", "CANCEL"));
            Some("sweep:")
        }
        "invalid" => Some("elsewhere:"),
        "expired" => Some("nobody:"),
        _ => None,
    };
    if kind == "invalid" || kind == "expired" {
        decisions.push(Decision {
            at: iso(decided_at),
            source: DecisionSource::Observed,
            actor: "chargebackstop".into(),
            action: None,
            reason: "alert became resolved without an action recorded here".into(),
            note: None,
            result: DecisionResult::ResolvedElsewhere,
            detail: None,
        });
    }
    // What it implies.
    let d = day.to_string();
    *e.received.entry(provider.into()).or_default() += 1;
    e.month(org, &d, &format!("alerts:{scheme}"), 1);
    let outcome = match kind {
        "pending" | "rdr_pending" => None,
        "rdr_refunded" => Some("rdr_refunded"),
        "rdr_declined" => Some("rdr_declined"),
        "invalid" => Some("invalid"),
        "expired" => Some("expired"),
        "operator_accept" | "policy_accept" => Some("accepted"),
        "sweep_cancel" => Some("cancelled"),
        _ => Some("refunded"),
    };
    match outcome {
        None => {
            e.pending += 1;
            *e.pending_by_provider.entry(provider.into()).or_default() += 1;
            *e.per_day
                .entry(d.clone())
                .or_default()
                .entry(format!("pending:{provider}"))
                .or_default() += 1;
        }
        Some(o) => {
            *e.outcomes.entry(o.into()).or_default() += 1;
            *e.per_day
                .entry(d.clone())
                .or_default()
                .entry(o.into())
                .or_default() += 1;
            if o == "rdr_refunded" {
                e.month(org, &d, &format!("rdr_resolved:{scheme}"), 1);
            }
            if ["accepted", "cancelled", "expired", "rdr_declined"].contains(&o) {
                e.month(org, &d, &format!("disputes:{scheme}"), 1);
            }
            if o == "refunded" {
                e.refunds += 1;
                e.refunded_cents += cents;
            }
        }
    }
    if let (Some(w), false) = (who, rdr) {
        *e.decided_by.entry(w.into()).or_default() += 1;
        e.tracked += 1;
        let missed = kind == "expired" || kind == "late_operator";
        let b = if missed { "late" } else { bucket(f) };
        *e.buckets.entry(b.into()).or_default() += 1;
        if missed {
            e.missed.push(id.clone());
        } else if deadline - decided_at > Duration::hours(24) {
            e.early += 1;
        }
    }
    if let Some(m) = &alert_match {
        *e.matching
            .entry(verdict.unwrap().as_str().into())
            .or_default() += 1;
        e.csv_matches.insert(
            id.clone(),
            [
                verdict.unwrap().as_str().to_string(),
                m.matched
                    .transaction
                    .as_ref()
                    .map(|t| t.order_reference_id.clone())
                    .unwrap_or_default(),
                m.matched
                    .method
                    .map(|x| json!(x).as_str().unwrap().to_string())
                    .unwrap_or_default(),
                rule.clone(),
            ],
        );
    }
    AlertRecord {
        alert_id: id,
        version_key: version_key(&alert),
        fetched_at: iso(now),
        action_queue: (kind == "pending").then(|| ACTION_QUEUE.to_string()),
        decisions,
        warned_thresholds: Vec::new(),
        pending_warning: None,
        informational: rdr,
        action_claim: None,
        no_deadline_notified_at: None,
        alert_match,
        refund_hook: None,
        revision: 1,
        alert,
    }
}

/// One uploaded order as the outbox stores it, and what it implies.
pub fn plan_order(
    e: &mut Expect,
    org: &str,
    c: &Customer,
    i: usize,
    day: NaiveDate,
) -> OutboxOrder {
    let brand = if c.visa_heavy || i % 5 != 0 {
        "VISA"
    } else {
        "MASTERCARD"
    };
    let (arn, auth, bin) = if c.visa_heavy {
        (true, true, true)
    } else {
        (i % 10 < 7, i % 10 < 9, i % 5 != 4)
    };
    let at = Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap());
    let reference = format!("{}-{i:06}", c.slug);
    let mut txn = json!({
        "reference_id": format!("txn-{reference}"), "amount_in_cents": 2900, "currency": "USD",
        "payment_method_type": "CARD", "authorisation_status": "SETTLED",
        "payment_method_card_brand": brand, "authorised_at": iso(at),
    });
    if arn {
        txn["acquirer_reference_number"] = json!(format!("7402{i:019}"));
    }
    if auth {
        txn["authorisation_code"] = json!(format!("A{i:05}"));
    }
    if bin {
        txn["payment_method_card_bin"] = json!(if brand == "VISA" { "424242" } else { "555555" });
    }
    let order = json!({
        "type": "COMPLETE", "organisation_id": org, "integration_id": format!("int_{}", c.slug),
        "reference_id": reference, "order_datetime": iso(at), "order_total_amount_in_cents": 2900,
        "order_currency": "USD", "order_status": "CLOSED_COMPLETE", "transactions": [txn],
    });
    let (state, last_error) = if c.visa_heavy {
        ("CREATED", None)
    } else if i % 50 == 7 {
        ("FAILED", None)
    } else if i % 50 == 8 {
        ("DUPLICATE", None)
    } else if i % 100 == 9 {
        ("CREATED", Some("429 rate limited; retried"))
    } else {
        ("CREATED", None)
    };
    let d = day.to_string();
    for (k, yes) in [
        ("taken_in", true),
        ("card_txns", true),
        ("with_arn", arn),
        ("with_auth_code", auth),
        ("with_bin", bin),
    ] {
        if yes {
            *e.orders.entry(k.into()).or_default() += 1;
        }
    }
    let outcome = match state {
        "CREATED" => "accepted",
        "FAILED" => "failed",
        _ => "duplicate",
    };
    *e.orders.entry(outcome.into()).or_default() += 1;
    // Each outcome (and 429) is counted on the day the upload recorded it (the same day here).
    let per_day = e.orders_per_day.entry(d.clone()).or_default();
    *per_day.entry(outcome.into()).or_default() += 1;
    if last_error.is_some() {
        *per_day.entry("rate_limited".into()).or_default() += 1;
        *e.orders.entry("rate_limited".into()).or_default() += 1;
    }
    e.month(org, &d, &format!("settled:{brand}"), 1);
    OutboxOrder {
        organisation_id: org.to_string(),
        reference_id: reference,
        state: match state {
            "CREATED" => UploadState::Created,
            "FAILED" => UploadState::Failed,
            _ => UploadState::Duplicate,
        },
        order: serde_json::from_value(order).expect("order"),
        queued_at: iso(at + Duration::hours(1)),
        enqueued_at: iso(at + Duration::hours(1)),
        lease_until: None,
        lease_owner: None,
        attempts: 1,
        order_id: (state != "FAILED").then(|| format!("ord_{i}")),
        error_code: (state == "FAILED").then(|| "INVALID_INTEGRATION".to_string()),
        error_field: None,
        error_message: None,
        last_error: last_error.map(str::to_string),
        pending_updates: Default::default(),
        updated_at: iso(at + Duration::minutes(65)),
    }
}

/// The match record of a seeded Ethoca alert: matched by ARN to the order of the same index
/// (which carries that ARN), ambiguous between two orders by authorisation code, or unmatched.
pub fn seeded_match(
    c: &Customer,
    i: usize,
    verdict: MatchOutcome,
    rule: &str,
    at: DateTime<Utc>,
) -> MatchRecord {
    let order = |n: usize| {
        json!({ "organisation_id": "", "order_reference_id": format!("{}-{n:06}", c.slug),
                "transaction_reference_id": format!("txn-{}-{n:06}", c.slug) })
    };
    let m = match verdict {
        MatchOutcome::Matched => json!({ "status": "MATCHED", "method": "ARN", "confidence": 98,
            "transaction": order(i), "candidates": [order(i)], "matched_at": iso(at) }),
        MatchOutcome::Ambiguous => {
            json!({ "status": "AMBIGUOUS", "method": "AUTH_CODE_LAST4_AMOUNT",
            "confidence": 0, "candidates": [order(i), order(i + 1)], "matched_at": iso(at) })
        }
        MatchOutcome::Unmatched => {
            json!({ "status": "UNMATCHED", "confidence": 0, "matched_at": iso(at) })
        }
    };
    serde_json::from_value(json!({ "match": m, "rule": rule })).expect("match record")
}

/// The counters of the older days: the facts of their records summed per organisation and day,
/// written as one subject per organisation-day (the store adds them to the organisation's day
/// item and to the all-organisations one, as it does for a record's own facts).
#[derive(Default)]
pub struct Summed(pub BTreeMap<(String, String), Fact>);

impl Summed {
    pub fn add(&mut self, subject: Subject) {
        for f in subject.facts {
            let sum = self
                .0
                .entry((f.organisation_id.clone(), f.day.clone()))
                .or_insert_with(|| Fact::new("seeded", &f.organisation_id, &f.day));
            for (k, v) in f.add {
                *sum.add.entry(k).or_default() += v;
            }
            sum.missed_alert_ids.extend(f.missed_alert_ids);
        }
    }

    pub fn subjects(self) -> Vec<Subject> {
        self.0
            .into_iter()
            .map(|((org, day), fact)| Subject {
                key: format!("seed#{org}#{day}"),
                facts: vec![fact],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some Ethoca alerts and some RDR alerts still wait in the plan whatever the date, so the
    /// page's queue and both "still waiting" figures have some: every day of a leap year and the
    /// next, at three hours of the day.
    #[test]
    fn alerts_of_both_providers_still_wait_on_every_day_of_the_year() {
        let start = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
        for day in 0..(366 + 365) {
            for hour in [0, 13, 23] {
                let now = start + Duration::days(day) + Duration::hours(hour);
                let range = seeded_range(now);
                let (mut ethoca, mut rdr) = (0, 0);
                for c in &CUSTOMERS {
                    for i in 0..c.alerts {
                        let day = range.days[i % range.days.len()];
                        match alert_kind(c, i, received_at(day, i), range.plan_now) {
                            "pending" => ethoca += 1,
                            "rdr_pending" => rdr += 1,
                            _ => {}
                        }
                    }
                }
                assert!(ethoca > 0, "{now}: no Ethoca alert waits");
                assert!(rdr > 0, "{now}: no RDR alert waits");
            }
        }
    }
}
