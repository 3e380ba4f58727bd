//! The bookkeeping journal over moto (the tables from the template): every write of an alert or
//! enrolment record, a store's versioned `put` and an event's commit alike, writes the record's
//! bookkeeping to the archive table in the same request; a write that loses its race writes
//! neither; the journal's items never show in the archive's time window.

use devstack::{resources, Moto};
use serde_json::json;
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::archive::DynamoEventArchive;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::event_commit::DynamoEventCommitter;
use shared::adapters::dynamo::journal::DynamoBookkeepingJournal;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::{merge_fetched, Merge};
use shared::domain::enrolment_lifecycle::{self, EnrolmentMerge};
use shared::models::alert::AlertAction;
use shared::ports::alert_store::AlertStore;
use shared::ports::bookkeeping_journal::BookkeepingJournal;
use shared::ports::enrolment_store::EnrolmentStore;
use shared::ports::event_archive::EventArchive;
use shared::ports::event_commit::{CommitError, EventCommit, EventCommitter};
use shared::ports::store_error::StoreError;
use shared::records::alert::{AlertRecord, Decision, DecisionResult, DecisionSource};

fn record() -> AlertRecord {
    let now = chrono::Utc::now();
    let alert = serde_json::from_value(json!({
        "id": "netalrt_journal_1",
        "organisation_id": "org_journal", "merchant_id": "mrch_j", "enrolment_id": "enrl_j",
        "enrolment_type": "ETHOCA_ALERT", "status": "ACTION_REQUIRED",
        "transaction_amount_in_cents": 4900, "transaction_currency_code": "USD",
        "action_required_deadline": now + chrono::Duration::days(2),
        "alert_received_at": now, "created_at": now, "updated_at": now,
    }))
    .expect("alert");
    match merge_fetched(None, alert, now) {
        Merge::Updated(r) | Merge::Stale(r) => r,
    }
}

fn decision(actor: &str) -> Decision {
    Decision {
        at: "2026-12-01T10:00:00.000Z".into(),
        source: DecisionSource::Operator,
        actor: actor.into(),
        action: Some(AlertAction::Refund),
        reason: "asked by the customer".into(),
        note: Some("Refunded, ticket 12".into()),
        result: DecisionResult::Applied,
        detail: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_write_journals_its_bookkeeping_and_a_lost_race_writes_neither() {
    let moto = Moto::start().await.expect("moto (bin/setup's venv)");
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("journal"))
        .await
        .expect("tables from the template");
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = TableNames::new(res.table_prefix.clone());
    let table = |name: String| Table::new(dynamo.clone(), name, Default::default());
    // Built on their own tables alone, as every function builds them: they journal beside.
    let alerts = DynamoAlertStore::new(table(tables.alerts()));
    let enrolments = DynamoEnrolmentStore::new(table(tables.enrolments()));
    let journal = DynamoBookkeepingJournal::new(table(tables.archive()));
    let id = "netalrt_journal_1";

    // A versioned put writes the record and its entry.
    let first = record();
    alerts.put(&first).await.unwrap();
    let entry = journal
        .alert_bookkeeping(id)
        .await
        .unwrap()
        .expect("journaled");
    assert_eq!(entry.revision, 1);
    assert!(entry.bookkeeping.decisions.is_empty());
    let mut warned = first.clone();
    warned.warned_thresholds = vec!["24h".into()];
    warned.revision = 2;
    alerts.put(&warned).await.unwrap();
    let entry = journal.alert_bookkeeping(id).await.unwrap().unwrap();
    assert_eq!(entry.revision, 2);
    assert_eq!(entry.bookkeeping.warned_thresholds, vec!["24h".to_string()]);

    // One that lost its race (built on revision 1 too): the same Conflict as ever, and neither
    // the record nor the entry written.
    let mut loser = first.clone();
    loser.decisions.push(decision("op_late"));
    loser.revision = 2;
    let lost = alerts.put(&loser).await;
    assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{lost:?}");
    let stored = alerts.get(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.revision, stored.decisions, stored.warned_thresholds),
        (2, vec![], warned.warned_thresholds.clone())
    );
    let entry = journal.alert_bookkeeping(id).await.unwrap().unwrap();
    assert_eq!(entry.revision, 2);
    assert!(entry.bookkeeping.decisions.is_empty());

    // An event's commit writes the entry in its transaction; a refused one writes nothing.
    let committer = DynamoEventCommitter::new(
        table(tables.events()),
        table(tables.alerts()),
        table(tables.enrolments()),
        table(tables.archive()),
    );
    let mut decided = warned.clone();
    decided.decisions.push(decision("op_ana"));
    decided.revision = 3;
    committer
        .commit(&EventCommit {
            alert: Some(decided.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let entry = journal.alert_bookkeeping(id).await.unwrap().unwrap();
    assert_eq!(
        (entry.revision, entry.bookkeeping.decisions.clone()),
        (3, vec![decision("op_ana")])
    );
    let mut stale = warned.clone();
    stale.decisions.push(decision("op_stale"));
    stale.revision = 3;
    let refused = committer
        .commit(&EventCommit {
            alert: Some(stale),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(CommitError::Conflict(StoreError::Conflict { .. }))
        ),
        "{refused:?}"
    );
    let entry = journal.alert_bookkeeping(id).await.unwrap().unwrap();
    assert_eq!(entry.bookkeeping.decisions, vec![decision("op_ana")]);

    // An enrolment's status history, likewise.
    let now = chrono::Utc::now();
    let enrolment = serde_json::from_value(json!({
        "id": "enrl_journal_1", "organisation_id": "org_journal", "merchant_ids": ["mrch_j"],
        "type": "ETHOCA_ALERT", "status": "PENDING", "created_at": now, "updated_at": now,
    }))
    .unwrap();
    let EnrolmentMerge::Updated { record: e1, .. } =
        enrolment_lifecycle::merge_fetched(None, enrolment, Some("evt_j1"), now)
    else {
        panic!("a new enrolment")
    };
    enrolments.put(&e1).await.unwrap();
    let entry = journal
        .enrolment_bookkeeping("enrl_journal_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.bookkeeping.status_history, e1.status_history);
    let mut again = e1.clone();
    again.status_history.clear();
    assert!(matches!(
        enrolments.put(&again).await,
        Err(StoreError::Conflict { .. })
    ));
    let entry = journal
        .enrolment_bookkeeping("enrl_journal_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.bookkeeping.status_history.len(), 1);

    // The entries share the archive table but never its time window (no `received_day`).
    let archive = DynamoEventArchive::new(table(tables.archive()));
    let window = archive
        .received_between(
            chrono::Utc::now() - chrono::Duration::days(1),
            chrono::Utc::now() + chrono::Duration::minutes(1),
        )
        .await
        .expect("every item in the window decodes as a delivery");
    assert!(window.is_empty(), "{window:?}");
}
