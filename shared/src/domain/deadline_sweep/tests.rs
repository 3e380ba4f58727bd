//! Sweep selection and runs over the in-memory alert store and fake ChargebackStop.

use super::*;
use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore, RecordingNotifier};
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::alert_record::store_fetched_alert;
use crate::domain::test_support::{alert, ts};
use crate::models::alert::{Alert, AlertStatus};
use crate::ports::decision_inputs::PolicyCatalogue;

const NOW: &str = "2026-11-24T10:00:00Z";

fn alert_due_in(id: &str, kind: &str, status: &str, hours: f64) -> Alert {
    let mut a = alert(id, kind, status, 4900);
    a.action_required_deadline = Some(ts(NOW) + Duration::minutes((hours * 60.0) as i64));
    a
}

fn record_of(a: Alert) -> AlertRecord {
    match crate::domain::alert_record::merge_fetched(None, a, ts(NOW)) {
        crate::domain::alert_record::Merge::Updated(r) => r,
        crate::domain::alert_record::Merge::Stale(r) => r,
    }
}

fn thresholds() -> Vec<Threshold> {
    Threshold::parse_list("4h,48h,24h").unwrap()
}

#[test]
fn thresholds_parse_widest_first() {
    let labels: Vec<String> = thresholds().into_iter().map(|t| t.label).collect();
    assert_eq!(labels, vec!["48h", "24h", "4h"]);
    assert!(Threshold::parse_list("2x").is_err());
}

