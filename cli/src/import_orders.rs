//! `cbs import-orders <file.json|file.csv>`: puts orders into the order outbox through the one
//! intake (`shared::domain::order_intake`, the same validation as `POST /api/orders`), with a
//! progress bar. Invalid orders are listed field by field and never stored; valid ones are
//! stored PENDING for the order-upload function. Re-running the same file resumes: orders
//! already in the outbox are reported as already queued and left as they are.
//!
//! JSON: an array of orders, or `{"orders": [...]}` (the API's order objects).
//! CSV: a header row of order field names; `transaction.<field>` columns describe the order's
//! transaction, and consecutive rows with the same `reference_id` add further transactions.
//! Empty cells are absent fields; `*_in_cents` columns are integers.
//!
//! Environment: TABLE_PREFIX (and the AWS variables).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::config::TableNames;
use shared::domain::order_intake::{intake_orders, IntakeReport, RejectedOrder};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Orders taken in are counted into the insights once this many are waiting (and at the end).
const COUNT_EVERY: usize = 1000;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A `.json` or `.csv` file of orders.
    pub file: PathBuf,
    /// Sets `organisation_id` on orders that have none.
    #[arg(long)]
    pub organisation_id: Option<String>,
    /// Sets `integration_id` on orders that have none.
    #[arg(long)]
    pub integration_id: Option<String>,
    /// Orders per intake call (each call validates, then stores in batches).
    #[arg(long, default_value_t = 500)]
    pub chunk: usize,
    /// No progress bar (logs and CI).
    #[arg(long)]
    pub quiet: bool,
}

/// One order read from the file, with where it came from (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOrder {
    /// "row 7" (CSV, 1-based with the header as row 1) or "order 3" (JSON, 0-based index).
    pub origin: String,
    pub order: Value,
}

pub fn read_orders(path: &Path) -> anyhow::Result<Vec<SourceOrder>> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(&raw)
    } else {
        parse_json(&raw)
    }
}

pub fn parse_json(raw: &str) -> anyhow::Result<Vec<SourceOrder>> {
    let value: Value = serde_json::from_str(raw).context("the file is not JSON")?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.remove("orders") {
            Some(Value::Array(items)) => items,
            _ => anyhow::bail!("expected an array of orders or {{\"orders\": [...]}}"),
        },
        _ => anyhow::bail!("expected an array of orders or {{\"orders\": [...]}}"),
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, order)| SourceOrder {
            origin: format!("order {i}"),
            order,
        })
        .collect())
}

fn cell_value(column: &str, cell: &str) -> Value {
    // Integers only where the API has integers, so a reference like "00123" stays a string; a
    // cell that does not parse stays a string and the intake reports the field.
    if column.ends_with("_in_cents") {
        if let Ok(n) = cell.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::String(cell.to_string())
}

pub fn parse_csv(raw: &str) -> anyhow::Result<Vec<SourceOrder>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(raw.as_bytes());
    let headers = reader.headers().context("read the CSV header row")?.clone();
    let mut orders: Vec<SourceOrder> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = record.with_context(|| format!("CSV row {row}"))?;
        let mut order = Map::new();
        let mut transaction = Map::new();
        for (column, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            match column.strip_prefix("transaction.") {
                Some(field) => {
                    transaction.insert(field.to_string(), cell_value(field, cell));
                }
                None => {
                    order.insert(column.to_string(), cell_value(column, cell));
                }
            }
        }
        let same_order = orders.last().is_some_and(|prev| {
            order.get("reference_id").is_some()
                && prev.order.get("reference_id") == order.get("reference_id")
                && prev.order.get("organisation_id") == order.get("organisation_id")
        });
        if same_order && !transaction.is_empty() {
            if let Some(Value::Array(list)) = orders
                .last_mut()
                .and_then(|p| p.order.get_mut("transactions"))
            {
                list.push(Value::Object(transaction));
                continue;
            }
        }
        if !transaction.is_empty() {
            order.insert(
                "transactions".into(),
                Value::Array(vec![Value::Object(transaction)]),
            );
        }
        orders.push(SourceOrder {
            origin: format!("row {row}"),
            order: Value::Object(order),
        });
    }
    Ok(orders)
}

/// Fills organisation and integration ids the file left out.
pub fn apply_defaults(
    orders: &mut [SourceOrder],
    organisation_id: Option<&str>,
    integration_id: Option<&str>,
) {
    for o in orders {
        if let Value::Object(obj) = &mut o.order {
            for (field, value) in [
                ("organisation_id", organisation_id),
                ("integration_id", integration_id),
            ] {
                if let Some(v) = value {
                    obj.entry(field)
                        .or_insert_with(|| Value::String(v.to_string()));
                }
            }
        }
    }
}

