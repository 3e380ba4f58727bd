//! Keys every writer would share, spread over several, over moto (issue 15, `docs/capacity.md`):
//! - the `deadline-index`: waiting Ethoca alerts spread over several partition key values, and
//!   every read (the sweep's and the ops queue's) still sees all of them soonest deadline first,
//!   including items an earlier version wrote with the one unsharded value;
//! - the insights day items: every counting transaction of every organisation adds to the
//!   `ALL` day, so each adds to one of several shards and a read sums them (and the unsharded
//!   items of earlier versions).

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::{resources, Moto};
use serde_json::json;
use shared::adapters::dynamo::alerts::{DynamoAlertStore, DEADLINE_INDEX_SHARDS};
use shared::adapters::dynamo::insights::{DynamoInsightsStore, DAY_SHARDS};
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::{merge_fetched, Merge};
use shared::models::alert::Alert;
use shared::ports::alert_store::AlertStore;
use shared::ports::insights_store::{Fact, InsightsStore, Subject, ALL_ORGANISATIONS};
use shared::records::alert::{AlertRecord, ACTION_QUEUE};
use std::collections::BTreeSet;

fn alert(id: &str, status: &str, deadline: Option<chrono::DateTime<chrono::Utc>>) -> Alert {
    let received = chrono::Utc::now() - chrono::Duration::hours(1);
    serde_json::from_value(json!({
        "id": id,
        "organisation_id": "org_shards", "merchant_id": "mrch_shards", "enrolment_id": "enrl_shards",
        "enrolment_type": "ETHOCA_ALERT", "status": status,
        "transaction_amount_in_cents": 4900, "transaction_currency_code": "USD",
        "action_required_deadline": deadline, "alert_received_at": received,
        "created_at": received, "updated_at": received,
    }))
    .expect("alert")
}