#[test]
fn selection_warns_for_the_tightest_threshold_crossed_and_acts_inside_the_cutoff() {
    let cutoff = Duration::hours(2);
    let now = ts(NOW);
    let far = record_of(alert_due_in("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 72.0));
    assert_eq!(select(&far, now, &thresholds(), cutoff), SweepStep::Nothing);
    let in_30h = record_of(alert_due_in("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 30.0));
    assert_eq!(
        select(&in_30h, now, &thresholds(), cutoff),
        SweepStep::Warn {
            tightest: "48h".into(),
            labels: vec!["48h".into()]
        }
    );
    // Arrived late, 3 h left: one warning, every crossed threshold recorded.
    let in_3h = record_of(alert_due_in("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 3.0));
    assert_eq!(
        select(&in_3h, now, &thresholds(), cutoff),
        SweepStep::Warn {
            tightest: "4h".into(),
            labels: vec!["48h".into(), "24h".into(), "4h".into()]
        }
    );
    let mut warned = in_3h.clone();
    warned.warned_thresholds = vec!["48h".into(), "24h".into(), "4h".into()];
    assert_eq!(
        select(&warned, now, &thresholds(), cutoff),
        SweepStep::Nothing
    );
    let in_1h = record_of(alert_due_in("a", "ETHOCA_ALERT", "ACTION_REQUIRED", 1.0));
    assert_eq!(select(&in_1h, now, &thresholds(), cutoff), SweepStep::Act);
    let overdue = record_of(alert_due_in("a", "ETHOCA_ALERT", "ACTION_REQUIRED", -1.0));
    assert_eq!(select(&overdue, now, &thresholds(), cutoff), SweepStep::Act);
}

#[test]
fn selection_never_touches_rdr_or_resolved_alerts() {
    let cutoff = Duration::hours(2);
    let now = ts(NOW);
    for (kind, status) in [
        ("VERIFI_RDR", "RESOLVED"),
        ("VERIFI_RDR", "ACTION_REQUIRED"),
        ("ETHOCA_ALERT", "RESOLVED"),
        ("ETHOCA_ALERT", "INVALID"),
    ] {
        let r = record_of(alert_due_in("a", kind, status, 1.0));
        assert_eq!(
            select(&r, now, &thresholds(), cutoff),
            SweepStep::Nothing,
            "{kind} {status}"
        );
    }
}

struct World {
    store: Arc<MemoryAlertStore>,
    api: Arc<FakeChargebackStop>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<FixedClock>,
}

impl World {
    async fn with(alerts: Vec<Alert>) -> World {
        let w = World {
            store: Arc::new(MemoryAlertStore::default()),
            api: Arc::new(FakeChargebackStop::default()),
            notifier: Arc::new(RecordingNotifier::default()),
            clock: Arc::new(FixedClock::at(ts(NOW))),
        };
        for a in alerts {
            w.api.put_alert(a.clone());
            store_fetched_alert(&*w.store, &a, ts(NOW)).await.unwrap();
        }
        w
    }

    fn sweep(&self, policy: AlertPolicy) -> DeadlineSweep {
        DeadlineSweep {
            alerts: self.store.clone(),
            api: self.api.clone(),
            notifier: self.notifier.clone(),
            policies: Arc::new(FixedPolicy(policy)),
            clock: self.clock.clone(),
            refund_first: None,
            config: SweepConfig {
                thresholds: thresholds(),
                cutoff: Some(Duration::hours(2)),
                default_action: AlertAction::AcceptDispute,
                max_alerts: 1000,
                concurrency: 4,
                max_customers: 100,
            },
        }
    }
}

fn budget_of(secs: u64, now: DateTime<Utc>) -> RunBudget {
    RunBudget::new(
        std::time::Duration::from_secs(secs),
        std::time::Duration::from_secs(2),
        now,
    )
}

/// One run with plenty of time, policies loaded as a scheduled run loads them.
async fn run(sweep: &DeadlineSweep) -> SweepReport {
    let load = sweep.policies.load(100).await;
    sweep
        .run(&load, &budget_of(600, sweep.clock.now()))
        .await
        .unwrap()
}

#[tokio::test]
async fn warns_once_per_threshold_across_runs() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        30.0,
    )])
    .await;
    let sweep = w.sweep(AlertPolicy::default());
    assert_eq!(run(&sweep).await.warned, 1);
    assert_eq!(
        run(&sweep).await.warned,
        0,
        "same threshold, no second warning"
    );
    w.clock.advance(Duration::hours(10)); // 20 h left: the 24h threshold
    assert_eq!(run(&sweep).await.warned, 1);
    w.clock.advance(Duration::hours(17)); // 3 h left: the 4h threshold
    assert_eq!(run(&sweep).await.warned, 1);
    assert_eq!(run(&sweep).await.warned, 0);
    let kinds: Vec<String> = w.notifier.sent().into_iter().map(|n| n.kind).collect();
    assert_eq!(kinds, vec!["alert.deadline_warning"; 3]);
    let stored = w.store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.warned_thresholds, vec!["48h", "24h", "4h"]);
    assert!(
        w.api.patches("netalrt_1").is_empty(),
        "warnings never action"
    );
}

#[tokio::test]
async fn acts_exactly_on_the_alerts_past_the_cutoff_with_the_organisation_default() {
    let w = World::with(vec![
        alert_due_in("netalrt_due", "ETHOCA_ALERT", "ACTION_REQUIRED", 1.0),
        alert_due_in("netalrt_overdue", "ETHOCA_ALERT", "ACTION_REQUIRED", -0.5),
        alert_due_in("netalrt_later", "ETHOCA_ALERT", "ACTION_REQUIRED", 3.0),
        alert_due_in("netalrt_rdr", "VERIFI_RDR", "RESOLVED", 1.0),
        alert_due_in("netalrt_resolved", "ETHOCA_ALERT", "RESOLVED", 1.0),
    ])
    .await;
    let policy = AlertPolicy {
        cutoff_action: Some(AlertAction::Refund),
        ..AlertPolicy::default()
    };
    let report = run(&w.sweep(policy)).await;
    assert_eq!(report.actioned, 2);
    assert_eq!(report.read, 3, "only queued Ethoca alerts are read");
    for id in ["netalrt_due", "netalrt_overdue"] {
        let patches = w.api.patches(id);
        assert_eq!(patches.len(), 1, "{id}");
        assert_eq!(patches[0].action, Some(AlertAction::Refund));
        let stored = w.store.get(id).await.unwrap().unwrap();
        let d = stored.decisions.last().unwrap();
        assert_eq!(
            (d.source, d.result),
            (DecisionSource::Sweep, DecisionResult::Applied)
        );
        assert!(d.reason.contains("cutoff"), "{}", d.reason);
        assert_eq!(stored.alert.status, AlertStatus::Resolved);
    }
    for id in ["netalrt_later", "netalrt_rdr", "netalrt_resolved"] {
        assert!(w.api.patches(id).is_empty(), "{id} must not be touched");
    }
    // A second run finds nothing left to act on.
    assert_eq!(run(&w.sweep(AlertPolicy::default())).await.actioned, 0);
}

#[tokio::test]
async fn without_a_policy_action_the_configured_default_applies() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        0.5,
    )])
    .await;
    run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!(
        w.api.patches("netalrt_1")[0].action,
        Some(AlertAction::AcceptDispute)
    );
}

