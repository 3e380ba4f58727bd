//! The typed client and the onboarding port against the real sandbox under each setting of the
//! knobs for what the docs leave open (tests/sandbox/README.md, "Assumptions where the docs are
//! silent"): 429 without `Retry-After`, an HTML 502 from a proxy, an empty 503, error bodies
//! without codes, order errors without the `reference_id` echo, every simulate-enrolment answer,
//! and strict paths (only the documented form of each path answers).
//!
//! Needs `cargo build -p cbs-sandbox` first (bin/test builds every binary up front).

use std::collections::BTreeMap;
use std::time::Duration;

use devstack::{Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::client::{ApiError, ChargebackStop, ClientConfig, ListQuery, RetryPolicy};
use shared::domain::onboarding::OnboardingApi;
use shared::models::{
    AlertAction, AlertQuery, AlertStatus, AmountOperator, CreateEnrolment, CreateIntegration,
    CreateMembership, CreateMerchant, CreateOrganisation, CreateRuleset, EnrolmentStatus,
    EthocaDescriptor, IntegrationStatus, IntegrationType, JoinOperator, MatchType, MembershipRole,
    MerchantType, Order, OrderStatus, PatchOrder, PatchRule, PatchRuleset, Rule, RuleParameters,
    RulesetOutcome, SimulateAlert, UpdateAlert,
};
use shared::ports::alert_api::{AlertApi, ApiCallError};
use shared::secret::Secret;

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
}

