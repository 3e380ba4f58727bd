//! `cbs-bench capacity`: which limit binds first at 1x, 10x, 100x and 1000x of the design load,
//! by simulation (issue 15, `docs/capacity.md`).
//!
//! What cannot be measured on 2 cores against moto (3,500 webhooks a second, 100,000 customer
//! organisations) is simulated here, second by second over a peak and the hours after it:
//! - **arrivals:** webhook events and order batches as Poisson arrivals at the design load's
//!   rates, times the peak factor during the peak; each lands on an organisation drawn from the
//!   customer mix (the largest organisation has its share, the rest a long tail, Zipf);
//! - **costs per event kind:** what `tests/e2e/tests/process_events.rs` measures on the real
//!   functions (API calls per endpoint; DynamoDB writes, and of those the ones that land on keys
//!   every writer shares: the `deadline-index` shards and the insights day items);
//! - **the shared keys:** each write goes to the key the code would pick (the alert's
//!   `deadline-index` shard by `deadline_index_shard`, the day item's shard at random, as
//!   `insights.rs` does), so a hot key shows as the hottest key's WCU/s, not an average;
//! - **ChargebackStop's per-organisation limit:** each organisation's alert decisions and order
//!   batches queue behind our own limiter (`RateLimit`) and drain at its rate; the simulation
//!   reports the longest an alert waited for its decision and the largest order backlog, so a
//!   binding limit shows as a delay, measured against the Ethoca deadline (24 h at the least);
//! - **Lambda:** concurrency by Little's law from the events per second and the assumed seconds
//!   per event (`--api-latency-ms` per ChargebackStop call, `--dynamo-latency-ms` per request).
//!
//! Each scale is simulated twice: `before` (one `deadline-index` key, one insights day item per
//! scope, FIFO limits per queue, two GETs per decision, the per-event costs before this issue's
//! changes) and `now`. Reported: each limit's peak
//! demand against its value, and the first to bind.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_distr::Poisson;
use serde_json::json;
use shared::adapters::dynamo::alerts::{deadline_index_shard, DEADLINE_INDEX_SHARDS};
use shared::adapters::dynamo::insights::DAY_SHARDS;
use shared::domain::rate_limit::RateLimit;
use std::collections::HashMap;

/// The design load (1x), `docs/capacity.md`.
#[derive(Debug, Clone, Copy)]
pub struct Design {
    pub organisations: u64,
    pub alerts_per_day: f64,
    pub ethoca_share: f64,
    pub orders_per_day: f64,
    pub largest_share: f64,
    pub peak_factor: f64,
    pub peak_minutes: u64,
}

impl Default for Design {
    fn default() -> Self {
        Self {
            organisations: 100,
            alerts_per_day: 10_000.0,
            ethoca_share: 0.6,
            orders_per_day: 1_000_000.0,
            largest_share: 0.05,
            peak_factor: 10.0,
            peak_minutes: 60,
        }
    }
}

/// What one event of a kind costs, as `process_events.rs` measures it on the real functions. `index_writes`: writes of the alert item while it is in `deadline-index`
/// (each also writes the index: projection ALL, about 3 KB); `day_transactions`: insights
/// counting transactions (each adds to the organisation's and the `ALL` day item).
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// `GET /v1/alerts/{id}` (a decision's own GET is `Setup::gets_per_decision`).
    alert_gets: u32,
    /// `PATCH /v1/alerts/{id}`.
    alert_patches: u32,
    /// `GET /v2/enrolments/{id}`.
    enrolment_gets: u32,
    dynamo_requests: u32,
    index_writes: u32,
    day_transactions: u32,
}

/// What each event kind costs, as the e2e cost table measured it.
#[derive(Debug, Clone, Copy)]
struct Costs {
    /// An Ethoca `alert.created` the policy actions.
    ethoca_actioned: Cost,
    /// An RDR `alert.created` (already resolved, informational).
    rdr_informational: Cost,
    /// The `alert.updated` our PATCH causes.
    own_update: Cost,
    /// Enrolment and other events.
    other: Cost,
}

#[path = "capacity_costs.rs"]
mod costs;
use costs::{COSTS_BEFORE, COSTS_NOW};