#[tokio::test]
async fn an_alert_resolved_since_it_was_stored_is_refetched_and_left_alone() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        0.5,
    )])
    .await;
    // Resolved in the dashboard; our webhook has not arrived yet.
    w.api
        .put_alert(alert_due_in("netalrt_1", "ETHOCA_ALERT", "RESOLVED", 0.5));
    let report = run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!((report.actioned, report.not_actionable), (0, 1));
    assert!(w.api.patches("netalrt_1").is_empty());
    assert_eq!(
        w.store
            .get("netalrt_1")
            .await
            .unwrap()
            .unwrap()
            .action_queue,
        None
    );
}

#[tokio::test]
async fn an_api_failure_is_retried_by_the_next_run() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        0.5,
    )])
    .await;
    w.api.fail_next_calls(1, 0);
    let first = run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!((first.actioned, first.errors), (0, 1));
    let second = run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!(second.actioned, 1);
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
}

// ------------------------------------------------------------------ budget, order, policies

/// ChargebackStop answering every call after `latency` (a slow or rate-limited API).
struct SlowApi {
    inner: Arc<FakeChargebackStop>,
    latency: std::time::Duration,
}

#[async_trait::async_trait]
impl AlertApi for SlowApi {
    async fn get_alert(&self, id: &str) -> Result<Alert, crate::ports::alert_api::ApiCallError> {
        tokio::time::sleep(self.latency).await;
        self.inner.get_alert(id).await
    }
    async fn update_alert(
        &self,
        id: &str,
        update: &crate::models::alert::UpdateAlert,
    ) -> Result<Alert, crate::ports::alert_api::ApiCallError> {
        tokio::time::sleep(self.latency).await;
        self.inner.update_alert(id, update).await
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_time_it_acts_on_the_soonest_first_and_warns_after_acting() {
    // Ten alerts past the cutoff and one to warn about; each action takes 2 s (GET + PATCH).
    let mut alerts: Vec<Alert> = (0..10)
        .map(|i| {
            alert_due_in(
                &format!("netalrt_{i}"),
                "ETHOCA_ALERT",
                "ACTION_REQUIRED",
                1.5 - 0.1 * i as f64,
            )
        })
        .collect();
    alerts.push(alert_due_in(
        "netalrt_warn",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        3.0,
    ));
    let w = World::with(alerts).await;
    let mut sweep = w.sweep(AlertPolicy::default());
    sweep.api = Arc::new(SlowApi {
        inner: w.api.clone(),
        latency: std::time::Duration::from_secs(1),
    });
    sweep.config.concurrency = 2;
    let load = sweep.policies.load(100).await;
    // 5 s to take work, 2 at a time, 2 s each: 6 alerts started, the rest deferred.
    let report = sweep.run(&load, &budget_of(7, ts(NOW))).await.unwrap();
    assert_eq!(report.actioned, 6, "{report:?}");
    assert_eq!(report.warned, 0, "acting comes before warning");
    assert_eq!(report.deferred, 5, "{report:?}");
    // The soonest deadlines were the ones acted on.
    for i in 4..10 {
        assert_eq!(
            w.api.patches(&format!("netalrt_{i}")).len(),
            1,
            "netalrt_{i}"
        );
    }
    for i in 0..4 {
        assert!(
            w.api.patches(&format!("netalrt_{i}")).is_empty(),
            "netalrt_{i}"
        );
    }
    // The next run takes the rest.
    let next = sweep.run(&load, &budget_of(600, ts(NOW))).await.unwrap();
    assert_eq!((next.actioned, next.warned, next.deferred), (4, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn work_still_in_flight_at_the_end_is_cut_and_counted() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        0.5,
    )])
    .await;
    let mut sweep = w.sweep(AlertPolicy::default());
    sweep.api = Arc::new(SlowApi {
        inner: w.api.clone(),
        latency: std::time::Duration::from_secs(30),
    });
    let load = sweep.policies.load(100).await;
    let report = sweep.run(&load, &budget_of(10, ts(NOW))).await.unwrap();
    assert_eq!((report.actioned, report.interrupted), (0, 1));
}

/// Counts how often policies are read.
struct CountingPolicies {
    load: PolicyLoad,
    loads: std::sync::atomic::AtomicUsize,
    lookups: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl PolicyCatalogue for CountingPolicies {
    async fn load(&self, _max: usize) -> PolicyLoad {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.load.clone()
    }
    async fn lookup(&self, org: &str) -> Result<AlertPolicy, StoreError> {
        self.lookups.lock().unwrap().push(org.to_string());
        Ok(AlertPolicy::default())
    }
}

#[tokio::test]
async fn policies_are_read_once_per_organisation_not_once_per_alert() {
    let mut alerts = Vec::new();
    for (org, n) in [("org_1", 3), ("org_2", 2)] {
        for i in 0..n {
            let mut a = alert_due_in(
                &format!("{org}_{i}"),
                "ETHOCA_ALERT",
                "ACTION_REQUIRED",
                30.0,
            );
            a.organisation_id = org.into();
            alerts.push(a);
        }
    }
    let w = World::with(alerts).await;
    let mut load = PolicyLoad::default_only(AlertPolicy::default());
    load.complete = false; // the customers read stopped early: look organisations up
    let policies = Arc::new(CountingPolicies {
        load,
        loads: Default::default(),
        lookups: Default::default(),
    });
    let mut sweep = w.sweep(AlertPolicy::default());
    sweep.policies = policies.clone();
    let report = run(&sweep).await;
    assert_eq!(report.warned, 5);
    let mut looked_up = policies.lookups.lock().unwrap().clone();
    looked_up.sort();
    assert_eq!(
        looked_up,
        vec!["org_1", "org_2"],
        "one look-up per organisation"
    );
    assert_eq!(policies.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_policy_cutoff_wider_than_every_threshold_widens_the_horizon() {
    // Due in 60 h; thresholds reach 48 h; the organisation acts 72 h before the deadline.
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        60.0,
    )])
    .await;
    let mut sweep = w.sweep(AlertPolicy {
        cutoff_minutes_before_deadline: 72 * 60,
        ..AlertPolicy::default()
    });
    sweep.config.cutoff = None;
    let report = run(&sweep).await;
    assert_eq!((report.read, report.actioned), (1, 1), "{report:?}");
}

#[tokio::test]
async fn a_huge_stored_cutoff_never_panics_the_sweep() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        30.0,
    )])
    .await;
    let mut sweep = w.sweep(AlertPolicy {
        cutoff_minutes_before_deadline: i64::MAX,
        ..AlertPolicy::default()
    });
    sweep.config.cutoff = None;
    let report = run(&sweep).await;
    // Clamped to the 7-day maximum: inside it, so acted on, and the run finished.
    assert_eq!(report.actioned, 1, "{report:?}");
}