fn record(alert: Alert) -> AlertRecord {
    match merge_fetched(None, alert, chrono::Utc::now()) {
        Merge::Updated(r) | Merge::Stale(r) => r,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_and_the_unsharded_items_are_read_soonest_first() {
    let moto = Moto::start().await.expect("moto (bin/setup's venv)");
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("shards"))
        .await
        .expect("tables from the template");
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = TableNames::new(res.table_prefix.clone());
    let store = DynamoAlertStore::new(Table::new(
        dynamo.clone(),
        tables.alerts(),
        Default::default(),
    ));
    let now = chrono::Utc::now();

    // 40 waiting alerts, deadlines 1..40 hours out (ids not in deadline order), one waiting
    // without a deadline, and 10 resolved ones.
    let mut expected = Vec::new();
    for i in 0..40_i64 {
        let id = format!("netalrt_shard_{:03}", (i * 17) % 40);
        let deadline = now + chrono::Duration::hours(1 + i);
        store
            .put(&record(alert(&id, "ACTION_REQUIRED", Some(deadline))))
            .await
            .unwrap();
        expected.push(id);
    }
    store
        .put(&record(alert(
            "netalrt_shard_undated",
            "ACTION_REQUIRED",
            None,
        )))
        .await
        .unwrap();
    for i in 0..10 {
        let id = format!("netalrt_shard_resolved_{i}");
        store
            .put(&record(alert(
                &id,
                "RESOLVED",
                Some(now + chrono::Duration::hours(2)),
            )))
            .await
            .unwrap();
    }
    // Two items as a version before sharding wrote them: the one unsharded queue value.
    for (id, hours) in [("netalrt_legacy_a", 0), ("netalrt_legacy_b", 20)] {
        let r = record(alert(
            id,
            "ACTION_REQUIRED",
            Some(now + chrono::Duration::minutes(hours * 60 + 30)),
        ));
        store.put(&r).await.unwrap();
        dynamo
            .update_item()
            .table_name(tables.alerts())
            .key("alert_id", AttributeValue::S(id.into()))
            .update_expression("SET action_queue = :q")
            .expression_attribute_values(":q", AttributeValue::S(ACTION_QUEUE.into()))
            .send()
            .await
            .unwrap();
    }

    // On the table: the waiting alerts carry every shard's value.
    let scanned = dynamo
        .scan()
        .table_name(tables.alerts())
        .send()
        .await
        .unwrap();
    let queues: BTreeSet<String> = scanned
        .items()
        .iter()
        .filter_map(|i| i.get("action_queue").and_then(|v| v.as_s().ok()).cloned())
        .filter(|q| q != ACTION_QUEUE)
        .collect();
    assert!(
        queues.len() as u64 >= DEADLINE_INDEX_SHARDS / 2,
        "41 waiting alerts over {DEADLINE_INDEX_SHARDS} shards: {queues:?}"
    );

    // The whole queue, in order: undated, legacy_a (30 min), then by deadline with legacy_b
    // between the 20 h and 21 h alerts; resolved alerts nowhere.
    let all = store
        .awaiting_action_until("9999-12-31T23:59:59.999Z", 500)
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.alert_id.as_str()).collect();
    let mut want: Vec<&str> = vec!["netalrt_shard_undated", "netalrt_legacy_a"];
    want.extend(expected[..20].iter().map(String::as_str));
    want.push("netalrt_legacy_b");
    want.extend(expected[20..].iter().map(String::as_str));
    assert_eq!(ids, want);
    assert!(all
        .iter()
        .all(|r| r.action_queue.as_deref() == Some(ACTION_QUEUE)));

    // A limit and a horizon are global, not per shard: the 5 soonest within 3 hours.
    let horizon = shared::ports::event_log::iso(
        now + chrono::Duration::hours(3) + chrono::Duration::minutes(1),
    );
    let (due, skipped) = store.awaiting_action_each(&horizon, 5).await.unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let due: Vec<&str> = due.iter().map(|r| r.alert_id.as_str()).collect();
    assert_eq!(due, want[..5].to_vec());
    let within = store.awaiting_action_until(&horizon, 500).await.unwrap();
    assert_eq!(
        within.len(),
        5,
        "undated, legacy_a and the 1, 2 and 3 hour alerts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_days_are_counted_in_shards_and_read_as_one_sum() {
    let moto = Moto::start().await.expect("moto (bin/setup's venv)");
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("dayshards"))
        .await
        .expect("tables from the template");
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = TableNames::new(res.table_prefix.clone());
    let insights = DynamoInsightsStore::new(Table::new(
        dynamo.clone(),
        tables.insights(),
        Default::default(),
    ));
    let day = "2026-11-30";

    // 60 alerts of two organisations, each counted in its own transaction (as process-events
    // does), one of them twice (a redelivery: counted once).
    for i in 0..60 {
        let org = if i % 3 == 0 { "org_b" } else { "org_a" };
        let subject = Subject {
            key: format!("alert#netalrt_day_{i}"),
            facts: vec![Fact::new("received", org, day).inc("alerts_ethoca", 1)],
        };
        let counted = insights
            .count(std::slice::from_ref(&subject))
            .await
            .unwrap();
        assert_eq!(counted.new_facts, 1);
        if i == 7 {
            let again = insights.count(&[subject]).await.unwrap();
            assert_eq!(again.new_facts, 0, "a fact is counted once");
        }
    }
    // A day item as an earlier version wrote it: unsharded.
    dynamo
        .update_item()
        .table_name(tables.insights())
        .key("pk", AttributeValue::S(format!("day#{ALL_ORGANISATIONS}")))
        .key("sk", AttributeValue::S(day.into()))
        .update_expression("ADD n_alerts_ethoca :n")
        .expression_attribute_values(":n", AttributeValue::N("5".into()))
        .send()
        .await
        .unwrap();

    // On the table: the ALL day's increments landed in several items, not one.
    let scanned = dynamo
        .scan()
        .table_name(tables.insights())
        .send()
        .await
        .unwrap();
    let all_items: BTreeSet<String> = scanned
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .filter(|pk| pk.starts_with(&format!("day#{ALL_ORGANISATIONS}#")))
        .collect();
    assert!(
        all_items.len() >= 3 && all_items.len() as u32 <= DAY_SHARDS,
        "60 transactions over {DAY_SHARDS} shards: {all_items:?}"
    );

    // Read back as one day per scope, summed.
    let read = |scope: &'static str| {
        let insights = &insights;
        async move {
            let days = insights
                .days(scope, "2026-11-01", "2026-11-30")
                .await
                .unwrap();
            assert_eq!(days.len(), 1, "{scope}: {days:?}");
            assert_eq!(days[0].day, day);
            days[0].counters["alerts_ethoca"]
        }
    };
    assert_eq!(read("org_a").await, 40);
    assert_eq!(read("org_b").await, 20);
    assert_eq!(
        read(ALL_ORGANISATIONS).await,
        65,
        "60 counted now + 5 unsharded"
    );
}