/// ChargebackStop endpoints, each limited per organisation.
const ENDPOINTS: [&str; 4] = [
    "GET /v1/alerts/{id}",
    "PATCH /v1/alerts/{id}",
    "POST /v1/orders",
    "GET /v2/enrolments/{id}",
];
const ALERT_GET: usize = 0;
const ALERT_PATCH: usize = 1;
const ORDERS_POST: usize = 2;
const ENROLMENT_GET: usize = 3;

/// Published limits.
const CBS_PER_MINUTE: f64 = 100.0;
const PARTITION_WCU: f64 = 1_000.0;
const INDEX_ITEM_WCU: f64 = 3.0;
/// A transactional write costs 2 WCU per KB; a day item is under 1 KB.
const DAY_ITEM_TX_WCU: f64 = 2.0;
const FIFO_PER_QUEUE: f64 = 300.0;
/// High-throughput FIFO, per API action, in the largest regions (lower elsewhere).
const FIFO_HIGH_THROUGHPUT: f64 = 70_000.0;
const FIFO_PER_GROUP: f64 = 300.0;
const LAMBDA_CONCURRENCY: f64 = 1_000.0;
const ORDERS_PER_REQUEST: f64 = 100.0;
/// The shortest Ethoca window between an alert and its deadline.
const ETHOCA_WINDOW_HOURS: f64 = 24.0;

#[derive(Debug, Clone, Copy)]
struct Setup {
    name: &'static str,
    index_shards: u64,
    day_shards: u32,
    high_throughput_fifo: bool,
    gets_per_decision: u32,
    costs: Costs,
}

const BEFORE: Setup = Setup {
    name: "before",
    index_shards: 1,
    day_shards: 1,
    high_throughput_fifo: false,
    gets_per_decision: 2,
    costs: COSTS_BEFORE,
};
const NOW: Setup = Setup {
    name: "now",
    index_shards: DEADLINE_INDEX_SHARDS,
    day_shards: DAY_SHARDS,
    high_throughput_fifo: true,
    gets_per_decision: 1,
    costs: COSTS_NOW,
};

/// One limit's peak demand against its value.
#[derive(Debug, Clone)]
struct Demand {
    limit: &'static str,
    peak: f64,
    value: f64,
    unit: &'static str,
}

impl Demand {
    fn use_(&self) -> f64 {
        self.peak / self.value
    }
}

/// Per-second peaks of keyed counters.
#[derive(Default)]
struct PeakPerKey {
    this_second: HashMap<u64, f64>,
    peak: f64,
}

impl PeakPerKey {
    fn add(&mut self, key: u64, n: f64) {
        *self.this_second.entry(key).or_default() += n;
    }
    fn tick(&mut self) {
        let max = self.this_second.values().copied().fold(0.0, f64::max);
        self.peak = self.peak.max(max);
        self.this_second.clear();
    }
}

/// One organisation's queue behind our limiter for one endpoint: arrivals wait, the limiter
/// serves `per_minute` a minute; the longest wait is the delay the limit causes.
#[derive(Default, Clone)]
struct OrgQueue {
    /// Arrival seconds of what waits, oldest first (run-length: (second, count)).
    waiting: std::collections::VecDeque<(u64, f64)>,
    credit: f64,
    longest_wait_s: u64,
    peak_backlog: f64,
}

impl OrgQueue {
    fn arrive(&mut self, at: u64, n: f64) {
        match self.waiting.back_mut() {
            Some((s, c)) if *s == at => *c += n,
            _ => self.waiting.push_back((at, n)),
        }
    }
    /// One second of service at `per_second`.
    fn serve(&mut self, now: u64, per_second: f64) {
        self.credit = (self.credit + per_second).min(per_second.max(1.0) * 2.0);
        while let Some((at, count)) = self.waiting.front_mut() {
            if self.credit <= 0.0 {
                break;
            }
            let take = count.min(self.credit);
            *count -= take;
            self.credit -= take;
            self.longest_wait_s = self.longest_wait_s.max(now - *at);
            if *count <= 1e-9 {
                self.waiting.pop_front();
            }
        }
        let backlog: f64 = self.waiting.iter().map(|(_, c)| c).sum();
        self.peak_backlog = self.peak_backlog.max(backlog);
        if self.waiting.is_empty() {
            self.credit = self.credit.min(per_second);
        }
    }
}