// ------------------------------------------------------------------ warnings that fail

/// A store whose writes can be made to fail, and whose index read can return items that do
/// not decode.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryAlertStore,
    fail_puts: std::sync::atomic::AtomicBool,
    undecodable: Vec<crate::ports::store_error::UndecodableItem>,
}

#[async_trait::async_trait]
impl AlertStore for FlakyStore {
    async fn get(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn put(&self, record: &AlertRecord) -> Result<(), StoreError> {
        if self.fail_puts.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Transient {
                operation: "put alert",
                table: "alerts".into(),
                detail: "throttled".into(),
            });
        }
        self.inner.put(record).await
    }
    async fn awaiting_action_until(
        &self,
        until: &str,
        limit: i32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner.awaiting_action_until(until, limit).await
    }
    async fn awaiting_action_each(
        &self,
        until: &str,
        limit: i32,
    ) -> Result<
        (
            Vec<AlertRecord>,
            Vec<crate::ports::store_error::UndecodableItem>,
        ),
        StoreError,
    > {
        Ok((
            self.inner.awaiting_action_until(until, limit).await?,
            self.undecodable.clone(),
        ))
    }
    async fn by_organisation(&self, org: &str, limit: i32) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner.by_organisation(org, limit).await
    }
}

/// Fails the first `failures` notifications; on each failure, makes the store fail its writes
/// (so the claim cannot be given back either).
struct BrokenNotifier {
    failures: std::sync::atomic::AtomicUsize,
    store: Arc<FlakyStore>,
    sent: RecordingNotifier,
}

