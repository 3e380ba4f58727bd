//! Reconciliation over in-memory stores and a scriptable listing that can cap `limit`, omit
//! `count` and take time, as the real API can.

use super::*;
use crate::adapters::memory::{MemoryAlertStore, MemoryEnrolmentStore, RecordingNotifier};
use crate::clock::FixedClock;
use crate::domain::alert_record::store_fetched_alert;
use crate::domain::test_support::{alert, enrolment, ts};
use std::sync::Mutex;

const NOW: &str = "2026-11-24T10:00:00Z";

/// The listing as ChargebackStop may behave: `cap` is the most items it returns whatever
/// `limit` asks; `with_count` whether pages carry `count`; `latency` per call.
struct Listing {
    alerts: Mutex<Vec<Alert>>,
    enrolments: Vec<Enrolment>,
    cap: usize,
    with_count: bool,
    latency: std::time::Duration,
    alert_calls: Mutex<Vec<(String, u32, u32)>>,
    enrolment_calls: Mutex<Vec<(u32, u32)>>,
}

impl Listing {
    fn new(alerts: Vec<Alert>, enrolments: Vec<Enrolment>) -> Self {
        Self {
            alerts: Mutex::new(alerts),
            enrolments,
            cap: 1000,
            with_count: true,
            latency: std::time::Duration::ZERO,
            alert_calls: Mutex::new(Vec::new()),
            enrolment_calls: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl ReconcileListing for Listing {
    async fn alerts_page(
        &self,
        org: &str,
        received_from: DateTime<Utc>,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Alert>, ApiCallError> {
        tokio::time::sleep(self.latency).await;
        self.alert_calls
            .lock()
            .unwrap()
            .push((iso(received_from), limit, offset));
        let mut all: Vec<Alert> = self
            .alerts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.organisation_id == org)
            .filter(|a| a.alert_received_at.is_some_and(|t| t >= received_from))
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.alert_received_at, &a.id).cmp(&(b.alert_received_at, &b.id)));
        let count = all.len() as u64;
        Ok(Page {
            items: all
                .into_iter()
                .skip(offset as usize)
                .take((limit as usize).min(self.cap))
                .collect(),
            count: self.with_count.then_some(count),
        })
    }

    async fn enrolments_page(
        &self,
        org: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Enrolment>, ApiCallError> {
        tokio::time::sleep(self.latency).await;
        self.enrolment_calls.lock().unwrap().push((limit, offset));
        let all: Vec<Enrolment> = self
            .enrolments
            .iter()
            .filter(|e| e.organisation_id == org)
            .cloned()
            .collect();
        let count = all.len() as u64;
        Ok(Page {
            items: all
                .into_iter()
                .skip(offset as usize)
                .take((limit as usize).min(self.cap))
                .collect(),
            count: self.with_count.then_some(count),
        })
    }
}

#[derive(Default)]
struct MemoryCursors(Mutex<HashMap<String, ReconcileCursor>>);

#[async_trait::async_trait]
impl CursorStore for MemoryCursors {
    async fn reconcile_cursors(&self) -> Result<Vec<ReconcileCursor>, StoreError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(cursor.cursor_id.clone(), cursor.clone());
        Ok(())
    }
}

/// Alerts received one minute apart, the first an hour before NOW.
fn alerts(n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let mut a = alert(
                &format!("netalrt_{i:02}"),
                "ETHOCA_ALERT",
                "ACTION_REQUIRED",
                100,
            );
            a.alert_received_at = Some(ts(NOW) - Duration::minutes(60 - i as i64));
            a
        })
        .collect()
}

struct World {
    listing: Arc<Listing>,
    store: Arc<MemoryAlertStore>,
    enrolments: Arc<MemoryEnrolmentStore>,
    cursors: Arc<MemoryCursors>,
    notifier: Arc<RecordingNotifier>,
}

impl World {
    fn new(listing: Listing) -> Self {
        Self {
            listing: Arc::new(listing),
            store: Arc::new(MemoryAlertStore::default()),
            enrolments: Arc::new(MemoryEnrolmentStore::default()),
            cursors: Arc::new(MemoryCursors::default()),
            notifier: Arc::new(RecordingNotifier::default()),
        }
    }

    fn reconciler(&self, page_size: u32) -> Reconciler {
        Reconciler {
            api: self.listing.clone(),
            alerts: self.store.clone(),
            enrolments: self.enrolments.clone(),
            cursors: self.cursors.clone(),
            notifier: self.notifier.clone(),
            clock: Arc::new(FixedClock::at(ts(NOW))),
            page_size,
            lookback: Duration::days(7),
        }
    }
}

fn plenty() -> RunBudget {
    RunBudget::new(
        std::time::Duration::from_secs(600),
        std::time::Duration::from_secs(10),
        ts(NOW),
    )
}

fn org() -> Vec<String> {
    vec!["org_1".to_string()]
}

