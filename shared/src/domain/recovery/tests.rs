//! Recovery over in-memory fakes that fail as the real services do.

use super::archive::{archived_from, RawDelivery};
use super::dlq::{self, notify_due, reason_kind};
use super::rebuild::{rebuild, reconcile_organisations, StateSources};
use super::replay::{ReplayOptions, ReplayResult, ReplaySelection, Replayer};
use crate::adapters::memory::{
    FakeChargebackStop, MemoryAlertStore, MemoryEnrolmentStore, MemoryEventLog, RecordingNotifier,
};
use crate::adapters::memory_recovery::{MemoryArchive, MemoryDeadLetterQueue};
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::deadline_sweep::RunBudget;
use crate::domain::event_processing::{EventProcessor, IncomingEvent};
use crate::domain::reconcile::ReconcileListing;
use crate::domain::test_support::{alert, enrolment, ts};
use crate::models::alert::Alert;
use crate::models::enrolment::Enrolment;
use crate::models::page::Page;
use crate::ports::alert_api::ApiCallError;
use crate::ports::alert_store::AlertStore;
use crate::ports::dead_letters::DeadLetterMessage;
use crate::ports::enrolment_store::EnrolmentStore;
use crate::ports::event_archive::EventArchive;
use crate::ports::event_log::EventStatus;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) const NOW: &str = "2026-11-24T10:00:00Z";

pub(super) struct World {
    pub(super) events: Arc<MemoryEventLog>,
    pub(super) alerts: Arc<MemoryAlertStore>,
    pub(super) enrolments: Arc<MemoryEnrolmentStore>,
    pub(super) api: Arc<FakeChargebackStop>,
    pub(super) archive: Arc<MemoryArchive>,
    pub(super) processor: EventProcessor,
}

pub(super) fn world() -> World {
    let events = Arc::new(MemoryEventLog::default());
    let alerts = Arc::new(MemoryAlertStore::default());
    let enrolments = Arc::new(MemoryEnrolmentStore::default());
    let api = Arc::new(FakeChargebackStop::default());
    let processor = EventProcessor {
        commits: Arc::new(crate::adapters::memory_commit::MemoryCommitter::new(
            events.clone(),
            alerts.clone(),
            enrolments.clone(),
        )),
        events: events.clone(),
        alerts: alerts.clone(),
        enrolments: enrolments.clone(),
        alert_api: api.clone(),
        enrolment_api: api.clone(),
        notifier: Arc::new(RecordingNotifier::default()),
        // Leave every alert to a person: replay tests are about the path, not the policy.
        policies: Arc::new(FixedPolicy(AlertPolicy::default())),
        partner_records: Arc::new(crate::ports::decision_inputs::NoPartnerRecords),
        clock: Arc::new(FixedClock::at(ts(NOW))),
        not_found_retry_for: chrono::Duration::hours(1),
        refund_first: None,
    };
    World {
        events,
        alerts,
        enrolments,
        api,
        archive: Arc::new(MemoryArchive::default()),
        processor,
    }
}

pub(super) fn body(event_id: &str, kind: &str, object: serde_json::Value) -> String {
    serde_json::json!({"id": event_id, "type": kind, "created_at": "2026-11-24T09:59:00Z",
        "data": {"object": object}})
    .to_string()
}

pub(super) fn raw(
    event_id: &str,
    kind: &str,
    object: serde_json::Value,
    received: &str,
) -> RawDelivery {
    let mut attributes = BTreeMap::new();
    attributes.insert("event_id".into(), event_id.into());
    attributes.insert("event_type".into(), kind.into());
    attributes.insert("idempotency_key".into(), format!("idem-{event_id}"));
    attributes.insert("received_at".into(), received.into());
    attributes.insert("signature_timestamp".into(), "1795000000".into());
    RawDelivery {
        message_id: format!("m-{event_id}"),
        body: body(event_id, kind, object).into_bytes(),
        attributes,
    }
}

