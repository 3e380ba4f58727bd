//! `cbs rebuild` gives back the tables exactly, our bookkeeping included (the journal), over
//! in-memory fakes that journal as the DynamoDB stores do.

use super::archive::{archived_from, RawDelivery};
use super::rebuild::{rebuild, StateSources};
use super::tests::{budget, to_json, Listing};
use crate::adapters::memory::{
    FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog, RecordingNotifier,
};
use crate::adapters::memory_commit::MemoryCommitter;
use crate::adapters::memory_journal::MemoryJournal;
use crate::adapters::memory_recovery::MemoryArchive;
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::alert_record::{append_decision, update_alert_record, AlertRecord};
use crate::domain::enrolment_lifecycle::EnrolmentRecord;
use crate::domain::event_processing::{EventProcessor, IncomingEvent};
use crate::domain::test_support::{alert, enrolment, ts};
use crate::models::alert::AlertAction;
use crate::ports::alert_store::AlertStore;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_archive::EventArchive;
use crate::ports::event_commit::{EventCommit, EventCommitter};
use crate::ports::store_error::StoreError;
use crate::records::alert::{
    ActionClaim, Decision, DecisionResult, DecisionSource, PendingWarning,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const NOW: &str = "2026-11-24T10:00:00Z";

struct World {
    alerts: Arc<MemoryAlertStore>,
    enrolments: Arc<MemoryEnrolmentStore>,
    journal: Arc<MemoryJournal>,
    api: Arc<FakeChargebackStop>,
    archive: Arc<MemoryArchive>,
    processor: EventProcessor,
}

/// The stores share one journal (one archive table), and the processor commits through them.
fn world() -> World {
    let events = Arc::new(MemoryEventLog::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let journal = alerts.journal();
    let enrolments = Arc::new(MemoryEnrolmentStore::default().with_journal(journal.clone()));
    let api = Arc::new(FakeChargebackStop::default());
    let processor = EventProcessor {
        commits: Arc::new(MemoryCommitter::new(
            events.clone(),
            alerts.clone(),
            enrolments.clone(),
        )),
        events,
        alerts: alerts.clone(),
        enrolments: enrolments.clone(),
        alert_api: api.clone(),
        enrolment_api: api.clone(),
        notifier: Arc::new(RecordingNotifier::default()),
        // Leaves every alert to a person: the policy's LEFT_FOR_PERSON decision is recorded.
        policies: Arc::new(FixedPolicy(AlertPolicy::default())),
        partner_records: Arc::new(crate::ports::decision_inputs::NoPartnerRecords),
        clock: Arc::new(FixedClock::at(ts(NOW))),
        not_found_retry_for: chrono::Duration::hours(1),
        refund_first: None,
    };
    World {
        alerts,
        enrolments,
        journal,
        api,
        archive: Arc::new(MemoryArchive::default()),
        processor,
    }
}

fn raw(event_id: &str, kind: &str, object: serde_json::Value, received: &str) -> RawDelivery {
    let body = serde_json::json!({"id": event_id, "type": kind,
        "created_at": "2026-11-24T09:59:00Z", "data": {"object": object}});
    let mut attributes = BTreeMap::new();
    attributes.insert("event_id".into(), event_id.into());
    attributes.insert("event_type".into(), kind.into());
    attributes.insert("idempotency_key".into(), format!("idem-{event_id}"));
    attributes.insert("received_at".into(), received.into());
    RawDelivery {
        message_id: format!("m-{event_id}"),
        body: body.to_string().into_bytes(),
        attributes,
    }
}

impl World {
    /// Archive and process, as process-events does.
    async fn deliver(&self, r: &RawDelivery) {
        self.archive
            .put(&archived_from(r, ts(NOW), 400))
            .await
            .unwrap();
        let incoming = IncomingEvent {
            message_id: r.message_id.clone(),
            body: String::from_utf8(r.body.clone()).unwrap(),
            idempotency_key: r.attributes.get("idempotency_key").cloned(),
            received_at: r.attributes.get("received_at").cloned(),
            receive_count: 1,
            ..Default::default()
        };
        self.processor
            .process(&incoming, ts(NOW) + chrono::Duration::seconds(30))
            .await
            .unwrap();
    }

    fn sources(&self, listing: Listing) -> StateSources {
        StateSources {
            archive: self.archive.clone(),
            listing: Arc::new(listing),
            alert_api: self.api.clone(),
            enrolment_api: self.api.clone(),
            alerts: self.alerts.clone(),
            enrolments: self.enrolments.clone(),
            journal: self.journal.clone(),
            notifier: Arc::new(RecordingNotifier::default()),
            policies: self.processor.policies.clone(),
            partner_records: self.processor.partner_records.clone(),
            clock: self.processor.clock.clone(),
            page_size: 2,
        }
    }

    async fn alert_records(&self) -> BTreeMap<String, AlertRecord> {
        let all = self.alerts.by_organisation("org_1", 100).await.unwrap();
        all.into_iter().map(|r| (r.alert_id.clone(), r)).collect()
    }

    async fn enrolment_records(&self) -> BTreeMap<String, EnrolmentRecord> {
        let all = self.enrolments.by_organisation("org_1").await.unwrap();
        all.into_iter()
            .map(|r| (r.enrolment_id.clone(), r))
            .collect()
    }
}

/// What cannot come back: when we fetched, the item's write counter, when the match was made.
fn comparable<T: serde::Serialize>(record: &T) -> serde_json::Value {
    let mut v = to_json(record);
    let map = v.as_object_mut().unwrap();
    map.remove("fetched_at");
    map.remove("revision");
    if let Some(serde_json::Value::Object(m)) =
        map.get_mut("alert_match").and_then(|m| m.get_mut("match"))
    {
        m.remove("matched_at");
    }
    v
}

fn operator_refund() -> Decision {
    Decision {
        at: "2026-11-24T09:30:00.000Z".into(),
        source: DecisionSource::Operator,
        actor: "op_ana".into(),
        action: Some(AlertAction::Refund),
        reason: "customer asked twice".into(),
        note: Some("Refunded in full, case 1182".into()),
        result: DecisionResult::Applied,
        detail: None,
    }
}

/// The tables a day of work leaves: `a1` decided (the policy left it to a person, an operator
/// refunded with a note), `a2` warned twice with a warning pending and a claim held, `a3` (no
/// webhook: only the reconciliation pass finds it) warned once, `e1` PENDING then ENABLED by
/// two events (its history names them).
async fn a_day_of_work(w: &World) -> Listing {
    let a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    let a2 = alert("a2", "ETHOCA_ALERT", "ACTION_REQUIRED", 200);
    let a3 = alert("a3", "ETHOCA_ALERT", "ACTION_REQUIRED", 300);
    let pending = enrolment("e1", "PENDING", "2026-11-24T08:00:00Z", None);
    let enabled = enrolment("e1", "ENABLED", "2026-11-24T08:30:00Z", None);
    for a in [&a1, &a2, &a3] {
        w.api.put_alert(a.clone());
    }
    w.api.put_enrolment(pending.clone());
    w.deliver(&raw(
        "evt_e1",
        "enrolment.updated",
        to_json(&pending),
        "2026-11-24T08:00:01Z",
    ))
    .await;
    w.api.put_enrolment(enabled.clone());
    w.deliver(&raw(
        "evt_e2",
        "enrolment.updated",
        to_json(&enabled),
        "2026-11-24T08:30:01Z",
    ))
    .await;
    for (evt, a) in [("evt_1", &a1), ("evt_2", &a2)] {
        w.deliver(&raw(
            evt,
            "alert.created",
            to_json(a),
            "2026-11-24T09:00:00Z",
        ))
        .await;
    }
    let now = ts(NOW);
    // An operator's decision, with its note (the policy's LEFT_FOR_PERSON is already there).
    append_decision(&*w.alerts, "a1", operator_refund(), None, None, now)
        .await
        .unwrap();
    // The sweep's bookkeeping and a claim on a2.
    update_alert_record(&*w.alerts, "a2", |r| {
        let mut r = r?;
        r.warned_thresholds = vec!["48h".into(), "24h".into()];
        r.pending_warning = Some(PendingWarning {
            labels: vec!["6h".into()],
            tightest: "6h".into(),
            until: "2026-11-24T10:05:00.000Z".into(),
        });
        r.action_claim = Some(ActionClaim {
            owner: "tok_1".into(),
            source: DecisionSource::Sweep,
            actor: "deadline-sweep".into(),
            until: "2026-11-24T10:03:00.000Z".into(),
        });
        r.revision += 1;
        Some(r)
    })
    .await
    .unwrap();
    // a3: stored by a reconciliation (no webhook), then warned.
    crate::domain::alert_record::store_fetched_alert(&*w.alerts, &a3, now)
        .await
        .unwrap();
    update_alert_record(&*w.alerts, "a3", |r| {
        let mut r = r?;
        r.warned_thresholds = vec!["48h".into()];
        r.revision += 1;
        Some(r)
    })
    .await
    .unwrap();
    Listing(vec![a1, a2, a3], vec![enabled])
}

#[tokio::test]
async fn rebuild_gives_back_every_record_with_its_bookkeeping() {
    let w = world();
    let listing = a_day_of_work(&w).await;
    let alerts_before = w.alert_records().await;
    let enrolments_before = w.enrolment_records().await;
    // The records carry what the comparison must prove comes back.
    let a1 = &alerts_before["a1"];
    assert!(a1
        .decisions
        .iter()
        .any(|d| d.source == DecisionSource::AutoPolicy));
    assert!(a1.decisions.contains(&operator_refund()));
    assert_eq!(alerts_before["a2"].warned_thresholds.len(), 2);
    assert!(alerts_before["a2"].action_claim.is_some());
    assert_eq!(
        alerts_before["a3"].warned_thresholds,
        vec!["48h".to_string()]
    );
    let history = &enrolments_before["e1"].status_history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].event_id.as_deref(), Some("evt_e2"));

    // The tables emptied (the journal is in the archive table: it stays).
    w.alerts.clear();
    w.enrolments.clear();
    let report = rebuild(
        &w.sources(listing),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        (report.alerts_refetched, report.enrolments_refetched),
        (2, 1)
    );
    assert_eq!(report.reconcile.recovered, vec!["a3".to_string()]);
    assert_eq!(report.bookkeeping_restored, 4, "{report:?}");
    assert!(report.bookkeeping_not_journaled.is_empty(), "{report:?}");

    let alerts_after = w.alert_records().await;
    let enrolments_after = w.enrolment_records().await;
    assert_eq!(alerts_after.len(), 3);
    for (id, before) in &alerts_before {
        assert_eq!(comparable(&alerts_after[id]), comparable(before), "{id}");
    }
    for (id, before) in &enrolments_before {
        assert_eq!(
            comparable(&enrolments_after[id]),
            comparable(before),
            "{id}"
        );
    }

    // Again, the tables intact: nothing to restore, nothing changes.
    let report = rebuild(
        &w.sources(Listing(vec![], vec![])),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.bookkeeping_restored, 0, "{report:?}");
    assert_eq!(report.bookkeeping_current, 4, "{report:?}");
    let again = w.alert_records().await;
    for (id, after) in &alerts_after {
        assert_eq!(comparable(&again[id]), comparable(after), "{id}");
    }
}

