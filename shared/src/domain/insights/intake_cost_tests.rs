//! What taking in 1,000 orders costs DynamoDB, counted request by request: the real wiring of
//! `cbs import-orders` (the outbox, the transaction index, the insights counters; the real
//! DynamoDB adapters) against a stand-in for DynamoDB on a local port that answers every
//! request with an empty success and counts it by operation. Items written inside
//! TransactWriteItems are counted apart: each is a transactional write (twice the write cost
//! in DynamoDB; in moto, a copy of the whole table per item, which is what made an import of
//! 10,000 orders take more than 14 minutes when each order's marker was written that way).

use crate::adapters::dynamo::insights::DynamoInsightsStore;
use crate::adapters::dynamo::table::{DynamoCounters, Table};
use crate::adapters::dynamo::transactions::indexed_outbox;
use crate::clock::{Clock, SystemClock};
use crate::config::TableNames;
use crate::domain::insights::CountingOrderOutbox;
use crate::domain::order_intake::intake_orders;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[derive(Default, Debug)]
struct Seen {
    /// Operation (`PutItem`, `BatchWriteItem`...) → requests.
    requests: BTreeMap<String, u64>,
    /// Items written inside TransactWriteItems.
    transactional_items: u64,
}

impl Seen {
    fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// A DynamoDB stand-in on 127.0.0.1: every request succeeds, reads find nothing.
async fn fake_dynamodb() -> (String, Arc<Mutex<Seen>>) {
    fake_dynamodb_with(false).await
}

/// `throttled`: every BatchWriteItem comes back with all its items unprocessed.
async fn fake_dynamodb_with(throttled: bool) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let counted = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let seen = counted.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut target = String::new();
                    let mut length = 0usize;
                    let mut line = String::new();
                    // Request line, then headers up to the empty line.
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.to_ascii_lowercase().as_str() {
                                "x-amz-target" => target = value.trim().to_string(),
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let operation = target.rsplit('.').next().unwrap_or("?").to_string();
                    let answer = {
                        let mut s = seen.lock().unwrap();
                        *s.requests.entry(operation.clone()).or_default() += 1;
                        if operation == "TransactWriteItems" {
                            let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
                            s.transactional_items += parsed["TransactItems"]
                                .as_array()
                                .map(|a| a.len() as u64)
                                .unwrap_or(0);
                        }
                        match operation.as_str() {
                            "BatchGetItem" => r#"{"Responses":{},"UnprocessedKeys":{}}"#.into(),
                            "Query" | "Scan" => r#"{"Items":[],"Count":0,"ScannedCount":0}"#.into(),
                            "BatchWriteItem" if throttled => {
                                let parsed: Value =
                                    serde_json::from_slice(&body).unwrap_or_default();
                                json!({"UnprocessedItems": parsed["RequestItems"]}).to_string()
                            }
                            _ => "{}".to_string(),
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, seen)
}

fn order(reference: &str) -> Value {
    json!({
        "type": "COMPLETE",
        "organisation_id": "org_import",
        "integration_id": "int_import",
        "reference_id": reference,
        "order_datetime": "2026-02-17T09:59:00Z",
        "order_number": format!("AF-{reference}"),
        "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD",
        "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE",
        "transactions": [{
            "reference_id": format!("txn-{reference}"),
            "amount_in_cents": 4900,
            "currency": "USD",
            "payment_method_type": "CARD",
            "authorisation_status": "SETTLED",
            "payment_method_reference_id": format!("pi-{reference}"),
            "authorised_at": "2026-02-17T09:59:05Z",
            "payment_method_card_brand": "VISA",
            "payment_method_card_last_4": "4242",
            "payment_method_card_bin": "424242",
            "authorisation_code": format!("A{reference}"),
            "acquirer_reference_number": format!("7{reference:0>22}")
        }]
    })
}

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn index_entries_left_unprocessed_are_sent_again_then_reported_never_dropped() {
    use crate::ports::transaction_index::TransactionIndex;
    use crate::records::matching::{IndexBody, IndexItem, WaitingAlert};
    let (endpoint, seen) = fake_dynamodb_with(true).await;
    let index = crate::adapters::dynamo::transactions::DynamoTransactionIndex::new(Table::new(
        client(&endpoint),
        "t-transactions",
        Arc::new(DynamoCounters::default()),
    ));
    let items: Vec<IndexItem> = (0..30)
        .map(|i| IndexItem {
            lookup: format!("waiting#org_{i}"),
            entry: format!("alert#a-{i}"),
            body: IndexBody::WaitingAlert {
                alert: WaitingAlert {
                    alert_id: format!("a-{i}"),
                    lookups: Vec::new(),
                    since: "2026-11-30T00:00:00Z".into(),
                },
            },
        })
        .collect();
    let err = index.put(&items).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("unprocessed"), "{err}");
    // Two batches (25 + 5), each sent 5 times (the first and 4 resends with backoff).
    assert_eq!(
        seen.lock().unwrap().requests.get("BatchWriteItem"),
        Some(&10)
    );
}

#[tokio::test]
async fn importing_1000_orders_costs_few_requests_and_no_transactional_write_per_order() {
    let (endpoint, seen) = fake_dynamodb().await;
    let client = client(&endpoint);
    let tables = TableNames::new("cost");
    let counters = Arc::new(DynamoCounters::default());
    // The wiring of `cbs import-orders` (cli/src/import_orders.rs): counted when flushed.
    let outbox = CountingOrderOutbox::deferring(
        Arc::new(indexed_outbox(&client, &tables, counters.clone())),
        Arc::new(DynamoInsightsStore::new(Table::new(
            client.clone(),
            tables.insights(),
            counters,
        ))),
        Arc::new(SystemClock),
    );
    const ORDERS: usize = 1000;
    let raw: Vec<Value> = (0..ORDERS).map(|i| order(&format!("o-{i:05}"))).collect();
    // The import takes the file in chunks of 500 (`--chunk`).
    for chunk in raw.chunks(500) {
        let report = intake_orders(&outbox, chunk.to_vec(), SystemClock.now())
            .await
            .unwrap();
        assert_eq!(report.stored.len(), chunk.len(), "{:?}", report.rejected);
    }
    assert_eq!(outbox.deferred_len(), ORDERS);
    outbox.flush().await;
    assert_eq!(outbox.deferred_len(), 0);
    let seen = seen.lock().unwrap();
    println!(
        "1,000 orders: {} requests {:?}, {} items written in transactions",
        seen.total(),
        seen.requests,
        seen.transactional_items
    );
    // The outbox writes each order once (a conditional put, as before matching and insights);
    // everything else is batched.
    assert_eq!(
        seen.requests.get("PutItem").copied(),
        Some(ORDERS as u64 + 10)
    );
    let besides_the_outbox = seen.total() - ORDERS as u64;
    assert!(
        besides_the_outbox <= 350,
        "index and insights: {besides_the_outbox} requests for {ORDERS} orders: {:?}",
        seen.requests
    );
    // One small transaction per thousand orders (its journal, the day counters it adds: two
    // days, each for the organisation and for all, and the organisation's month item of the
    // gauges' settled transactions), never one transactional write per order (before: 1,320
    // items in 80 transactions).
    assert_eq!(seen.requests.get("TransactWriteItems").copied(), Some(1));
    assert!(
        seen.transactional_items <= 6,
        "{} items written in transactions for {ORDERS} orders",
        seen.transactional_items
    );
}

#[tokio::test]
async fn a_deferring_outbox_counts_at_flush_and_a_rerun_counts_nothing_twice() {
    use crate::adapters::memory_insights::MemoryInsightsStore;
    use crate::adapters::memory_orders::MemoryOutbox;
    let insights = Arc::new(MemoryInsightsStore::default());
    let outbox = CountingOrderOutbox::deferring(
        Arc::new(MemoryOutbox::default()),
        insights.clone(),
        Arc::new(SystemClock),
    );
    let raw: Vec<Value> = (0..250).map(|i| order(&format!("o-{i:05}"))).collect();
    intake_orders(&outbox, raw.clone(), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        insights.total("org_import", "orders_taken_in"),
        0,
        "nothing counted before the flush"
    );
    outbox.flush().await;
    assert_eq!(insights.total("org_import", "orders_taken_in"), 250);
    assert_eq!(insights.total("org_import", "settled:VISA"), 250);
    assert_eq!(
        insights.bulk_calls(),
        1,
        "one bulk count for the whole import"
    );
    assert_eq!(insights.count_calls(), 0, "no per-order counting");
    // The same file again (a run killed before its flush is re-run): already queued orders
    // are offered again and found counted.
    let report = intake_orders(&outbox, raw, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(report.already_queued.len(), 250);
    outbox.flush().await;
    assert_eq!(insights.total("org_import", "orders_taken_in"), 250);
    assert_eq!(
        insights.total(
            crate::ports::insights_store::ALL_ORGANISATIONS,
            "orders_taken_in"
        ),
        250
    );
}

/// The all-customers view's gauges for 200 customers, counted request by request against the
/// DynamoDB stand-in: from the month items, 16 BatchGetItem calls (4 shards x 2 months x 200
/// customers, 100 keys a call); from the day items (a month begun before month items were
/// kept, and every view before them), 17 queries per customer: 3,400.
#[tokio::test]
async fn the_gauges_of_200_customers_are_16_batched_reads_not_17_queries_each() {
    use crate::domain::insights::gauges::scheme_gauges;
    use crate::ports::insights_store::InsightsStore;
    let (endpoint, seen) = fake_dynamodb().await;
    let store = DynamoInsightsStore::new(Table::new(
        client(&endpoint),
        "t-insights",
        Arc::new(DynamoCounters::default()),
    ));
    let orgs: Vec<String> = (0..200).map(|i| format!("org_{i}")).collect();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let months = ["2026-11".to_string(), "2026-10".to_string()];
    store.months(&orgs, &months).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().requests.get("BatchGetItem").copied(),
        Some(16)
    );
    // The stand-in finds no `since`: this view records today, so both months come from days.
    scheme_gauges(&store, &orgs, today).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.get("Query").copied(), Some(200 * 17));
    assert_eq!(seen.requests.get("BatchGetItem").copied(), Some(16));
}
