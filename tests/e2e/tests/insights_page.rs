//! The stack the insights browser test (`tests/browser/test/insights.test.mjs`) looks at: moto
//! (tables from the SAM template), the sandbox and the ops API, four customers onboarded through
//! the API, and a realistic month: ~2,500 alerts of both providers with every outcome and
//! decider, ~34,000 uploaded orders with and without identifiers and with every upload outcome,
//! one customer (Hyperion Games) above Visa's VAMP threshold.
//!
//! Seeded fast (moto is slow per write): every alert is stored (the CSV export and the queue read
//! them); the counters of the days before the last one are the real facts of those records
//! (`alert_facts_with_match`, `stored_order_facts`) summed per organisation and day and
//! written through the insights store port as one subject per organisation-day; the alerts of
//! the last day are written through the real `CountingAlertStore` (counted as they are stored),
//! and a few orders are taken in through `POST /api/orders`, which counts them as it stores them.
//! The older orders are counted, not stored (nothing on the page reads the orders table).
//! It prints `INSIGHTS_STACK {...}` with what the seeded data implies (computed from the seed
//! plan, not from the counters) and serves until stdin closes.
//!
//! Needs the debug binaries `ops-api`, `cbs-sandbox` and `cbs`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use devstack::{resources, Functions, Moto, Resources, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::insights::DynamoInsightsStore;
use shared::adapters::dynamo::table::Table;
use shared::clock::{Clock, SystemClock};
use shared::config::TableNames;
use shared::domain::alert_record::version_key;
use shared::domain::enrolment_lifecycle::{merge_fetched, EnrolmentMerge};
use shared::domain::insights::facts::{alert_facts_with_match, stored_order_facts};
use shared::domain::insights::gauges::day_before;
use shared::domain::insights::report::current_and_previous_month;
use shared::domain::insights::{CountingAlertStore, MatchOutcome};
use shared::models::alert::Alert;
use shared::ports::alert_store::AlertStore;
use shared::ports::enrolment_store::EnrolmentStore;
use shared::ports::insights_store::{Fact, InsightsStore, Subject};
use shared::ports::order_outbox::{OutboxOrder, UploadState};
use shared::records::alert::{AlertRecord, Decision, DecisionResult, DecisionSource, ACTION_QUEUE};
use shared::records::matching::MatchRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

const OPERATOR: &str = "Dana Whitfield";

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

struct Customer {
    slug: &'static str,
    name: &'static str,
    alerts: usize,
    orders: usize,
    /// Every alert Visa and Ethoca (except every 17th, an RDR refund) — the VAMP case.
    visa_heavy: bool,
    /// The decision policy its automatic decisions carry (Hyperion has its own; the others
    /// the partner's default).
    policy: &'static str,
}

