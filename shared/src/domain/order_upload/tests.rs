//! Unit tests of the upload run over the in-memory outbox and a fake Orders API.

use super::*;
use crate::adapters::memory::RecordingNotifier;
use crate::adapters::memory_orders::MemoryOutbox;
use crate::clock::FixedClock;
use crate::domain::order_intake::intake_orders;
use crate::domain::rate_limit::{OrgRateLimiter, RateLimit};
use crate::models::order::{Order, OrderBatchResponse, OrderError, OrderErrorCode, PatchOrder};
use crate::ports::order_api::{OrderApi, OrderApiError};
use crate::ports::order_outbox::{OrderOutbox, UploadOutcome, UploadState};
use std::collections::{HashMap, VecDeque};

#[derive(Default)]
struct FakeOrdersApi {
    created: Mutex<HashMap<String, String>>,
    /// Every POST, as the reference ids it carried.
    posts: Mutex<Vec<Vec<String>>>,
    /// When each POST arrived (tokio's clock: paused in these tests).
    post_times: Mutex<Vec<Instant>>,
    gets: Mutex<Vec<String>>,
    patches: Mutex<Vec<(String, PatchOrder)>>,
    fail_next: Mutex<VecDeque<OrderApiError>>,
    /// reference -> (code, field) refused per order.
    refuse: Mutex<HashMap<String, (String, String)>>,
    /// A whole-request 422 whenever the batch carries this reference.
    schema_poison: Mutex<Option<String>>,
    /// Errors carry only their `index`, no `reference_id` echo (a service that does not echo).
    omit_reference_echo: std::sync::atomic::AtomicBool,
    /// Every POST of these references answers 503 (a transient failure that lasts).
    always_unavailable: Mutex<std::collections::HashSet<String>>,
}

