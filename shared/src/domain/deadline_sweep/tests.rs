//! Sweep selection and runs over the in-memory alert store and fake ChargebackStop.

use super::*;
use crate::adapters::memory::{FakeChargebackStop, MemoryAlertStore, RecordingNotifier};
use crate::clock::FixedClock;
use crate::domain::alert_policy::{AlertPolicy, FixedPolicy};
use crate::domain::alert_record::store_fetched_alert;
use crate::domain::test_support::{alert, ts};
use crate::models::alert::{Alert, AlertStatus};

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
            config: SweepConfig {
                thresholds: thresholds(),
                cutoff: Some(Duration::hours(2)),
                default_action: AlertAction::AcceptDispute,
                max_alerts: 1000,
            },
        }
    }
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
    assert_eq!(sweep.run().await.unwrap().warned, 1);
    assert_eq!(
        sweep.run().await.unwrap().warned,
        0,
        "same threshold, no second warning"
    );
    w.clock.advance(Duration::hours(10)); // 20 h left: the 24h threshold
    assert_eq!(sweep.run().await.unwrap().warned, 1);
    w.clock.advance(Duration::hours(17)); // 3 h left: the 4h threshold
    assert_eq!(sweep.run().await.unwrap().warned, 1);
    assert_eq!(sweep.run().await.unwrap().warned, 0);
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
    let report = w.sweep(policy).run().await.unwrap();
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
    assert_eq!(
        w.sweep(AlertPolicy::default())
            .run()
            .await
            .unwrap()
            .actioned,
        0
    );
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
    w.sweep(AlertPolicy::default()).run().await.unwrap();
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
    let report = w.sweep(AlertPolicy::default()).run().await.unwrap();
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
    let first = w.sweep(AlertPolicy::default()).run().await.unwrap();
    assert_eq!((first.actioned, first.errors), (0, 1));
    let second = w.sweep(AlertPolicy::default()).run().await.unwrap();
    assert_eq!(second.actioned, 1);
    assert_eq!(w.api.patches("netalrt_1").len(), 1);
}
