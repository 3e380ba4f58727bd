use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

fn conflict(part: Part) -> StoreError {
    StoreError::Conflict {
        operation: match part {
            Part::Event => "claim",
            Part::Alert => "put alert",
            Part::Enrolment => "put enrolment",
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
