//! The typed ChargebackStop client (`shared::client`) against the real local sandbox
//! (`cbs-sandbox`, a process on a free port): typed errors (401, 403, 404, 422 with detail and
//! codes, 429, 5xx, timeouts), retries only where safe, `Retry-After`, the alert pager, orders
//! with partial success, and the domain ports the Lambda functions use.
//!
//! Every test starts its own sandbox: fault knobs are global to a sandbox.
//! Needs `cargo build -p cbs-sandbox` first (bin/test builds every binary up front).

use std::collections::BTreeMap;
use std::time::Duration;

use devstack::{Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::client::{ApiError, ChargebackStop, ClientConfig, RetryPolicy};
use shared::domain::onboarding::{MerchantSpec, OnboardingApi};
use shared::models::{
    AlertAction, AlertQuery, AlertSort, AlertStatus, CreateEnrolment, CreateIntegration,
    CreateMerchant, CreateOrganisation, EnrolmentStatus, EthocaDescriptor, IntegrationStatus,
    IntegrationType, MatchType, MerchantType, Order, OrderErrorCode, OrderStatus, PatchOrder,
    SimulateAlert, UpdateAlert,
};
use shared::ports::alert_api::{AlertApi, ApiCallError};
use shared::ports::enrolment_api::EnrolmentApi;
use shared::ports::order_api::{OrderApi, OrderApiError};
use shared::secret::Secret;

/// Short backoff so retries are quick; a generous total so `Retry-After: 1` fits twice.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total: Duration::from_secs(30),
    }
}

struct Env {
    sandbox: Sandbox,
    api: ChargebackStop,
    admin: reqwest::Client,
    org_id: String,
    merchant_id: String,
    integration_id: String,
    enrolment_id: String,
}

impl Env {
    /// A sandbox with one TEST organisation, merchant, CUSTOM_ORDERS integration and an
    /// ENABLED Ethoca enrolment, all created through the client.
    async fn start() -> Env {
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox");
        let api = client(&sandbox, &sandbox.partner_key, fast_retry());
        let org = api
            .create_organisation(&CreateOrganisation {
                name: "[TEST] Client Co".into(),
            })
            .await
            .expect("organisation");
        let merchant = api
            .create_merchant(&CreateMerchant {
                organisation_id: org.id.clone(),
                name: "Client Co Store".into(),
                merchant_type: MerchantType::Generic,
                external_id: Some("mid_client_1".into()),
            })
            .await
            .expect("merchant");
        let integration = api
            .create_integration(&CreateIntegration {
                organisation_id: org.id.clone(),
                name: "Client Co Orders".into(),
                integration_type: IntegrationType::CustomOrders,
                status: IntegrationStatus::Enabled,
                merchant_ids: vec![merchant.id.clone()],
            })
            .await
            .expect("integration");
        let enrolment = api
            .create_enrolment(&CreateEnrolment::ethoca(
                vec![merchant.id.clone()],
                vec![EthocaDescriptor::new("CLIENTCO", MatchType::StartsWith)],
            ))
            .await
            .expect("enrolment");
        assert_eq!(enrolment.status, EnrolmentStatus::Pending);
        let enabled = api
            .simulate_enrolment_status(&enrolment.id, EnrolmentStatus::Enabled)
            .await
            .expect("simulate enable");
        assert_eq!(enabled.status, EnrolmentStatus::Enabled);
        let admin = reqwest::Client::new();
        Env {
            sandbox,
            api,
            admin,
            org_id: org.id,
            merchant_id: merchant.id,
            integration_id: integration.id,
            enrolment_id: enrolment.id,
        }
    }

    async fn simulate_alert(&self) -> String {
        self.api
            .simulate_alert(&SimulateAlert {
                organisation_id: self.org_id.clone(),
                enrolment_id: self.enrolment_id.clone(),
                status: Some(AlertStatus::ActionRequired),
                amount_in_cents: Some(4900),
                currency_code: Some("USD".into()),
                ..Default::default()
            })
            .await
            .expect("simulated alert")
            .id
    }

    async fn faults(&self, knobs: Value) {
        let status = self
            .admin
            .put(self.sandbox.admin_url("faults"))
            .json(&knobs)
            .send()
            .await
            .expect("faults")
            .status();
        assert!(status.is_success(), "PUT /_sandbox/faults: {status}");
    }

