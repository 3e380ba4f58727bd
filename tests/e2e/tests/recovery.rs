//! Recovery over the real local stack (`devstack::Stack`: moto, the sandbox, the Worker under
//! workerd, the functions, the bridge), driven through the real `cbs` binary and the ops API:
//!
//! 1. every accepted webhook is in the archive, raw, with its delivery id;
//! 2. webhooks refused for a while (the Worker misconfigured: the sandbox signs with a secret it
//!    does not know) past ChargebackStop's retries, recovered by `cbs reconcile`;
//! 3. replay of completed events is a no-op (CLI and ops API); after the alerts and events
//!    records are lost, `cbs events replay` restores them from the archive;
//! 4. an event dead-lettered (its alert answered 404 past the retry window), the cause fixed,
//!    `cbs dlq list` shows it with its reason and `cbs dlq redrive` moves it back exactly once;
//! 5. the alerts and enrolments tables emptied and `cbs rebuild` gives back what they held, our
//!    bookkeeping included (decisions of the policy and of an operator, status histories).
//!
//! Needs every debug binary (`cargo build --workspace --bins`) and the built Worker.

use devstack::not_found_gate::NotFoundGate;
use devstack::{resources, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

async fn deliveries(stack: &Stack, event_id: &str) -> Vec<Value> {
    stack
        .sandbox_deliveries(event_id)
        .await
        .expect("the sandbox's deliveries")
}

/// The archive's items as JSON, the binary body as its length (`body_len`).
async fn archived(stack: &Stack) -> Vec<Value> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let out = stack
        .dynamo
        .scan()
        .table_name(format!("{}-archive", stack.resources.table_prefix))
        .send()
        .await
        .unwrap();
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| {
            let mut v = serde_json::Map::new();
            for (k, a) in item {
                let j = match a {
                    A::S(s) => json!(s),
                    A::N(n) => json!(n.parse::<i64>().unwrap_or_default()),
                    A::B(b) => {
                        v.insert("body_len".into(), json!(b.as_ref().len()));
                        continue;
                    }
                    A::M(m) => Value::Object(
                        m.into_iter()
                            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, json!(s))))
                            .collect(),
                    ),
                    _ => continue,
                };
                v.insert(k, j);
            }
            Value::Object(v)
        })
        .collect()
}

async fn cbs(stack: &Stack, args: &[&str]) -> String {
    stack
        .cbs(args)
        .await
        .unwrap_or_else(|e| panic!("cbs {args:?}: {e:#}"))
}

async fn delete_item(stack: &Stack, table: &str, key: &str, id: &str) {
    stack
        .dynamo
        .delete_item()
        .table_name(format!("{}-{table}", stack.resources.table_prefix))
        .key(key, aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap();
}

/// A stored alert or enrolment less only what a rebuild cannot give back: `fetched_at` (when we
/// fetched: a rebuild fetches again, now), `revision` (the item's optimistic-write counter: a
/// rebuilt item is written anew and counts from 1) and the match's `matched_at` (a rebuild
/// matches again, by the same code, now). Everything else is compared: ChargebackStop's fields,
/// the match, and our own bookkeeping (the decision audit trail, warnings, claims, the
/// enrolment status history), which comes back from the bookkeeping journal.
fn chargebackstop_view(record: &Value) -> Value {
    let mut v = record.clone();
    if let Some(map) = v.as_object_mut() {
        for k in ["fetched_at", "revision"] {
            map.remove(k);
        }
        if let Some(Value::Object(m)) = map.get_mut("alert_match").and_then(|m| m.get_mut("match"))
        {
            m.remove("matched_at");
        }
    }
    v
}

fn by_id(items: Vec<Value>, key: &str) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .map(|i| {
            (
                i[key].as_str().unwrap().to_string(),
                chargebackstop_view(&i),
            )
        })
        .collect()
}