struct Run {
    scale: u64,
    setup: Setup,
    demands: Vec<Demand>,
    /// Per endpoint: the longest a request waited behind our per-organisation limiter.
    longest_wait_s: [u64; 4],
    /// Per endpoint: the largest backlog of one organisation.
    peak_backlog: [f64; 4],
    /// The last second at which a request had waited over a minute behind our limiter (0:
    /// never), and whether one still had at the end.
    last_long_wait_s: u64,
    long_wait_at_end: bool,
    events: u64,
}

/// The organisations' weights: the largest its share, the rest a long tail (Zipf, exponent
/// 1/2, from the second rank so no tail organisation outweighs the largest).
fn weights(design: Design, orgs: u64) -> Vec<f64> {
    let tail: Vec<f64> = (1..orgs).map(|k| 1.0 / ((k + 1) as f64).sqrt()).collect();
    let tail_sum: f64 = tail.iter().sum();
    std::iter::once(design.largest_share)
        .chain(
            tail.iter()
                .map(|w| w / tail_sum * (1.0 - design.largest_share)),
        )
        .collect()
}

/// One second's counting transactions: each adds to one shard of the `ALL` day and one of the
/// organisation's day.
fn count_days(day_wcu: &mut PeakPerKey, rng: &mut impl Rng, setup: Setup, org: u64, n: u32) {
    for _ in 0..n {
        let shard = u64::from(rng.random_range(0..setup.day_shards));
        day_wcu.add(shard, DAY_ITEM_TX_WCU);
        day_wcu.add(1_000_000 + org * 64 + shard, DAY_ITEM_TX_WCU);
    }
}

