//! What the scheduled Lambdas and the ops API print about themselves: JSON log lines and
//! CloudWatch embedded-metric (EMF) lines. One place, so every function logs and counts the same
//! way. (process-events keeps its own: it logs timestamps without targets and its metrics carry a
//! FunctionName dimension.)

/// JSON log lines on stdout (CloudWatch adds the time, so none here); `RUST_LOG` filters, `info`
/// by default. Call once, first thing in `main`.
pub fn init_json_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
}

/// One embedded-metric-format line (namespace `ChargebackPlatform`, no dimensions) declaring
/// each `(name, count)` as a Count metric and carrying its value. Print it on stdout as is; the
/// EMF shape is fixed and small, so a crate for it would add more than it saves.
pub fn emf_counts_line(counts: &[(&str, u64)], timestamp_ms: i64) -> String {
    let declared: Vec<serde_json::Value> = counts
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = serde_json::Map::new();
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "ChargebackPlatform",
                "Dimensions": [[]],
                "Metrics": declared,
            }]
        }),
    );
    for (name, value) in counts {
        line.insert((*name).to_owned(), (*value).into());
    }
    serde_json::Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_and_carries_every_count() {
        let line = emf_counts_line(&[("OrdersCreated", 3), ("OrdersFailed", 0)], 1_700);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'), "one line per run");
        assert_eq!(v["_aws"]["Timestamp"], 1_700);
        let metric = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metric["Namespace"], "ChargebackPlatform");
        assert_eq!(metric["Dimensions"], serde_json::json!([[]]));
        assert_eq!(
            metric["Metrics"],
            serde_json::json!([
                {"Name": "OrdersCreated", "Unit": "Count"},
                {"Name": "OrdersFailed", "Unit": "Count"}
            ])
        );
        assert_eq!(v["OrdersCreated"], 3);
        assert_eq!(v["OrdersFailed"], 0);
    }
}