impl FakeOrdersApi {
    fn created_count(&self) -> usize {
        self.created.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl OrderApi for FakeOrdersApi {
    async fn create_orders(&self, orders: &[Order]) -> Result<OrderBatchResponse, OrderApiError> {
        let refs: Vec<String> = orders
            .iter()
            .map(|o| o.reference_id.clone().unwrap())
            .collect();
        self.posts.lock().unwrap().push(refs.clone());
        self.post_times.lock().unwrap().push(Instant::now());
        if let Some(e) = self.fail_next.lock().unwrap().pop_front() {
            return Err(e);
        }
        if refs
            .iter()
            .any(|r| self.always_unavailable.lock().unwrap().contains(r))
        {
            return Err(OrderApiError::Retryable("503".into()));
        }
        let echo = !self
            .omit_reference_echo
            .load(std::sync::atomic::Ordering::SeqCst);
        if let Some(poison) = self.schema_poison.lock().unwrap().as_ref() {
            if refs.contains(poison) {
                return Err(OrderApiError::Rejected {
                    status: 422,
                    code: "SCHEMA_VALIDATION".into(),
                    field: Some("order_total_amount_in_cents".into()),
                    message: "not an integer".into(),
                });
            }
        }
        let mut response = OrderBatchResponse::default();
        let mut created = self.created.lock().unwrap();
        for (index, order) in orders.iter().enumerate() {
            let reference = order.reference_id.clone().unwrap();
            let echoed = echo.then(|| reference.clone());
            if let Some((code, field)) = self.refuse.lock().unwrap().get(&reference) {
                response.errors.push(OrderError {
                    reference_id: echoed,
                    index: Some(index),
                    code: code.as_str().into(),
                    field: Some(field.clone()),
                    message: Some("refused".into()),
                    order_id: None,
                });
                continue;
            }
            if created.contains_key(&reference) {
                response.errors.push(OrderError {
                    reference_id: echoed,
                    index: Some(index),
                    code: OrderErrorCode::DuplicateOrder,
                    field: Some("reference_id".into()),
                    message: None,
                    order_id: None,
                });
                continue;
            }
            let id = format!("ord_{}", created.len() + 1);
            created.insert(reference.clone(), id.clone());
            let mut result = order.clone();
            result.id = Some(id);
            response.results.push(result);
        }
        response.created = response.results.len() as u32;
        response.failed = response.errors.len() as u32;
        Ok(response)
    }

    async fn find_order_id(
        &self,
        _org: &str,
        reference_id: &str,
    ) -> Result<Option<String>, OrderApiError> {
        self.gets.lock().unwrap().push(reference_id.to_string());
        Ok(self.created.lock().unwrap().get(reference_id).cloned())
    }

    async fn patch_order(&self, order_id: &str, patch: &PatchOrder) -> Result<(), OrderApiError> {
        self.patches
            .lock()
            .unwrap()
            .push((order_id.to_string(), patch.clone()));
        Ok(())
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-24T10:00:00Z".parse().unwrap()
}

async fn outbox_with(n: usize) -> Arc<MemoryOutbox> {
    let outbox = Arc::new(MemoryOutbox::default());
    let orders = (0..n)
        .map(|i| crate::domain::order_intake::tests::valid_order(&format!("o-{i:05}")))
        .collect();
    let report = intake_orders(&*outbox, orders, now()).await.unwrap();
    assert_eq!(report.stored.len(), n);
    outbox
}

fn upload(outbox: Arc<MemoryOutbox>, api: Arc<FakeOrdersApi>, batch_size: usize) -> OrderUpload {
    OrderUpload {
        outbox,
        api,
        notifier: Arc::new(RecordingNotifier::default()),
        limiter: Arc::new(OrgRateLimiter::new(RateLimit {
            requests: 100,
            window: Duration::from_secs(60),
            safety: 0.95,
            burst_share: 0.1,
        })),
        clock: Arc::new(FixedClock::at(now())),
        config: UploadConfig {
            batch_size,
            ..Default::default()
        },
        owner: "run-1".into(),
        stop_at: Instant::now() + Duration::from_secs(3600),
    }
}

fn states(outbox: &MemoryOutbox) -> HashMap<UploadState, usize> {
    let mut counts = HashMap::new();
    for o in outbox.snapshot() {
        *counts.entry(o.state).or_default() += 1;
    }
    counts
}

#[tokio::test(start_paused = true)]
async fn uploads_in_batches_of_at_most_the_batch_size_and_records_order_ids() {
    let outbox = outbox_with(250).await;
    let api = Arc::new(FakeOrdersApi::default());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.created, 250);
    let sizes: Vec<usize> = api.posts.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert!(sizes.iter().all(|&s| s <= 100), "{sizes:?}");
    assert_eq!(sizes.len(), 3);
    let created = api.created.lock().unwrap().clone();
    for o in outbox.snapshot() {
        assert_eq!(o.state, UploadState::Created);
        assert_eq!(o.order_id.as_ref(), created.get(&o.reference_id));
        assert!(!outbox.in_pending_index(&o.organisation_id, &o.reference_id));
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_blip_does_not_end_the_upload() {
    let outbox = outbox_with(150).await;
    // The first two reads of the pending-index fail as a throttled table would: the read is
    // repeated instead of ending the organisation's upload.
    outbox.fail_next_calls(2);
    let api = Arc::new(FakeOrdersApi::default());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.created, 150);
    assert_eq!(api.created_count(), 150);
    assert_eq!(states(&outbox).get(&UploadState::Created), Some(&150));
}

#[test]
fn the_batch_size_never_exceeds_the_documented_maximum() {
    let config = UploadConfig {
        batch_size: 500,
        ..Default::default()
    };
    assert_eq!(config.batch_size(), 100);
    let config = UploadConfig {
        batch_size: 0,
        ..Default::default()
    };
    assert_eq!(config.batch_size(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_server_errors_are_retried_with_the_same_references() {
    let outbox = outbox_with(100).await;
    let api = Arc::new(FakeOrdersApi::default());
    api.fail_next.lock().unwrap().extend([
        OrderApiError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        },
        OrderApiError::Retryable("503".into()),
        OrderApiError::Retryable("502".into()),
    ]);
    let report = upload(outbox.clone(), api.clone(), 50).run().await.unwrap();
    assert_eq!(report.created, 100);
    assert_eq!(report.rate_limited, 1);
    assert_eq!(report.server_errors, 2);
    assert_eq!(api.created_count(), 100, "each order created exactly once");
    // Every retry carried exactly the references of a batch sent before.
    let posts = api.posts.lock().unwrap().clone();
    let distinct: std::collections::HashSet<Vec<String>> = posts.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        2,
        "two batches, each retried unchanged: {}",
        posts.len()
    );
    assert_eq!(states(&outbox).get(&UploadState::Created), Some(&100));
}

#[tokio::test(start_paused = true)]
async fn partial_success_records_each_failure_with_its_code_and_field() {
    let outbox = outbox_with(10).await;
    let api = Arc::new(FakeOrdersApi::default());
    api.refuse.lock().unwrap().insert(
        "o-00003".into(),
        ("INVALID_INTEGRATION".into(), "integration_id".into()),
    );
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!((report.created, report.failed), (9, 1));
    let failed = outbox.get("org_1", "o-00003").await.unwrap().unwrap();
    assert_eq!(failed.state, UploadState::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("INVALID_INTEGRATION"));
    assert_eq!(failed.error_field.as_deref(), Some("integration_id"));
    assert!(
        !outbox.in_pending_index("org_1", "o-00003"),
        "a failed order is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn duplicates_are_reconciled_by_reference() {
    let outbox = outbox_with(5).await;
    let api = Arc::new(FakeOrdersApi::default());
    // A previous run created o-00002 and died before recording it.
    api.created
        .lock()
        .unwrap()
        .insert("o-00002".into(), "ord_earlier".into());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!((report.created, report.duplicate), (4, 1));
    let dup = outbox.get("org_1", "o-00002").await.unwrap().unwrap();
    assert_eq!(dup.state, UploadState::Duplicate);
    assert_eq!(dup.order_id.as_deref(), Some("ord_earlier"));
    assert_eq!(
        api.gets.lock().unwrap().clone(),
        vec!["o-00002".to_string()]
    );
}

/// A method and a path are one endpoint (`Endpoint`): reconciling many duplicates draws from
/// the lookup's pool and never holds back the creates.
#[tokio::test(start_paused = true)]
async fn lookups_of_duplicates_do_not_slow_the_creates() {
    let outbox = outbox_with(3_000).await;
    let api = Arc::new(FakeOrdersApi::default());
    // Every 30th order was created by a run whose answer was lost: 100 lookups to make.
    for i in (0..3_000).step_by(30) {
        api.created
            .lock()
            .unwrap()
            .insert(format!("o-{i:05}"), format!("ord_earlier_{i}"));
    }
    let started = Instant::now();
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!((report.created, report.duplicate), (2_900, 100));
    assert_eq!(report.lookups, 100);
    assert_eq!(report.rate_limited, 0);
    // 30 POSTs under a 95-a-minute budget with a burst of 9: about 15 s. Sharing the pool
    // with the 100 lookups, the last POST would wait behind them for over a minute.
    let last_post = *api.post_times.lock().unwrap().last().unwrap() - started;
    assert!(
        last_post < Duration::from_secs(30),
        "the last create went out after {last_post:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_live_lease_is_respected_and_an_expired_one_is_taken_again() {
    let outbox = outbox_with(3).await;
    let in_an_hour = crate::ports::order_outbox::iso(now() + chrono::Duration::hours(1));
    let a_minute_ago = crate::ports::order_outbox::iso(now() - chrono::Duration::minutes(1));
    outbox.edit("org_1", "o-00000", |o| {
        o.state = UploadState::Leased;
        o.lease_owner = Some("other-run".into());
        o.lease_until = Some(in_an_hour.clone());
    });
    outbox.edit("org_1", "o-00001", |o| {
        o.state = UploadState::Leased;
        o.lease_owner = Some("crashed-run".into());
        o.lease_until = Some(a_minute_ago.clone());
    });
    let api = Arc::new(FakeOrdersApi::default());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.created, 2);
    let held = outbox.get("org_1", "o-00000").await.unwrap().unwrap();
    assert_eq!(
        (held.state, held.lease_owner.as_deref()),
        (UploadState::Leased, Some("other-run"))
    );
    assert_eq!(
        outbox.get("org_1", "o-00001").await.unwrap().unwrap().state,
        UploadState::Created
    );
    assert!(!api
        .posts
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .any(|r| r == "o-00000"));
}

#[tokio::test(start_paused = true)]
async fn a_lease_repeated_after_a_lost_answer_still_takes_its_orders() {
    // The lease lands and its answer is lost; the repeat meets leases held by this very run.
    // They are still ours to send now, not left until the lease expires.
    let outbox = outbox_with(3).await;
    outbox.fail_after_next_lease();
    let api = Arc::new(FakeOrdersApi::default());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.created, 3, "{report:?}");
    assert_eq!(states(&outbox).get(&UploadState::Created), Some(&3));
    assert_eq!(api.posts.lock().unwrap().len(), 1, "one POST for the three");
}

#[tokio::test(start_paused = true)]
async fn an_outcome_for_a_lease_taken_over_is_not_recorded() {
    let outbox = MemoryOutbox::default();
    crate::domain::order_intake::intake_orders(
        &outbox,
        vec![crate::domain::order_intake::tests::valid_order("o-1")],
        now(),
    )
    .await
    .unwrap();
    let page = outbox.pending("org_1", None, 10).await.unwrap();
    let until = now() + chrono::Duration::minutes(5);
    let leased = outbox
        .lease(&page.orders, "run-a", now(), until)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].state, UploadState::Leased);
    // run-b cannot take a live lease...
    assert!(outbox
        .lease(&page.orders, "run-b", now(), until)
        .await
        .unwrap()
        .is_empty());
    // ...but can once it expired, and then run-a's late outcome is ignored.
    let later = now() + chrono::Duration::minutes(6);
    assert_eq!(
        outbox
            .lease(
                &page.orders,
                "run-b",
                later,
                later + chrono::Duration::minutes(5)
            )
            .await
            .unwrap()
            .len(),
        1
    );
    let late = vec![(
        "o-1".to_string(),
        UploadOutcome::Failed {
            code: "X".into(),
            field: None,
            message: None,
        },
    )];
    assert_eq!(
        outbox.record("org_1", "run-a", &late, later).await.unwrap(),
        0
    );
    let ok = vec![(
        "o-1".to_string(),
        UploadOutcome::Created {
            order_id: "ord_1".into(),
        },
    )];
    assert_eq!(
        outbox.record("org_1", "run-b", &ok, later).await.unwrap(),
        1
    );
    assert_eq!(
        outbox.get("org_1", "o-1").await.unwrap().unwrap().state,
        UploadState::Created
    );
}

#[tokio::test(start_paused = true)]
async fn a_whole_request_422_is_narrowed_down_to_the_bad_order() {
    let outbox = outbox_with(16).await;
    let api = Arc::new(FakeOrdersApi::default());
    *api.schema_poison.lock().unwrap() = Some("o-00011".into());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!((report.created, report.failed), (15, 1));
    let bad = outbox.get("org_1", "o-00011").await.unwrap().unwrap();
    assert_eq!(bad.error_code.as_deref(), Some("SCHEMA_VALIDATION"));
}

#[tokio::test(start_paused = true)]
async fn an_unauthorised_key_leaves_everything_pending() {
    let outbox = outbox_with(5).await;
    let api = Arc::new(FakeOrdersApi::default());
    api.fail_next
        .lock()
        .unwrap()
        .push_back(OrderApiError::Fatal {
            status: 401,
            message: "invalid key".into(),
        });
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.blocked, vec!["org_1".to_string()]);
    assert_eq!(states(&outbox).get(&UploadState::Pending), Some(&5));
    assert_eq!(api.created_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn updates_go_out_as_patch_once_the_order_exists() {
    let outbox = outbox_with(1).await;
    let api = Arc::new(FakeOrdersApi::default());
    let patch: PatchOrder = serde_json::from_value(serde_json::json!({
        "refunds": [{"reference_id": "refund-1", "amount_in_cents": 4900, "currency": "USD",
                     "status": "SUCCEEDED", "original_transaction_reference_id": "txn-o-00000"}]
    }))
    .unwrap();
    // Queued before the order is even created: it waits for the order_id.
    outbox
        .queue_update("org_1", "o-00000", "u-1", &patch, now())
        .await
        .unwrap();
    let first = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(first.created, 1);
    assert!(
        outbox.in_pending_index("org_1", "o-00000"),
        "the update still waits"
    );
    let second = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(second.patched, 1);
    let order_id = outbox
        .get("org_1", "o-00000")
        .await
        .unwrap()
        .unwrap()
        .order_id
        .unwrap();
    assert_eq!(api.patches.lock().unwrap().clone(), vec![(order_id, patch)]);
    assert!(!outbox.in_pending_index("org_1", "o-00000"));
    assert_eq!(api.created_count(), 1);
}

// ------------------------------------------------------------------ duplicates across runs

/// A run as the Lambda makes it: a fresh limiter and a stop time `budget` from now; killed
/// (dropped, as Lambda ends an invocation) if it is still going 5 s after that.
async fn budgeted_run(
    outbox: Arc<MemoryOutbox>,
    api: Arc<FakeOrdersApi>,
    clock: Arc<FixedClock>,
    owner: &str,
    budget: Duration,
) -> Option<UploadReport> {
    let run = OrderUpload {
        outbox,
        api,
        notifier: Arc::new(RecordingNotifier::default()),
        limiter: Arc::new(OrgRateLimiter::new(RateLimit::CHARGEBACKSTOP)),
        clock: clock.clone(),
        config: UploadConfig::default(),
        owner: owner.into(),
        stop_at: Instant::now() + budget,
    };
    let started = Instant::now();
    let report = tokio::time::timeout(budget + Duration::from_secs(5), run.run())
        .await
        .ok()
        .map(|r| r.unwrap());
    clock.advance(chrono::Duration::from_std(started.elapsed()).unwrap());
    report
}

/// Defect 2: 100 orders created by a run whose answer was lost are sent again. Each lookup is
/// recorded as it is answered, a run stops at its budget, and the next run resumes the lookups
/// (never re-POSTing): all 100 end DUPLICATE with ChargebackStop's ids after a few runs.
#[tokio::test(start_paused = true)]
async fn a_resend_of_100_created_orders_is_reconciled_across_budgeted_runs() {
    let outbox = outbox_with(100).await;
    let api = Arc::new(FakeOrdersApi::default());
    for o in outbox.snapshot() {
        let id = format!("ord_lost_{}", o.reference_id);
        api.created.lock().unwrap().insert(o.reference_id, id);
    }
    let clock = Arc::new(FixedClock::at(now()));
    let settled = |outbox: &MemoryOutbox| {
        outbox
            .snapshot()
            .iter()
            .filter(|o| o.state == UploadState::Duplicate)
            .count()
    };
    let mut progress = Vec::new();
    for run in 0..20 {
        let report = budgeted_run(
            outbox.clone(),
            api.clone(),
            clock.clone(),
            &format!("run-{run}"),
            Duration::from_secs(20),
        )
        .await;
        assert!(
            report.is_some(),
            "run {run} overran its budget and was killed: progress so far {progress:?}"
        );
        let done = settled(&outbox);
        assert!(
            done > progress.last().copied().unwrap_or(0),
            "run {run} recorded nothing new: {progress:?}"
        );
        progress.push(done);
        // What is not settled waits for a lookup, never for another POST.
        for o in outbox.snapshot() {
            assert!(
                matches!(o.state, UploadState::Duplicate | UploadState::Reconcile),
                "{}: {:?}",
                o.reference_id,
                o.state
            );
        }
        if done == 100 {
            break;
        }
    }
    assert_eq!(progress.last(), Some(&100), "{progress:?}");
    assert!(
        progress.len() > 1,
        "the budget was short enough to need several runs"
    );
    assert_eq!(
        api.posts.lock().unwrap().len(),
        1,
        "POSTed once, then only looked up"
    );
    assert_eq!(api.gets.lock().unwrap().len(), 100, "one lookup per order");
    assert_eq!(api.created_count(), 100, "nothing created twice");
    for o in outbox.snapshot() {
        assert_eq!(
            o.order_id,
            Some(format!("ord_lost_{}", o.reference_id)),
            "{}",
            o.reference_id
        );
        assert!(!outbox.in_pending_index("org_1", &o.reference_id));
    }
}

/// A run killed in the middle of its lookups leaves RECONCILE orders behind; once their lease
/// expires the next run looks them up instead of POSTing them again.
#[tokio::test(start_paused = true)]
async fn lookups_left_by_a_killed_run_are_resumed_not_resent() {
    let outbox = outbox_with(30).await;
    let api = Arc::new(FakeOrdersApi::default());
    for o in outbox.snapshot() {
        api.created
            .lock()
            .unwrap()
            .insert(o.reference_id.clone(), format!("ord_{}", o.reference_id));
    }
    let clock = Arc::new(FixedClock::at(now()));
    let mut run = upload(outbox.clone(), api.clone(), 100);
    run.clock = clock.clone();
    // Killed after 5 s, long before its stop time: nothing gave the leases back.
    let killed = tokio::time::timeout(Duration::from_secs(5), run.run()).await;
    assert!(killed.is_err());
    let after_kill = states(&outbox);
    assert!(
        after_kill
            .get(&UploadState::Reconcile)
            .copied()
            .unwrap_or(0)
            > 0,
        "{after_kill:?}"
    );
    clock.advance(chrono::Duration::minutes(10));
    let report = upload(outbox.clone(), api.clone(), 100);
    let report = OrderUpload {
        clock: clock.clone(),
        ..report
    }
    .run()
    .await
    .unwrap();
    assert_eq!(states(&outbox).get(&UploadState::Duplicate), Some(&30));
    assert_eq!(api.posts.lock().unwrap().len(), 1, "{report:?}");
}

// ------------------------------------------------------------- attempts, backoff, requeue

/// Defect 8: an order that keeps failing transiently is tried by at most `max_attempts` runs,
/// waits longer before each, never holds up the orders behind it, then ends FAILED with the
/// reason, notified.
#[tokio::test(start_paused = true)]
async fn an_order_that_keeps_failing_ends_failed_after_max_attempts_and_blocks_nobody() {
    let outbox = outbox_with(1).await; // o-00000 is the oldest: the head of the index
    let api = Arc::new(FakeOrdersApi::default());
    api.always_unavailable
        .lock()
        .unwrap()
        .insert("o-00000".into());
    let clock = Arc::new(FixedClock::at(now()));
    let notifier = Arc::new(RecordingNotifier::default());
    let config = UploadConfig {
        batch_size: 1,
        max_attempts: 3,
        attempts_per_run: 2,
        ..Default::default()
    };
    let run = |n: u32| OrderUpload {
        outbox: outbox.clone(),
        api: api.clone(),
        notifier: notifier.clone(),
        limiter: Arc::new(OrgRateLimiter::new(RateLimit::CHARGEBACKSTOP)),
        clock: clock.clone(),
        config: config.clone(),
        owner: format!("run-{n}"),
        stop_at: Instant::now() + Duration::from_secs(50),
    };
    // Newer orders arrive after the stuck one.
    let later: Vec<serde_json::Value> = (1..4)
        .map(|i| crate::domain::order_intake::tests::valid_order(&format!("o-{i:05}")))
        .collect();
    intake_orders(&*outbox, later, now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(2));
    let first = run(1).run().await.unwrap();
    assert_eq!(
        first.created, 3,
        "the orders behind the stuck one went out: {first:?}"
    );
    let stuck = outbox.get("org_1", "o-00000").await.unwrap().unwrap();
    assert_eq!((stuck.state, stuck.attempts), (UploadState::Pending, 1));
    assert!(
        stuck.queued_at > crate::ports::order_outbox::iso(clock.now()),
        "moved back to its next-attempt time: {}",
        stuck.queued_at
    );
    assert!(stuck.last_error.as_deref().unwrap_or("").contains("503"));
    // Not due yet: a run right now leaves it alone.
    let posts = api.posts.lock().unwrap().len();
    run(2).run().await.unwrap();
    assert_eq!(
        api.posts.lock().unwrap().len(),
        posts,
        "not sent before it is due"
    );
    // Runs at its next-attempt times, until the attempts are used up.
    let mut reports = Vec::new();
    for n in 3..10 {
        clock.advance(chrono::Duration::hours(2));
        reports.push(run(n).run().await.unwrap());
        if outbox.get("org_1", "o-00000").await.unwrap().unwrap().state == UploadState::Failed {
            break;
        }
    }
    let failed = outbox.get("org_1", "o-00000").await.unwrap().unwrap();
    assert_eq!(failed.state, UploadState::Failed, "{reports:?}");
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.error_code.as_deref(), Some(ATTEMPTS_EXHAUSTED));
    assert!(failed.error_message.as_deref().unwrap().contains("503"));
    assert!(!outbox.in_pending_index("org_1", "o-00000"));
    assert_eq!(reports.last().unwrap().attempts_exhausted, 1);
    let sent = notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, "order.upload_failed");
    assert!(sent[0]
        .note
        .as_deref()
        .unwrap()
        .contains("o-00000 (ATTEMPTS_EXHAUSTED)"));
    // Nothing else happens to it: a further run leaves it alone.
    let posts = api.posts.lock().unwrap().len();
    clock.advance(chrono::Duration::hours(2));
    run(20).run().await.unwrap();
    assert_eq!(api.posts.lock().unwrap().len(), posts);
}

/// A FAILED order is corrected and requeued under the same reference; the next run creates it.
#[tokio::test(start_paused = true)]
async fn a_failed_order_corrected_and_requeued_is_created_once() {
    let outbox = outbox_with(2).await;
    let api = Arc::new(FakeOrdersApi::default());
    api.refuse.lock().unwrap().insert(
        "o-00001".into(),
        ("INVALID_INTEGRATION".into(), "integration_id".into()),
    );
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!((report.created, report.failed), (1, 1));
    // The operator fixes the integration and requeues it.
    api.refuse.lock().unwrap().clear();
    let mut corrected: Order =
        serde_json::from_value(crate::domain::order_intake::tests::valid_order("o-00001")).unwrap();
    corrected.integration_id = Some("int_2".into());
    assert_eq!(
        outbox
            .requeue("org_1", "o-00001", Some(&corrected), now())
            .await
            .unwrap(),
        crate::ports::order_outbox::Requeued::Requeued
    );
    let again = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(again.created, 1);
    let o = outbox.get("org_1", "o-00001").await.unwrap().unwrap();
    assert_eq!(o.state, UploadState::Created);
    assert_eq!(o.order.integration_id.as_deref(), Some("int_2"));
    assert_eq!(api.created_count(), 2);
    let sends = api
        .posts
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .filter(|r| *r == "o-00001")
        .count();
    assert_eq!(sends, 2, "refused once, created once");
    // Only a FAILED order can be requeued.
    assert_eq!(
        outbox
            .requeue("org_1", "o-00001", None, now())
            .await
            .unwrap(),
        crate::ports::order_outbox::Requeued::NotFailed(UploadState::Created)
    );
}

// ----------------------------------------------------------------- answers without an echo

/// Issue 11: errors that carry only their `index` are matched to their order by position.
#[tokio::test(start_paused = true)]
async fn batch_errors_without_a_reference_echo_are_matched_by_index() {
    let outbox = outbox_with(6).await;
    let api = Arc::new(FakeOrdersApi::default());
    api.omit_reference_echo
        .store(true, std::sync::atomic::Ordering::SeqCst);
    api.refuse.lock().unwrap().insert(
        "o-00004".into(),
        ("INVALID_INTEGRATION".into(), "integration_id".into()),
    );
    api.created
        .lock()
        .unwrap()
        .insert("o-00002".into(), "ord_earlier".into());
    let report = upload(outbox.clone(), api.clone(), 100)
        .run()
        .await
        .unwrap();
    assert_eq!(
        (report.created, report.duplicate, report.failed),
        (4, 1, 1),
        "{report:?}"
    );
    let failed = outbox.get("org_1", "o-00004").await.unwrap().unwrap();
    assert_eq!(failed.error_field.as_deref(), Some("integration_id"));
    let dup = outbox.get("org_1", "o-00002").await.unwrap().unwrap();
    assert_eq!(dup.order_id.as_deref(), Some("ord_earlier"));
    assert_eq!(api.posts.lock().unwrap().len(), 1, "nothing sent twice");
}
