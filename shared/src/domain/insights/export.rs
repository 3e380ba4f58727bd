//! The insights page's CSV export of alerts with their decisions and matches (pure): one row per
//! stored alert, its outcome as the charts count it, its final decision, and our match verdict
//! from the alert's match record (status, the order it matched, the method, the policy rule).

use super::facts::{alert_outcome, received_at};
use crate::records::alert::AlertRecord;

pub const ALERTS_CSV_HEADER: &str = "customer,organisation_id,alert_id,provider,status,outcome,received_at,deadline,amount_cents,currency,card_scheme,decided_by,decision_source,action,decision_result,decided_at,decision_reason,match_integration_transaction_id,match_status,matched_order_reference,match_method,match_rule";

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Our match verdict as the page names it: `matched`, `unmatched`, `ambiguous`, or empty when
/// the alert was never matched (RDR, or no partner records).
fn match_columns(r: &AlertRecord) -> [String; 4] {
    let Some(m) = &r.alert_match else {
        return Default::default();
    };
    [
        m.matched.status.as_str().to_ascii_lowercase(),
        m.matched
            .transaction
            .as_ref()
            .map(|t| t.order_reference_id.clone())
            .unwrap_or_default(),
        m.matched
            .method
            .and_then(|method| serde_json::to_value(method).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        m.rule.clone().unwrap_or_default(),
    ]
}

/// One CSV line (no newline) for `r`, shown under `customer`.
pub fn alert_csv_row(customer: &str, r: &AlertRecord) -> String {
    let a = &r.alert;
    let d = r.final_decision();
    let [match_status, matched_order, method, rule] = match_columns(r);
    let row = [
        customer.to_string(),
        a.organisation_id.clone(),
        r.alert_id.clone(),
        a.enrolment_type.to_string(),
        a.status.to_string(),
        alert_outcome(r)
            .map(|o| o.as_str().to_string())
            .unwrap_or_else(|| "pending".into()),
        received_at(r).map(|t| t.to_rfc3339()).unwrap_or_default(),
        a.action_required_deadline
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        a.transaction_amount_in_cents
            .map(|c| c.to_string())
            .unwrap_or_default(),
        a.transaction_currency_code.clone().unwrap_or_default(),
        a.transaction_card_scheme
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        d.map(|d| d.actor.clone()).unwrap_or_default(),
        d.map(|d| format!("{:?}", d.source)).unwrap_or_default(),
        d.and_then(|d| d.action.as_ref().map(|x| x.to_string()))
            .unwrap_or_default(),
        d.map(|d| format!("{:?}", d.result)).unwrap_or_default(),
        d.map(|d| d.at.clone()).unwrap_or_default(),
        d.map(|d| d.reason.clone()).unwrap_or_default(),
        a.integration_transaction_id.clone().unwrap_or_default(),
        match_status,
        matched_order,
        method,
        rule,
    ];
    row.iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert_record::{merge_fetched, Merge};
    use crate::domain::test_support::{alert, ts};

    fn record() -> AlertRecord {
        let Merge::Updated(r) = merge_fetched(
            None,
            alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 4900),
            ts("2026-11-24T09:01:00Z"),
        ) else {
            panic!()
        };
        r
    }

    fn columns(line: &str) -> Vec<String> {
        let header: Vec<&str> = ALERTS_CSV_HEADER.split(',').collect();
        let cells: Vec<String> = line.split(',').map(str::to_string).collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        header[header.len() - 4..]
            .iter()
            .zip(&cells[cells.len() - 4..])
            .map(|(h, c)| format!("{h}={c}"))
            .collect()
    }

    #[test]
    fn each_row_carries_our_match_verdict_the_order_the_method_and_the_rule() {
        let mut r = record();
        r.alert_match = Some(
            serde_json::from_value(serde_json::json!({
                "match": { "status": "MATCHED", "method": "ARN", "confidence": 98,
                    "transaction": { "organisation_id": "org_1", "order_reference_id": "ord-77",
                                     "transaction_reference_id": "txn-77" },
                    "matched_at": "2026-11-24T09:01:01Z" },
                "rule": "acme-2026/refund_when_partner_refunded"
            }))
            .unwrap(),
        );
        assert_eq!(
            columns(&alert_csv_row("Acme", &r)),
            [
                "match_status=matched",
                "matched_order_reference=ord-77",
                "match_method=ARN",
                "match_rule=acme-2026/refund_when_partner_refunded"
            ]
        );

        r.alert_match = Some(
            serde_json::from_value(serde_json::json!({
                "match": { "status": "AMBIGUOUS", "method": "AUTH_CODE_LAST4_AMOUNT",
                           "confidence": 0, "matched_at": "2026-11-24T09:01:01Z" },
                "rule": "acme-2026/unmatched"
            }))
            .unwrap(),
        );
        assert_eq!(
            columns(&alert_csv_row("Acme", &r)),
            [
                "match_status=ambiguous",
                "matched_order_reference=",
                "match_method=AUTH_CODE_LAST4_AMOUNT",
                "match_rule=acme-2026/unmatched"
            ]
        );

        // Never matched: the columns are there, empty.
        r.alert_match = None;
        let line = alert_csv_row("Acme, Inc.", &r);
        assert!(
            line.starts_with("\"Acme, Inc.\",org_1,a1,ETHOCA_ALERT,"),
            "{line}"
        );
        assert!(line.ends_with(",,,,"), "{line}");
    }
}
