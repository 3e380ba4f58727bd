//! What each event writes, counted as commits (one DynamoDB write request each), and what the
//! commits guarantee when the store refuses them, loses their answer or races us.

use super::tests::{alert_event, message, world, World};
use super::*;
use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore, MemoryEventLog};
use crate::adapters::memory_recovery::MemoryArchive;
use crate::domain::decision::DecisionResult;
use crate::domain::test_support::{alert, enrolment};
use crate::models::alert::{Alert, UpdateAlert};
use crate::ports::event_commit::EventWrite;
use crate::ports::event_log::EventStatus;

fn archived(event_id: &str, delivery_id: &str) -> ArchivedDelivery {
    ArchivedDelivery {
        event_id: event_id.into(),
        delivery_id: delivery_id.into(),
        event_type: "alert.created".into(),
        object_id: None,
        organisation_id: None,
        received_at: "2026-11-24T09:59:01.000Z".into(),
        signature_timestamp: None,
        headers: Default::default(),
        body: b"{}".to_vec(),
        archived_at: "2026-11-24T10:00:00.000Z".into(),
        expires_at: 0,
    }
}

/// A world whose commits archive into `MemoryArchive`.
fn archiving_world() -> (World, Arc<MemoryArchive>) {
    let mut w = world();
    let archive = Arc::new(MemoryArchive::default());
    let commits = Arc::new(
        crate::adapters::memory_commit::MemoryCommitter::new(
            w.events.clone(),
            w.alerts.clone(),
            w.enrolments.clone(),
        )
        .with_archive(archive.clone()),
    );
    w.processor.commits = commits.clone();
    w.commits = commits;
    (w, archive)
}

impl World {
    async fn deliver(
        &self,
        m: &IncomingEvent,
        delivery_id: &str,
    ) -> Result<Processed, ProcessError> {
        let event_id: String = serde_json::from_str::<serde_json::Value>(&m.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "sqs:m".into());
        self.processor
            .process_delivery(
                m,
                Some(archived(&event_id, delivery_id)),
                self.clock.now() + chrono::Duration::seconds(30),
            )
            .await
    }
}

/// Checks, when the PATCH is sent, that the action claim and the event's claim are stored.
struct ClaimsStoredBeforePatch {
    inner: Arc<FakeChargebackStop>,
    alerts: Arc<MemoryAlertStore>,
    events: Arc<MemoryEventLog>,
}

#[async_trait::async_trait]
impl AlertApi for ClaimsStoredBeforePatch {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        self.inner.get_alert(alert_id).await
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        let record = self.alerts.get(alert_id).await.unwrap().expect("stored");
        assert!(
            record.action_claim.is_some(),
            "the action claim precedes the PATCH"
        );
        let event = self.events.record("evt_1").expect("the event's claim");
        assert_eq!(event.status, EventStatus::InProgress);
        self.inner.update_alert(alert_id, update).await
    }
}

#[tokio::test]
async fn an_actioned_alert_is_two_commits_the_claims_before_the_patch_the_decision_after() {
    let (mut w, archive) = archiving_world();
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    w.api.put_alert(a.clone());
    w.processor.alert_api = Arc::new(ClaimsStoredBeforePatch {
        inner: w.api.clone(),
        alerts: w.alerts.clone(),
        events: w.events.clone(),
    });
    let p = w
        .deliver(&alert_event("evt_1", "alert.created", &a), "d1")
        .await
        .unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
    assert_eq!(w.api.gets(), 1, "one GET per decision");

    let commits = w.commits.commits();
    assert_eq!(commits.len(), 2, "{commits:#?}");
    let (first, second) = (&commits[0], &commits[1]);
    assert!(first.archive.is_some(), "archived with the first write");
    assert!(
        matches!(&first.event, Some(EventWrite::Claim(r)) if r.status == EventStatus::InProgress)
    );
    let claimed = first.alert.as_ref().expect("the alert with its claim");
    assert!(claimed.action_claim.is_some());
    assert!(second.archive.is_none());
    assert!(matches!(
        &second.event,
        Some(EventWrite::Finish { status: EventStatus::Completed, outcome, .. })
            if outcome == "alert_actioned:REFUND"
    ));
    let decided = second.alert.as_ref().expect("the decision");
    assert_eq!(decided.revision, claimed.revision + 1);
    assert_eq!(decided.action_claim, None, "the claim became the decision");
    assert_eq!(decided.decisions[0].result, DecisionResult::Applied);
    assert_eq!(archive.all().len(), 1);
    assert_eq!(
        w.events.record("evt_1").unwrap().status,
        EventStatus::Completed
    );
}

