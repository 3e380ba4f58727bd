use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

fn conflict(part: Part) -> StoreError {
    StoreError::Conflict {
        operation: match part {
            Part::Event => "claim",
            Part::Alert => "put alert",
            Part::Enrolment => "put enrolment",
            Part::Journal => "journal bookkeeping",
            Part::Archive => "archive delivery",
            Part::Index => "put index entries",
            Part::Insights => "count insights",
        },
        table: format!("{part:?}"),
        key: "k1".into(),
    }
}

fn reason(code: &str) -> Reason {
    Reason {
        code: Some(code.into()),
        item: None,
    }
}

const PARTS: [Part; 3] = [Part::Archive, Part::Event, Part::Alert];

#[test]
fn a_failed_event_condition_is_the_refused_claim_whatever_else_failed() {
    let mut event = reason("ConditionalCheckFailed");
    event.item = Some([("status".to_string(), AttributeValue::S("COMPLETED".into()))].into());
    let (item, e) = refusal(
        &PARTS,
        &[reason("None"), event, reason("ConditionalCheckFailed")],
        conflict,
        "t-events",
    );
    assert!(
        item.is_some(),
        "the stored record comes back with the refusal"
    );
    match e {
        CommitError::EventRefused {
            event_id, conflict, ..
        } => {
            assert_eq!(event_id, "k1");
            assert!(matches!(
                conflict,
                StoreError::Conflict {
                    operation: "claim",
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_revision_check_is_the_conflict_the_put_gives() {
    let (_, e) = refusal(
        &PARTS,
        &[
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
        ],
        conflict,
        "t-events",
    );
    match e {
        CommitError::Conflict(StoreError::Conflict { operation, .. }) => {
            assert_eq!(operation, "put alert")
        }
        other => panic!("{other:?}"),
    }
    let (_, e) = refusal(
        &[Part::Event, Part::Enrolment],
        &[reason("None"), reason("ConditionalCheckFailed")],
        conflict,
        "t-events",
    );
    assert!(
        matches!(
            e,
            CommitError::Conflict(StoreError::Conflict {
                operation: "put enrolment",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn a_transaction_conflict_or_throttling_is_transient_and_a_validation_error_is_not() {
    for code in [
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    ] {
        let (_, e) = refusal(
            &PARTS,
            &[reason("None"), reason(code), reason("None")],
            conflict,
            "t-events",
        );
        let e = e.into_store_error();
        assert!(e.is_retryable(), "{code}: {e:?}");
        assert!(e.to_string().contains(code), "{e}");
    }
    let (_, e) = refusal(
        &PARTS,
        &[reason("ValidationError"), reason("None"), reason("None")],
        conflict,
        "t-events",
    );
    assert!(!e.into_store_error().is_retryable());
}

#[test]
fn a_refusal_on_the_counters_alone_lets_the_event_write_again_without_them() {
    let parts = [Part::Event, Part::Alert, Part::Insights, Part::Insights];
    let busy = [
        reason("None"),
        reason("None"),
        reason("None"),
        reason("TransactionConflict"),
    ];
    assert!(only_insights_refused(&parts, &busy));
    let counted_meanwhile = [
        reason("None"),
        reason("None"),
        reason("ConditionalCheckFailed"),
        reason("None"),
    ];
    assert!(only_insights_refused(&parts, &counted_meanwhile));
    let ours_too = [
        reason("None"),
        reason("ConditionalCheckFailed"),
        reason("None"),
        reason("TransactionConflict"),
    ];
    assert!(!only_insights_refused(&parts, &ours_too));
    let none: Vec<Reason> = (0..4).map(|_| reason("None")).collect();
    assert!(!only_insights_refused(&parts, &none));
}

#[test]
fn archiving_if_absent_sets_every_attribute_only_where_missing() {
    let attributes: Item = [
        ("body".to_string(), AttributeValue::S("b".into())),
        ("archived_at".to_string(), AttributeValue::S("t".into())),
    ]
    .into();
    let (update, names, values) = set_if_absent(attributes);
    assert_eq!(
        update,
        "SET #a0 = if_not_exists(#a0, :a0), #a1 = if_not_exists(#a1, :a1)"
    );
    assert_eq!(names["#a0"], "archived_at");
    assert_eq!(names["#a1"], "body");
    assert_eq!(values[":a1"], AttributeValue::S("b".into()));
}

fn committer() -> DynamoEventCommitter {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let table = |name: &str| Table::new(client.clone(), name, Default::default());
    DynamoEventCommitter::new(
        table("t-events"),
        table("t-alerts"),
        table("t-enrolments"),
        table("t-archive"),
    )
}

fn decided_alert(revision: u64) -> crate::records::alert::AlertRecord {
    use crate::domain::alert_record::{merge_fetched, Merge};
    use crate::domain::test_support::{alert, ts};
    let Merge::Updated(mut r) = merge_fetched(
        None,
        alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100),
        ts("2026-11-24T10:00:00Z"),
    ) else {
        panic!()
    };
    r.warned_thresholds = vec!["24h".into()];
    r.revision = revision;
    r
}

#[test]
fn every_alert_and_enrolment_written_carries_its_journal_item_right_after_it() {
    use crate::domain::enrolment_lifecycle::{merge_fetched, EnrolmentMerge};
    use crate::domain::test_support::{enrolment, ts};
    let c = committer();
    let EnrolmentMerge::Updated { record, .. } = merge_fetched(
        None,
        enrolment("e1", "ENABLED", "2026-11-24T08:00:00Z", None),
        Some("evt_1"),
        ts("2026-11-24T10:00:00Z"),
    ) else {
        panic!()
    };
    let mut enrolment = record;
    enrolment.revision = 3;
    let commit = EventCommit {
        alert: Some(decided_alert(2)),
        enrolment: Some(enrolment),
        ..Default::default()
    };
    let (items, parts) = c.items(&commit).unwrap();
    assert_eq!(
        parts,
        [Part::Alert, Part::Journal, Part::Enrolment, Part::Journal]
    );
    let journal = items[1]
        .put
        .as_ref()
        .expect("a Put past a record's first write");
    assert_eq!(journal.table_name, "t-archive");
    assert!(
        journal.condition_expression.is_none(),
        "never refuses the commit"
    );
    assert_eq!(
        journal.item["event_id"],
        AttributeValue::S("#journal#alert#a1".into())
    );
    assert_eq!(journal.item["revision"], AttributeValue::N("2".into()));
    let bookkeeping = journal.item["bookkeeping"].as_m().unwrap();
    assert_eq!(
        bookkeeping["warned_thresholds"],
        AttributeValue::L(vec![AttributeValue::S("24h".into())])
    );
    assert!(journal.item.contains_key("expires_at"));
    assert!(
        !journal.item.contains_key("received_day"),
        "never in received-index"
    );
    let journal = items[3].put.as_ref().unwrap();
    assert_eq!(
        journal.item["event_id"],
        AttributeValue::S("#journal#enrolment#e1".into())
    );
    let history = journal.item["bookkeeping"].as_m().unwrap()["status_history"]
        .as_l()
        .unwrap();
    assert_eq!(history.len(), 1);
    // A refused revision check on the alert is still the alert's conflict.
    let (_, e) = refusal(
        &parts,
        &[
            reason("ConditionalCheckFailed"),
            reason("None"),
            reason("None"),
            reason("None"),
        ],
        conflict,
        "t-events",
    );
    assert!(
        matches!(
            e,
            CommitError::Conflict(StoreError::Conflict {
                operation: "put alert",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn a_records_first_write_journals_too() {
    let c = committer();
    let commit = EventCommit {
        alert: Some(decided_alert(1)),
        ..Default::default()
    };
    let (items, parts) = c.items(&commit).unwrap();
    assert_eq!(parts, [Part::Alert, Part::Journal]);
    let put = items[1].put.as_ref().unwrap();
    assert_eq!(put.item["revision"], AttributeValue::N("1".into()));
    assert!(put.condition_expression.is_none());
}