    /// Requests the sandbox saw, per "METHOD /route/template".
    async fn counts(&self) -> BTreeMap<String, u64> {
        self.admin
            .get(self.sandbox.admin_url("requests/counts"))
            .send()
            .await
            .expect("counts")
            .json()
            .await
            .expect("counts body")
    }

    /// A key minted through the admin API (partner scope, TEST, admin) with these abilities.
    async fn key_with(&self, abilities: &[&str]) -> String {
        let body: Value = self
            .admin
            .post(self.sandbox.admin_url("keys"))
            .json(&json!({ "scope": "partner", "mode": "TEST", "admin": true, "abilities": abilities }))
            .send()
            .await
            .expect("key")
            .json()
            .await
            .expect("key body");
        body["key"].as_str().expect("key value").to_owned()
    }

    fn order(&self, reference: &str) -> Order {
        serde_json::from_value(json!({
            "type": "COMPLETE",
            "organisation_id": self.org_id,
            "integration_id": self.integration_id,
            "reference_id": reference,
            "order_datetime": "2026-02-17T09:59:00Z",
            "order_number": format!("CC-{reference}"),
            "order_subtotal_amount_in_cents": 4900,
            "order_currency": "USD",
            "order_total_amount_in_cents": 4900,
            "order_status": "CLOSED_COMPLETE",
            "customer_email": "casey@example.com",
            "transactions": [{
                "reference_id": format!("txn-{reference}"),
                "amount_in_cents": 4900,
                "currency": "USD",
                "payment_method_type": "CARD",
                "authorisation_status": "SETTLED",
                "payment_method_reference_id": "pi_1",
                "authorised_at": "2026-02-17T09:59:05Z",
                "payment_method_card_brand": "VISA",
                "payment_method_card_last_4": "4242",
                "acquirer_reference_number": "74027012345678901234567"
            }]
        }))
        .expect("order literal")
    }
}