#[tokio::test]
async fn every_other_event_kind_is_one_commit_and_a_duplicate_one_archive_write() {
    let (w, archive) = archiving_world();
    let stored = alert("netalrt_r", "ETHOCA_ALERT", "RESOLVED", 1000);
    let person = alert("netalrt_p", "ETHOCA_ALERT", "ACTION_REQUIRED", 10_000);
    let rdr = alert("netalrt_rdr", "VERIFI_RDR", "RESOLVED", 1000);
    for a in [&stored, &person, &rdr] {
        w.api.put_alert(a.clone());
    }
    w.api
        .put_enrolment(enrolment("enrl_1", "PENDING", "2026-11-24T09:00:00Z", None));
    let cases = [
        (
            alert_event("evt_r", "alert.created", &stored),
            "alert_stored",
        ),
        (
            alert_event("evt_p", "alert.created", &person),
            "alert_awaiting_person",
        ),
        (
            alert_event("evt_rdr", "alert.created", &rdr),
            "alert_informational",
        ),
        (
            message(
                "evt_e",
                "enrolment.created",
                serde_json::json!({"id": "enrl_1"}),
            ),
            "enrolment_pending",
        ),
        (
            message(
                "evt_o",
                "payment.settled",
                serde_json::json!({"id": "pay_1"}),
            ),
            "stored",
        ),
    ];
    for (m, outcome) in &cases {
        let before = w.commits.commits().len();
        let p = w.deliver(m, "d1").await.unwrap();
        assert_eq!(&p.outcome, outcome);
        let commits = w.commits.commits();
        assert_eq!(commits.len(), before + 1, "{outcome}: one write request");
        let last = commits.last().unwrap();
        assert!(last.archive.is_some(), "{outcome}");
        assert!(
            matches!(&last.event, Some(EventWrite::Claim(r)) if r.status == EventStatus::Completed),
            "{outcome}: completed in the same write"
        );
    }
    let record = w.alerts.get("netalrt_p").await.unwrap().unwrap();
    assert_eq!(record.decisions[0].result, DecisionResult::LeftForPerson);
    assert!(record.action_queue.is_some(), "still waits for a person");

    // A duplicate: no API call, one write (its delivery archived), whatever the delivery id.
    let gets = w.api.gets();
    let before = w.commits.commits().len();
    let again = w.deliver(&cases[1].0, "d1").await.unwrap();
    assert!(again.duplicate);
    let other_delivery = w.deliver(&cases[1].0, "d2").await.unwrap();
    assert!(other_delivery.duplicate);
    assert_eq!(w.api.gets(), gets);
    let commits = w.commits.commits();
    assert_eq!(commits.len(), before + 2);
    assert!(commits[before..]
        .iter()
        .all(|c| c.archive.is_some() && c.event.is_none() && c.alert.is_none()));
    assert_eq!(archive.all().len(), cases.len() + 1, "d2 kept too, d1 once");
}

#[tokio::test]
async fn a_poison_message_is_archived_before_it_is_refused() {
    let (w, archive) = archiving_world();
    let m = IncomingEvent {
        body: "{not json".into(),
        ..Default::default()
    };
    assert!(matches!(
        w.deliver(&m, "d1").await,
        Err(ProcessError::Poison { .. })
    ));
    assert_eq!(archive.all().len(), 1);
    // Unarchivable: not refused yet, it comes back (and is archived then).
    *w.commits.refuse_next.lock().unwrap() = 1;
    let err = w.deliver(&m, "d2").await.unwrap_err();
    assert!(
        matches!(err, ProcessError::Failed { .. }) && err.is_retryable(),
        "{err}"
    );
    assert_eq!(archive.all().len(), 1);
}

