//! From day counters to what the insights page shows (pure): the 90-day charts and the card
//! scheme gauges of the current and previous month.

use super::facts::{AlertOutcome, LATENCY_BUCKETS};
use crate::ports::insights_store::DayCounters;
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

/// Visa VAMP (from April 2026): excessive at a ratio of 1.5 % with more than 1,500 cases.
pub const VAMP_RATIO: f64 = 0.015;
pub const VAMP_MIN_CASES: i64 = 1_500;
/// Mastercard Excessive Chargeback Merchant: 100–299 chargebacks and 1.5 %; High Excessive:
/// 300+ and 3 %.
pub const ECM_RATIO: f64 = 0.015;
pub const ECM_MIN_CHARGEBACKS: i64 = 100;
pub const HECM_RATIO: f64 = 0.03;
pub const HECM_MIN_CHARGEBACKS: i64 = 300;

pub const PROVIDERS: [&str; 2] = ["ETHOCA_ALERT", "VERIFI_RDR"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayView {
    pub day: String,
    /// `<provider>` → alerts received.
    pub received: BTreeMap<String, i64>,
    /// `<outcome>` → alerts received that day that ended so (both providers).
    pub outcomes: BTreeMap<String, i64>,
    /// Received that day and not final yet.
    pub pending: i64,
    /// `<provider>` → `<outcome>` (those that happened) and `pending` (still waiting, when
    /// any): the day's alerts by provider and outcome.
    pub by_provider: BTreeMap<String, BTreeMap<String, i64>>,
    /// accepted / failed / duplicate / rate_limited.
    pub orders: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub label: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissedAlert {
    pub day: String,
    pub alert_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineView {
    /// Ethoca alerts decided (or expired) that had a deadline.
    pub tracked: i64,
    pub buckets: Vec<Bucket>,
    pub decided_24h_early: i64,
    pub early_share: Option<f64>,
    pub missed: i64,
    pub missed_alerts: Vec<MissedAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhoDecided {
    /// policy / operator / sweep / elsewhere / nobody
    pub kind: String,
    /// For `policy`, the `<policy>/<rule>` that fired (the policy's name alone where no rule was
    /// recorded); for `operator`, the operator's name; empty for the others.
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrdersView {
    pub taken_in: i64,
    pub card_txns: i64,
    pub with_arn: i64,
    pub with_auth_code: i64,
    pub with_bin: i64,
    pub accepted: i64,
    pub failed: i64,
    pub duplicate: i64,
    pub rate_limited: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchView {
    pub matched: i64,
    pub unmatched: i64,
    pub ambiguous: i64,
    /// matched / all verdicts; `None` before any verdict.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InsightsView {
    pub scope: String,
    pub from: String,
    pub to: String,
    pub days: Vec<DayView>,
    pub received: BTreeMap<String, i64>,
    pub outcomes: BTreeMap<String, i64>,
    pub pending: i64,
    /// `<provider>` → alerts received in the period and not final yet.
    pub pending_by_provider: BTreeMap<String, i64>,
    pub deadline: DeadlineView,
    pub decided_by: Vec<WhoDecided>,
    pub refunds: i64,
    pub refunded_cents: BTreeMap<String, i64>,
    pub matching: MatchView,
    pub orders: OrdersView,
}

fn get(c: &BTreeMap<String, i64>, k: &str) -> i64 {
    c.get(k).copied().unwrap_or(0)
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Every day from `from` to `to` inclusive.
pub fn days_between(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        out.push(d);
        d += Duration::days(1);
    }
    out
}

/// The view of `scope` over `from..=to`, from its stored day items (absent days are zero).
pub fn build_view(
    scope: &str,
    from: NaiveDate,
    to: NaiveDate,
    stored: &[DayCounters],
) -> InsightsView {
    let by_day: BTreeMap<&str, &DayCounters> = stored.iter().map(|d| (d.day.as_str(), d)).collect();
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    let mut days = Vec::new();
    let mut missed_alerts = Vec::new();
    let empty = BTreeMap::new();
    for day in days_between(from, to) {
        let key = day.format("%Y-%m-%d").to_string();
        let stored = by_day.get(key.as_str());
        let c = stored.map(|d| &d.counters).unwrap_or(&empty);
        if let Some(d) = stored {
            for id in &d.missed_alert_ids {
                missed_alerts.push(MissedAlert {
                    day: key.clone(),
                    alert_id: id.clone(),
                });
            }
        }
        for (k, v) in c {
            *total.entry(k.clone()).or_default() += v;
        }
        let mut received = BTreeMap::new();
        let mut outcomes = BTreeMap::new();
        let mut by_provider = BTreeMap::new();
        for p in PROVIDERS {
            let n = get(c, &format!("alerts:{p}"));
            received.insert(p.to_string(), n);
            let mut mine: BTreeMap<String, i64> = BTreeMap::new();
            for o in AlertOutcome::ALL {
                let n = get(c, &format!("outcome:{p}:{}", o.as_str()));
                *outcomes.entry(o.as_str().to_string()).or_default() += n;
                if n > 0 {
                    mine.insert(o.as_str().to_string(), n);
                }
            }
            let waiting = (n - mine.values().sum::<i64>()).max(0);
            if waiting > 0 {
                mine.insert("pending".into(), waiting);
            }
            by_provider.insert(p.to_string(), mine);
        }
        let orders = ["accepted", "failed", "duplicate", "rate_limited"]
            .iter()
            .map(|k| (k.to_string(), get(c, &format!("orders:{k}"))))
            .collect();
        days.push(DayView {
            day: key,
            received,
            outcomes,
            pending: by_provider
                .values()
                .map(|m| m.get("pending").copied().unwrap_or(0))
                .sum(),
            by_provider,
            orders,
        });
    }
    let received: BTreeMap<String, i64> = PROVIDERS
        .iter()
        .map(|p| (p.to_string(), get(&total, &format!("alerts:{p}"))))
        .collect();
    let mut outcomes: BTreeMap<String, i64> = BTreeMap::new();
    for d in &days {
        for (k, v) in &d.outcomes {
            *outcomes.entry(k.clone()).or_default() += v;
        }
    }
    let pending = days.iter().map(|d| d.pending).sum();
    let pending_by_provider = PROVIDERS
        .iter()
        .map(|p| {
            let n = days
                .iter()
                .filter_map(|d| d.by_provider.get(*p)?.get("pending"))
                .sum();
            (p.to_string(), n)
        })
        .collect();
    let tracked = get(&total, "deadline_tracked");
    let early = get(&total, "decided_24h_early");
    let deadline = DeadlineView {
        tracked,
        buckets: LATENCY_BUCKETS
            .iter()
            .map(|b| Bucket {
                label: b.to_string(),
                count: get(&total, &format!("latency:{b}")),
            })
            .collect(),
        decided_24h_early: early,
        early_share: share(early, tracked),
        missed: get(&total, "missed"),
        missed_alerts,
    };
    let mut decided_by = Vec::new();
    for (k, v) in &total {
        let Some(rest) = k.strip_prefix("decided_by:") else {
            continue;
        };
        let (kind, name) = rest.split_once(':').unwrap_or((rest, ""));
        decided_by.push(WhoDecided {
            kind: kind.to_string(),
            name: name.to_string(),
            count: *v,
        });
    }
    decided_by.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    let refunded_cents = total
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("refunded_cents:")?.to_string(), *v)))
        .collect();
    let (matched, unmatched, ambiguous) = (
        get(&total, "match:matched"),
        get(&total, "match:unmatched"),
        get(&total, "match:ambiguous"),
    );
    InsightsView {
        scope: scope.to_string(),
        from: from.format("%Y-%m-%d").to_string(),
        to: to.format("%Y-%m-%d").to_string(),
        days,
        received,
        outcomes,
        pending,
        pending_by_provider,
        deadline,
        decided_by,
        refunds: get(&total, "refunds"),
        refunded_cents,
        matching: MatchView {
            matched,
            unmatched,
            ambiguous,
            rate: share(matched, matched + unmatched + ambiguous),
        },
        orders: OrdersView {
            taken_in: get(&total, "orders_taken_in"),
            card_txns: get(&total, "card_txns"),
            with_arn: get(&total, "card_txns_arn"),
            with_auth_code: get(&total, "card_txns_auth_code"),
            with_bin: get(&total, "card_txns_bin"),
            accepted: get(&total, "orders:accepted"),
            failed: get(&total, "orders:failed"),
            duplicate: get(&total, "orders:duplicate"),
            rate_limited: get(&total, "orders:rate_limited"),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VampGauge {
    /// Visa alerts received in the month, less those resolved by RDR with a refund.
    pub cases: i64,
    pub alerts: i64,
    pub rdr_resolved: i64,
    pub settled: i64,
    pub ratio: Option<f64>,
    /// `above` (ratio ≥ 1.5 % and more than 1,500 cases), `ratio_above_few_cases`, `below`,
    /// `no_settled_transactions`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcmGauge {
    /// Mastercard alerts whose dispute went ahead (accepted, cancelled, expired).
    pub chargebacks: i64,
    pub settled: i64,
    pub ratio: Option<f64>,
    /// `high_excessive`, `excessive`, `below`, `no_settled_transactions`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeMonth {
    /// `YYYY-MM`
    pub month: String,
    pub visa: VampGauge,
    pub mastercard: EcmGauge,
}

/// The first day of `day`'s month and of the month before.
pub fn current_and_previous_month(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let current = day.with_day(1).expect("day 1 exists");
    let previous = (current - Duration::days(1))
        .with_day(1)
        .expect("day 1 exists");
    (current, previous)
}

/// The gauges of the month starting `month_start`, from day items covering it.
pub fn scheme_month(month_start: NaiveDate, stored: &[DayCounters]) -> SchemeMonth {
    let month = month_start.format("%Y-%m").to_string();
    let mut c: BTreeMap<String, i64> = BTreeMap::new();
    for d in stored.iter().filter(|d| d.day.starts_with(&month)) {
        for (k, v) in &d.counters {
            *c.entry(k.clone()).or_default() += v;
        }
    }
    let alerts = get(&c, "scheme_alerts:VISA");
    let rdr_resolved = get(&c, "scheme_rdr_resolved:VISA");
    let cases = (alerts - rdr_resolved).max(0);
    let settled = get(&c, "settled:VISA");
    let ratio = share(cases, settled);
    let level = match ratio {
        None => "no_settled_transactions",
        Some(r) if r >= VAMP_RATIO && cases > VAMP_MIN_CASES => "above",
        Some(r) if r >= VAMP_RATIO => "ratio_above_few_cases",
        Some(_) => "below",
    };
    let chargebacks = get(&c, "scheme_disputes:MASTERCARD");
    let mc_settled = get(&c, "settled:MASTERCARD");
    let mc_ratio = share(chargebacks, mc_settled);
    let mc_level = match mc_ratio {
        None => "no_settled_transactions",
        Some(r) if r >= HECM_RATIO && chargebacks >= HECM_MIN_CHARGEBACKS => "high_excessive",
        Some(r) if r >= ECM_RATIO && chargebacks >= ECM_MIN_CHARGEBACKS => "excessive",
        Some(_) => "below",
    };
    SchemeMonth {
        month,
        visa: VampGauge {
            cases,
            alerts,
            rdr_resolved,
            settled,
            ratio,
            level: level.into(),
        },
        mastercard: EcmGauge {
            chargebacks,
            settled: mc_settled,
            ratio: mc_ratio,
            level: mc_level.into(),
        },
    }
}