#[allow(clippy::too_many_arguments)]
fn simulate(
    design: Design,
    scale: u64,
    setup: Setup,
    hours: u64,
    api_latency_ms: f64,
    dynamo_latency_ms: f64,
    seed: u64,
) -> anyhow::Result<Run> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ scale);
    let orgs = design.organisations * scale;
    let pick = WeightedIndex::new(weights(design, orgs))?;

    let day = 86_400.0;
    let alerts_per_s = design.alerts_per_day * scale as f64 / day;
    let batches_per_s = design.orders_per_day * scale as f64 / ORDERS_PER_REQUEST / day;
    let peak_s = design.peak_minutes * 60;
    let total_s = hours * 3_600;
    let rates = [
        RateLimit::CHARGEBACKSTOP.refill_per_sec(),
        RateLimit::CHARGEBACKSTOP.refill_per_sec(),
        RateLimit::ORDER_UPLOAD.refill_per_sec(),
        RateLimit::CHARGEBACKSTOP.refill_per_sec(),
    ];

    let mut events_per_s = PeakPerKey::default();
    let mut in_flight_s = PeakPerKey::default();
    let mut index_wcu = PeakPerKey::default();
    let mut day_wcu = PeakPerKey::default();
    let mut group_sends = PeakPerKey::default();
    let mut per_minute: HashMap<(u64, usize), f64> = HashMap::new();
    let mut peak_per_minute = 0.0_f64;
    // Only the queues with something waiting (100,000 organisations at 1000x).
    let mut queues: HashMap<(u64, usize), OrgQueue> = HashMap::new();
    let mut longest_wait_s = [0_u64; 4];
    let mut peak_backlog = [0.0_f64; 4];
    let mut last_long_wait_s = 0_u64;
    let mut long_wait_at_end = false;
    let mut events = 0_u64;
    let mut next_alert = 0_u64;

    let request = |org: u64,
                   endpoint: usize,
                   n: u32,
                   second: u64,
                   queues: &mut HashMap<(u64, usize), OrgQueue>,
                   per_minute: &mut HashMap<(u64, usize), f64>| {
        if n > 0 {
            *per_minute.entry((org, endpoint)).or_default() += n as f64;
            queues
                .entry((org, endpoint))
                .or_default()
                .arrive(second, n as f64);
        }
    };

    for second in 0..total_s {
        let factor = if second < peak_s {
            design.peak_factor
        } else {
            1.0
        };
        let alerts = Poisson::new(alerts_per_s * factor)?.sample(&mut rng) as u64;
        for _ in 0..alerts {
            let org = pick.sample(&mut rng) as u64;
            next_alert += 1;
            let ethoca = rng.random_bool(design.ethoca_share);
            let costs = setup.costs;
            let created = if ethoca {
                costs.ethoca_actioned
            } else {
                costs.rdr_informational
            };
            // alert.created, the alert.updated it causes, one other event of the organisation.
            for cost in [created, costs.own_update, costs.other] {
                events += 1;
                events_per_s.add(0, 1.0);
                let gets = if cost.alert_patches > 0 {
                    setup.gets_per_decision
                } else {
                    cost.alert_gets
                };
                let calls = gets + cost.alert_patches + cost.enrolment_gets;
                in_flight_s.add(
                    0,
                    calls as f64 * api_latency_ms / 1e3
                        + cost.dynamo_requests as f64 * dynamo_latency_ms / 1e3,
                );
                request(org, ALERT_GET, gets, second, &mut queues, &mut per_minute);
                request(
                    org,
                    ALERT_PATCH,
                    cost.alert_patches,
                    second,
                    &mut queues,
                    &mut per_minute,
                );
                request(
                    org,
                    ENROLMENT_GET,
                    cost.enrolment_gets,
                    second,
                    &mut queues,
                    &mut per_minute,
                );
                if cost.index_writes > 0 {
                    // The key the store writes: the alert's shard.
                    let shard = if setup.index_shards == 1 {
                        0
                    } else {
                        let key = deadline_index_shard(&format!("netalrt_sim_{next_alert}"));
                        key.rsplit('#')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    };
                    index_wcu.add(shard, cost.index_writes as f64 * INDEX_ITEM_WCU);
                }
                count_days(&mut day_wcu, &mut rng, setup, org, cost.day_transactions);
                group_sends.add(next_alert, 1.0);
            }
        }
        let batches = Poisson::new(batches_per_s * factor)?.sample(&mut rng) as u64;
        for _ in 0..batches {
            let org = pick.sample(&mut rng) as u64;
            request(org, ORDERS_POST, 1, second, &mut queues, &mut per_minute);
            // Taking the batch in, and its upload's outcome: one counting transaction each.
            count_days(&mut day_wcu, &mut rng, setup, org, 2);
        }
        queues.retain(|(_, endpoint), q| {
            q.serve(second, rates[*endpoint]);
            longest_wait_s[*endpoint] = longest_wait_s[*endpoint].max(q.longest_wait_s);
            peak_backlog[*endpoint] = peak_backlog[*endpoint].max(q.peak_backlog);
            !q.waiting.is_empty()
        });
        let long_wait = queues
            .values()
            .any(|q| q.waiting.front().is_some_and(|(at, _)| second - at > 60));
        if long_wait {
            last_long_wait_s = second;
        }
        long_wait_at_end = long_wait;
        if second % 60 == 59 {
            peak_per_minute = per_minute.values().copied().fold(peak_per_minute, f64::max);
            per_minute.clear();
        }
        events_per_s.tick();
        in_flight_s.tick();
        index_wcu.tick();
        day_wcu.tick();
        group_sends.tick();
    }

    let fifo = if setup.high_throughput_fifo {
        FIFO_HIGH_THROUGHPUT
    } else {
        FIFO_PER_QUEUE
    };
    let demands = vec![
        Demand {
            limit: "ChargebackStop, one endpoint of one organisation (demand)",
            peak: peak_per_minute,
            value: CBS_PER_MINUTE,
            unit: "requests/min",
        },
        Demand {
            limit: "SQS FIFO sends per queue",
            peak: events_per_s.peak,
            value: fifo,
            unit: "sends/s",
        },
        Demand {
            limit: "SQS FIFO sends per message group",
            peak: group_sends.peak,
            value: FIFO_PER_GROUP,
            unit: "sends/s",
        },
        Demand {
            limit: "Lambda concurrency (process-events)",
            peak: in_flight_s.peak,
            value: LAMBDA_CONCURRENCY,
            unit: "in flight",
        },
        Demand {
            limit: "DynamoDB deadline-index, hottest key",
            peak: index_wcu.peak,
            value: PARTITION_WCU,
            unit: "WCU/s",
        },
        Demand {
            limit: "DynamoDB insights day item, hottest key",
            peak: day_wcu.peak,
            value: PARTITION_WCU,
            unit: "WCU/s",
        },
    ];
    Ok(Run {
        scale,
        setup,
        demands,
        longest_wait_s,
        peak_backlog,
        last_long_wait_s,
        long_wait_at_end,
        events,
    })
}