#[tokio::test]
async fn a_commit_refused_as_a_whole_before_the_patch_sends_nothing_and_the_retry_acts_once() {
    let (w, archive) = archiving_world();
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    w.api.put_alert(a.clone());
    let m = alert_event("evt_1", "alert.created", &a);
    *w.commits.refuse_nth.lock().unwrap() = Some(1);
    let err = w.deliver(&m, "d1").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(w.api.patches("netalrt_1").is_empty(), "nothing sent");
    assert!(w.events.record("evt_1").is_none(), "nothing claimed");
    assert!(w.alerts.get("netalrt_1").await.unwrap().is_none());
    assert!(
        archive.all().is_empty(),
        "the store refused: archived by the redelivery"
    );

    let p = w.deliver(&m, "d1").await.unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
    assert_eq!(archive.all().len(), 1);
}

#[tokio::test]
async fn a_decision_commit_whose_answer_was_lost_is_found_landed() {
    let (w, _) = archiving_world();
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    w.api.put_alert(a.clone());
    *w.commits.fail_after_nth.lock().unwrap() = Some(2);
    let m = alert_event("evt_1", "alert.created", &a);
    let p = w.deliver(&m, "d1").await.unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    assert_eq!(
        w.events.record("evt_1").unwrap().status,
        EventStatus::Completed
    );
    let record = w.alerts.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(record.decisions.len(), 1);
    assert_eq!(record.action_claim, None);
    assert_eq!(w.commits.commits().len(), 2, "the retry found it written");
    assert!(w.deliver(&m, "d1").await.unwrap().duplicate);
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
}

/// An API whose PATCH lets another writer change the alert's record first (a reconciliation
/// storing a note while our PATCH is in flight).
struct WriterDuringPatch {
    inner: Arc<FakeChargebackStop>,
    alerts: Arc<MemoryAlertStore>,
}

#[async_trait::async_trait]
impl AlertApi for WriterDuringPatch {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        self.inner.get_alert(alert_id).await
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        let mut record = self.alerts.get(alert_id).await.unwrap().unwrap();
        record.no_deadline_notified_at = Some("written by another writer".into());
        record.revision += 1;
        self.alerts.put(&record).await.unwrap();
        self.inner.update_alert(alert_id, update).await
    }
}

#[tokio::test]
async fn a_lost_race_after_the_patch_still_records_the_decision_once() {
    let (mut w, _) = archiving_world();
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    w.api.put_alert(a.clone());
    w.processor.alert_api = Arc::new(WriterDuringPatch {
        inner: w.api.clone(),
        alerts: w.alerts.clone(),
    });
    let p = w
        .deliver(&alert_event("evt_1", "alert.created", &a), "d1")
        .await
        .unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    let record = w.alerts.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(record.decisions.len(), 1);
    assert_eq!(record.decisions[0].result, DecisionResult::Applied);
    assert_eq!(record.action_claim, None);
    assert_eq!(
        record.no_deadline_notified_at.as_deref(),
        Some("written by another writer"),
        "the other writer's change is kept"
    );
    assert_eq!(
        w.events.record("evt_1").unwrap().status,
        EventStatus::Completed
    );
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
}

/// A policy source that lets another writer change the alert's record between our read and our
/// first commit.
struct WriterBeforeCommit {
    alerts: Arc<MemoryAlertStore>,
}

