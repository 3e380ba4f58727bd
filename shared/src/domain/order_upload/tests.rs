//! Unit tests of the upload run over the in-memory outbox and a fake Orders API.

use super::*;
use crate::adapters::memory_orders::MemoryOutbox;
use crate::clock::FixedClock;
use crate::domain::order_intake::intake_orders;
use crate::domain::rate_limit::RateLimit;
use crate::models::order::{OrderError, PatchOrder};
use crate::ports::order_outbox::UploadState;
use std::collections::{HashMap, VecDeque};

#[derive(Default)]
struct FakeOrdersApi {
    created: Mutex<HashMap<String, String>>,
    /// Every POST, as the reference ids it carried.
    posts: Mutex<Vec<Vec<String>>>,
    gets: Mutex<Vec<String>>,
    patches: Mutex<Vec<(String, PatchOrder)>>,
    fail_next: Mutex<VecDeque<OrderApiError>>,
    /// reference -> (code, field) refused per order.
    refuse: Mutex<HashMap<String, (String, String)>>,
    /// A whole-request 422 whenever the batch carries this reference.
    schema_poison: Mutex<Option<String>>,
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
        if let Some(e) = self.fail_next.lock().unwrap().pop_front() {
            return Err(e);
        }
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
        for order in orders {
            let reference = order.reference_id.clone().unwrap();
            if let Some((code, field)) = self.refuse.lock().unwrap().get(&reference) {
                response.errors.push(OrderError {
                    reference_id: Some(reference),
                    code: code.as_str().into(),
                    field: Some(field.clone()),
                    message: Some("refused".into()),
                    order_id: None,
                });
                continue;
            }
            if created.contains_key(&reference) {
                response.errors.push(OrderError {
                    reference_id: Some(reference),
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
        limiter: Arc::new(OrgRateLimiter::new(RateLimit {
            requests: 100,
            window: Duration::from_secs(60),
            safety: 0.95,
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
