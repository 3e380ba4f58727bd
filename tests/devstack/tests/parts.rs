//! devstack's own tests: the parts come up, the resources match the template, and the bridge
//! behaves like an SQS event source mapping (partial failures, redelivery, dead-letter).

use devstack::bridge::BridgeStats;
use devstack::{resources, Bridge, BridgeOptions, Functions, Moto, QueueOptions};
use std::time::Duration;

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> std::collections::HashMap<String, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect()
}

#[tokio::test]
async fn resources_follow_the_template_and_prefixes_keep_tests_apart() {
    let moto = Moto::start().await.unwrap();
    let a = resources::create_with(
        &moto.endpoint,
        &resources::unique_prefix("a"),
        &QueueOptions {
            visibility_timeout_secs: Some(2),
            max_receive_count: Some(3),
        },
    )
    .await
    .unwrap();
    let b = resources::create(&moto.endpoint, &resources::unique_prefix("b"))
        .await
        .unwrap();
    assert_ne!(a.edge_queue_url, b.edge_queue_url);
    assert!(a
        .edge_queue_url
        .ends_with(&format!("{}-edge.fifo", a.table_prefix)));

    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let attrs = queue_attributes(&sqs, &a.edge_queue_url).await;
    assert_eq!(attrs["FifoQueue"], "true");
    assert_eq!(attrs["VisibilityTimeout"], "2");
    let redrive: serde_json::Value = serde_json::from_str(&attrs["RedrivePolicy"]).unwrap();
    assert_eq!(redrive["maxReceiveCount"], 3);
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with("-edge-dlq.fifo"));
    // The template's defaults when a test does not override them.
    let attrs_b = queue_attributes(&sqs, &b.edge_queue_url).await;
    assert_eq!(attrs_b["VisibilityTimeout"], "180");
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(body)
        .message_deduplication_id(body)
        .send()
        .await
        .unwrap();
}

async fn dlq_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    out.messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn bridge_deletes_successes_retries_failures_and_dead_letters_them() {
    let moto = Moto::start().await.unwrap();
    let res = resources::create_with(
        &moto.endpoint,
        &resources::unique_prefix("bridge"),
        &QueueOptions {
            visibility_timeout_secs: Some(1),
            max_receive_count: Some(2),
        },
    )
    .await
    .unwrap();
    let functions = Functions::start_binaries(moto.env(), &["bridge-probe"])
        .await
        .unwrap();
    // The function answers before the first receive.
    functions
        .invoke("bridge-probe", serde_json::json!({ "Records": [] }))
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);

    for body in ["ok-1", "fail-2", "ok-3"] {
        send(&sqs, &res.edge_queue_url, body).await;
    }
    let bridge = Bridge::start(
        sqs.clone(),
        functions.invoker.clone(),
        BridgeOptions::new(&res.edge_queue_url, &res.edge_queue_arn, "bridge-probe"),
    );

    let dead = devstack::wait::until("fail-2 in the DLQ", Duration::from_secs(300), || {
        let sqs = sqs.clone();
        let dlq = res.edge_dlq_url.clone();
        async move {
            let bodies = dlq_bodies(&sqs, &dlq).await;
            (!bodies.is_empty()).then_some(bodies)
        }
    })
    .await
    .unwrap();
    assert_eq!(dead, vec!["fail-2".to_string()]);
    let stats = &bridge.stats;
    assert_eq!(BridgeStats::get(&stats.records_deleted), 2, "ok-1 and ok-3");
    // Received once per allowed receive (maxReceiveCount 2), failed each time.
    assert_eq!(BridgeStats::get(&stats.records_failed), 2);
    assert_eq!(BridgeStats::get(&stats.invoke_errors), 0);
    let left = queue_attributes(&sqs, &res.edge_queue_url).await;
    assert_eq!(left["ApproximateNumberOfMessages"], "0");
    assert_eq!(left["ApproximateNumberOfMessagesNotVisible"], "0");
}

#[tokio::test]
async fn bridge_keeps_the_whole_batch_when_the_invocation_fails() {
    let moto = Moto::start().await.unwrap();
    let res = resources::create_with(
        &moto.endpoint,
        &resources::unique_prefix("crash"),
        &QueueOptions {
            // Far longer than any invoke, so nothing becomes visible again before we look.
            visibility_timeout_secs: Some(600),
            max_receive_count: Some(5),
        },
    )
    .await
    .unwrap();
    let functions = Functions::start_binaries(moto.env(), &["bridge-probe"])
        .await
        .unwrap();
    // The function answers before the first receive.
    functions
        .invoke("bridge-probe", serde_json::json!({ "Records": [] }))
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    send(&sqs, &res.edge_queue_url, "crash").await;
    send(&sqs, &res.edge_queue_url, "ok-after-crash").await;

    let opts = BridgeOptions::new(&res.edge_queue_url, &res.edge_queue_arn, "bridge-probe");
    let stats = BridgeStats::default();
    let outcome = devstack::bridge::pump_once(&sqs, &functions.invoker, &opts, &stats)
        .await
        .unwrap();
    assert_eq!(outcome.delivered, 2);
    assert_eq!(outcome.deleted, 0);
    assert!(outcome.invoke_error.is_some());
    let attrs = queue_attributes(&sqs, &res.edge_queue_url).await;
    assert_eq!(
        attrs["ApproximateNumberOfMessagesNotVisible"], "2",
        "left for redelivery"
    );
}