#[tokio::test]
async fn a_record_the_journal_does_not_hold_is_reported_not_silently_rebuilt_bare() {
    let w = world();
    let listing = a_day_of_work(&w).await;
    // a1 written before the journal existed; e1's entry expired.
    w.journal.forget_alert("a1");
    w.journal.forget_enrolment("e1");
    w.alerts.clear();
    w.enrolments.clear();
    let report = rebuild(
        &w.sources(listing),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        report.bookkeeping_not_journaled,
        vec!["a1".to_string(), "e1".to_string()],
        "{report:?}"
    );
    assert_eq!(report.bookkeeping_restored, 2, "a2 and a3: {report:?}");
    assert!(w.alerts.get("a1").await.unwrap().is_some(), "still rebuilt");
}

#[tokio::test]
async fn a_journal_that_cannot_be_read_leaves_the_record_for_the_next_run() {
    let w = world();
    let listing = a_day_of_work(&w).await;
    let before = w.alerts.get("a1").await.unwrap().unwrap();
    w.alerts.clear();
    w.enrolments.clear();
    *w.journal.fail_next_reads.lock().unwrap() = 1;
    let report = rebuild(
        &w.sources(listing),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(report.errors[0].0, "a1");
    // Not stored bare: the entry is intact, and the next run restores it. (The reconciliation
    // pass stores the view; the entry, newer, still goes on it after the pass.)
    let after = w.alerts.get("a1").await.unwrap().unwrap();
    assert_eq!(after.decisions, before.decisions);
}

#[tokio::test]
async fn a_versioned_put_that_loses_its_race_writes_neither_the_record_nor_the_journal() {
    let w = world();
    let a = alert("a9", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    crate::domain::alert_record::store_fetched_alert(&*w.alerts, &a, ts(NOW))
        .await
        .unwrap();
    let stored = w.alerts.get("a9").await.unwrap().unwrap();
    let journaled = w.journal.alert("a9").unwrap();
    assert_eq!(journaled.revision, 1);

    // A writer that read revision 1, while another wrote revision 2 first.
    let mut winner = stored.clone();
    winner.warned_thresholds = vec!["24h".into()];
    winner.revision = 2;
    w.alerts.put(&winner).await.unwrap();
    let mut loser = stored.clone();
    loser.decisions.push(operator_refund());
    loser.revision = 2;
    let lost = w.alerts.put(&loser).await;
    assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{lost:?}");
    assert_eq!(w.alerts.get("a9").await.unwrap().unwrap(), winner);
    let entry = w.journal.alert("a9").unwrap();
    assert_eq!(
        (entry.revision, entry.bookkeeping.warned_thresholds.len()),
        (2, 1)
    );
    assert!(
        entry.bookkeeping.decisions.is_empty(),
        "the loser's decision"
    );

    // The same through an event's commit.
    let mut loser = winner.clone();
    loser.decisions.push(operator_refund());
    let commit = EventCommit {
        alert: Some(loser),
        ..Default::default()
    };
    let committer = MemoryCommitter::new(
        Arc::new(MemoryEventLog::default()),
        w.alerts.clone(),
        w.enrolments.clone(),
    );
    assert!(committer.commit(&commit).await.is_err());
    assert!(w
        .journal
        .alert("a9")
        .unwrap()
        .bookkeeping
        .decisions
        .is_empty());

    // An enrolment's lost race, too.
    let e = enrolment("e9", "PENDING", "2026-11-24T08:00:00Z", None);
    crate::domain::enrolment_lifecycle::store_fetched_enrolment(
        &*w.enrolments,
        &RecordingNotifier::default(),
        &e,
        Some("evt_9"),
        ts(NOW),
    )
    .await
    .unwrap();
    let mut stale = w.enrolments.get("e9").await.unwrap().unwrap();
    stale.status_history.clear();
    assert!(w.enrolments.put(&stale).await.is_err(), "revision 1 again");
    assert_eq!(
        w.journal
            .enrolment("e9")
            .unwrap()
            .bookkeeping
            .status_history
            .len(),
        1
    );
}

#[tokio::test]
async fn a_table_restored_from_an_older_backup_gets_the_newer_bookkeeping_back() {
    let w = world();
    let listing = a_day_of_work(&w).await;
    let backup = w.alerts.get("a1").await.unwrap().unwrap();
    // After the backup, the alert is warned and its claim taken.
    update_alert_record(&*w.alerts, "a1", |r| {
        let mut r = r?;
        r.warned_thresholds = vec!["24h".into()];
        r.revision += 1;
        Some(r)
    })
    .await
    .unwrap();
    let latest = w.alerts.get("a1").await.unwrap().unwrap();
    w.alerts.restore_from_backup(backup.clone());
    let report = rebuild(
        &w.sources(listing),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.bookkeeping_restored, 1, "{report:?}");
    let after = w.alerts.get("a1").await.unwrap().unwrap();
    assert_eq!(comparable(&after), comparable(&latest));
    assert_eq!(w.journal.alert("a1").unwrap().revision, after.revision);
}

#[tokio::test]
async fn every_write_replaces_the_entry_with_what_it_wrote() {
    let w = world();
    let a = alert("a8", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    crate::domain::alert_record::store_fetched_alert(&*w.alerts, &a, ts(NOW))
        .await
        .unwrap();
    let mut next = w.alerts.get("a8").await.unwrap().unwrap();
    next.warned_thresholds.push("6h".into());
    next.revision += 1;
    w.alerts.put(&next).await.unwrap();
    let entry = w.journal.alert("a8").unwrap();
    assert_eq!(entry.revision, next.revision);
    assert_eq!(
        entry.bookkeeping,
        crate::records::bookkeeping::AlertBookkeeping::of(&next)
    );
}

#[tokio::test]
async fn an_alert_process_events_did_not_match_is_not_matched_by_the_rebuild() {
    let mut w = world();
    w.processor.partner_records = Arc::new(crate::domain::matching::IndexedPartnerRecords::new(
        Arc::new(crate::adapters::memory_transactions::MemoryTransactionIndex::default()),
        w.processor.clock.clone(),
    ));
    let waiting = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    // Resolved before we saw it: stored, never looked at by the policy, so never matched.
    let resolved = alert("a2", "ETHOCA_ALERT", "RESOLVED", 200);
    for (evt, a) in [("evt_1", &waiting), ("evt_2", &resolved)] {
        w.api.put_alert(a.clone());
        w.deliver(&raw(
            evt,
            "alert.created",
            to_json(a),
            "2026-11-24T09:00:00Z",
        ))
        .await;
    }
    let before = w.alert_records().await;
    assert!(before["a1"].alert_match.is_some());
    assert!(before["a2"].alert_match.is_none());
    w.alerts.clear();
    let listing = Listing(vec![waiting, resolved], vec![]);
    let report = rebuild(
        &w.sources(listing),
        ts("2025-10-20T00:00:00Z"),
        &[],
        &budget(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    let after = w.alert_records().await;
    for id in ["a1", "a2"] {
        assert_eq!(comparable(&after[id]), comparable(&before[id]), "{id}");
    }
}