impl World {
    /// Archive and process as process-events does.
    pub(super) async fn deliver(&self, r: &RawDelivery) {
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

    /// Archived only: the Worker queued it, processing never happened (or was lost).
    pub(super) async fn archive_only(&self, r: &RawDelivery) {
        self.archive
            .put(&archived_from(r, ts(NOW), 400))
            .await
            .unwrap();
    }

    pub(super) fn replayer(&self) -> Replayer {
        Replayer {
            processor: self.processor.clone(),
            archive: self.archive.clone(),
            verify_refused_with: None,
        }
    }

    pub(super) async fn replay(
        &self,
        sel: ReplaySelection,
        options: ReplayOptions,
    ) -> Vec<ReplayResult> {
        let r = self.replayer();
        let selected = r.select(&sel).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        r.replay(&selected, options, deadline, 30, |_| {})
            .await
            .into_iter()
            .map(|i| i.result)
            .collect()
    }
}

pub(super) fn ids(ids: &[&str]) -> ReplaySelection {
    ReplaySelection {
        event_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[tokio::test]
async fn the_archive_keeps_each_delivery_once_whatever_its_type() {
    let w = world();
    let a = raw(
        "evt_1",
        "alert.created",
        to_json(&alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100)),
        "2026-11-24T09:00:00Z",
    );
    let other = raw(
        "evt_2",
        "scheme_notice.created",
        serde_json::json!({"id": "sn_1"}),
        "2026-11-24T09:01:00Z",
    );
    let mut poison = RawDelivery {
        message_id: "m-p".into(),
        body: b"\xff not json".to_vec(),
        ..Default::default()
    };
    poison
        .attributes
        .insert("idempotency_key".into(), "idem-p".into());
    for r in [&a, &a, &other, &poison] {
        w.archive_only(r).await;
    }
    let all = w.archive.all();
    assert_eq!(all.len(), 3, "the same delivery twice is stored once");
    let p = all.iter().find(|d| d.event_id == "sqs:m-p").unwrap();
    assert_eq!(p.body, b"\xff not json".to_vec());
    assert_eq!(p.event_type, "unparseable");
    let e1 = all.iter().find(|d| d.event_id == "evt_1").unwrap();
    assert_eq!(e1.organisation_id.as_deref(), Some("org_1"));
    assert_eq!(e1.object_id.as_deref(), Some("a1"));
    assert_eq!(e1.headers["X-Idempotency-Key"], "idem-evt_1");
}

#[tokio::test]
async fn a_failed_archive_write_that_went_through_is_not_stored_twice() {
    let w = world();
    let a = raw(
        "evt_1",
        "alert.created",
        serde_json::json!({"id": "a1"}),
        NOW,
    );
    *w.archive.fail_after_put.lock().unwrap() = 1;
    assert!(w
        .archive
        .put(&archived_from(&a, ts(NOW), 400))
        .await
        .is_err());
    // The retry finds it stored.
    assert!(!w
        .archive
        .put(&archived_from(&a, ts(NOW), 400))
        .await
        .unwrap());
    assert_eq!(w.archive.all().len(), 1);
}

#[tokio::test]
async fn replay_applies_what_never_ran_and_skips_what_completed() {
    let w = world();
    let a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    let a2 = alert("a2", "ETHOCA_ALERT", "ACTION_REQUIRED", 200);
    w.api.put_alert(a1.clone());
    w.api.put_alert(a2.clone());
    w.deliver(&raw(
        "evt_1",
        "alert.created",
        to_json(&a1),
        "2026-11-24T09:00:00Z",
    ))
    .await;
    w.archive_only(&raw(
        "evt_2",
        "alert.created",
        to_json(&a2),
        "2026-11-24T09:01:00Z",
    ))
    .await;

    // A dry run changes nothing.
    let dry = w
        .replay(
            ids(&["evt_1", "evt_2", "evt_missing"]),
            ReplayOptions {
                dry_run: true,
                reprocess: false,
            },
        )
        .await;
    assert!(matches!(dry[0], ReplayResult::NotArchived));
    assert!(matches!(dry[1], ReplayResult::SkippedCompleted { .. }));
    assert_eq!(dry[2], ReplayResult::WouldReplay);
    assert!(w.alerts.get("a2").await.unwrap().is_none());

    let gets_before = w.api.gets();
    let done = w
        .replay(ids(&["evt_1", "evt_2"]), ReplayOptions::default())
        .await;
    assert!(
        matches!(done[0], ReplayResult::SkippedCompleted { .. }),
        "{done:?}"
    );
    assert!(matches!(done[1], ReplayResult::Replayed { .. }), "{done:?}");
    assert_eq!(
        w.api.gets(),
        gets_before + 1,
        "only the replayed event re-fetched"
    );
    assert!(w.alerts.get("a2").await.unwrap().is_some());
    assert_eq!(
        w.events.record("evt_2").unwrap().status,
        EventStatus::Completed
    );

    // Again: both completed, nothing fetched, nothing written.
    let again = w
        .replay(ids(&["evt_1", "evt_2"]), ReplayOptions::default())
        .await;
    assert!(again
        .iter()
        .all(|r| matches!(r, ReplayResult::SkippedCompleted { .. })));
    assert_eq!(w.api.gets(), gets_before + 1);
}

#[tokio::test]
async fn reprocess_reruns_a_completed_event_on_a_fresh_fetch() {
    let w = world();
    let mut a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    w.api.put_alert(a1.clone());
    w.deliver(&raw(
        "evt_1",
        "alert.created",
        to_json(&a1),
        "2026-11-24T09:00:00Z",
    ))
    .await;
    // ChargebackStop moved on; our copy is older (its webhook was refused, say).
    a1.status = "RESOLVED".parse().unwrap();
    a1.updated_at = Some(ts("2026-11-24T09:30:00Z"));
    w.api.put_alert(a1.clone());
    let out = w
        .replay(
            ids(&["evt_1"]),
            ReplayOptions {
                dry_run: false,
                reprocess: true,
            },
        )
        .await;
    assert!(matches!(out[0], ReplayResult::Replayed { .. }), "{out:?}");
    let stored = w.alerts.get("a1").await.unwrap().unwrap();
    assert_eq!(
        stored.alert.status.to_string(),
        "RESOLVED",
        "the fresh view, not the archived payload"
    );
    assert_eq!(
        w.events.record("evt_1").unwrap().status,
        EventStatus::Completed
    );
}

#[tokio::test]
async fn a_replay_that_fails_is_reported_and_left_replayable() {
    let w = world();
    let a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    w.api.put_alert(a1.clone());
    w.archive_only(&raw(
        "evt_1",
        "alert.created",
        to_json(&a1),
        "2026-11-24T09:00:00Z",
    ))
    .await;
    w.api.fail_next_calls(1, 0);
    let out = w.replay(ids(&["evt_1"]), ReplayOptions::default()).await;
    assert!(matches!(out[0], ReplayResult::Failed { .. }), "{out:?}");
    assert!(w.events.record("evt_1").is_none(), "claim released");
    let out = w.replay(ids(&["evt_1"]), ReplayOptions::default()).await;
    assert!(matches!(out[0], ReplayResult::Replayed { .. }), "{out:?}");
}

#[tokio::test]
async fn a_window_is_filtered_by_type_and_organisation() {
    let w = world();
    let a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    let mut a2 = alert("a2", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    a2.organisation_id = "org_2".into();
    let e1 = enrolment("e1", "ENABLED", "2026-11-24T08:00:00Z", None);
    w.archive_only(&raw(
        "evt_1",
        "alert.created",
        to_json(&a1),
        "2026-11-24T09:00:00Z",
    ))
    .await;
    w.archive_only(&raw(
        "evt_2",
        "alert.updated",
        to_json(&a2),
        "2026-11-24T09:10:00Z",
    ))
    .await;
    w.archive_only(&raw(
        "evt_3",
        "enrolment.updated",
        to_json(&e1),
        "2026-11-24T09:20:00Z",
    ))
    .await;
    w.archive_only(&raw(
        "evt_4",
        "alert.created",
        to_json(&a1),
        "2026-11-24T11:00:00Z",
    ))
    .await;
    let r = w.replayer();
    let pick = |sel: ReplaySelection| {
        let r = r.clone();
        async move {
            r.select(&sel)
                .await
                .unwrap()
                .deliveries
                .into_iter()
                .map(|d| d.event_id)
                .collect::<Vec<_>>()
        }
    };
    let window = ReplaySelection {
        since: Some(ts("2026-11-24T08:00:00Z")),
        until: Some(ts("2026-11-24T10:00:00Z")),
        ..Default::default()
    };
    assert_eq!(pick(window.clone()).await, vec!["evt_1", "evt_2", "evt_3"]);
    assert_eq!(
        pick(ReplaySelection {
            event_type: Some("alert.*".into()),
            ..window.clone()
        })
        .await,
        vec!["evt_1", "evt_2"]
    );
    assert_eq!(
        pick(ReplaySelection {
            organisation_id: Some("org_2".into()),
            ..window
        })
        .await,
        vec!["evt_2"]
    );
}

fn dead(id: &str, reason: Option<&str>, body: &str) -> DeadLetterMessage {
    let mut attributes = BTreeMap::new();
    if let Some(r) = reason {
        attributes.insert("reason".into(), r.to_string());
    }
    attributes.insert("receive_count".into(), "3".into());
    DeadLetterMessage {
        message_id: id.into(),
        body: body.into(),
        attributes,
        group_id: Some("g".into()),
        ..Default::default()
    }
}

#[test]
fn notifications_go_to_the_first_and_every_100th() {
    let due: Vec<u64> = (0..=301).filter(|n| notify_due(*n)).collect();
    assert_eq!(due, vec![1, 101, 201, 301]);
    assert_eq!(reason_kind("poison: not JSON"), "poison");
    assert_eq!(
        reason_kind("alert x not found (404) for more than 3600 s"),
        "given_up"
    );
}

#[tokio::test]
async fn dlq_messages_are_listed_with_their_reason_event_and_object() {
    let q = MemoryDeadLetterQueue::default();
    q.push(dead(
        "d1",
        Some("alert a1 not found"),
        &body("evt_1", "alert.created", serde_json::json!({"id": "a1"})),
    ));
    q.push(dead("d2", None, "{not json"));
    let list = dlq::list(&q, 50).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].event_id.as_deref(), Some("evt_1"));
    assert_eq!(list[0].object_id.as_deref(), Some("a1"));
    assert_eq!(list[0].event_type.as_deref(), Some("alert.created"));
    assert_eq!(list[0].source_receive_count, Some(3));
    assert_eq!(list[1].reason, dlq::MOVED_BY_SQS);
    assert_eq!(q.remaining(), 2, "listing takes nothing");
}

#[tokio::test]
async fn redrive_moves_each_message_exactly_once_even_when_a_delete_fails() {
    let q = MemoryDeadLetterQueue::default();
    let archive = MemoryArchive::default();
    for i in 0..3 {
        q.push(dead(&format!("d{i}"), Some("poison: x"), "{}"));
    }
    q.push(dead("keep", Some("alert a9 not found"), "{}"));
    archive.count_dead_letter("poison").await.unwrap();
    *q.fail_deletes.lock().unwrap() = 1;

    let first = dlq::redrive(&q, Some(&archive), Some("poison"), 10, |_| {})
        .await
        .unwrap();
    assert_eq!(first.moved.len(), 2);
    assert_eq!(first.failed.len(), 1, "sent, not deleted");
    assert_eq!(first.skipped, 1);
    assert!(!first.drained);
    // The undeleted message comes back and is sent again: the source drops the copy.
    q.tick(61);
    let second = dlq::redrive(&q, Some(&archive), Some("poison"), 10, |_| {})
        .await
        .unwrap();
    assert_eq!(second.moved.len(), 1);
    assert_eq!(q.source().len(), 3, "three messages, each once");
    assert_eq!(q.remaining(), 1, "the other reason stays");

    // --max, then the rest; drained resets the counters.
    q.tick(61);
    let last = dlq::redrive(&q, Some(&archive), None, 1, |_| {})
        .await
        .unwrap();
    assert_eq!(last.moved, vec!["keep".to_string()]);
    assert!(last.drained);
    assert_eq!(
        archive.count_dead_letter("poison").await.unwrap(),
        1,
        "counting starts again"
    );
}

#[tokio::test(start_paused = true)]
async fn the_whole_queue_goes_by_the_services_move_task_where_it_runs_one() {
    let q = MemoryDeadLetterQueue::default();
    let archive = MemoryArchive::default();
    for i in 0..3 {
        q.push(dead(&format!("d{i}"), Some("poison: x"), "{}"));
    }
    archive.count_dead_letter("poison").await.unwrap();
    *q.runs_move_tasks.lock().unwrap() = true;
    let mut seen = Vec::new();
    let r = dlq::redrive(&q, Some(&archive), None, 1000, |step| {
        if let dlq::RedriveStep::TaskMoved(n) = step {
            seen.push(n);
        }
    })
    .await
    .unwrap();
    assert_eq!(r.methods, vec!["StartMessageMoveTask"]);
    assert_eq!((r.moved_by_task, r.moved_count()), (3, 3));
    assert!(r.moved.is_empty(), "nothing sent one by one");
    assert_eq!(seen.last(), Some(&3), "progress from the task's count");
    assert!(r.drained && r.failed.is_empty(), "{r:?}");
    assert_eq!(q.source().len(), 3);
    assert_eq!(archive.count_dead_letter("poison").await.unwrap(), 1);

    // A filter or a limit below the depth cannot be a move task: one by one.
    q.push(dead("p1", Some("poison: y"), "{}"));
    q.push(dead("g1", Some("alert a9 not found"), "{}"));
    let filtered = dlq::redrive(&q, None, Some("poison"), 1000, |_| {})
        .await
        .unwrap();
    assert_eq!(filtered.methods, vec!["receive-send-delete"]);
    assert_eq!(filtered.moved, vec!["p1".to_string()]);
    let limited = dlq::redrive(&q, None, None, 0, |_| {}).await.unwrap();
    assert_eq!(limited.methods, vec!["receive-send-delete"]);
    assert_eq!(q.remaining(), 1);
}

#[tokio::test(start_paused = true)]
async fn what_a_failed_move_task_left_is_moved_one_by_one_and_each_message_once() {
    let q = MemoryDeadLetterQueue::default();
    for i in 0..5 {
        q.push(dead(&format!("d{i}"), Some("poison: x"), "{}"));
    }
    *q.runs_move_tasks.lock().unwrap() = true;
    *q.move_task_fails_after.lock().unwrap() = Some(2);
    let r = dlq::redrive(&q, None, None, 1000, |_| {}).await.unwrap();
    assert_eq!(
        r.methods,
        vec!["StartMessageMoveTask", "receive-send-delete"]
    );
    assert_eq!((r.moved_by_task, r.moved.len()), (2, 3));
    assert!(r.notes[0].contains("FAILED after 2"), "{:?}", r.notes);
    assert!(r.failed.is_empty() && r.drained, "{r:?}");
    let mut ids: Vec<String> = q.source().into_iter().map(|m| m.message_id).collect();
    ids.sort();
    assert_eq!(ids, vec!["d0", "d1", "d2", "d3", "d4"], "each once");
}

#[tokio::test]
async fn a_refused_send_leaves_the_message_in_the_dlq() {
    let q = MemoryDeadLetterQueue::default();
    q.push(dead("d1", Some("poison: x"), "{}"));
    *q.fail_sends.lock().unwrap() = 1;
    let r = dlq::redrive(&q, None, None, 10, |_| {}).await.unwrap();
    assert!(r.moved.is_empty());
    assert_eq!(r.failed.len(), 1);
    assert_eq!(q.remaining(), 1);
    assert!(q.source().is_empty());
}

/// Lists what the fake API holds (also `rebuild_tests`).
pub(super) struct Listing(pub(super) Vec<Alert>, pub(super) Vec<Enrolment>);

#[async_trait::async_trait]
impl ReconcileListing for Listing {
    async fn alerts_page(
        &self,
        org: &str,
        from: DateTime<Utc>,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Alert>, ApiCallError> {
        let items: Vec<Alert> = self
            .0
            .iter()
            .filter(|a| a.organisation_id == org && a.alert_received_at.is_some_and(|r| r >= from))
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(Page { items, count: None })
    }
    async fn enrolments_page(
        &self,
        org: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Enrolment>, ApiCallError> {
        let items: Vec<Enrolment> = self
            .1
            .iter()
            .filter(|e| e.organisation_id == org)
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(Page { items, count: None })
    }
}

fn sources(
    w: &World,
    alerts: Arc<MemoryAlertStore>,
    enrolments: Arc<MemoryEnrolmentStore>,
    listing: Listing,
) -> StateSources {
    StateSources {
        archive: w.archive.clone(),
        listing: Arc::new(listing),
        alert_api: w.api.clone(),
        enrolment_api: w.api.clone(),
        journal: alerts.journal(),
        alerts,
        enrolments,
        notifier: Arc::new(RecordingNotifier::default()),
        policies: w.processor.policies.clone(),
        partner_records: w.processor.partner_records.clone(),
        clock: w.processor.clock.clone(),
        page_size: 2,
    }
}

pub(super) fn budget() -> RunBudget {
    RunBudget::new(Duration::from_secs(60), Duration::from_secs(1), ts(NOW))
}

#[tokio::test]
async fn rebuild_restores_what_chargebackstop_holds_from_the_archive_and_a_pass() {
    let mut w = world();
    // Alerts matched against the partner's transactions, as process-events does: the match
    // process-events stored comes back with the rebuilt alert.
    w.processor.partner_records = Arc::new(crate::domain::matching::IndexedPartnerRecords::new(
        Arc::new(crate::adapters::memory_transactions::MemoryTransactionIndex::default()),
        w.processor.clock.clone(),
    ));
    let a1 = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    let a2 = alert("a2", "VERIFI_RDR", "RESOLVED", 200);
    // Never had a webhook: only the reconciliation pass finds it.
    let a3 = alert("a3", "ETHOCA_ALERT", "RESOLVED", 300);
    let e1 = enrolment("e1", "ENABLED", "2026-11-24T08:00:00Z", None);
    for a in [&a1, &a2, &a3] {
        w.api.put_alert(a.clone());
    }
    w.api.put_enrolment(e1.clone());
    w.deliver(&raw(
        "evt_1",
        "alert.created",
        to_json(&a1),
        "2026-11-24T09:00:00Z",
    ))
    .await;
    w.deliver(&raw(
        "evt_2",
        "alert.created",
        to_json(&a2),
        "2026-11-24T09:01:00Z",
    ))
    .await;
    w.deliver(&raw(
        "evt_3",
        "enrolment.updated",
        to_json(&e1),
        "2026-11-24T09:02:00Z",
    ))
    .await;
    let listing = || Listing(vec![a1.clone(), a2.clone(), a3.clone()], vec![e1.clone()]);
    // The original tables, with a reconciliation pass as the sweep would have made.
    reconcile_organisations(
        &sources(&w, w.alerts.clone(), w.enrolments.clone(), listing()),
        &["org_1".to_string()],
        ts("2026-11-01T00:00:00Z"),
        &budget(),
    )
    .await;

    let (alerts, enrolments) = (
        Arc::new(MemoryAlertStore::default()),
        Arc::new(MemoryEnrolmentStore::default()),
    );
    let s = sources(&w, alerts.clone(), enrolments.clone(), listing());
    *w.archive.refuse_puts.lock().unwrap() = 0;
    let report = rebuild(&s, ts("2025-10-20T00:00:00Z"), &[], &budget(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.alerts_refetched, 2);
    assert_eq!(report.enrolments_refetched, 1);
    assert_eq!(report.organisations, vec!["org_1".to_string()]);
    assert_eq!(report.reconcile.recovered, vec!["a3".to_string()]);
    assert!(!report.incomplete);
    for id in ["a1", "a2", "a3"] {
        let before = w.alerts.get(id).await.unwrap().unwrap();
        let after = alerts.get(id).await.unwrap().unwrap();
        assert_eq!(after.alert, before.alert, "{id}");
        assert_eq!(after.informational, before.informational, "{id}");
        assert_eq!(after.alert_match, before.alert_match, "{id}");
    }
    assert!(
        alerts
            .get("a1")
            .await
            .unwrap()
            .unwrap()
            .alert_match
            .is_some(),
        "a1 was matched when processed, and again when rebuilt"
    );
    let before = w.enrolments.get("e1").await.unwrap().unwrap();
    let after = enrolments.get("e1").await.unwrap().unwrap();
    assert_eq!(
        (after.enrolment, after.live),
        (before.enrolment, before.live)
    );
}
