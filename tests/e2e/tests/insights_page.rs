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
//! The seed plan (customers, alerts, orders, what they imply) is in `insights_page/plan.rs`.
//! Needs the debug binaries `ops-api`, `cbs-sandbox` and `cbs`.

use chrono::{Datelike, TimeZone, Utc};
use devstack::{resources, Functions, Moto, Resources, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::insights::DynamoInsightsStore;
use shared::adapters::dynamo::table::Table;
use shared::clock::{Clock, SystemClock};
use shared::config::TableNames;
use shared::domain::enrolment_lifecycle::{merge_fetched, EnrolmentMerge};
use shared::domain::insights::facts::{alert_facts_with_match, stored_order_facts};
use shared::domain::insights::gauges::day_before;
use shared::domain::insights::report::current_and_previous_month;
use shared::domain::insights::CountingAlertStore;
use shared::ports::alert_store::AlertStore;
use shared::ports::enrolment_store::EnrolmentStore;
use shared::ports::insights_store::InsightsStore;
use std::sync::Arc;

#[path = "insights_page/plan.rs"]
mod plan;
use plan::*;

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

    let now = SystemClock.now();
    let today = now.date_naive();
    let SeededRange {
        days,
        first,
        last,
        plan_now,
    } = seeded_range(now);

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
            let record = plan_alert(&mut e, &org, &enrolment, c, i, day, plan_now);
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
    // The older alerts are seeded in batches of 25 around the store (the store's own item: sort
    // keys normalised, the deadline-index shard), not through it: each put through the store is
    // a TransactWriteItems with its bookkeeping journal, which moto deep-copies every table to
    // roll back (minutes for 2,380 alerts, and 500s under concurrent writers). These records
    // carry no bookkeeping to journal; the page reads only the alerts table.
    let alerts_table = tables.alerts();
    for chunk in older.chunks(25) {
        let mut requests = Vec::new();
        for r in chunk {
            let mut item = alerts.to_item(r).expect("the store's item");
            if let Some(map) = item.as_object_mut() {
                map.retain(|_, v| !v.is_null());
            }
            let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
                serde_dynamo::to_item(item).expect("an item");
            requests.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        }
        let mut pending = Some(requests);
        for _ in 0..10 {
            let Some(batch) = pending.take().filter(|b| !b.is_empty()) else {
                break;
            };
            let out = dynamo
                .batch_write_item()
                .request_items(alerts_table.clone(), batch)
                .send()
                .await
                .expect("seed alerts");
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&alerts_table));
        }
        assert!(
            pending.is_none_or(|b| b.is_empty()),
            "unprocessed alerts left"
        );
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
