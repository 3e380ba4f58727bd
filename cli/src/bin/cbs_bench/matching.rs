//! `cbs-bench matching`: what matching one alert to the partner's transactions costs, at
//! different numbers of stored transactions.
//!
//! For each size, that many synthetic card transactions of one organisation are indexed (every
//! entry `keys::transaction_entries` writes: itid, ARN, auth code, card). Then alerts are
//! matched and their evidence read (`evidence_read_only`: the match, then the matched order's
//! facts), a fifth by each method (integration transaction id, ARN only, auth code + last 4 +
//! amount, BIN + last 4 + amount + currency + date) and a fifth matching nothing, each one a
//! different transaction. Identifiers are mixed from the index (last 4, authorisation code,
//! amount), so they collide about as often as real ones do. Reported per size: index queries per alert (one DynamoDB Query each)
//! and the time per alert, with ratios to the smallest size in the same run.
//!
//! `--store memory` (default): `MemoryTransactionIndex`, a sorted map with DynamoDB's
//! partition + range semantics, so 10⁶ transactions fit in a run; the time is our code's.
//! `--store moto`: the real DynamoDB adapter against moto. The reads are the figure there:
//! moto answers a Query by walking the whole table (about 0.19 s per alert at 1,000 stored
//! transactions, 3.3 times the time at 300), where DynamoDB's cost follows the items a Query
//! returns; keep its sizes to a few thousand.