#[tokio::test]
async fn recover_anything() {
    let (gate_url, gate) = NotFoundGate::start(None).await.expect("gate");
    let stack = Stack::start(StackOptions {
        table_prefix: Some(resources::unique_prefix("recovery")),
        // Every ChargebackStop retry within seconds: "past the retries" is quick to reach.
        sandbox_time_factor: 0.0001,
        function_env: vec![
            ("CBS_API_BASE_URL".into(), gate_url),
            ("EVENT_NOT_FOUND_RETRY_SECS".into(), "2".into()),
            ("EVENT_RETRY_BASE_SECS".into(), "1".into()),
            ("EVENT_RETRY_MAX_SECS".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"));
    gate.set_upstream(stack.sandbox.base_url.clone());
    let customer = stack
        .onboard("recovery-customer")
        .await
        .expect("onboarding");
    let org = customer.organisation_id.clone();

    // 1. An accepted webhook: processed, and archived raw with its delivery id.
    let a1 = stack
        .simulate_alert(&org, &customer.ethoca_enrolment_id, 1500)
        .await
        .unwrap();
    let a1_id = a1["id"].as_str().unwrap().to_string();
    stack
        .wait_stored_alert(&a1_id, "the first alert stored", |_| true)
        .await
        .unwrap();
    let a1_event = stack.sandbox_events_about(&a1_id).await[0].clone();
    let archive = archived(&stack).await;
    let a1_archived = archive
        .iter()
        .find(|i| i["event_id"] == a1_event.as_str())
        .unwrap_or_else(|| panic!("{a1_event} not archived: {archive:?}"));
    let delivered = deliveries(&stack, &a1_event).await;
    assert_eq!(
        a1_archived["delivery_id"], delivered[0]["idempotency_key"],
        "the delivery id is X-Idempotency-Key"
    );
    assert!(a1_archived["body_len"].as_u64().unwrap() > 100);
    // The whole header the edge verified, so the archived body can be re-verified.
    let signature = a1_archived["headers"]["X-Signature"].as_str().unwrap();
    let (t, v1) = signature
        .split_once(",v1=")
        .unwrap_or_else(|| panic!("t= and v1= archived: {signature}"));
    assert!(
        t.starts_with("t=") && t[2..].parse::<i64>().is_ok(),
        "{signature}"
    );
    assert!(
        v1.len() == 128 && v1.bytes().all(|b| b.is_ascii_hexdigit()),
        "{signature}"
    );
    assert!(
        a1_archived["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 399 * 86400
    );

    // 2. The Worker refuses every webhook (the sandbox signs with a secret it does not know),
    //    past ChargebackStop's last retry; then `cbs reconcile` recovers what was missed.
    stack
        .sandbox_admin_ok(
            Method::PUT,
            "webhooks/secrets",
            Some(json!({"secrets": ["whsec_not_the_workers"]})),
        )
        .await;
    let mut refused = Vec::new();
    for amount in [2100, 2200] {
        let a = stack
            .simulate_alert(&org, &customer.ethoca_enrolment_id, amount)
            .await
            .unwrap();
        refused.push(a["id"].as_str().unwrap().to_string());
    }
    for id in &refused {
        let event = stack.sandbox_events_about(id).await[0].clone();
        stack
            .eventually("ChargebackStop gives up on the refused webhook", || async {
                deliveries(&stack, &event)
                    .await
                    .iter()
                    .any(|d| d["outcome"] == "gave_up")
                    .then_some(())
            })
            .await
            .unwrap();
        assert!(stack.stored_alert(id).await.unwrap().is_none());
    }
    stack
        .sandbox_admin_ok(
            Method::PUT,
            "webhooks/secrets",
            Some(json!({"secrets": []})),
        )
        .await;
    let out = cbs(
        &stack,
        &["reconcile", "--organisation", &org, "--since", "1d"],
    )
    .await;
    assert!(out.contains("alerts recovered       2"), "{out}");
    for id in &refused {
        assert!(
            stack.stored_alert(id).await.unwrap().is_some(),
            "{id} recovered"
        );
    }
    // Again: nothing new.
    let out = cbs(
        &stack,
        &["reconcile", "--organisation", &org, "--since", "1d"],
    )
    .await;
    assert!(out.contains("alerts recovered       0"), "{out}");

    // 3. Replaying a completed event is a no-op, from the CLI and from the ops API.
    let before = stack.stored_alert(&a1_id).await.unwrap().unwrap();
    let out = cbs(&stack, &["events", "replay", "--event-id", &a1_event]).await;
    assert!(out.contains("skipped (completed)"), "{out}");
    let (code, item) = stack
        .ops(
            Method::POST,
            &format!("api/events/{a1_event}/replay"),
            Some(json!({})),
        )
        .await
        .unwrap();
    assert!(code.is_success(), "{code} {item}");
    assert_eq!(item["result"], "skipped_completed", "{item}");
    assert_eq!(stack.stored_alert(&a1_id).await.unwrap().unwrap(), before);
    // The alert and its event record lost (a restore from an older backup): replay from the
    // archive brings both back through the processor.
    delete_item(&stack, "alerts", "alert_id", &a1_id).await;
    delete_item(&stack, "events", "event_id", &a1_event).await;
    let out = cbs(
        &stack,
        &[
            "events",
            "replay",
            "--since",
            "1h",
            "--type",
            "alert.*",
            "--organisation",
            &org,
        ],
    )
    .await;
    assert!(out.contains(&a1_event) && out.contains("replayed"), "{out}");
    let restored = stack.stored_alert(&a1_id).await.unwrap().unwrap();
    assert_eq!(
        chargebackstop_view(&restored)["status"],
        chargebackstop_view(&before)["status"]
    );
    assert_eq!(
        stack.stored_event(&a1_event).await.unwrap().unwrap()["status"],
        "COMPLETED"
    );

    // 4. An event dead-lettered (its alert answers 404 past the retry window), the cause
    //    fixed, redriven exactly once.
    stack
        .sandbox_admin_ok(Method::PUT, "faults", Some(json!({"hold_webhooks": true})))
        .await;
    let a4 = stack
        .simulate_alert(&org, &customer.ethoca_enrolment_id, 2400)
        .await
        .unwrap();
    let a4_id = a4["id"].as_str().unwrap().to_string();
    gate.hide(&a4_id, true);
    stack
        .sandbox_admin_ok(Method::PUT, "faults", Some(json!({"hold_webhooks": false})))
        .await;
    let a4_event = stack.sandbox_events_about(&a4_id).await[0].clone();
    stack
        .eventually("the 404 event in the DLQ", || async {
            let (_, dlq) = stack.queue_depths().await.ok()?;
            (dlq >= 1).then_some(())
        })
        .await
        .unwrap();
    let listed = cbs(&stack, &["dlq", "list", "--json"]).await;
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["event_id"], a4_event.as_str());
    assert_eq!(listed[0]["object_id"], a4_id.as_str());
    assert_eq!(listed[0]["event_type"], "alert.created");
    assert!(
        listed[0]["reason"].as_str().unwrap().contains("not found"),
        "{listed:?}"
    );
    assert!(listed[0]["source_receive_count"].as_u64().unwrap() >= 1);
    let (code, page) = stack.ops(Method::GET, "api/dlq", None).await.unwrap();
    assert!(code.is_success(), "{code} {page}");
    assert_eq!(page["depth"], 1, "{page}");
    assert!(page["reasons"][0][0]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert_eq!(
        stack.stored_event(&a4_event).await.unwrap().unwrap()["status"],
        "DEAD_LETTERED"
    );

    gate.hide(&a4_id, false);
    let out = cbs(&stack, &["dlq", "redrive", "--reason", "not found"]).await;
    assert!(out.contains("moved 1"), "{out}");
    stack
        .wait_stored_alert(&a4_id, "the redriven event applied", |_| true)
        .await
        .unwrap();
    stack
        .eventually("the redriven event COMPLETED", || async {
            let e = stack.stored_event(&a4_event).await.ok()??;
            (e["status"] == "COMPLETED").then_some(())
        })
        .await
        .unwrap();
    let out = cbs(&stack, &["dlq", "redrive"]).await;
    assert!(out.contains("moved 0"), "{out}");
    let copies = archived(&stack)
        .await
        .into_iter()
        .filter(|i| i["event_id"] == a4_event.as_str())
        .count();
    assert_eq!(
        copies, 1,
        "one delivery archived once, however often it came back"
    );
    assert_eq!(stack.queue_depths().await.unwrap(), (0, 0));

    // 5. The alerts and enrolments tables emptied; `cbs rebuild` gives back what they held,
    //    our bookkeeping included. First an operator's decision with a note on one alert, so
    //    the tables hold both kinds of decision (the policy's on the others).
    let decided = &refused[0];
    let note = "Refunded by hand, ticket 7781";
    let (code, acted) = stack
        .ops(
            Method::POST,
            &format!("api/alerts/{decided}/action"),
            Some(json!({"action": "REFUND", "note": note})),
        )
        .await
        .unwrap();
    assert!(code.is_success(), "{code} {acted}");
    stack
        .eventually(
            "the operator's decision applied and every event done",
            || async {
                let alert = stack.stored_alert(decided).await.ok()??;
                let depths = stack.queue_depths().await.ok()?;
                (alert["status"] == "RESOLVED" && depths == (0, 0)).then_some(())
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts_before = by_id(stack.scan("alerts").await.unwrap(), "alert_id");
    let enrolments_before = by_id(stack.scan("enrolments").await.unwrap(), "enrolment_id");
    assert_eq!(alerts_before.len(), 4);
    // What the comparison proves comes back: decisions of both sources, and histories.
    let sources: Vec<&Value> = alerts_before
        .values()
        .flat_map(|a| a["decisions"].as_array().into_iter().flatten())
        .map(|d| &d["source"])
        .collect();
    assert!(
        sources.contains(&&json!("AUTO_POLICY")) && sources.contains(&&json!("OPERATOR")),
        "{alerts_before:#?}"
    );
    assert!(
        alerts_before[decided.as_str()]["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["note"] == note),
        "{:#?}",
        alerts_before[decided.as_str()]
    );
    assert!(!enrolments_before.is_empty());
    for (id, e) in &enrolments_before {
        assert!(
            !e["status_history"].as_array().unwrap().is_empty(),
            "{id}: {e}"
        );
    }
    for id in alerts_before.keys() {
        delete_item(&stack, "alerts", "alert_id", id).await;
    }
    for id in enrolments_before.keys() {
        delete_item(&stack, "enrolments", "enrolment_id", id).await;
    }
    assert!(stack.scan("alerts").await.unwrap().is_empty());
    let out = cbs(
        &stack,
        &["rebuild", "--since", "1d", "--organisation", &org],
    )
    .await;
    let alerts_after = by_id(stack.scan("alerts").await.unwrap(), "alert_id");
    let enrolments_after = by_id(stack.scan("enrolments").await.unwrap(), "enrolment_id");
    assert_eq!(alerts_after, alerts_before, "{out}");
    assert_eq!(enrolments_after, enrolments_before, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["bookkeeping_not_journaled"], json!([]), "{out}");
    assert_eq!(
        report["bookkeeping_restored"].as_u64().unwrap() as usize,
        alerts_before.len() + enrolments_before.len(),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