#[async_trait::async_trait]
impl PolicySource for WriterBeforeCommit {
    async fn policy_for(
        &self,
        _organisation_id: &str,
    ) -> Result<crate::domain::alert_policy::AlertPolicy, StoreError> {
        if let Some(mut record) = self.alerts.get("netalrt_1").await? {
            if record.alert.note.is_none() {
                record.alert.note = Some("another writer".into());
                record.revision += 1;
                self.alerts.put(&record).await?;
            }
        }
        Ok(crate::domain::alert_policy::AlertPolicy {
            refund_at_or_below_cents: Some(2500),
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn a_lost_race_before_the_patch_refuses_the_whole_commit_and_sends_nothing() {
    let (mut w, archive) = archiving_world();
    let a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    w.api.put_alert(a.clone());
    // Stored already (an earlier event), so the race is on a revision.
    let crate::domain::alert_record::Merge::Updated(stored) =
        crate::domain::alert_record::merge_fetched(None, a.clone(), w.clock.now())
    else {
        panic!("a new record")
    };
    w.alerts.insert(stored);
    w.processor.policies = Arc::new(WriterBeforeCommit {
        alerts: w.alerts.clone(),
    });
    let m = alert_event("evt_1", "alert.created", &a);
    let err = w.deliver(&m, "d1").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(w.api.patches("netalrt_1").is_empty(), "nothing sent");
    assert!(
        w.events.record("evt_1").is_none(),
        "the event's claim was refused with it"
    );
    let record = w.alerts.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(record.action_claim, None);
    assert_eq!(
        archive
            .all()
            .iter()
            .filter(|d| d.event_id == "evt_1")
            .count(),
        1,
        "archived on its own"
    );
    // The redelivery acts, once.
    let p = w.deliver(&m, "d1").await.unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
}

#[tokio::test]
async fn the_matchings_index_entries_go_into_the_events_commit() {
    use crate::adapters::memory_transactions::MemoryTransactionIndex;
    use crate::domain::matching::IndexedPartnerRecords;
    use crate::ports::transaction_index::{HeldIndex, IndexWrite, TransactionIndex};
    let (mut w, _) = archiving_world();
    let index = Arc::new(MemoryTransactionIndex::default());
    let commits = Arc::new(
        crate::adapters::memory_commit::MemoryCommitter::new(
            w.events.clone(),
            w.alerts.clone(),
            w.enrolments.clone(),
        )
        .with_index(index.clone()),
    );
    w.processor.commits = commits.clone();
    w.processor.partner_records = Arc::new(IndexedPartnerRecords::new(
        Arc::new(HeldIndex {
            inner: index.clone(),
        }),
        w.clock.clone(),
    ));
    // An alert with an ARN no order carries: unmatched, kept waiting for a late order.
    let a: Alert = serde_json::from_value(serde_json::json!({
        "id": "netalrt_w", "organisation_id": "org_1", "enrolment_type": "ETHOCA_ALERT",
        "status": "ACTION_REQUIRED", "transaction_amount_in_cents": 1000,
        "transaction_currency_code": "USD", "transaction_acquirer_reference_number": "74000000000000000000001",
        "action_required_deadline": "2026-11-26T10:00:00Z", "alert_received_at": "2026-11-24T09:00:00Z"
    }))
    .unwrap();
    w.api.put_alert(a.clone());
    let p = w
        .run(&alert_event("evt_w", "alert.created", &a))
        .await
        .unwrap();
    assert_eq!(p.outcome, "alert_actioned:REFUND");
    let all = commits.commits();
    assert_eq!(all.len(), 2, "no write of its own for the index");
    assert!(
        all[0]
            .index
            .iter()
            .any(|w| matches!(w, IndexWrite::Put(item) if item.lookup == "waiting#org_1")),
        "{:?}",
        all[0].index
    );
    let waiting = index.query("waiting#org_1", None, 10).await.unwrap();
    assert_eq!(waiting.len(), 1, "kept where a late order finds it");
    let record = w.alerts.get("netalrt_w").await.unwrap().unwrap();
    assert!(record.alert_match.is_some(), "the match on the record");
    // Outside an event the index writes as usual.
    HeldIndex {
        inner: index.clone(),
    }
    .delete("waiting#org_1", &waiting[0].entry)
    .await
    .unwrap();
    assert!(index
        .query("waiting#org_1", None, 10)
        .await
        .unwrap()
        .is_empty());
}