#[tokio::test]
async fn stores_only_what_was_missing_and_a_second_pass_recovers_nothing() {
    let all = alerts(7);
    let w = World::new(Listing::new(all.clone(), Vec::new()));
    for a in all
        .iter()
        .filter(|a| a.id != "netalrt_02" && a.id != "netalrt_05")
    {
        store_fetched_alert(&*w.store, a, ts("2026-11-24T09:00:00Z"))
            .await
            .unwrap();
    }
    let reconciler = w.reconciler(3);
    let report = reconciler.run(&org(), &plenty()).await;
    assert_eq!(report.recovered, vec!["netalrt_02", "netalrt_05"]);
    assert_eq!(report.seen, 7);
    assert_eq!(report.passes_completed, 1);
    let stored = w.store.get("netalrt_05").await.unwrap().unwrap();
    assert_eq!(
        stored.action_queue.as_deref(),
        Some(crate::domain::alert_record::ACTION_QUEUE)
    );
    assert_eq!(w.notifier.sent().len(), 2);
    assert!(reconciler.run(&org(), &plenty()).await.recovered.is_empty());
}

#[tokio::test]
async fn pages_until_empty_when_the_api_caps_limit_and_gives_no_count() {
    let mut listing = Listing::new(alerts(7), Vec::new());
    listing.cap = 2; // asked for 5, answers 2: not the end of the list
    listing.with_count = false;
    let w = World::new(listing);
    let report = w.reconciler(5).run(&org(), &plenty()).await;
    assert_eq!(report.recovered.len(), 7, "{report:?}");
    // 2 + 2 + 2 + 1, then an empty page.
    assert_eq!(w.listing.alert_calls.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn stops_when_count_is_reached_without_asking_for_an_empty_page() {
    let w = World::new(Listing::new(alerts(6), Vec::new()));
    w.reconciler(3).run(&org(), &plenty()).await;
    assert_eq!(w.listing.alert_calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn walks_by_received_time_so_alerts_arriving_meanwhile_are_not_skipped() {
    let mut all = alerts(4);
    // The first page ends with two alerts received at the same instant.
    all[1].alert_received_at = all[0].alert_received_at;
    let w = World::new(Listing::new(all, Vec::new()));
    w.reconciler(2).run(&org(), &plenty()).await;
    let calls = w.listing.alert_calls.lock().unwrap().clone();
    let t0 = iso(ts(NOW) - Duration::minutes(60));
    assert_eq!(
        calls[1],
        (t0, 2, 2),
        "keyset: from the last time read, skipping the 2 read at it"
    );
    for id in ["netalrt_00", "netalrt_01", "netalrt_02", "netalrt_03"] {
        assert!(w.store.get(id).await.unwrap().is_some(), "{id}");
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_time_it_stops_and_the_next_run_resumes_from_the_stored_cursor() {
    let mut listing = Listing::new(alerts(10), Vec::new());
    listing.latency = std::time::Duration::from_secs(2);
    let w = World::new(listing);
    let reconciler = w.reconciler(2);
    // 4 s to take work: two pages of 2 s each, then the run stops.
    let short = RunBudget::new(
        std::time::Duration::from_secs(6),
        std::time::Duration::from_secs(2),
        ts(NOW),
    );
    let first = reconciler.run(&org(), &short).await;
    assert_eq!(first.recovered.len(), 4, "{first:?}");
    assert_eq!(first.passes_completed, 0);
    let cursor = w
        .cursors
        .0
        .lock()
        .unwrap()
        .get("reconcile#org_1")
        .cloned()
        .expect("the place reached is stored");
    assert_eq!(cursor.phase, Phase::Alerts);
    let calls_before = w.listing.alert_calls.lock().unwrap().len();

    let second = reconciler.run(&org(), &plenty()).await;
    assert_eq!(second.resumed, 1);
    assert_eq!(second.passes_completed, 1);
    let calls = w.listing.alert_calls.lock().unwrap().clone();
    assert_eq!(
        calls[calls_before].0,
        cursor.received_from.clone().unwrap(),
        "resumed where the first run stopped, not from the start"
    );
    let mut all: Vec<String> = first.recovered.clone();
    all.extend(second.recovered.clone());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "every alert stored once across the two runs");
}

#[tokio::test]
async fn covers_alerts_of_every_status_and_enrolments() {
    let mut all = alerts(2);
    let waiting = all[0].clone();
    all[0].status = crate::models::alert::AlertStatus::Resolved;
    let enrolled = enrolment(
        "enrl_9",
        "ACTION_REQUIRED",
        "2026-11-24T09:00:00Z",
        Some("Upload a logo"),
    );
    let w = World::new(Listing::new(all, vec![enrolled]));
    // We hold the first alert as still waiting; it was resolved and its webhook was lost.
    store_fetched_alert(&*w.store, &waiting, ts("2026-11-24T09:00:00Z"))
        .await
        .unwrap();
    let report = w.reconciler(10).run(&org(), &plenty()).await;
    assert_eq!(report.refreshed, 1, "{report:?}");
    let stored = w.store.get(&waiting.id).await.unwrap().unwrap();
    assert_eq!(
        stored.action_queue, None,
        "resolved: off the deadline-index"
    );
    assert_eq!(report.enrolments_recovered, vec!["enrl_9"]);
    let e = w.enrolments.get("enrl_9").await.unwrap().unwrap();
    assert!(!e.live);
    assert!(w
        .notifier
        .sent()
        .iter()
        .any(|n| n.kind == "enrolment.action_required" && n.object_id == "enrl_9"));
    assert_eq!(w.listing.enrolment_calls.lock().unwrap().len(), 1);
}