/// One line per refused order, one indented line per field problem.
pub fn describe_rejections(rejected: &[(String, RejectedOrder)]) -> String {
    let mut out = String::new();
    for (origin, r) in rejected {
        out.push_str(&format!(
            "{origin} (reference_id {}):\n",
            r.reference_id.as_deref().unwrap_or("<none>")
        ));
        for e in &r.errors {
            out.push_str(&format!("  {}: {}\n", e.field, e.message));
        }
    }
    out
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let mut orders = read_orders(&args.file)?;
    apply_defaults(
        &mut orders,
        args.organisation_id.as_deref(),
        args.integration_id.as_deref(),
    );
    let tables = TableNames::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    // One count of DynamoDB requests for the whole import (printed in the summary).
    let counters = Arc::new(DynamoCounters::default());
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    // Orders enter the outbox with their transactions indexed for matching alerts, and are
    // counted into the insights table (identifiers carried, settled cards).
    // Counted in bulk per thousand orders or so (`flush`), not per intake call.
    let outbox = shared::domain::insights::CountingOrderOutbox::deferring(
        Arc::new(shared::adapters::dynamo::transactions::indexed_outbox(
            &client,
            &tables,
            counters.clone(),
        )),
        Arc::new(
            shared::adapters::dynamo::insights::DynamoInsightsStore::new(table(tables.insights())),
        ),
        Arc::new(shared::clock::SystemClock),
    );

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(orders.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} orders ({per_sec}, eta {eta}) {msg}")
            .expect("static template"),
    );
    let mut total = IntakeReport::default();
    let mut rejected = Vec::new();
    for chunk in orders.chunks(args.chunk.max(1)) {
        let raw: Vec<Value> = chunk.iter().map(|o| o.order.clone()).collect();
        let stored = intake_orders(&outbox, raw, chrono::Utc::now()).await;
        if stored.is_err() || outbox.deferred_len() >= COUNT_EVERY {
            outbox.flush().await;
        }
        let report = stored
            .context("store orders in the outbox (nothing after the last progress point was stored; re-run to resume)")?;
        for r in report.rejected {
            rejected.push((chunk[r.index].origin.clone(), r));
        }
        total.stored.extend(report.stored);
        total.already_queued.extend(report.already_queued);
        bar.inc(chunk.len() as u64);
        bar.set_message(format!(
            "{} stored, {} already queued, {} refused",
            total.stored.len(),
            total.already_queued.len(),
            rejected.len()
        ));
    }
    outbox.flush().await;
    bar.finish();
    if !rejected.is_empty() {
        eprint!("{}", describe_rejections(&rejected));
    }
    println!(
        "{}",
        serde_json::json!({
            "read": orders.len(),
            "stored": total.stored.len(),
            "already_queued": total.already_queued.len(),
            "refused": rejected.len(),
            "dynamodb_reads": counters.reads(),
            "dynamodb_writes": counters.writes(),
        })
    );
    if !rejected.is_empty() {
        anyhow::bail!(
            "{} orders refused (listed above); the others are queued",
            rejected.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_orders_with_transactions_and_typed_amounts() {
        let raw = "\
type,organisation_id,reference_id,order_number,order_total_amount_in_cents,transaction.reference_id,transaction.amount_in_cents,transaction.payment_method_card_last_4
COMPLETE,org_1,o-1,00123,4900,txn-1,4900,4242
COMPLETE,org_1,o-1,00123,4900,txn-2,100,0042
COMPLETE,org_1,o-2,00124,oops,,,
";
        let orders = parse_csv(raw).unwrap();
        assert_eq!(orders.len(), 2);
        let first = &orders[0].order;
        assert_eq!(orders[0].origin, "row 2");
        assert_eq!(
            first["order_number"], "00123",
            "only *_in_cents become numbers"
        );
        assert_eq!(first["order_total_amount_in_cents"], 4900);
        let txns = first["transactions"].as_array().unwrap();
        assert_eq!(txns.len(), 2, "a repeated reference adds a transaction");
        assert_eq!(txns[1]["payment_method_card_last_4"], "0042");
        assert_eq!(orders[1].origin, "row 4");
        assert_eq!(
            orders[1].order["order_total_amount_in_cents"], "oops",
            "left for the intake to refuse"
        );
        assert!(orders[1].order.get("transactions").is_none());
    }

    #[test]
    fn json_accepts_an_array_or_an_orders_object() {
        assert_eq!(parse_json(r#"[{"reference_id":"a"}]"#).unwrap().len(), 1);
        assert_eq!(
            parse_json(r#"{"orders":[{"reference_id":"a"},{}]}"#).unwrap()[1].origin,
            "order 1"
        );
        assert!(parse_json(r#"{"order":1}"#).is_err());
    }

    #[test]
    fn defaults_fill_only_missing_ids() {
        let mut orders = parse_json(r#"[{"organisation_id":"org_a"},{}]"#).unwrap();
        apply_defaults(&mut orders, Some("org_default"), Some("int_1"));
        assert_eq!(orders[0].order["organisation_id"], "org_a");
        assert_eq!(orders[1].order["organisation_id"], "org_default");
        assert_eq!(orders[1].order["integration_id"], "int_1");
    }

    #[test]
    fn rejections_name_the_row_and_each_field() {
        let r = RejectedOrder {
            index: 0,
            reference_id: Some("o-9".into()),
            errors: vec![shared::domain::order_intake::FieldProblem {
                field: "transactions[0].payment_method_card_last_4".into(),
                message: "is required".into(),
            }],
        };
        let text = describe_rejections(&[("row 9".into(), r)]);
        assert_eq!(text, "row 9 (reference_id o-9):\n  transactions[0].payment_method_card_last_4: is required\n");
    }
}
