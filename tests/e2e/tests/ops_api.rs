//! HTTP tests of the operations API (`functions/ops-api`) running under `cargo lambda watch`,
//! against the AWS emulator (moto, tables created from the SAM template) and the ChargebackStop
//! sandbox. Operator keys are minted with the real command line (`cbs operator-key create`).
//!
//! Alerts and enrolments reach our tables the way `process-events` stores them (the shared
//! `store_fetched_alert` / `merge_fetched` over the DynamoDB adapters), fetched from the sandbox:
//! these tests are about the ops API, not the webhook pipeline (the pipeline has its own tests).
//!
//! Needs the debug binaries `ops-api`, `cbs-sandbox` and `cbs` (`bin/test` builds every binary
//! first; by hand: `cargo build -p ops-api -p cbs-sandbox -p cbs-cli`).
//!
//! `serve_stack_for_the_browser_test` is not a test: `tests/browser` (npm test) runs it to get
//! a seeded stack, and stops it by closing its stdin.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use devstack::{resources, Functions, Moto, Resources, Sandbox, SandboxOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::enrolments::DynamoEnrolmentStore;
use shared::adapters::dynamo::table::Table;
use shared::clock::{Clock, SystemClock};
use shared::config::TableNames;
use shared::domain::alert_record::store_fetched_alert;
use shared::domain::enrolment_lifecycle::{merge_fetched, EnrolmentMerge};
use shared::ports::enrolment_store::EnrolmentStore;

const OPERATOR: &str = "e2e-operator";

/// Moto, the sandbox (with a TEST and a LIVE partner key) and the ops API of a TEST stack.
struct Stack {
    moto: Moto,
    res: Resources,
    sandbox: Sandbox,
    live_partner_key: String,
    /// `cargo lambda watch`: runs as long as the stack (dropping it stops it).
    functions: Functions,
    /// The ops API's base URL, ending in `/`.
    api: String,
    operator_key: String,
    http: reqwest::Client,
    alerts: DynamoAlertStore,
    enrolments: DynamoEnrolmentStore,
}