impl Env {
    async fn start() -> Env {
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox");
        let api = ChargebackStop::new(
            ClientConfig::new(
                sandbox.base_url.clone(),
                Secret::new(sandbox.partner_key.clone()),
            )
            .with_retry(fast_retry()),
        )
        .expect("client");
        Env {
            sandbox,
            api,
            admin: reqwest::Client::new(),
        }
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

    /// Organisation, merchant, CUSTOM_ORDERS integration and an enabled Ethoca enrolment,
    /// each through the client: (organisation, merchant, integration, enrolment) ids.
    async fn onboard(&self) -> (String, String, String, String) {
        let org = self
            .api
            .create_organisation(&CreateOrganisation {
                name: "Knobs Co".into(),
            })
            .await
            .expect("organisation");
        let merchant = self
            .api
            .create_merchant(&CreateMerchant {
                organisation_id: org.id.clone(),
                name: "Knobs Store".into(),
                merchant_type: MerchantType::Generic,
                external_id: Some("mid_knobs".into()),
            })
            .await
            .expect("merchant");
        let integration = self
            .api
            .create_integration(&CreateIntegration {
                organisation_id: org.id.clone(),
                name: "Knobs Orders".into(),
                integration_type: IntegrationType::CustomOrders,
                status: IntegrationStatus::Enabled,
                merchant_ids: vec![merchant.id.clone()],
            })
            .await
            .expect("integration");
        let enrolment = self
            .api
            .create_enrolment(&CreateEnrolment::ethoca(
                vec![merchant.id.clone()],
                vec![EthocaDescriptor::new("KNOBS", MatchType::StartsWith)],
            ))
            .await
            .expect("enrolment");
        let enabled = self
            .api
            .simulate_enrolment_status(&enrolment.id, EnrolmentStatus::Enabled)
            .await
            .expect("simulate enable");
        assert_eq!(enabled.status, EnrolmentStatus::Enabled);
        (org.id, merchant.id, integration.id, enrolment.id)
    }

    async fn simulate_alert(&self, org: &str, enrolment: &str) -> String {
        self.api
            .simulate_alert(&SimulateAlert {
                organisation_id: org.into(),
                enrolment_id: enrolment.into(),
                status: Some(AlertStatus::ActionRequired),
                ..Default::default()
            })
            .await
            .expect("simulated alert")
            .id
    }
}

fn order(org: &str, integration: &str, reference: &str) -> Order {
    serde_json::from_value(json!({
        "type": "COMPLETE", "organisation_id": org, "integration_id": integration,
        "reference_id": reference, "order_datetime": "2026-02-17T09:59:00Z",
        "order_number": format!("KN-{reference}"), "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD", "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE",
        "transactions": [{
            "reference_id": format!("txn-{reference}"), "amount_in_cents": 4900, "currency": "USD",
            "payment_method_type": "CARD", "authorisation_status": "SETTLED",
            "payment_method_reference_id": "pi_1", "authorised_at": "2026-02-17T09:59:05Z",
            "payment_method_card_brand": "VISA", "payment_method_card_last_4": "4242"
        }]
    }))
    .expect("order literal")
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, route: &str) -> u64 {
    after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_is_retried_on_the_clients_own_backoff() {
    let env = Env::start().await;
    let (org, _, _, enrolment) = env.onboard().await;
    let alert_id = env.simulate_alert(&org, &enrolment).await;
    env.faults(json!({ "burst_429": 2, "retry_after_header": false }))
        .await;
    let before = env.counts().await;
    let alert = env
        .api
        .get_alert(&alert_id)
        .await
        .expect("through two 429s");
    assert_eq!(alert.id, alert_id);
    assert_eq!(
        delta(&before, &env.counts().await, "GET /v1/alerts/{alert_id}"),
        3
    );
    // Without a retry budget the 429 surfaces with no Retry-After, still retryable.
    let once = ChargebackStop::new(
        ClientConfig::new(
            env.sandbox.base_url.clone(),
            Secret::new(env.sandbox.partner_key.clone()),
        )
        .with_retry(RetryPolicy::none()),
    )
    .unwrap();
    env.faults(json!({ "burst_429": 1 })).await;
    let err = once.get_alert(&alert_id).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_502_and_an_empty_503_are_server_errors_retried_only_where_safe() {
    let env = Env::start().await;
    let (org, _, _, enrolment) = env.onboard().await;
    let alert_id = env.simulate_alert(&org, &enrolment).await;
    for (status, body, detail) in [
        (502, "html", "HTML page: 502 Bad Gateway"),
        (503, "empty", "(empty body)"),
    ] {
        env.faults(json!({ "error_rate": 1.0, "error_status": status, "error_body": body }))
            .await;
        let before = env.counts().await;
        let err = env.api.get_alert(&alert_id).await.unwrap_err();
        match &err {
            ApiError::Server {
                status: s,
                detail: d,
                ..
            } => {
                assert_eq!(*s, status);
                assert_eq!(d, detail);
            }
            other => panic!("{other:?}"),
        }
        let create = env
            .api
            .simulate_alert(&SimulateAlert {
                organisation_id: org.clone(),
                enrolment_id: enrolment.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(create.is_retryable(), "{create:?}");
        let after = env.counts().await;
        assert_eq!(
            delta(&before, &after, "GET /v1/alerts/{alert_id}"),
            3,
            "{body}"
        );
        assert_eq!(
            delta(&before, &after, "POST /v1/simulate/alerts"),
            1,
            "{body}"
        );
        // The port calls it transient: the event is redelivered later.
        assert!(matches!(
            AlertApi::get_alert(&env.api, &alert_id).await,
            Err(ApiCallError::Transient { .. })
        ));
    }
    env.faults(json!({ "error_rate": 0.0, "error_body": "json" }))
        .await;
    assert_eq!(env.api.get_alert(&alert_id).await.unwrap().id, alert_id);
}

/// Codes the docs do not show are never needed: with bodies carrying only `detail`, a refused
/// action is still a final 422 and the port still says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_without_codes_still_map_to_the_same_decisions() {
    let env = Env::start().await;
    let (org, _, _, enrolment) = env.onboard().await;
    let alert_id = env.simulate_alert(&org, &enrolment).await;
    env.faults(json!({ "error_codes": false })).await;
    env.api
        .update_alert(&alert_id, &UpdateAlert::action(AlertAction::Refund))
        .await
        .expect("first action");
    let err = env
        .api
        .update_alert(&alert_id, &UpdateAlert::action(AlertAction::AcceptDispute))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unprocessable { .. }), "{err:?}");
    assert!(err.codes().is_empty(), "{err:?}");
    assert!(
        err.to_string()
            .contains("Resolved alert cannot be actioned"),
        "{err}"
    );
    match AlertApi::update_alert(
        &env.api,
        &alert_id,
        &UpdateAlert::action(AlertAction::Refund),
    )
    .await
    {
        Err(ApiCallError::Unprocessable { code, .. }) => assert_eq!(code, "UNPROCESSABLE"),
        other => panic!("{other:?}"),
    }
    let missing = env.api.get_alert("netalrt_nope").await.unwrap_err();
    assert!(missing.is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_errors_decode_with_and_without_the_reference_id_echo() {
    let env = Env::start().await;
    let (org, _, _, _) = env.onboard().await;
    let bad = order(&org, "int_unknown", "ko-1");
    let with = env.api.create_orders(&[bad.clone()]).await.unwrap();
    assert_eq!(with.errors[0].reference_id.as_deref(), Some("ko-1"));
    env.faults(json!({ "order_error_reference_id": false }))
        .await;
    let without = env.api.create_orders(&[bad]).await.unwrap();
    assert_eq!(without.failed, 1);
    assert_eq!(without.errors[0].reference_id, None);
    assert!(
        without.error_for("ko-1").is_none(),
        "matching needs the index then"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_onboarding_port_enables_under_every_simulate_enrolment_answer() {
    let env = Env::start().await;
    let (_, merchant, _, _) = env.onboard().await;
    for answer in ["enrolment", "empty200", "no_content"] {
        env.faults(json!({ "simulate_enrolment_response": answer }))
            .await;
        let created = env
            .api
            .create_enrolment(&CreateEnrolment::ethoca(
                vec![merchant.clone()],
                vec![EthocaDescriptor::new(
                    format!("K{answer}"),
                    MatchType::ExactMatch,
                )],
            ))
            .await
            .expect("enrolment");
        let status = OnboardingApi::simulate_enable(&env.api, &created.id)
            .await
            .unwrap_or_else(|e| panic!("{answer}: {e}"));
        assert_eq!(status.as_deref(), Some("ENABLED"), "{answer}");
        // The client call itself also answers the enrolment whatever the body was.
        let again = env
            .api
            .simulate_enrolment_status(&created.id, EnrolmentStatus::Enabled)
            .await
            .unwrap_or_else(|e| panic!("{answer}: {e}"));
        assert_eq!(again.status, EnrolmentStatus::Enabled);
    }
}

/// Only the documented form of each path answers (and the docs' stricter readings are on):
/// every client call still works, because the client writes collections with their slash and
/// single objects without. The request log shows every route of the API called and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_call_uses_the_documented_path_form() {
    let env = Env::start().await;
    env.faults(json!({ "strict_paths": true, "strict": true }))
        .await;
    let (org, merchant, integration, enrolment) = env.onboard().await;
    let page = ListQuery::page(10, 0).for_organisation(&org);
    env.api
        .list_organisations(&page)
        .await
        .expect("organisations");
    env.api.get_organisation(&org).await.expect("organisation");
    env.api.list_memberships(&page).await.expect("memberships");
    env.api.list_merchants(&page).await.expect("merchants");
    env.api.get_merchant(&merchant).await.expect("merchant");
    env.api
        .list_integrations(&page)
        .await
        .expect("integrations");
    env.api
        .get_integration(&integration)
        .await
        .expect("integration");
    env.api.list_enrolments(&page).await.expect("enrolments");
    env.api.get_enrolment(&enrolment).await.expect("enrolment");
    env.api.list_rulesets(&page).await.expect("rulesets");
    env.api
        .create_membership(&CreateMembership {
            organisation_id: org.clone(),
            first_name: "Strict".into(),
            last_name: "Paths".into(),
            email: "strict.paths@example.com".into(),
            role: MembershipRole::Admin,
            is_alert_action_required_email_enabled: Some(true),
            is_alert_resolved_email_enabled: None,
            is_alert_dismissed_email_enabled: None,
            is_evidence_requested_email_enabled: None,
        })
        .await
        .expect("membership");

    // Rulesets: the client's create, the onboarding port's create, get, update, update_rule.
    let ruleset = env
        .api
        .create_ruleset(&CreateRuleset {
            organisation_id: org.clone(),
            enrolment_ids: vec![enrolment.clone()],
            outcome: RulesetOutcome::Refund,
            join_operator: JoinOperator::Or,
            is_enabled: None,
            rules: vec![Rule::amount(AmountOperator::LessThan, "USD", 5000)],
        })
        .await
        .expect("ruleset");
    let amount_rule = ruleset.rules[0].id.clone().expect("rule id");
    // One ruleset per enrolment: the port's goes to a second Ethoca enrolment.
    let second = env
        .api
        .create_enrolment(&CreateEnrolment::ethoca(
            vec![merchant.clone()],
            vec![EthocaDescriptor::new("KNOBS TWO", MatchType::StartsWith)],
        ))
        .await
        .expect("second enrolment");
    let through_port = OnboardingApi::create_ruleset(
        &env.api,
        &json!({
            "organisation_id": org, "enrolment_ids": [second.id], "outcome": "REFUND",
            "join_operator": "OR",
            "rules": [{ "type": "AMOUNT", "parameters": {
                "operator": "LESS_THAN", "currency_code": "USD", "amount_in_cents": 2000 } }]
        }),
    )
    .await
    .expect("ruleset through the onboarding port");
    assert!(!through_port.is_empty());
    let rdr = env
        .api
        .create_enrolment(&CreateEnrolment::rdr_bin_caid(
            vec![merchant.clone()],
            "411111",
            "CAIDSTRICT",
        ))
        .await
        .expect("rdr enrolment");
    env.api
        .create_rdr_ruleset(&CreateRuleset {
            organisation_id: org.clone(),
            enrolment_ids: vec![rdr.id],
            outcome: RulesetOutcome::RefundAndCancel,
            join_operator: JoinOperator::Or,
            is_enabled: None,
            rules: vec![Rule::amount(AmountOperator::LessThan, "USD", 5000)],
        })
        .await
        .expect("rdr ruleset");
    env.api.get_ruleset(&ruleset.id).await.expect("get ruleset");
    let patched = env
        .api
        .update_ruleset(
            &ruleset.id,
            &PatchRuleset {
                is_enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("update ruleset");
    assert_eq!(patched.id, ruleset.id);
    let rule = env
        .api
        .update_rule(
            &ruleset.id,
            &amount_rule,
            &PatchRule {
                rule_type: None,
                parameters: Some(RuleParameters {
                    operator: Some(AmountOperator::LessThan),
                    currency_code: Some("USD".into()),
                    amount_in_cents: Some(3000),
                    ..Default::default()
                }),
            },
        )
        .await
        .expect("update rule");
    assert_eq!(rule.parameters.amount_in_cents, Some(3000));

    let created = env
        .api
        .create_orders(&[order(&org, &integration, "strict-1")])
        .await
        .expect("orders");
    assert_eq!(created.created, 1, "{created:?}");
    let order_id = created.results[0].id.clone().unwrap();
    env.api.get_order(&order_id).await.expect("order");
    env.api
        .update_order(
            &order_id,
            &PatchOrder {
                order_status: Some(OrderStatus::ClosedCancelled),
                ..Default::default()
            },
        )
        .await
        .expect("update order");
    assert!(env
        .api
        .find_order_by_reference(Some(&org), "strict-1")
        .await
        .expect("by reference")
        .is_some());

    let alert_id = env.simulate_alert(&org, &enrolment).await;
    let listed = env
        .api
        .list_alerts(&AlertQuery::action_required())
        .await
        .expect("alerts");
    assert_eq!(listed.items.len(), 1);
    env.api.get_alert(&alert_id).await.expect("alert");
    env.api
        .update_alert(&alert_id, &UpdateAlert::action(AlertAction::Refund))
        .await
        .expect("action");

    // And the sandbox really refused the other forms meanwhile: nothing answered 404.
    let log: Vec<Value> = env
        .admin
        .get(env.sandbox.admin_url("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused: Vec<&Value> = log.iter().filter(|r| r["status"] == 404).collect();
    assert!(refused.is_empty(), "{refused:?}");
    // Every route of the API was called through the client, and answered under strict paths.
    for route in [
        "POST /v1/organisations",
        "GET /v1/organisations",
        "GET /v1/organisations/{organisation_id}",
        "POST /v1/memberships",
        "GET /v1/memberships",
        "POST /v1/merchants",
        "GET /v1/merchants",
        "GET /v1/merchants/{merchant_id}",
        "POST /v1/integrations",
        "GET /v1/integrations",
        "GET /v1/integrations/{integration_id}",
        "POST /v2/enrolments",
        "GET /v2/enrolments",
        "GET /v2/enrolments/{enrolment_id}",
        "POST /v1/orders",
        "GET /v1/orders",
        "GET /v1/orders/{order_id}",
        "PATCH /v1/orders/{order_id}",
        "GET /v1/alerts",
        "GET /v1/alerts/{alert_id}",
        "PATCH /v1/alerts/{alert_id}",
        "POST /v1/rulesets",
        "GET /v1/rulesets",
        "GET /v1/rulesets/{ruleset_id}",
        "PATCH /v1/rulesets/{ruleset_id}",
        "PATCH /v1/rulesets/{ruleset_id}/rules/{rule_id}",
        "PATCH /v1/simulate/enrolments/{enrolment_id}",
        "POST /v1/simulate/alerts",
    ] {
        let answered: Vec<u64> = log
            .iter()
            .filter(|r| r["route"] == route)
            .filter_map(|r| r["status"].as_u64())
            .collect();
        assert!(
            !answered.is_empty() && answered.iter().all(|s| (200..300).contains(s)),
            "{route}: {answered:?}"
        );
    }
    let undocumented = env
        .admin
        .get(format!("{}/v1/alerts", env.sandbox.base_url))
        .bearer_auth(&env.sandbox.partner_key)
        .send()
        .await
        .unwrap();
    assert_eq!(undocumented.status(), 404);
}