#[async_trait::async_trait]
impl Notifier for BrokenNotifier {
    async fn notify(&self, n: &OpsNotification) -> Result<(), crate::ports::notifier::NotifyError> {
        use std::sync::atomic::Ordering;
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            self.store.fail_puts.store(true, Ordering::SeqCst);
            return Err(crate::ports::notifier::NotifyError::Transient {
                sink: "test",
                detail: "down".into(),
            });
        }
        self.sent.notify(n).await
    }
}

#[tokio::test]
async fn a_warning_whose_notify_and_release_both_fail_is_sent_by_a_later_run() {
    let a = alert_due_in("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 30.0);
    let store = Arc::new(FlakyStore::default());
    store_fetched_alert(&store.inner, &a, ts(NOW))
        .await
        .unwrap();
    let w = World::with(vec![]).await;
    w.api.put_alert(a);
    let notifier = Arc::new(BrokenNotifier {
        failures: 1.into(),
        store: store.clone(),
        sent: RecordingNotifier::default(),
    });
    let mut sweep = w.sweep(AlertPolicy::default());
    sweep.alerts = store.clone();
    sweep.notifier = notifier.clone();
    let load = sweep.policies.load(100).await;

    let first = sweep.run(&load, &budget_of(60, ts(NOW))).await.unwrap();
    assert_eq!((first.warned, first.errors), (0, 1));
    store
        .fail_puts
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // Within the first run's claim: another run does not send it twice.
    let overlapping = sweep.run(&load, &budget_of(60, ts(NOW))).await.unwrap();
    assert_eq!(overlapping.warned, 0);
    // Once the claim has expired, a later run sends it.
    w.clock.advance(Duration::minutes(2));
    let later = sweep
        .run(&load, &budget_of(60, w.clock.now()))
        .await
        .unwrap();
    assert_eq!(later.warned, 1, "{later:?}");
    assert_eq!(notifier.sent.sent().len(), 1);
    let stored = store.get("netalrt_1").await.unwrap().unwrap();
    assert_eq!(stored.warned_thresholds, vec!["48h"]);
    assert_eq!(stored.pending_warning, None);
    // And never again.
    assert_eq!(
        sweep
            .run(&load, &budget_of(60, w.clock.now()))
            .await
            .unwrap()
            .warned,
        0
    );
}

#[tokio::test]
async fn an_index_item_that_does_not_decode_is_skipped_and_reported() {
    let store = Arc::new(FlakyStore {
        undecodable: vec![crate::ports::store_error::UndecodableItem {
            table: "alerts".into(),
            key: "netalrt_bad".into(),
            reason: "missing field `revision`".into(),
        }],
        ..Default::default()
    });
    let a = alert_due_in("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 0.5);
    store_fetched_alert(&store.inner, &a, ts(NOW))
        .await
        .unwrap();
    let w = World::with(vec![]).await;
    w.api.put_alert(a);
    let mut sweep = w.sweep(AlertPolicy::default());
    sweep.alerts = store.clone();
    let report = run(&sweep).await;
    assert_eq!((report.skipped_items, report.actioned), (1, 1));
    assert!(w
        .notifier
        .sent()
        .iter()
        .any(|n| n.kind == "alert.undecodable_item" && n.object_id == "netalrt_bad"));
}

#[tokio::test]
async fn an_alert_an_operator_is_actioning_is_left_to_them_and_not_counted_as_an_error() {
    let w = World::with(vec![alert_due_in(
        "netalrt_1",
        "ETHOCA_ALERT",
        "ACTION_REQUIRED",
        0.5,
    )])
    .await;
    // An operator's apply_action holds the claim right now.
    update_alert_record(&*w.store, "netalrt_1", |current| {
        let mut record = current?;
        record.revision += 1;
        record.action_claim = Some(crate::records::alert::ActionClaim {
            owner: "op-call-1".into(),
            source: DecisionSource::Operator,
            actor: "ops@partner".into(),
            until: iso(ts(NOW) + Duration::minutes(1)),
        });
        Some(record)
    })
    .await
    .unwrap();

    let report = run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!(
        (report.actioned, report.errors, report.decided_elsewhere),
        (0, 0, 1),
        "{report:?}"
    );
    assert!(w.api.patches("netalrt_1").is_empty(), "nothing sent");

    // The operator's call died without deciding: once the claim lapses the sweep acts.
    w.clock.advance(Duration::minutes(2));
    let report = run(&w.sweep(AlertPolicy::default())).await;
    assert_eq!((report.actioned, report.errors), (1, 0), "{report:?}");
}