fn random_suffix() -> String {
    resources::unique_prefix("k").replace('-', "")
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let res = resources::create(&moto.endpoint, &resources::unique_prefix("ops"))
            .await
            .expect("tables and queues");
        let live_partner_key = format!("cbs_live_{}", random_suffix());
        let sandbox = Sandbox::start(SandboxOptions {
            live_partner_key: Some(live_partner_key.clone()),
            ..Default::default()
        })
        .await
        .expect("sandbox");
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        // Our own function processes polling the runtime API: with functions started lazily
        // by `cargo lambda watch`, an invocation could wait until the next request arrived.
        let functions = Functions::start_binaries(env, &["ops-api", "order-upload"])
            .await
            .expect("cargo lambda watch");
        let api = functions.http_url("ops-api");

        let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let tables = TableNames::new(res.table_prefix.clone());
        let table = |name: String| Table::new(dynamo.clone(), name, Default::default());
        let mut stack = Stack {
            alerts: DynamoAlertStore::new(table(tables.alerts())),
            enrolments: DynamoEnrolmentStore::new(table(tables.enrolments())),
            moto,
            res,
            sandbox,
            live_partner_key,
            functions,
            api,
            operator_key: String::new(),
            http: reqwest::Client::builder()
                // Generous: the first request waits for cargo lambda to start the binary.
                .timeout(std::time::Duration::from_secs(300))
                .build()
                .unwrap(),
        };
        let out = stack
            .cli(&[], &["operator-key", "create", "--operator", OPERATOR])
            .await;
        assert!(out.ok, "cbs operator-key create failed: {}", out.stderr);
        stack.operator_key = out.stdout.trim().to_owned();
        assert!(stack.operator_key.starts_with("cbsop_"), "{}", out.stdout);
        stack
    }

    /// Environment of this TEST stack, for the command line.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        env.extend(self.res.env());
        env.extend(self.sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        env
    }

    /// Runs `cbs` with this stack's environment, overridden by `overrides`.
    async fn cli(&self, overrides: &[(&str, &str)], args: &[&str]) -> CliOutput {
        let mut cmd = tokio::process::Command::new(devstack::paths::debug_binary("cbs"));
        cmd.args(args).envs(self.env()).kill_on_drop(true);
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        CliOutput {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path.trim_start_matches('/'))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("ops API answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(&self.operator_key), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            path,
            Some(&self.operator_key),
            Some(body),
        )
        .await
    }

    /// The sandbox's API with the TEST partner key.
    /// A 429 or 5xx (under the realistic profile the sandbox injects them before doing
    /// anything) is sent again, up to 8 times.
    async fn sandbox_api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut attempt = 0u64;
        loop {
            let mut req = self
                .http
                .request(method.clone(), self.sandbox.url(path))
                .bearer_auth(&self.sandbox.partner_key);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            attempt += 1;
            if attempt < 8 && (status.as_u16() == 429 || status.is_server_error()) {
                tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                continue;
            }
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            assert!(status.is_success(), "sandbox {path}: {status} {value}");
            return value;
        }
    }

    /// The sandbox's whole store (organisations, merchants, enrolments, ...).
    async fn sandbox_state(&self) -> Value {
        self.http
            .get(self.sandbox.admin_url("state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A simulated Ethoca alert with the given deadline and received time, stored in our
    /// `alerts` table as the event pipeline stores it.
    async fn seed_alert(
        &self,
        organisation_id: &str,
        enrolment_id: &str,
        resolved: bool,
        deadline: Option<DateTime<Utc>>,
        received: DateTime<Utc>,
        amount_in_cents: i64,
    ) -> String {
        let mut body = json!({
            "organisation_id": organisation_id,
            "enrolment_id": enrolment_id,
            "amount_in_cents": amount_in_cents,
        });
        if resolved {
            body["status"] = json!("RESOLVED");
        }
        let created = self
            .sandbox_api(reqwest::Method::POST, "/v1/simulate/alerts", Some(body))
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let mut patch = json!({ "alert_received_at": iso(received) });
        if let Some(d) = deadline {
            patch["action_required_deadline"] = json!(iso(d));
        }
        let resp = self
            .http
            .patch(self.sandbox.admin_url(&format!("alerts/{id}")))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        let fetched = self
            .sandbox_api(reqwest::Method::GET, &format!("/v1/alerts/{id}"), None)
            .await;
        let alert: shared::models::alert::Alert = serde_json::from_value(fetched).unwrap();
        store_fetched_alert(&self.alerts, &alert, SystemClock.now())
            .await
            .expect("store the alert");
        id
    }

    /// The enrolment as ChargebackStop has it now, stored in our `enrolments` table.
    async fn seed_enrolment(&self, enrolment_id: &str) {
        let fetched = self
            .sandbox_api(
                reqwest::Method::GET,
                &format!("/v2/enrolments/{enrolment_id}"),
                None,
            )
            .await;
        let enrolment = serde_json::from_value(fetched).unwrap();
        let existing = self.enrolments.get(enrolment_id).await.unwrap();
        match merge_fetched(existing, enrolment, None, SystemClock.now()) {
            EnrolmentMerge::Updated { record, .. } => self.enrolments.put(&record).await.unwrap(),
            EnrolmentMerge::Stale(_) => {}
        }
    }

    /// Onboards a TEST customer with one merchant and an Ethoca enrolment through the API.
    async fn onboard(&self, customer_id: &str) -> Value {
        let (status, record) = self
            .post("api/onboarding", customer_spec(customer_id, None))
            .await;
        assert_eq!(status, StatusCode::OK, "{record}");
        record
    }
}

struct CliOutput {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn customer_spec(customer_id: &str, rdr: Option<Value>) -> Value {
    let mut enrolments = vec![json!({
        "type": "ETHOCA_ALERT",
        "ethoca_alert": { "descriptors": [
            { "descriptor": format!("ACME*{}", customer_id.to_uppercase()), "match_type": "STARTS_WITH" }
        ]}
    })];
    if let Some(r) = rdr {
        enrolments.push(json!({ "type": "VERIFI_RDR", "verifi_rdr": r }));
    }
    json!({
        "customer_id": customer_id,
        "organisation": { "name": format!("Acme {customer_id}") },
        "memberships": [
            { "first_name": "Ada", "last_name": "Ops", "email": format!("ops@{customer_id}.example") }
        ],
        "merchants": [
            { "name": "Acme web shop", "external_id": format!("mid-{customer_id}-1") }
        ],
        "enrolments": enrolments,
    })
}

/// A valid order (the shape `POST /api/orders` takes).
fn order_json(org: &str, integration: &str, reference: &str) -> Value {
    json!({
        "type": "COMPLETE",
        "organisation_id": org,
        "integration_id": integration,
        "reference_id": reference,
        "order_datetime": "2026-02-17T09:59:00Z",
        "order_number": format!("AF-{reference}"),
        "order_subtotal_amount_in_cents": 4900,
        "order_currency": "USD",
        "order_total_amount_in_cents": 4900,
        "order_status": "CLOSED_COMPLETE",
        "transactions": [{
            "reference_id": format!("txn-{reference}"),
            "amount_in_cents": 4900,
            "currency": "USD",
            "payment_method_type": "CARD",
            "authorisation_status": "SETTLED",
            "payment_method_reference_id": format!("pay-{reference}"),
            "authorised_at": "2026-02-17T09:59:05Z",
            "payment_method_card_brand": "VISA",
            "payment_method_card_last_4": "4242"
        }]
    })
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn v(list: &[&String]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn count_where(state: &Value, collection: &str, organisation_id: &str) -> usize {
    let items: Vec<&Value> = match &state[collection] {
        Value::Object(map) => map.values().collect(),
        Value::Array(list) => list.iter().collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter(|v| v["organisation_id"] == organisation_id)
        .count()
}

fn assert_field_error(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
}

#[tokio::test]
async fn every_endpoint_but_health_needs_an_operator_key_and_the_openapi_is_served() {
    let stack = Stack::start().await;

    let (status, health) = stack.call(reqwest::Method::GET, "health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["mode"], "TEST");

    let routes: [(reqwest::Method, &str, Option<Value>); 19] = [
        (reqwest::Method::GET, "openapi.json", None),
        (reqwest::Method::GET, "api/me", None),
        (reqwest::Method::GET, "api/alerts", None),
        (reqwest::Method::GET, "api/alerts/netalrt_x", None),
        (
            reqwest::Method::POST,
            "api/alerts/netalrt_x/action",
            Some(json!({ "action": "REFUND" })),
        ),
        (reqwest::Method::GET, "api/enrolments", None),
        (reqwest::Method::GET, "api/enrolments/enrl_x", None),
        (reqwest::Method::POST, "api/orders", Some(json!([]))),
        (reqwest::Method::GET, "api/orders/uploads", None),
        (
            reqwest::Method::POST,
            "api/onboarding",
            Some(customer_spec("nobody", None)),
        ),
        (reqwest::Method::GET, "api/customers/nobody", None),
        (reqwest::Method::GET, "api/insights", None),
        (
            reqwest::Method::GET,
            "api/insights?organisation_id=org_x",
            None,
        ),
        (reqwest::Method::GET, "api/insights/alerts.csv", None),
        (reqwest::Method::GET, "api/escalations.csv", None),
        (reqwest::Method::GET, "api/orders/org_x/ref_x", None),
        (
            reqwest::Method::POST,
            "api/orders/org_x/ref_x/requeue",
            None,
        ),
        (reqwest::Method::GET, "api/dlq", None),
        (reqwest::Method::POST, "api/events/evt_x/replay", None),
    ];
    let wrong_key = format!("cbsop_{}", "0".repeat(64));
    for (method, path, body) in routes.iter().cloned() {
        for key in [None, Some(wrong_key.as_str()), Some("not-even-a-key")] {
            let (status, err) = stack.call(method.clone(), path, key, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {key:?}: {err}"
            );
            assert_eq!(err["error"]["code"], "unauthorised", "{err}");
        }
    }
    // Nothing reached ChargebackStop: the refused onboarding created no organisation.
    let state = stack.sandbox_state().await;
    assert_eq!(
        state["organisations"].as_object().map_or(0, |m| m.len()),
        0,
        "{state}"
    );

    let (status, me) = stack.get("api/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["operator"], OPERATOR);

    let (status, doc) = stack.get("openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for path in [
        "/api/alerts",
        "/api/alerts/{alert_id}/action",
        "/api/onboarding",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} not documented");
    }

    // Every documented path and method is one the function serves (none is "no such route").
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue; // e.g. a path-level "parameters"
            }
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let concrete = path.replace('{', "x").replace('}', "");
            let body = (method == reqwest::Method::POST).then(|| json!({}));
            let (_, answer) = stack
                .call(method.clone(), &concrete, Some(&stack.operator_key), body)
                .await;
            assert_ne!(
                answer["error"]["code"], "no_such_route",
                "{method} {path} is documented but not served"
            );
        }
    }

    // The page shell holds no data and loads without a key; its data calls need one.
    let page = stack.http.get(stack.url("")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Action required"));

    let (status, err) = stack.get("api/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
}

#[tokio::test]
async fn the_alert_queue_filters_sorts_pages_and_an_action_resolves_the_alert_at_chargebackstop() {
    let stack = Stack::start().await;
    let customer = stack.onboard("queue").await;
    let org = customer["organisation_id"].as_str().unwrap().to_owned();
    let enrolment = customer["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let merchant = customer["merchants"]["mid-queue-1"]
        .as_str()
        .unwrap()
        .to_owned();

    // Four alerts: far (50 h), urgent (2 h), overdue (1 h ago) and one already resolved.
    let now = SystemClock.now();
    let far = stack
        .seed_alert(
            &org,
            &enrolment,
            false,
            Some(now + Duration::hours(50)),
            now - Duration::hours(4),
            1000,
        )
        .await;
    let urgent = stack
        .seed_alert(
            &org,
            &enrolment,
            false,
            Some(now + Duration::hours(2)),
            now - Duration::hours(3),
            2000,
        )
        .await;
    let overdue = stack
        .seed_alert(
            &org,
            &enrolment,
            false,
            Some(now - Duration::hours(1)),
            now - Duration::hours(2),
            3000,
        )
        .await;
    let resolved = stack
        .seed_alert(&org, &enrolment, true, None, now - Duration::hours(1), 4000)
        .await;

    // The queue: soonest deadline first, time left and urgency on each.
    let (status, queue) = stack
        .get("api/alerts?status=ACTION_REQUIRED&sort=action_required_deadline")
        .await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(ids(&queue), v(&[&overdue, &urgent, &far]));
    assert_eq!(queue["count"], 3);
    let urgency: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["urgency"].as_str().unwrap())
        .collect();
    assert_eq!(urgency, ["overdue", "urgent", "normal"]);
    assert!(queue["items"][0]["time_left_seconds"].as_i64().unwrap() < 0);
    assert!(queue["items"][2]["time_left_seconds"].as_i64().unwrap() > 48 * 3600);

    let (_, reversed) = stack
        .get("api/alerts?status=ACTION_REQUIRED&sort=-action_required_deadline")
        .await;
    assert_eq!(ids(&reversed), v(&[&far, &urgent, &overdue]));

    // Without filters: every alert of every customer, newest received first (the API default).
    let (_, all) = stack.get("api/alerts").await;
    assert_eq!(ids(&all), v(&[&resolved, &overdue, &urgent, &far]));
    let (_, oldest_first) = stack.get("api/alerts?sort=alert_received_at").await;
    assert_eq!(ids(&oldest_first), v(&[&far, &urgent, &overdue, &resolved]));
    let (_, only_resolved) = stack.get("api/alerts?status=RESOLVED").await;
    assert_eq!(ids(&only_resolved), v(&[&resolved]));

    // Paging keeps the total count.
    let (_, page) = stack
        .get("api/alerts?status=ACTION_REQUIRED&sort=action_required_deadline&limit=1&offset=1")
        .await;
    assert_eq!(ids(&page), v(&[&urgent]));
    assert_eq!(page["count"], 3);
    assert_eq!(page["limit"], 1);
    assert_eq!(page["offset"], 1);

    let (_, by_org) = stack
        .get(&format!("api/alerts?organisation_id={org}"))
        .await;
    assert_eq!(by_org["count"], 4);
    let (_, other_org) = stack
        .get("api/alerts?organisation_id=org_someone_else")
        .await;
    assert_eq!(other_org["count"], 0);
    let (_, by_merchant) = stack
        .get(&format!("api/alerts?merchant_id={merchant}"))
        .await;
    assert_eq!(by_merchant["count"], 4);
    let (_, other_merchant) = stack.get("api/alerts?merchant_id=mer_nobody").await;
    assert_eq!(other_merchant["count"], 0);
    let since = iso(now - Duration::hours(3) - Duration::seconds(1));
    let (_, recent) = stack
        .get(&format!(
            "api/alerts?alert_received_at_gte={since}&sort=alert_received_at"
        ))
        .await;
    assert_eq!(ids(&recent), v(&[&urgent, &overdue, &resolved]));

    // Bad filters are 422 naming the parameter.
    for (query, field) in [
        ("status=OPEN", "status"),
        ("sort=amount", "sort"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("alert_received_at_gte=yesterday", "alert_received_at_gte"),
        ("colour=red", "colour"),
    ] {
        let (status, err) = stack.get(&format!("api/alerts?{query}")).await;
        assert_field_error(status, &err, field);
    }

    // Detail, and 404 for an alert we do not have.
    let (status, detail) = stack.get(&format!("api/alerts/{urgent}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["alert"]["id"], urgent.as_str());
    assert_eq!(detail["alert"]["urgency"], "urgent");
    assert_eq!(detail["decisions"], json!([]));
    let (status, err) = stack.get("api/alerts/netalrt_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error"]["code"], "not_found");

    // Bad actions are refused before anything is sent.
    let action_path = format!("api/alerts/{urgent}/action");
    for (body, field) in [
        (json!({ "action": "REFUND_EVERYTHING" }), "action"),
        (json!({ "action": 5 }), "action"),
        (
            json!({ "action": "REFUND", "note": "x".repeat(1001) }),
            "note",
        ),
    ] {
        let (status, err) = stack.post(&action_path, body).await;
        assert_field_error(status, &err, field);
    }
    let (status, err) = stack
        .post(&action_path, json!({ "action": "REFUND", "colour": "red" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let sandbox_alert = stack
        .sandbox_api(reqwest::Method::GET, &format!("/v1/alerts/{urgent}"), None)
        .await;
    assert_eq!(
        sandbox_alert["status"], "ACTION_REQUIRED",
        "nothing half-applied"
    );
    let (_, detail) = stack.get(&format!("api/alerts/{urgent}")).await;
    assert_eq!(detail["decisions"], json!([]), "no decision recorded");

    // The operator refunds the urgent one with a note.
    let note = "Refunded in our billing system, ticket 4411";
    let (status, acted) = stack
        .post(&action_path, json!({ "action": "REFUND", "note": note }))
        .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["alert"]["status"], "RESOLVED", "{acted}");
    let decision = acted["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(decision["by"], OPERATOR, "{decision}");
    assert_eq!(decision["source"], "OPERATOR", "{decision}");
    assert_eq!(decision["action"], "REFUND", "{decision}");
    assert_eq!(decision["note"], note, "{decision}");

    // ChargebackStop has it resolved, with the note.
    let sandbox_alert = stack
        .sandbox_api(reqwest::Method::GET, &format!("/v1/alerts/{urgent}"), None)
        .await;
    assert_eq!(sandbox_alert["status"], "RESOLVED", "{sandbox_alert}");
    assert_eq!(sandbox_alert["note"], note, "{sandbox_alert}");

    // It leaves the queue; the history stays on the detail.
    let (_, queue) = stack
        .get("api/alerts?status=ACTION_REQUIRED&sort=action_required_deadline")
        .await;
    assert_eq!(ids(&queue), v(&[&overdue, &far]));
    let (_, detail) = stack.get(&format!("api/alerts/{urgent}")).await;
    assert_eq!(detail["decisions"].as_array().unwrap().len(), 1, "{detail}");

    // Acting again is a conflict, recorded but not sent; unknown alerts are 404.
    let (status, err) = stack
        .post(&action_path, json!({ "action": "CANCEL" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, _) = stack
        .post(
            "api/alerts/netalrt_unknown/action",
            json!({ "action": "REFUND" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn enrolments_orders_and_upload_status() {
    let stack = Stack::start().await;
    let customer = stack.onboard("board").await;
    let org = customer["organisation_id"].as_str().unwrap().to_owned();
    let enrolment = customer["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let integration = customer["integration_id"].as_str().unwrap().to_owned();
    stack.seed_enrolment(&enrolment).await;

    // The board: the stored enrolment, live after the TEST simulate-enable step.
    let (status, board) = stack.get("api/enrolments").await;
    assert_eq!(status, StatusCode::OK, "{board}");
    let items = board["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{board}");
    assert_eq!(items[0]["enrolment_id"], enrolment.as_str());
    assert_eq!(items[0]["status"], "ENABLED");
    assert_eq!(items[0]["live"], true);
    let (_, none) = stack.get("api/enrolments?status=FAILED").await;
    assert_eq!(none["items"], json!([]));

    // Detail with the live status from ChargebackStop.
    let (status, detail) = stack
        .get(&format!("api/enrolments/{enrolment}?refresh=true"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["stored"]["enrolment_id"], enrolment.as_str());
    assert_eq!(detail["current"]["id"], enrolment.as_str());
    assert_eq!(detail["current"]["status"], "ENABLED");
    let (status, _) = stack.get("api/enrolments/enrl_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Order intake is all or nothing: one bad order and nothing is stored.
    let order = |reference: &str| order_json(&org, &integration, reference);
    let mut bad = order("ord-2");
    bad["order_total_amount_in_cents"] = json!("lots");
    let (status, err) = stack.post("api/orders", json!([order("ord-1"), bad])).await;
    assert_field_error(status, &err, "orders[1].order_total_amount_in_cents");
    let (status, err) = stack.get(&format!("api/orders/{org}/ord-1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored: {err}");

    let (status, report) = stack
        .post("api/orders", json!([order("ord-1"), order("ord-2")]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{report}");
    assert_eq!(report["stored"].as_array().unwrap().len(), 2, "{report}");
    let (status, again) = stack.post("api/orders", order("ord-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["already_queued"], json!(["ord-1"]), "{again}");

    let (status, upload) = stack.get(&format!("api/orders/{org}/ord-1")).await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    assert_eq!(upload["status"], "PENDING");
    let (_, uploads) = stack
        .get(&format!(
            "api/orders/uploads?organisation_id={org}&status=PENDING"
        ))
        .await;
    assert_eq!(uploads["items"].as_array().unwrap().len(), 2, "{uploads}");
    let (_, failed) = stack
        .get(&format!(
            "api/orders/uploads?organisation_id={org}&status=FAILED"
        ))
        .await;
    assert_eq!(failed["items"], json!([]));
    let (status, err) = stack.get("api/orders/uploads?status=LOST").await;
    assert_field_error(status, &err, "status");
}

#[tokio::test]
async fn onboarding_resumes_without_duplicates_and_keeps_test_and_live_apart() {
    let stack = Stack::start().await;
    // This test says at which step a run stops and what a re-run creates: it needs the calm,
    // documented API even when the suite runs under the realistic profile.
    let resp = stack
        .http
        .put(stack.sandbox.admin_url("faults"))
        .json(&json!({ "profile": "none" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    // Invalid specs are refused field by field before any call.
    let mut bad = customer_spec("acme", None);
    bad["merchants"][0]["external_id"] = json!("");
    let (status, err) = stack.post("api/onboarding", bad).await;
    assert_field_error(status, &err, "merchants[0].external_id");
    let (status, err) = stack
        .post(
            "api/onboarding",
            json!({ "customer_id": "acme", "organisation": { "name": 7 } }),
        )
        .await;
    assert_field_error(status, &err, "organisation.name");

    // A run that fails midway: this key lacks the simulate ability, so the run stops at the
    // TEST simulate-enable step, after the organisation, merchant, integration and enrolment.
    let resp = stack
        .http
        .post(stack.sandbox.admin_url("keys"))
        .json(&json!({
            "scope": "partner", "mode": "TEST", "admin": true,
            "key": format!("cbs_test_{}", random_suffix()),
            "abilities": [
                "organisations:read", "organisations:write", "merchants:read", "merchants:write",
                "integrations:read", "integrations:write", "enrolments_v2:read",
                "enrolments_v2:write", "rulesets:read", "rulesets:write"
            ]
        }))
        .send()
        .await
        .unwrap();
    let limited_key = resp.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = std::env::temp_dir().join(resources::unique_prefix("onboard"));
    std::fs::create_dir_all(&dir).unwrap();
    let spec_file = dir.join("acme.json");
    std::fs::write(&spec_file, customer_spec("acme", None).to_string()).unwrap();
    let spec_path = spec_file.to_str().unwrap();
    let first = stack
        .cli(
            &[("CBS_API_KEY", &limited_key)],
            &["onboard", "--file", spec_path],
        )
        .await;
    assert!(
        !first.ok,
        "the limited key must stop the run: {}",
        first.stdout
    );
    assert!(first.stderr.contains("simulate"), "{}", first.stderr);
    assert!(!first.stderr.contains(&limited_key), "no key in errors");

    let (status, partial) = stack.get("api/customers/acme").await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(partial["status"], "FAILED", "{partial}");
    let org = partial["organisation_id"].as_str().unwrap().to_owned();
    let enrolment = partial["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        partial["last_failure"]["step"].as_str().is_some(),
        "{partial}"
    );
    assert!(
        partial.get("run_token").is_none(),
        "the lease token is not shown"
    );

    // Resumed through the API with the full key: same ids, nothing created twice.
    let (status, done) = stack
        .post("api/onboarding", customer_spec("acme", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["organisation_id"], org.as_str());
    assert_eq!(
        done["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"],
        enrolment.as_str()
    );
    assert_eq!(
        done["enrolments"]["ETHOCA_ALERT#1"]["simulated_enabled"],
        true
    );
    // And once more with the command line: still nothing new.
    let again = stack.cli(&[], &["onboard", "--file", spec_path]).await;
    assert!(again.ok, "{}", again.stderr);
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["organisation_id"], org.as_str());

    let state = stack.sandbox_state().await;
    assert_eq!(
        state["organisations"].as_object().unwrap().len(),
        1,
        "one organisation: {}",
        state["organisations"]
    );
    for collection in ["merchants", "integrations", "enrolments", "memberships"] {
        assert_eq!(
            count_where(&state, collection, &org),
            1,
            "one of each in {collection}: {}",
            state[collection]
        );
    }
    let enrolled = stack
        .sandbox_api(
            reqwest::Method::GET,
            &format!("/v2/enrolments/{enrolment}"),
            None,
        )
        .await;
    assert_eq!(enrolled["status"], "ENABLED");

    // TEST and LIVE apart. A LIVE stack refuses the TEST customer's record...
    let live_env: [(&str, &str); 2] = [
        ("STACK_MODE", "LIVE"),
        ("CBS_API_KEY", &stack.live_partner_key),
    ];
    let refused = stack
        .cli(&live_env, &["onboard", "--file", spec_path])
        .await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(refused.stderr.contains("TEST"), "{}", refused.stderr);
    // ...a TEST stack refuses a LIVE key before any call...
    let before = stack.sandbox_state().await["organisations"]
        .as_object()
        .unwrap()
        .len();
    std::fs::write(
        dir.join("other.json"),
        customer_spec("other", None).to_string(),
    )
    .unwrap();
    let other_path = dir.join("other.json");
    let refused = stack
        .cli(
            &[("CBS_API_KEY", &stack.live_partner_key)],
            &["onboard", "--file", other_path.to_str().unwrap()],
        )
        .await;
    assert!(!refused.ok);
    assert!(refused.stderr.contains("LIVE key"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains(&stack.live_partner_key),
        "no key in errors"
    );
    // ...and an organisation ChargebackStop creates in LIVE (a key that does not say its mode)
    // is never used by a TEST stack.
    let unmarked = format!("cbs_{}", random_suffix());
    let resp = stack
        .http
        .post(stack.sandbox.admin_url("keys"))
        .json(&json!({ "scope": "partner", "mode": "LIVE", "admin": true, "key": unmarked }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let refused = stack
        .cli(
            &[("CBS_API_KEY", &unmarked)],
            &["onboard", "--file", other_path.to_str().unwrap()],
        )
        .await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(refused.stderr.contains("LIVE"), "{}", refused.stderr);
    let (_, other) = stack.get("api/customers/other").await;
    assert!(other.get("organisation_id").is_none(), "{other}");
    assert!(other["refused_organisation_id"].is_string(), "{other}");
    let state = stack.sandbox_state().await;
    assert_eq!(
        count_where(
            &state,
            "merchants",
            other["refused_organisation_id"].as_str().unwrap()
        ),
        0,
        "nothing created in the LIVE organisation"
    );
    assert_eq!(
        state["organisations"].as_object().unwrap().len(),
        before + 1,
        "only the refused LIVE organisation was created"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Not a test: `tests/browser` runs this to get a seeded stack. Prints one line
/// `OPS_STACK {json}` (the page URL, an operator key, the sandbox URL and the alert ids) and
/// serves until its stdin closes.
#[tokio::test]
#[ignore = "run by tests/browser (npm test), which reads its OPS_STACK line and closes stdin to stop it"]
async fn serve_stack_for_the_browser_test() {
    let stack = Stack::start().await;
    let customer = stack.onboard("northwind").await;
    let org = customer["organisation_id"].as_str().unwrap().to_owned();
    let enrolment = customer["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.seed_enrolment(&enrolment).await;
    let now = SystemClock.now();
    // Seeded out of deadline order, so the page has to sort them.
    let mut alerts = Vec::new();
    for (deadline_hours, received_hours, cents) in [
        (60, -8, 12900),
        (-2, -70, 4900),
        (5, -60, 2500),
        (30, -30, 8999),
        (1, -71, 19900),
    ] {
        let id = stack
            .seed_alert(
                &org,
                &enrolment,
                false,
                Some(now + Duration::hours(deadline_hours)),
                now + Duration::hours(received_hours),
                cents,
            )
            .await;
        alerts.push((deadline_hours, id));
    }
    alerts.sort();
    // The least pressing alert matched to the partner's order (evidence, a rule that left it to
    // a person); the next one ambiguous between two candidates.
    let matched_alert = alerts[4].1.clone();
    let ambiguous_alert = alerts[3].1.clone();
    seed_match(&stack, &matched_alert, true).await;
    seed_match(&stack, &ambiguous_alert, false).await;
    if let Err(e) = seed_failed_upload(&stack, &org).await {
        eprintln!("no failed upload seeded (the page test does not need one): {e:#}");
    }
    let info = json!({
        "page_url": stack.api,
        "operator_key": stack.operator_key,
        "operator": OPERATOR,
        "sandbox_url": stack.sandbox.base_url,
        "sandbox_partner_key": stack.sandbox.partner_key,
        "alerts_by_deadline": alerts.iter().map(|(_, id)| id).collect::<Vec<_>>(),
        "matched_alert": matched_alert,
        "ambiguous_alert": ambiguous_alert,
    });
    println!("OPS_STACK {info}");
    // Until the browser test closes our stdin (or dies, which closes it too).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink).ok();
    })
    .await
    .ok();
}

/// The match, evidence and deciding rule process-events stores on an alert record (matched by
/// ARN with evidence, or ambiguous between two candidates), and the policy's decision leaving it
/// to a person, its reason in `alert_policy::evaluate`'s words.
async fn seed_match(stack: &Stack, alert_id: &str, matched: bool) {
    use shared::domain::alert_record::update_alert_record;
    use shared::records::alert::{Decision, DecisionResult, DecisionSource};
    use shared::records::matching::{
        AlertMatch, Evidence, IndexedTransaction, MatchMethod, MatchRecord, MatchStatus,
        MethodTried,
    };
    let candidate = |order: &str, descriptor: &str| IndexedTransaction {
        organisation_id: "org".into(),
        order_reference_id: order.into(),
        transaction_reference_id: format!("txn-{order}"),
        amount_in_cents: Some(12900),
        currency: Some("USD".into()),
        card_brand: Some("VISA".into()),
        card_bin: Some("424242".into()),
        card_last4: Some("4242".into()),
        authorised_at: Some("2026-11-20T10:00:00.000Z".into()),
        descriptor: Some(descriptor.into()),
        ..Default::default()
    };
    let tried = |method, found| MethodTried {
        method,
        skipped: None,
        found,
    };
    let (record, reason) = if matched {
        let t = candidate("ORD-7781", "ACMEFIT");
        (
            MatchRecord {
                matched: AlertMatch {
                    status: MatchStatus::Matched,
                    method: Some(MatchMethod::Arn),
                    confidence: 98,
                    descriptor_tie_break: false,
                    transaction: Some(t.clone()),
                    candidates: vec![t],
                    tried: vec![tried(MatchMethod::Arn, 1)],
                    reads: 1,
                    matched_at: iso(SystemClock.now()),
                },
                evidence: Some(Evidence {
                    refunded_cents: 4000,
                    refund_references: vec!["rf-7781".into()],
                    subscription_status: Some("ACTIVE".into()),
                    earlier_alerts: 1,
                    earlier_alert_ids: vec!["alrt_earlier_1".into()],
                    order_status: Some("CLOSED_COMPLETE".into()),
                    ..Default::default()
                }),
                rule: Some("browser-policy/review-subscriptions".into()),
            },
            "browser-policy/review-subscriptions: subscription ACTIVE [subscription ACTIVE; matched ORD-7781 / txn-ORD-7781 by Arn (98%); partly refunded (4000 cents), subscription ACTIVE, 1 earlier alert(s) of the customer]",
        )
    } else {
        let candidates = vec![
            candidate("ORD-5501", "<b>ACMEFIT</b> GYM"),
            candidate("ORD-5502", "ACMEFIT SPA"),
        ];
        (
            MatchRecord {
                matched: AlertMatch {
                    status: MatchStatus::Ambiguous,
                    method: Some(MatchMethod::BinLast4AmountWindow),
                    confidence: 0,
                    descriptor_tie_break: false,
                    transaction: None,
                    candidates,
                    tried: vec![tried(MatchMethod::Arn, 0), tried(MatchMethod::BinLast4AmountWindow, 2)],
                    reads: 2,
                    matched_at: iso(SystemClock.now()),
                },
                evidence: None,
                rule: Some("browser-policy/unmatched".into()),
            },
            "browser-policy/unmatched: match AMBIGUOUS [match AMBIGUOUS; ambiguous (2 candidate(s))]",
        )
    };
    update_alert_record(&stack.alerts, alert_id, |current| {
        let mut r = current?;
        r.alert_match = Some(record.clone());
        r.decisions.push(Decision {
            at: iso(SystemClock.now()),
            source: DecisionSource::AutoPolicy,
            actor: "browser-policy".into(),
            action: None,
            reason: reason.into(),
            note: None,
            result: DecisionResult::LeftForPerson,
            detail: None,
        });
        r.revision += 1;
        Some(r)
    })
    .await
    .expect("the match stored on the alert");
}

/// A recent upload failure for the page: an order ChargebackStop refuses (an integration it
/// does not know), sent by the real `order-upload` function.
async fn seed_failed_upload(stack: &Stack, org: &str) -> anyhow::Result<()> {
    let (status, body) = stack
        .post(
            "api/orders",
            order_json(org, "int_retired_2019", "ORD-2026-0042"),
        )
        .await;
    anyhow::ensure!(status == StatusCode::ACCEPTED, "intake: {status} {body}");
    let scheduled = json!({
        "version": "0", "id": "browser-seed", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "000000000000", "time": iso(SystemClock.now()),
        "region": devstack::moto::REGION, "resources": [], "detail": {}
    });
    stack.functions.invoke("order-upload", scheduled).await?;
    Ok(())
}
