//! The sharded `deadline-index` over moto's real GSI (issue 15, "shard it"): waiting Ethoca
//! alerts spread over several partition key values, and every read (the sweep's and the ops
//! queue's) still sees all of them soonest deadline first, including items an earlier version
//! wrote with the one unsharded value.

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::{resources, Moto};
use serde_json::json;
use shared::adapters::dynamo::alerts::{DynamoAlertStore, DEADLINE_INDEX_SHARDS};
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::{merge_fetched, Merge};
use shared::models::alert::Alert;
use shared::ports::alert_store::AlertStore;
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
    assert_eq!(queues.len() as u64, DEADLINE_INDEX_SHARDS, "{queues:?}");

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
