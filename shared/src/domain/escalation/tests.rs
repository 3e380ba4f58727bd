use super::*;
use crate::adapters::memory::MemoryAlertStore;
use crate::domain::alert_record::{merge_fetched, Merge};
use crate::domain::test_support::{alert, ts};
use crate::records::matching::{AlertMatch, MatchMethod, MatchRecord};

fn candidate(order: &str, txn: &str) -> IndexedTransaction {
    IndexedTransaction {
        organisation_id: "org_1".into(),
        order_reference_id: order.into(),
        transaction_reference_id: txn.into(),
        ..Default::default()
    }
}

fn stored(id: &str, status: MatchStatus, candidates: Vec<IndexedTransaction>) -> AlertRecord {
    let mut a = alert(id, "ETHOCA_ALERT", "ACTION_REQUIRED", 3100);
    a.transaction_card_bin = Some("424242".into());
    a.transaction_card_last4 = Some("4242".into());
    a.transaction_authorisation_code = Some("A1B2C3".into());
    a.transaction_card_scheme = Some(crate::models::common::CardBrand::from_wire("VISA"));
    a.transaction_statement_descriptor = Some("ACME, \"FIT\" CLUB".into());
    a.transaction_authorised_at = Some(ts("2026-11-22T08:00:00Z"));
    let Merge::Updated(mut r) = merge_fetched(None, a, ts("2026-11-24T10:00:00Z")) else {
        panic!("new record")
    };
    r.alert_match = Some(MatchRecord {
        matched: AlertMatch {
            status,
            method: (!candidates.is_empty()).then_some(MatchMethod::BinLast4AmountWindow),
            confidence: 0,
            descriptor_tie_break: false,
            transaction: (status == MatchStatus::Matched).then(|| candidates[0].clone()),
            candidates,
            tried: Vec::new(),
            reads: 4,
            matched_at: "2026-11-24T10:00:00.000Z".into(),
        },
        evidence: None,
        rule: Some("p/unmatched".into()),
    });
    r
}

#[test]
fn an_ambiguous_alert_is_escalated_with_every_candidate_and_the_guides_fields() {
    let r = stored(
        "a4",
        MatchStatus::Ambiguous,
        vec![candidate("o-4a", "txn-4a"), candidate("o-4b", "txn-4b")],
    );
    let e = escalation_record(&r).expect("ambiguous alerts are escalated");
    assert_eq!(e.match_status, "AMBIGUOUS");
    assert_eq!(e.match_method, "BinLast4AmountWindow");
    assert_eq!(e.candidates, 2);
    assert_eq!(e.order_reference, "o-4a; o-4b");
    assert_eq!(e.transaction_reference, "txn-4a; txn-4b");
    assert_eq!(e.arn, "74027012345678901234567");
    assert_eq!(
        (
            e.auth_code.as_str(),
            e.card_brand.as_str(),
            e.bin.as_str(),
            e.last4.as_str()
        ),
        ("A1B2C3", "VISA", "424242", "4242")
    );
    assert_eq!(
        (e.amount_in_cents.as_str(), e.currency.as_str()),
        ("3100", "USD")
    );
    assert_eq!(e.transaction_authorised_at, "2026-11-22T08:00:00.000Z");
    assert_eq!(e.alert_received_at, "2026-11-24T09:00:00.000Z");
    assert_eq!(e.action_required_deadline, "2026-11-26T10:00:00.000Z");
    assert_eq!(e.rule, "p/unmatched");
    assert_eq!(e.decided, "");
}

#[test]
fn unmatched_alerts_carry_chargebackstops_transaction_reference_and_matched_ones_are_not_escalated()
{
    let mut r = stored("a1", MatchStatus::Unmatched, Vec::new());
    r.alert.integration_transaction_id = Some("txn-at-cbs".into());
    let e = escalation_record(&r).unwrap();
    assert_eq!(
        (e.order_reference.as_str(), e.transaction_reference.as_str()),
        ("", "txn-at-cbs")
    );
    assert_eq!(e.match_method, "");
    let matched = stored("a2", MatchStatus::Matched, vec![candidate("o-1", "t-1")]);
    assert_eq!(escalation_record(&matched), None);
    let mut never = stored("a3", MatchStatus::Unmatched, Vec::new());
    never.alert_match = None;
    assert_eq!(escalation_record(&never), None, "the policy never looked");
    let mut rdr = stored("a5", MatchStatus::Unmatched, Vec::new());
    rdr.informational = true;
    assert_eq!(escalation_record(&rdr), None);
}

#[test]
fn the_csv_quotes_commas_and_quotes_and_defuses_formulas() {
    let mut r = stored("a4", MatchStatus::Unmatched, Vec::new());
    r.alert.transaction_acquirer_reference_number = Some("=HYPERLINK(\"x\")".into());
    let csv = to_csv(&[escalation_record(&r).unwrap()]);
    let mut lines = csv.split("\r\n");
    assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
    let row = lines.next().unwrap();
    assert!(row.contains(",\"ACME, \"\"FIT\"\" CLUB\","), "{row}");
    assert!(row.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{row}");
    // Read back by a CSV reader: the same fields, 22 of them.
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let rec = reader.records().next().unwrap().unwrap();
    assert_eq!(rec.len(), COLUMNS.len());
    assert_eq!(&rec[14], "ACME, \"FIT\" CLUB");
}

#[tokio::test]
async fn escalations_keep_the_organisations_unmatched_alerts_since_a_date() {
    let store = MemoryAlertStore::default();
    let mut old = stored("old", MatchStatus::Unmatched, Vec::new());
    old.alert.alert_received_at = Some(ts("2026-11-01T00:00:00Z"));
    for r in [
        old,
        stored(
            "new",
            MatchStatus::Ambiguous,
            vec![candidate("o", "t"), candidate("p", "u")],
        ),
        stored("ok", MatchStatus::Matched, vec![candidate("o", "t")]),
    ] {
        store.put(&r).await.unwrap();
    }
    let all = escalations(&store, "org_1", None, 100).await.unwrap();
    let mut ids: Vec<_> = all.iter().map(|e| e.alert_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["new", "old"]);
    let since = escalations(&store, "org_1", Some(ts("2026-11-20T00:00:00Z")), 100)
        .await
        .unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].alert_id, "new");
    assert!(escalations(&store, "org_2", None, 100)
        .await
        .unwrap()
        .is_empty());
}