/// `cbs-bench capacity [--scales 1,10,100,1000] [--hours 6]`.
pub fn run(
    scales: &[u64],
    hours: u64,
    api_latency_ms: f64,
    dynamo_latency_ms: f64,
    seed: u64,
) -> anyhow::Result<()> {
    let design = Design::default();
    let hours = hours.max(design.peak_minutes.div_ceil(60) + 1);
    println!(
        "design load (1x): {} organisations, {} alerts/day ({}% Ethoca), {} orders/day, largest organisation {}%, peak x{} for {} min; {} h simulated; {} ms per ChargebackStop call, {} ms per DynamoDB request",
        design.organisations,
        design.alerts_per_day,
        design.ethoca_share * 100.0,
        design.orders_per_day,
        design.largest_share * 100.0,
        design.peak_factor,
        design.peak_minutes,
        hours,
        api_latency_ms,
        dynamo_latency_ms
    );
    let mut rows = Vec::new();
    for &scale in scales {
        for setup in [BEFORE, NOW] {
            let started = std::time::Instant::now();
            let run = simulate(
                design,
                scale,
                setup,
                hours,
                api_latency_ms,
                dynamo_latency_ms,
                seed,
            )?;
            let binds: Vec<&Demand> = run.demands.iter().filter(|d| d.use_() >= 1.0).collect();
            let hottest = run
                .demands
                .iter()
                .max_by(|a, b| a.use_().total_cmp(&b.use_()))
                .expect("limits");
            println!(
                "\n{}x, {} ({} events simulated in {:.1} s)",
                run.scale,
                run.setup.name,
                run.events,
                started.elapsed().as_secs_f64()
            );
            println!(
                "  {:<80} {:>12} {:>10} {:>7}",
                "limit", "peak", "limit", "use"
            );
            for d in &run.demands {
                println!(
                    "  {:<80} {:>12.1} {:>10.0} {:>6.2}{} {}",
                    d.limit,
                    d.peak,
                    d.value,
                    d.use_(),
                    if d.use_() >= 1.0 { "!" } else { " " },
                    d.unit
                );
            }
            for (endpoint, name) in ENDPOINTS.iter().enumerate() {
                if run.peak_backlog[endpoint] > 0.0 {
                    let wait_h = run.longest_wait_s[endpoint] as f64 / 3_600.0;
                    println!(
                        "  {name}: one organisation's backlog up to {:.0} requests behind our limiter; the longest wait {:.2} h ({:.0}% of the shortest Ethoca window, {} h)",
                        run.peak_backlog[endpoint],
                        wait_h,
                        wait_h / ETHOCA_WINDOW_HOURS * 100.0,
                        ETHOCA_WINDOW_HOURS
                    );
                }
            }
            if run.long_wait_at_end {
                println!(
                    "  requests still waiting over a minute at the end of the {hours} h simulated"
                );
            } else if run.last_long_wait_s > 0 {
                println!(
                    "  no request waits over a minute from {:.2} h after the peak began",
                    run.last_long_wait_s as f64 / 3_600.0
                );
            } else {
                println!("  no request ever waited over a minute");
            }
            println!(
                "  binds: {}",
                if binds.is_empty() {
                    format!(
                        "nothing (closest: {} at {:.2})",
                        hottest.limit,
                        hottest.use_()
                    )
                } else {
                    binds
                        .iter()
                        .map(|d| format!("{} ({:.2})", d.limit, d.use_()))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            );
            rows.push(json!({
                "scale": run.scale,
                "setup": run.setup.name,
                "events": run.events,
                "limits": run.demands.iter().map(|d| json!({
                    "limit": d.limit, "peak": (d.peak * 10.0).round() / 10.0, "value": d.value,
                    "use": (d.use_() * 1000.0).round() / 1000.0, "unit": d.unit,
                })).collect::<Vec<_>>(),
                "waits": ENDPOINTS.iter().enumerate().map(|(e, name)| json!({
                    "endpoint": name,
                    "peak_backlog": run.peak_backlog[e].round(),
                    "longest_wait_hours": (run.longest_wait_s[e] as f64 / 36.0).round() / 100.0,
                })).collect::<Vec<_>>(),
                "waits_over_a_minute_until_hours": (!run.long_wait_at_end).then(|| (run.last_long_wait_s as f64 / 36.0).round() / 100.0),
            }));
        }
    }
    println!(
        "\n{}",
        serde_json::to_string(&json!({"bench": "capacity", "runs": rows}))?
    );
    Ok(())
}

#[cfg(test)]
#[path = "capacity_tests.rs"]
mod tests;