const CUSTOMERS: [Customer; 4] = [
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
struct Expect {
    outcomes: BTreeMap<String, i64>,
    per_day: BTreeMap<String, BTreeMap<String, i64>>,
    received: BTreeMap<String, i64>,
    pending: i64,
    pending_by_provider: BTreeMap<String, i64>,
    tracked: i64,
    early: i64,
    buckets: BTreeMap<String, i64>,
    missed: Vec<String>,
    decided_by: BTreeMap<String, i64>,
    refunds: i64,
    refunded_cents: i64,
    orders: BTreeMap<String, i64>,
    /// day → accepted / failed / duplicate / rate_limited
    orders_per_day: BTreeMap<String, BTreeMap<String, i64>>,
    matching: BTreeMap<String, i64>,
    /// alert id → the CSV's match columns (status, order, method, rule), for alerts matched.
    csv_matches: BTreeMap<String, [String; 4]>,
    /// org → month → counter
    months: BTreeMap<String, BTreeMap<String, BTreeMap<String, i64>>>,
}

impl Expect {
    fn month(&mut self, org: &str, day: &str, k: &str, n: i64) {
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

fn bucket(f: f64) -> &'static str {
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

/// One alert of the plan: its record and what it implies.
#[allow(clippy::too_many_arguments)]
fn plan_alert(
    e: &mut Expect,
    org: &str,
    enrolment: &str,
    c: &Customer,
    i: usize,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> AlertRecord {
    let received = Utc.from_utc_datetime(&day.and_hms_opt(8 + (i % 8) as u32, 0, 0).unwrap());
    let deadline = received + Duration::hours(72);
    let rdr = if c.visa_heavy {
        i % 17 == 0
    } else {
        i % 4 == 3
    };
    let scheme = if c.visa_heavy || i % 3 != 0 {
        "VISA"
    } else {
        "MASTERCARD"
    };
    let cents = 1000 + (i % 50) as i64 * 100;
    let fractions = [0.05, 0.15, 0.3, 0.6, 0.8, 0.95, 0.02];
    let mut f = fractions[i % fractions.len()];
    // What happens to it.
    // Half of the last day and a half's alerts still wait (whatever day of the cycle `i` falls
    // on): the queue and the "still waiting" figures of both providers have some.
    let recent_waiting = now - received < Duration::hours(36) && (i / 7) % 2 == 0;
    let kind = if rdr {
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
    };
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
fn plan_order(e: &mut Expect, org: &str, c: &Customer, i: usize, day: NaiveDate) -> OutboxOrder {
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
fn seeded_match(
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
struct Summed(BTreeMap<(String, String), Fact>);

impl Summed {
    fn add(&mut self, subject: Subject) {
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

    fn subjects(self) -> Vec<Subject> {
        self.0
            .into_iter()
            .map(|((org, day), fact)| Subject {
                key: format!("seed#{org}#{day}"),
                facts: vec![fact],
            })
            .collect()
    }
}

#[tokio::test]
#[ignore = "run by tests/browser (npm test): serves a seeded stack until stdin closes"]
async fn serve_insights_stack_for_the_browser_test() {
    let started = std::time::Instant::now();
    let moto = Moto::start().await.expect("moto");
    let res: Resources = resources::create(&moto.endpoint, &resources::unique_prefix("ins"))
        .await
        .expect("tables");
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let mut env = moto.env();
    env.extend(res.env());
    env.extend(sandbox.env());
    env.push(("STACK_MODE".into(), "TEST".into()));
    // Our own ops-api process polling the runtime API: with the function started lazily by
    // `cargo lambda watch`, a request could wait until the next one arrived (CI saw the page's
    // scripts stall for two minutes).
    let functions = Functions::start_binaries(env.clone(), &["ops-api"])
        .await
        .expect("cargo lambda watch");
    let api = functions.http_url("ops-api");
    let cbs = |args: Vec<String>| {
        let env = env.clone();
        async move {
            let out = tokio::process::Command::new(devstack::paths::debug_binary("cbs"))
                .args(&args)
                .envs(env)
                .kill_on_drop(true)
                .output()
                .await
                .expect("run cbs");
            assert!(
                out.status.success(),
                "cbs {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (key, _) = cbs(vec![
        "operator-key".into(),
        "create".into(),
        "--operator".into(),
        OPERATOR.into(),
    ])
    .await;
    let key = key.trim().to_string();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .unwrap();

    // The first request waits for cargo lambda to start the function.
    for attempt in 1..=4 {
        match http.get(format!("{api}health")).send().await {
            Ok(r) if r.status().is_success() => break,
            other if attempt == 4 => panic!("the ops API never answered: {other:?}"),
            _ => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
        }
    }
    eprintln!("insights stack: ops API up after {:?}", started.elapsed());
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = TableNames::new(res.table_prefix.clone());
    let table = |name: String| Table::new(dynamo.clone(), name, Default::default());
    let alerts = DynamoAlertStore::new(table(tables.alerts()));
    let enrolments = DynamoEnrolmentStore::new(table(tables.enrolments()));
    let insights: Arc<dyn InsightsStore> =
        Arc::new(DynamoInsightsStore::new(table(tables.insights())));
    let counting_alerts = CountingAlertStore::new(
        Arc::new(alerts.clone()),
        insights.clone(),
        Arc::new(SystemClock),
    );

    // The month seeded: this one from day 1 to today, or the previous one early in a month.
    let now = SystemClock.now();
    let today = now.date_naive();
    let (first, last) = if today.day() >= 5 {
        (today.with_day(1).unwrap(), today)
    } else {
        let prev_last = today.with_day(1).unwrap() - Duration::days(1);
        (prev_last.with_day(1).unwrap(), prev_last)
    };
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();

    // A deployment that kept month items since before the previous month: the all-customers
    // gauges are read from them (the real adapter's month items, checked against the plan).
    let previous_month = current_and_previous_month(today).1;
    insights
        .mark_month_items_since(&day_before(previous_month))
        .await
        .expect("month items since");

    let mut e = Expect::default();
    let mut customers = Vec::new();
    // Older days: stored as is, counted as sums. The last day: through the counting store.
    let mut older = Vec::new();
    let mut last_day = Vec::new();
    let mut summed = Summed::default();
    let mut orders = 0;
    for c in &CUSTOMERS {
        let spec = json!({
            "customer_id": c.slug,
            "organisation": { "name": c.name },
            "memberships": [{ "first_name": "Ada", "last_name": "Ops", "email": format!("ops@{}.example", c.slug) }],
            "merchants": [{ "name": format!("{} web", c.name), "external_id": format!("mid-{}-1", c.slug) }],
            "enrolments": [{ "type": "ETHOCA_ALERT", "ethoca_alert": { "descriptors": [
                { "descriptor": format!("{}*", c.slug.to_uppercase()), "match_type": "STARTS_WITH" }] } }],
        });
        let resp = http
            .post(format!("{api}api/onboarding"))
            .bearer_auth(&key)
            .json(&spec)
            .send()
            .await
            .expect("onboard");
        let record: Value = resp.json().await.unwrap();
        let org = record["organisation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("onboarded: {record}"))
            .to_string();
        let enrolment = record["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"]
            .as_str()
            .unwrap()
            .to_string();
        let fetched: Value = http
            .get(sandbox.url(&format!("/v2/enrolments/{enrolment}")))
            .bearer_auth(&sandbox.partner_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let EnrolmentMerge::Updated { record, .. } =
            merge_fetched(None, serde_json::from_value(fetched).unwrap(), None, now)
        {
            enrolments.put(&record).await.unwrap();
        }
        for i in 0..c.alerts {
            let day = days[i % days.len()];
            let record = plan_alert(&mut e, &org, &enrolment, c, i, day, now);
            if day == last {
                last_day.push(record);
            } else {
                summed.add(alert_facts_with_match(&record));
                older.push(record);
            }
        }
        for i in 0..c.orders {
            let order = plan_order(&mut e, &org, c, i, days[(i * 7) % days.len()]);
            summed.add(stored_order_facts(&order));
            orders += 1;
        }
        customers.push(json!({ "slug": c.slug, "name": c.name, "organisation_id": org }));
    }
    eprintln!(
        "insights stack: planned {} alerts, {orders} orders after {:?}",
        older.len() + last_day.len(),
        started.elapsed()
    );
    let subjects = summed.subjects();
    let counted = insights
        .count(&subjects)
        .await
        .expect("count the older days");
    eprintln!(
        "insights stack: {} organisation-days counted ({} facts) after {:?}",
        subjects.len(),
        counted.new_facts,
        started.elapsed()
    );
    let mut set = tokio::task::JoinSet::new();
    for chunk in older.chunks(older.len().div_ceil(16)) {
        let chunk = chunk.to_vec();
        let alerts = alerts.clone();
        set.spawn(async move {
            for r in chunk {
                alerts.put(&r).await.expect("store alert");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    eprintln!(
        "insights stack: {} older alerts stored after {:?}",
        older.len(),
        started.elapsed()
    );
    // Counted as they are stored, with their match verdict (`alert_facts_with_match`).
    for record in &last_day {
        counting_alerts.put(record).await.expect("store alert");
    }
    eprintln!(
        "insights stack: {} alerts of {last} stored and counted after {:?}",
        last_day.len(),
        started.elapsed()
    );

    // Live: orders taken in through the ops API are counted as they are stored.
    let bluebird = customers[2]["organisation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let live: Vec<Value> = (0..12).map(|i| {
        let mut o = json!({
            "type": "COMPLETE", "organisation_id": bluebird, "integration_id": "int_bluebird",
            "reference_id": format!("live-{i}"), "order_datetime": iso(Utc.from_utc_datetime(&days[0].and_hms_opt(10, 0, 0).unwrap())),
            "order_number": format!("BB-{i}"), "order_subtotal_amount_in_cents": 1500, "order_currency": "USD",
            "order_total_amount_in_cents": 1500, "order_status": "CLOSED_COMPLETE",
            "transactions": [{ "reference_id": format!("txn-live-{i}"), "amount_in_cents": 1500, "currency": "USD",
                "payment_method_type": "CARD", "authorisation_status": "SETTLED", "payment_method_reference_id": format!("pay-live-{i}"),
                "authorised_at": iso(Utc.from_utc_datetime(&days[0].and_hms_opt(10, 0, 5).unwrap())),
                "payment_method_card_brand": "VISA", "payment_method_card_last_4": "4242" }]
        });
        if i % 2 == 0 { o["transactions"][0]["acquirer_reference_number"] = json!(format!("74020000000000000000{i:03}")); }
        o
    }).collect();
    let resp = http
        .post(format!("{api}api/orders"))
        .bearer_auth(&key)
        .json(&live)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "live orders: {}",
        resp.text().await.unwrap()
    );
    *e.orders.entry("taken_in".into()).or_default() += 12;
    *e.orders.entry("card_txns".into()).or_default() += 12;
    *e.orders.entry("with_arn".into()).or_default() += 6;
    e.month(&bluebird, &days[0].to_string(), "settled:VISA", 12);

    let info = json!({
        "page_url": api,
        "operator_key": key,
        "operator": OPERATOR,
        "month": first.format("%Y-%m").to_string(),
        "month_is_current": first.month() == today.month(),
        "customers": customers,
        "vamp_customer": "Hyperion Games",
        "policies": CUSTOMERS.iter().map(|c| c.policy).collect::<std::collections::BTreeSet<_>>(),
        "expected": {
            "received": e.received, "outcomes": e.outcomes, "pending": e.pending, "per_day": e.per_day,
            "pending_by_provider": e.pending_by_provider, "orders_per_day": e.orders_per_day,
            "csv_matches": e.csv_matches,
            "tracked": e.tracked, "early": e.early, "buckets": e.buckets, "missed": e.missed,
            "decided_by": e.decided_by, "refunds": e.refunds, "refunded_cents": e.refunded_cents,
            "orders": e.orders, "matching": e.matching, "months": e.months,
        },
    });
    eprintln!("insights stack: ready after {:?}", started.elapsed());
    println!("INSIGHTS_STACK {info}");
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink).ok();
    })
    .await
    .ok();
    drop(functions);
}
