//! What the function reports about itself: peak memory (for the "peak memory" figure and to
//! size `MemorySize`) and one CloudWatch embedded-metric line per invocation with the counts
//! worth alarming on. The EMF line is a single `println!` of a fixed JSON shape; a crate for
//! it would add more than it saves.

use crate::batch::BatchSummary;

/// Peak resident set size of this process in KiB (`VmHWM`), or 0 where /proc is missing.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The embedded-metric-format line for one batch (namespace `ChargebackPlatform`).
pub fn emf_line(function_name: &str, summary: &BatchSummary, timestamp_ms: i64) -> String {
    let names = [
        "EventsProcessed",
        "DuplicateEvents",
        "AlertActionsTaken",
        "EventsFailed",
        "PoisonMessages",
        "EventsDeadLettered",
        "EventsOutOfTime",
        "DeliveriesRefusedAtEdge",
    ];
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "ChargebackPlatform",
                "Dimensions": [["FunctionName"]],
                "Metrics": names.iter().map(|n| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "FunctionName": function_name,
        "EventsProcessed": summary.applied,
        "DuplicateEvents": summary.duplicates,
        "AlertActionsTaken": summary.actions_taken,
        "EventsFailed": summary.failed + summary.held_back,
        "PoisonMessages": summary.poison,
        "EventsDeadLettered": summary.dead_lettered,
        "EventsOutOfTime": summary.out_of_time,
        "DeliveriesRefusedAtEdge": summary.refused_at_edge,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_every_metric_it_carries() {
        let summary = BatchSummary {
            applied: 3,
            poison: 1,
            dead_lettered: 2,
            refused_at_edge: 4,
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&emf_line("process-events", &summary, 1)).unwrap();
        let declared = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for m in declared {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_u64(), "{name} has no value");
        }
        assert_eq!(v["EventsProcessed"], 3);
        assert_eq!(v["PoisonMessages"], 1);
        assert_eq!(v["EventsDeadLettered"], 2);
        assert_eq!(v["DeliveriesRefusedAtEdge"], 4);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        assert!(peak_rss_kb() > 0);
    }
}