use devstack::{resources, Moto};
use serde_json::json;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::dynamo::transactions::DynamoTransactionIndex;
use shared::adapters::memory_transactions::MemoryTransactionIndex;
use shared::config::TableNames;
use shared::domain::matching::evidence::evidence_read_only;
use shared::domain::matching::keys::transaction_entries;
use shared::models::alert::Alert;
use shared::ports::transaction_index::TransactionIndex;
use shared::records::matching::{IndexedTransaction, MatchStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORG: &str = "org_bench";
const BINS: [&str; 4] = ["424242", "411111", "545454", "371449"];

/// A well-mixed 64-bit value per index (splitmix64), so identifiers collide about as often as
/// random real ones would, at every size.
fn mix(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn transaction(i: usize, base: chrono::DateTime<chrono::Utc>) -> IndexedTransaction {
    let h = mix(i);
    IndexedTransaction {
        organisation_id: ORG.into(),
        order_reference_id: format!("order-{i:08}"),
        transaction_reference_id: format!("txn-{i:08}"),
        amount_in_cents: Some(500 + (h >> 40) as i64 % 20_000),
        currency: Some(if h % 3 == 0 { "EUR" } else { "USD" }.into()),
        card_brand: Some("VISA".into()),
        card_bin: Some(BINS[(h >> 8) as usize % BINS.len()].into()),
        card_last4: Some(format!("{:04}", h % 10_000)),
        authorisation_code: Some(format!("{:06}", (h >> 16) % 1_000_000)),
        acquirer_reference_number: Some(format!("7{i:022}")),
        authorised_at: Some(shared::ports::order_outbox::iso(
            base - chrono::Duration::minutes((i % (60 * 24 * 120)) as i64),
        )),
        descriptor: Some("BENCH*STORE".into()),
    }
}

/// An alert about transaction `t`, carrying only what method `kind` needs (4: nothing matches).
fn alert_for(n: usize, t: &IndexedTransaction, kind: usize) -> Alert {
    let authorised = t.authorised_at.clone().unwrap_or_default();
    let mut a = json!({
        "id": format!("netalrt_match_{n:07}"), "organisation_id": ORG,
        "enrolment_type": "ETHOCA_ALERT", "status": "ACTION_REQUIRED",
        "transaction_amount_in_cents": t.amount_in_cents, "transaction_currency_code": t.currency,
        "transaction_card_last4": t.card_last4, "transaction_statement_descriptor": "BENCH*STORE",
    });
    let m = a.as_object_mut().expect("object");
    match kind {
        0 => {
            m.insert(
                "integration_transaction_id".into(),
                json!(t.transaction_reference_id),
            );
        }
        1 => {
            m.insert(
                "transaction_acquirer_reference_number".into(),
                json!(t.acquirer_reference_number),
            );
        }
        2 => {
            m.insert(
                "transaction_authorisation_code".into(),
                json!(t.authorisation_code),
            );
        }
        3 => {
            m.insert("transaction_card_bin".into(), json!(t.card_bin));
            m.insert("transaction_authorised_at".into(), json!(authorised));
        }
        _ => {
            m.insert(
                "transaction_acquirer_reference_number".into(),
                json!("79999999999999999999999"),
            );
            m.insert("transaction_card_bin".into(), json!("999999"));
            m.insert("transaction_authorised_at".into(), json!(authorised));
        }
    }
    serde_json::from_value(a).expect("synthetic alert")
}

struct Figures {
    size: usize,
    alerts: usize,
    reads: u64,
    per_alert: Duration,
    load: Duration,
    statuses: [usize; 3],
}

pub async fn run(sizes: &[usize], alerts: usize, store: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!sizes.is_empty(), "--sizes needs at least one size");
    anyhow::ensure!(
        store == "memory" || store == "moto",
        "--store is memory or moto, not {store}"
    );
    let moto = if store == "moto" {
        Some(Moto::start().await?)
    } else {
        None
    };
    let base = chrono::Utc::now();
    let mut all = Vec::new();
    for &size in sizes {
        anyhow::ensure!(size >= alerts, "a size ({size}) below --alerts ({alerts})");
        let (index, reads): (Arc<dyn TransactionIndex>, Box<dyn Fn() -> u64>) = match &moto {
            None => {
                let m = Arc::new(MemoryTransactionIndex::default());
                let counted = m.clone();
                (m, Box::new(move || counted.queries()))
            }
            Some(moto) => {
                let res =
                    resources::create(&moto.endpoint, &resources::unique_prefix("mbench")).await?;
                let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
                let counters = Arc::new(DynamoCounters::default());
                let table = Table::new(
                    dynamo,
                    TableNames::new(res.table_prefix.clone()).transactions(),
                    counters.clone(),
                );
                (
                    Arc::new(DynamoTransactionIndex::new(table)),
                    Box::new(move || counters.reads()),
                )
            }
        };
        let loading = Instant::now();
        let mut chunk = Vec::new();
        for i in 0..size {
            chunk.extend(transaction_entries(&transaction(i, base)));
            if chunk.len() >= 10_000 || i + 1 == size {
                index.put(&chunk).await?;
                chunk.clear();
            }
            if (i + 1) % 100_000 == 0 {
                eprintln!("{size}: {} transactions indexed", i + 1);
            }
        }
        let load = loading.elapsed();
        eprintln!("{size}: indexed in {:.1} s", load.as_secs_f64());

        // Spread the alerts over the stored transactions.
        let step = size / alerts;
        let before = reads();
        let mut statuses = [0; 3];
        let started = Instant::now();
        for n in 0..alerts {
            let t = transaction(n * step, base);
            let alert = alert_for(n, &t, n % 5);
            let evidence = evidence_read_only(&*index, &alert, base).await?;
            let matched = evidence.matching.map(|m| m.matched.status);
            match matched {
                Some(MatchStatus::Matched) => statuses[0] += 1,
                Some(MatchStatus::Ambiguous) => statuses[1] += 1,
                _ => statuses[2] += 1,
            }
        }
        let elapsed = started.elapsed();
        all.push(Figures {
            size,
            alerts,
            reads: reads() - before,
            per_alert: elapsed / alerts as u32,
            load,
            statuses,
        });
    }

    let first = &all[0];
    println!("matching {alerts} alerts ({store} index), a fifth per method and a fifth unmatched; ratios to {} stored:", first.size);
    println!(
        "{:>12} {:>14} {:>8} {:>14} {:>8} {:>24} {:>10}",
        "stored txns", "reads/alert", "x", "us/alert", "x", "matched/ambiguous/none", "load s"
    );
    for f in &all {
        let reads = f.reads as f64 / f.alerts as f64;
        println!(
            "{:>12} {:>14.2} {:>8.2} {:>14.1} {:>8.2} {:>24} {:>10.1}",
            f.size,
            reads,
            reads / (first.reads as f64 / first.alerts as f64),
            f.per_alert.as_secs_f64() * 1e6,
            f.per_alert.as_secs_f64() / first.per_alert.as_secs_f64(),
            format!("{}/{}/{}", f.statuses[0], f.statuses[1], f.statuses[2]),
            f.load.as_secs_f64(),
        );
    }
    Ok(())
}