fn client(sandbox: &Sandbox, key: &str, retry: RetryPolicy) -> ChargebackStop {
    ChargebackStop::new(
        ClientConfig::new(sandbox.base_url.clone(), Secret::new(key)).with_retry(retry),
    )
    .expect("client")
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, route: &str) -> u64 {
    after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_401_403_404_422() {
    let env = Env::start().await;
    let alert_id = env.simulate_alert().await;

    // 401: an unknown key. The message names the call, never the key.
    let wrong = "cbs_test_not_a_real_key_0123456789";
    let err = client(&env.sandbox, wrong, fast_retry())
        .get_alert(&alert_id)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err:?}");
    assert!(
        !err.to_string().contains(wrong) && !format!("{err:?}").contains(wrong),
        "{err}"
    );

    // 403: a valid key without alerts:write.
    let read_only = env.key_with(&["alerts:read"]).await;
    let limited = client(&env.sandbox, &read_only, fast_retry());
    assert_eq!(
        limited
            .get_alert(&alert_id)
            .await
            .expect("alerts:read is enough")
            .id,
        alert_id
    );
    let err = limited
        .update_alert(&alert_id, &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Forbidden { .. }), "{err:?}");
    assert!(!err.to_string().contains(&read_only));

    // 404: unknown ids, through the client and the ports.
    let err = env
        .api
        .get_alert("netalrt_does_not_exist")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(matches!(
        AlertApi::get_alert(&env.api, "netalrt_does_not_exist").await,
        Err(ApiCallError::NotFound { .. })
    ));
    assert!(matches!(
        EnrolmentApi::get_enrolment(&env.api, "enrl_does_not_exist").await,
        Err(ApiCallError::NotFound { .. })
    ));

    // 422 from the API: an enum value it does not know, with the body's detail, codes and field.
    let query = AlertQuery {
        status: Some(AlertStatus::Other("BOGUS".into())),
        ..Default::default()
    };
    let err = env.api.list_alerts(&query).await.unwrap_err();
    assert!(matches!(err, ApiError::Unprocessable { .. }), "{err:?}");
    assert!(!err.codes().is_empty(), "{err:?}");
    assert_eq!(err.fields(), ["status"], "{err:?}");
    assert!(!err.detail().unwrap_or_default().is_empty(), "{err:?}");

    // An inverted date range never leaves the client: refused with the field, no request made.
    let query = AlertQuery {
        alert_received_at_gte: Some("2026-03-01T00:00:00Z".parse().unwrap()),
        alert_received_at_lte: Some("2026-02-01T00:00:00Z".parse().unwrap()),
        ..Default::default()
    };
    let before = env.counts().await;
    match env.api.list_alerts(&query).await.unwrap_err() {
        ApiError::Invalid { errors, .. } => {
            assert!(
                errors.has(
                    "alert_received_at_gte",
                    shared::validation::INVALID_DATE_RANGE
                ),
                "{errors}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(delta(&before, &env.counts().await, "GET /v1/alerts"), 0);

    // 422: actioning a resolved alert. The first action resolves it.
    let resolved = env
        .api
        .update_alert(
            &alert_id,
            &UpdateAlert::action(AlertAction::Refund).with_note("refunded"),
        )
        .await
        .expect("first action");
    assert_eq!(resolved.status, AlertStatus::Resolved);
    let err = env
        .api
        .update_alert(&alert_id, &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unprocessable { .. }), "{err:?}");
    assert!(!err.codes().is_empty(), "{err:?}");
    match AlertApi::update_alert(
        &env.api,
        &alert_id,
        &UpdateAlert::action(AlertAction::Refund),
    )
    .await
    {
        Err(ApiCallError::Unprocessable { code, .. }) => assert_eq!(code, err.codes()[0]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_retried_honouring_retry_after() {
    let env = Env::start().await;
    let alert_id = env.simulate_alert().await;
    let route = "GET /v1/alerts/{alert_id}";

    // Two 429s (each with Retry-After: 1), then the answer: three requests, one result.
    env.faults(json!({ "burst_429": 2 })).await;
    let before = env.counts().await;
    let alert = env
        .api
        .get_alert(&alert_id)
        .await
        .expect("retried through two 429s");
    assert_eq!(alert.id, alert_id);
    assert_eq!(delta(&before, &env.counts().await, route), 3);

    // Retry-After is what decides the wait: with a 500 ms budget the 1 s the sandbox asks for
    // does not fit, so the client gives up after one request even though its own backoff
    // (10 ms) would have fitted.
    let tight = client(
        &env.sandbox,
        &env.sandbox.partner_key,
        RetryPolicy {
            max_total: Duration::from_millis(500),
            ..fast_retry()
        },
    );
    env.faults(json!({ "burst_429": 1 })).await;
    let before = env.counts().await;
    let err = tight.get_alert(&alert_id).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)), "{err:?}");
    assert_eq!(delta(&before, &env.counts().await, route), 1);

    // The order port hands the 429 and its Retry-After to the upload (which paces itself).
    let no_retry = client(&env.sandbox, &env.sandbox.partner_key, RetryPolicy::none());
    env.faults(json!({ "burst_429": 1 })).await;
    match OrderApi::create_orders(&no_retry, &[env.order("rl-1")]).await {
        Err(OrderApiError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_retry_reads_but_never_repeat_a_create() {
    let env = Env::start().await;
    let alert_id = env.simulate_alert().await;
    env.faults(json!({ "error_rate": 1.0, "error_status": 503 }))
        .await;
    let before = env.counts().await;

    let err = env.api.get_alert(&alert_id).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Server { status: 503, .. }),
        "{err:?}"
    );
    let err = env
        .api
        .create_merchant(&CreateMerchant {
            organisation_id: env.org_id.clone(),
            name: "Second store".into(),
            merchant_type: MerchantType::Generic,
            external_id: Some("mid_client_2".into()),
        })
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let err = env
        .api
        .simulate_alert(&SimulateAlert {
            organisation_id: env.org_id.clone(),
            enrolment_id: env.enrolment_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Server { .. }), "{err:?}");
    // Orders carry our reference_ids, so ChargebackStop deduplicates: safe to repeat.
    let err = env
        .api
        .create_orders(&[env.order("o-503")])
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Server { .. }), "{err:?}");
    // PATCH sets the same values again: safe to repeat.
    let err = env
        .api
        .update_alert(&alert_id, &UpdateAlert::note("hello"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Server { .. }), "{err:?}");

    let after = env.counts().await;
    assert_eq!(
        delta(&before, &after, "GET /v1/alerts/{alert_id}"),
        3,
        "{after:?}"
    );
    assert_eq!(
        delta(&before, &after, "PATCH /v1/alerts/{alert_id}"),
        3,
        "{after:?}"
    );
    assert_eq!(delta(&before, &after, "POST /v1/orders"), 3, "{after:?}");
    assert_eq!(delta(&before, &after, "POST /v1/merchants"), 1, "{after:?}");
    assert_eq!(
        delta(&before, &after, "POST /v1/simulate/alerts"),
        1,
        "{after:?}"
    );

    // The ports call these transient: redeliver later.
    assert!(AlertApi::get_alert(&env.api, &alert_id)
        .await
        .unwrap_err()
        .is_retryable());
    assert!(matches!(
        OrderApi::create_orders(&env.api, &[env.order("o-503")]).await,
        Err(OrderApiError::Retryable(_))
    ));
    env.faults(json!({ "error_rate": 0.0 })).await;
    assert_eq!(
        env.api
            .get_alert(&alert_id)
            .await
            .expect("healthy again")
            .id,
        alert_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_is_a_timeout() {
    let env = Env::start().await;
    let alert_id = env.simulate_alert().await;
    let impatient = ChargebackStop::new(
        ClientConfig::new(
            env.sandbox.base_url.clone(),
            Secret::new(env.sandbox.partner_key.clone()),
        )
        .with_timeout(Duration::from_millis(200))
        .with_retry(RetryPolicy::none()),
    )
    .unwrap();
    env.faults(json!({ "latency_ms": 3000 })).await;
    let err = impatient.get_alert(&alert_id).await.unwrap_err();
    assert!(matches!(err, ApiError::Timeout { .. }), "{err:?}");
    assert!(matches!(
        AlertApi::get_alert(&impatient, &alert_id).await,
        Err(ApiCallError::Transient { .. })
    ));
    env.faults(json!({ "latency_ms": 0 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pager_walks_every_page_with_filters_and_sort() {
    let env = Env::start().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(env.simulate_alert().await);
    }

    let query = AlertQuery {
        organisation_id: Some(env.org_id.clone()),
        merchant_id: Some(env.merchant_id.clone()),
        sort: Some(AlertSort::ReceivedOldestFirst),
        limit: Some(2),
        ..Default::default()
    };
    let mut pager = env.api.alerts(query.clone());
    let mut seen = Vec::new();
    while let Some(alert) = pager.next().await {
        seen.push(alert.expect("page").id);
    }
    assert_eq!(pager.pages_fetched(), 3, "2 + 2 + 1");
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), 5, "no alert twice: {seen:?}");
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(sorted_seen, expected);

    // One alert resolved: the status filter leaves four; a window in the past leaves none.
    env.api
        .update_alert(&created[0], &UpdateAlert::action(AlertAction::Refund))
        .await
        .unwrap();
    let waiting = env
        .api
        .alerts(AlertQuery {
            status: Some(AlertStatus::ActionRequired),
            ..query.clone()
        })
        .collect_all()
        .await
        .unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(waiting
        .iter()
        .all(|a| a.status == AlertStatus::ActionRequired && a.id != created[0]));
    let old = env
        .api
        .list_alerts(&AlertQuery {
            alert_received_at_lte: Some("2000-01-01T00:00:00Z".parse().unwrap()),
            ..query.clone()
        })
        .await
        .unwrap();
    assert!(old.items.is_empty());
    let offset = env
        .api
        .list_alerts(&AlertQuery {
            offset: Some(4),
            ..query
        })
        .await
        .unwrap();
    assert_eq!(offset.items.len(), 1);
    assert_eq!(offset.count, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_succeed_partially_and_duplicates_reconcile() {
    let env = Env::start().await;
    let good = env.order("cc-1");
    let mut bad = env.order("cc-2");
    bad.integration_id = Some("int_does_not_exist".into());

    let batch = env
        .api
        .create_orders(&[good.clone(), bad])
        .await
        .expect("batch");
    assert_eq!((batch.created, batch.failed), (1, 1), "{batch:?}");
    let order_id = batch
        .result_for("cc-1")
        .and_then(|o| o.id.clone())
        .expect("created order");
    assert_eq!(
        batch.error_for("cc-2").map(|e| e.code.clone()),
        Some(OrderErrorCode::InvalidIntegration)
    );

    // The same reference again: DUPLICATE_ORDER, reconciled by reference_id.
    let again = env.api.create_orders(&[good]).await.expect("batch");
    assert_eq!(
        again.error_for("cc-1").map(|e| e.code.clone()),
        Some(OrderErrorCode::DuplicateOrder)
    );
    let found = env
        .api
        .find_order_by_reference(Some(&env.org_id), "cc-1")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.id.as_deref(), Some(order_id.as_str()));
    assert_eq!(
        env.api
            .find_order_by_reference(Some(&env.org_id), "cc-unknown")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        OrderApi::find_order_id(&env.api, &env.org_id, "cc-1")
            .await
            .unwrap(),
        Some(order_id.clone())
    );

    // PATCH later lifecycle data.
    let patch = PatchOrder {
        order_status: Some(OrderStatus::ClosedCancelled),
        ..Default::default()
    };
    let updated = env
        .api
        .update_order(&order_id, &patch)
        .await
        .expect("patch");
    assert_eq!(updated.order_status, Some(OrderStatus::ClosedCancelled));
    OrderApi::patch_order(&env.api, &order_id, &patch)
        .await
        .expect("patch through the port");
    assert_eq!(
        env.api.get_order(&order_id).await.unwrap().order_status,
        Some(OrderStatus::ClosedCancelled)
    );
    assert!(matches!(
        OrderApi::patch_order(&env.api, "ord_does_not_exist", &patch).await,
        Err(OrderApiError::Fatal { status: 404, .. })
    ));

    // More than 100 orders are refused before sending, in a way the upload splits.
    let many: Vec<Order> = (0..101).map(|i| env.order(&format!("many-{i}"))).collect();
    assert!(matches!(
        OrderApi::create_orders(&env.api, &many).await,
        Err(OrderApiError::Rejected { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_port_finds_what_it_created() {
    let env = Env::start().await;
    let api: &dyn OnboardingApi = &env.api;
    let spec = MerchantSpec {
        name: "Port Store".into(),
        merchant_type: "GENERIC".into(),
        external_id: "mid_port_1".into(),
    };
    assert_eq!(
        api.find_merchant(&env.org_id, "mid_port_1").await.unwrap(),
        None
    );
    let id = api.create_merchant(&env.org_id, &spec).await.unwrap();
    assert_eq!(
        api.find_merchant(&env.org_id, "mid_port_1").await.unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        api.find_merchant(&env.org_id, "mid_client_1")
            .await
            .unwrap(),
        Some(env.merchant_id.clone())
    );

    let enrolment = api
        .create_enrolment(&json!({
            "merchant_ids": [id],
            "type": "ETHOCA_ALERT",
            "ethoca_alert": {"descriptors": [{"descriptor": "PORTSTORE", "match_type": "EXACT_MATCH"}]}
        }))
        .await
        .unwrap();
    assert_eq!(enrolment.status, "PENDING");
    assert_eq!(
        api.simulate_enable(&enrolment.id).await.unwrap().as_deref(),
        Some("ENABLED")
    );
    let org = api.get_organisation(&env.org_id).await.unwrap();
    assert_eq!(org.mode, "TEST");

    // A refused create keeps the status, code and field for the operator.
    let failure = api
        .create_enrolment(&json!({ "merchant_ids": [id], "type": "NOT_A_TYPE" }))
        .await
        .unwrap_err();
    assert_eq!(failure.status, Some(422), "{failure:?}");
    assert!(failure.code.is_some(), "{failure:?}");
}

/// Every other endpoint once, decoded into the typed models: organisations, memberships,
/// merchants, integrations, enrolments (list, get), RDR enrolment, rulesets (create, get,
/// PATCH, PATCH one rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_endpoint_decodes_into_the_models() {
    use shared::client::ListQuery;
    use shared::models::{
        AmountOperator, CreateMembership, CreateRuleset, DescriptorCriterion, JoinOperator,
        MembershipRole, OrganisationMode, PatchRule, PatchRuleset, Rule, RuleParameters, RuleType,
        RulesetOutcome,
    };
    let env = Env::start().await;
    let api = &env.api;

    let orgs = api
        .list_organisations(&ListQuery::page(10, 0))
        .await
        .unwrap();
    assert!(orgs
        .items
        .iter()
        .any(|o| o.id == env.org_id && o.mode == OrganisationMode::Test));
    assert_eq!(
        api.get_organisation(&env.org_id).await.unwrap().id,
        env.org_id
    );

    let membership = api
        .create_membership(&CreateMembership {
            organisation_id: env.org_id.clone(),
            first_name: "Casey".into(),
            last_name: "Jordan".into(),
            email: "casey.jordan@example.com".into(),
            role: MembershipRole::Admin,
            is_alert_action_required_email_enabled: Some(true),
            is_alert_resolved_email_enabled: Some(false),
            is_alert_dismissed_email_enabled: None,
            is_evidence_requested_email_enabled: None,
        })
        .await
        .unwrap();
    assert_eq!(membership.role, MembershipRole::Admin);
    let members = api
        .list_memberships(&ListQuery::default().for_organisation(&env.org_id))
        .await
        .unwrap();
    assert!(members.items.iter().any(|m| m.id == membership.id));

    let merchants = api
        .list_merchants(&ListQuery::default().for_organisation(&env.org_id))
        .await
        .unwrap();
    assert_eq!(merchants.items.len(), 1);
    assert_eq!(
        api.get_merchant(&env.merchant_id)
            .await
            .unwrap()
            .external_id
            .as_deref(),
        Some("mid_client_1")
    );
    let integrations = api
        .list_integrations(&ListQuery::default().for_organisation(&env.org_id))
        .await
        .unwrap();
    assert_eq!(integrations.items[0].id, env.integration_id);
    assert_eq!(
        api.get_integration(&env.integration_id)
            .await
            .unwrap()
            .merchant_ids,
        [env.merchant_id.clone()]
    );

    let rdr = api
        .create_enrolment(&CreateEnrolment::rdr_bin_caid(
            vec![env.merchant_id.clone()],
            "411111",
            "CAID123",
        ))
        .await
        .unwrap();
    let enrolments = api
        .list_enrolments(&ListQuery::default().for_organisation(&env.org_id))
        .await
        .unwrap();
    assert_eq!(enrolments.items.len(), 2);
    assert_eq!(
        api.get_enrolment(&env.enrolment_id).await.unwrap().status,
        EnrolmentStatus::Enabled
    );

    let ruleset = api
        .create_rdr_ruleset(&CreateRuleset {
            organisation_id: env.org_id.clone(),
            enrolment_ids: vec![rdr.id.clone()],
            outcome: RulesetOutcome::AcceptDispute,
            join_operator: JoinOperator::Or,
            is_enabled: None,
            rules: vec![
                Rule::amount(AmountOperator::GreaterThan, "USD", 10000),
                Rule::descriptor(vec![DescriptorCriterion {
                    value: "CLIENTCO HV".into(),
                    match_type: MatchType::StartsWith,
                }]),
            ],
        })
        .await
        .unwrap();
    assert_eq!(ruleset.rules.len(), 2);
    let patched = api
        .update_ruleset(
            &ruleset.id,
            &PatchRuleset {
                outcome: Some(RulesetOutcome::Refund),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.outcome, RulesetOutcome::Refund);
    let amount_rule = ruleset
        .rules
        .iter()
        .find(|r| r.rule_type == RuleType::Amount)
        .unwrap();
    let rule = api
        .update_rule(
            &ruleset.id,
            amount_rule.id.as_deref().unwrap(),
            &PatchRule {
                rule_type: None,
                parameters: Some(RuleParameters {
                    operator: Some(AmountOperator::GreaterThan),
                    currency_code: Some("USD".into()),
                    amount_in_cents: Some(25000),
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(rule.parameters.amount_in_cents, Some(25000));
    let fetched = api.get_ruleset(&ruleset.id).await.unwrap();
    assert!(fetched
        .rules
        .iter()
        .any(|r| r.parameters.amount_in_cents == Some(25000)));
    assert!(api
        .list_rulesets(&ListQuery::default().for_organisation(&env.org_id))
        .await
        .unwrap()
        .items
        .iter()
        .any(|r| r.id == ruleset.id));

    // The RDR limits are checked before sending.
    let err = api
        .create_rdr_ruleset(&CreateRuleset {
            organisation_id: env.org_id.clone(),
            enrolment_ids: vec![rdr.id.clone()],
            outcome: RulesetOutcome::Cancel,
            join_operator: JoinOperator::Or,
            is_enabled: None,
            rules: vec![Rule::amount(AmountOperator::GreaterThan, "EUR", 1)],
        })
        .await
        .unwrap_err();
    match err {
        ApiError::Invalid { errors, .. } => {
            assert!(
                errors.has("outcome", shared::validation::INVALID_VALUE),
                "{errors}"
            );
            assert!(
                errors.has(
                    "rules[0].parameters.currency_code",
                    shared::validation::INVALID_CURRENCY
                ),
                "{errors}"
            );
        }
        other => panic!("{other:?}"),
    }
}
