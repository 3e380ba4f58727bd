//! The one action path over real parts (issue 10, defects 1 and 6, and the deadline-less alert
//! of defect 11): `ops-api` and `deadline-sweep` as Lambda binaries (`cargo lambda watch
//! --only-lambda-apis`), DynamoDB from moto with the tables of `infra/template.yaml`,
//! ChargebackStop from the sandbox, notifications to a file sink the test reads.
//!
//! - A 422 that leaves the alert ACTION_REQUIRED (the sandbox's `refuse_alert_actions` knob)
//!   keeps it in the ops queue and the deadline-index, and operations are told with the code.
//! - An operator and the sweep acting on one alert at the same moment: ChargebackStop's action
//!   log shows exactly one PATCH (the claim refuses the other before it sends anything).
//! - A final decision recorded here: the ops action route answers 409 without a PATCH.
//! - An Ethoca alert waiting without a deadline: told once, listed first with urgency
//!   `no_deadline`, and the sweep reads it without failing or acting on it.
//!
//! Needs the debug binaries `ops-api`, `deadline-sweep`, `cbs` and `cbs-sandbox`
//! (`cargo build -p ops-api -p deadline-sweep -p cbs-cli -p cbs-sandbox`).

use devstack::scheduler::scheduled_event;
use devstack::{paths, resources, Functions, Moto, Resources, Sandbox, SandboxClient};
use reqwest::Method;
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::table::Table;
use shared::adapters::memory::RecordingNotifier;
use shared::config::TableNames;
use shared::domain::alert_record::{store_fetched_alert, store_fetched_alert_notifying};
use shared::domain::decision::DecisionResult;
use shared::models::alert::Alert;
use shared::ports::alert_store::AlertStore;
use std::path::PathBuf;
use std::time::Duration;

const OPERATOR: &str = "claims-operator";
/// Held before every sandbox API request during the race, so that both parties' re-fetches
/// are in flight together (without the claim, both would then PATCH).
const RACE_LATENCY_MS: u64 = 1500;

struct Stack {
    moto: Moto,
    res: Resources,
    sandbox: Sandbox,
    cbs: SandboxClient,
    functions: Functions,
    http: reqwest::Client,
    alerts: DynamoAlertStore,
    notifications: PathBuf,
    operator_key: String,
    org: String,
    ethoca_enrolment: String,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let res = resources::create(&moto.endpoint, &resources::unique_prefix("claims"))
            .await
            .expect("tables from the template");
        let sandbox = Sandbox::start(Default::default())
            .await
            .expect("sandbox (cargo build -p cbs-sandbox)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let cbs = SandboxClient::new(&sandbox, http.clone());
        let (org, ethoca_enrolment) = onboard(&cbs).await;
        let notifications =
            paths::log_dir().join(format!("{}-notifications.jsonl", res.table_prefix));

        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        // The topic exists in moto, but a file sink is what the test can read.
        env.retain(|(k, _)| k != "NOTIFY_TOPIC_ARN");
        env.extend(
            [
                ("STACK_MODE", "TEST".to_string()),
                ("NOTIFY_SINK", format!("file://{}", notifications.display())),
                ("SWEEP_CUTOFF", "2h".into()),
                ("SWEEP_DEFAULT_ACTION", "ACCEPT_DISPUTE".into()),
                // The sweep acts at once: no polling of ChargebackStop before it.
                ("RECONCILE", "off".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let functions = Functions::start_binaries(env, &["ops-api", "deadline-sweep"])
            .await
            .expect("cargo lambda watch and the function binaries");
        let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let tables = TableNames::new(res.table_prefix.clone());
        let alerts = DynamoAlertStore::new(Table::new(dynamo, tables.alerts(), Default::default()));
        let mut stack = Stack {
            moto,
            res,
            sandbox,
            cbs,
            functions,
            http,
            alerts,
            notifications,
            operator_key: String::new(),
            org,
            ethoca_enrolment,
        };
        stack.operator_key = stack.mint_operator_key().await;
        stack
    }

    async fn mint_operator_key(&self) -> String {
        let mut env = self.moto.env();
        env.extend(self.res.env());
        env.extend(self.sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        let out = tokio::process::Command::new(paths::debug_binary("cbs"))
            .args(["operator-key", "create", "--operator", OPERATOR])
            .envs(env)
            .kill_on_drop(true)
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        assert!(
            out.status.success(),
            "cbs operator-key create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(key.starts_with("cbsop_"));
        key
    }

    /// A request to the ops API as the operator: (status, body).
    async fn ops(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.functions.http_url("ops-api"));
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(&self.operator_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("ops API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn operator_action(&self, alert_id: &str, action: &str) -> (u16, Value) {
        self.ops(
            Method::POST,
            &format!("api/alerts/{alert_id}/action"),
            Some(json!({ "action": action })),
        )
        .await
    }

    async fn sweep(&self) -> Value {
        self.functions
            .invoke("deadline-sweep", scheduled_event("deadline-sweep"))
            .await
            .unwrap_or_else(|e| panic!("deadline-sweep: {e}"))
    }

    /// A new Ethoca alert at the sandbox, due in `minutes`, stored as the event processor
    /// stores it when its webhook arrives.
    async fn waiting_alert(&self, minutes: i64) -> String {
        let a = self
            .cbs
            .api(
                Method::POST,
                "/v1/simulate/alerts",
                json!({ "organisation_id": self.org, "enrolment_id": self.ethoca_enrolment,
                        "amount_in_cents": 4900, "currency_code": "USD" }),
            )
            .await;
        let id = a["id"].as_str().unwrap().to_string();
        let deadline = chrono::Utc::now() + chrono::Duration::minutes(minutes);
        self.cbs
            .admin(
                Method::PATCH,
                &format!("alerts/{id}"),
                Some(json!({ "action_required_deadline":
                    deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })),
            )
            .await;
        let (status, alert) = self
            .cbs
            .call(Method::GET, &format!("/v1/alerts/{id}"), None)
            .await;
        assert_eq!(status, 200, "{alert}");
        let alert: Alert = serde_json::from_value(alert).unwrap();
        store_fetched_alert(&self.alerts, &alert, chrono::Utc::now())
            .await
            .unwrap();
        id
    }

    /// Every PATCH ChargebackStop received for the alert, accepted or refused.
    async fn actions_at_chargebackstop(&self, alert_id: &str) -> Vec<Value> {
        self.cbs
            .admin(Method::GET, &format!("alerts/{alert_id}/actions"), None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn notifications(&self, kind: &str, alert_id: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.notifications)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|n| n["kind"] == kind && n["object_id"] == alert_id)
            .collect()
    }

    async fn queued_ids(&self) -> Vec<String> {
        let (status, page) = self
            .ops(
                Method::GET,
                "api/alerts?status=ACTION_REQUIRED&sort=action_required_deadline&limit=500",
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// An organisation with one merchant and an ENABLED Ethoca enrolment, straight at the sandbox.
async fn onboard(cbs: &SandboxClient) -> (String, String) {
    let org = cbs
        .api(
            Method::POST,
            "/v1/organisations/",
            json!({ "name": "Claims" }),
        )
        .await;
    let org = org["id"].as_str().unwrap().to_string();
    let merchant = cbs
        .api(
            Method::POST,
            "/v1/merchants/",
            json!({ "organisation_id": org, "name": "Claims store", "type": "GENERIC",
                    "external_id": "ext-claims" }),
        )
        .await;
    let enrolment = cbs
        .api(
            Method::POST,
            "/v2/enrolments/",
            json!({ "merchant_ids": [merchant["id"]], "type": "ETHOCA_ALERT",
                    "ethoca_alert": { "descriptors": [
                        { "descriptor": "CLAIMS", "match_type": "STARTS_WITH" }] } }),
        )
        .await;
    let enrolment = enrolment["id"].as_str().unwrap().to_string();
    cbs.api(
        Method::PATCH,
        &format!("/v1/simulate/enrolments/{enrolment}"),
        json!({ "status": "ENABLED" }),
    )
    .await;
    (org, enrolment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_action_path_over_real_parts() {
    let stack = Stack::start().await;
    a_422_while_the_alert_waits_keeps_it_queued_and_tells_a_person(&stack).await;
    operator_and_sweep_at_the_same_moment_send_one_patch(&stack).await;
    a_waiting_alert_without_deadline_is_told_once_and_listed_first(&stack).await;
}

/// Defect 1 (and the ops route's 409 on a local final decision, defect 6).
async fn a_422_while_the_alert_waits_keeps_it_queued_and_tells_a_person(stack: &Stack) {
    let alert = stack.waiting_alert(24 * 60).await;
    stack
        .cbs
        .faults(json!({ "refuse_alert_actions": [alert] }))
        .await;

    let (status, body) = stack.operator_action(&alert, "REFUND").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("ACTION_NOT_AVAILABLE"),
        "the code reaches the operator: {body}"
    );
    let cbs_alert = stack
        .cbs
        .call(Method::GET, &format!("/v1/alerts/{alert}"), None)
        .await
        .1;
    assert_eq!(cbs_alert["status"], "ACTION_REQUIRED");

    let stored = stack.alerts.get(&alert).await.unwrap().unwrap();
    assert!(stored.action_queue.is_some(), "still in the deadline-index");
    assert!(!stored.has_final_decision(), "{:?}", stored.decisions);
    assert_eq!(stored.action_claim, None, "claim released");
    assert!(
        stack.queued_ids().await.contains(&alert),
        "still in the ops queue"
    );
    let told = stack.notifications("alert.action_refused", &alert);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["subject"]
            .as_str()
            .unwrap()
            .contains("ACTION_NOT_AVAILABLE"),
        "{told:?}"
    );

    // ChargebackStop accepts again: a person's second try goes through, once.
    stack
        .cbs
        .faults(json!({ "refuse_alert_actions": [] }))
        .await;
    let (status, body) = stack.operator_action(&alert, "ACCEPT_DISPUTE").await;
    assert_eq!(status, 200, "{body}");
    // Now decided here: refused locally, nothing sent.
    let (status, body) = stack.operator_action(&alert, "REFUND").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_decided", "{body}");
    let actions = stack.actions_at_chargebackstop(&alert).await;
    let accepted: Vec<&Value> = actions.iter().filter(|a| a["accepted"] == true).collect();
    assert_eq!(actions.len(), 2, "one refused, one accepted: {actions:?}");
    assert_eq!(accepted.len(), 1, "{actions:?}");
}

/// Defect 6: whoever claims first acts; the other is refused by the claim before it sends.
/// The sandbox holds every request `RACE_LATENCY_MS`, so both parties' re-fetches overlap.
/// Should the timing still miss (one finished before the other started, so the loser met a
/// final decision instead of a claim), the scenario is set up again with a new alert.
async fn operator_and_sweep_at_the_same_moment_send_one_patch(stack: &Stack) {
    for attempt in 1..=3 {
        // Inside the 2 h cutoff: the sweep acts on it.
        let alert = stack.waiting_alert(30).await;
        stack
            .cbs
            .faults(json!({ "latency_ms": RACE_LATENCY_MS }))
            .await;
        let (swept, (status, body)) =
            tokio::join!(stack.sweep(), stack.operator_action(&alert, "REFUND"));
        stack.cbs.faults(json!({ "latency_ms": 0 })).await;

        let actions = stack.actions_at_chargebackstop(&alert).await;
        assert_eq!(
            actions.len(),
            1,
            "exactly one PATCH reached ChargebackStop (sweep {swept}, operator {status} {body}): {actions:?}"
        );
        assert_eq!(actions[0]["accepted"], true, "{actions:?}");
        let stored = stack.alerts.get(&alert).await.unwrap().unwrap();
        assert_eq!(stored.action_queue, None);
        assert_eq!(stored.action_claim, None);
        let applied = stored
            .decisions
            .iter()
            .filter(|d| d.result == DecisionResult::Applied)
            .count();
        assert_eq!(applied, 1, "{:?}", stored.decisions);

        // Which one met the other's claim (rather than its finished decision)?
        let operator_met_claim = status == 409 && body["error"]["code"] == "action_in_progress";
        // The sweep counts an alert whose claim is held, or that was decided meanwhile, as
        // `decided_elsewhere` (not an error): it sent nothing.
        let sweep_met_claim = status == 200
            && swept["sweep"]["decided_elsewhere"] == 1
            && swept["sweep"]["errors"] == 0;
        if operator_met_claim || sweep_met_claim {
            if operator_met_claim {
                assert_eq!(swept["sweep"]["actioned"], 1, "{swept}");
            }
            return;
        }
        eprintln!(
            "claim race: attempt {attempt} did not overlap (sweep {swept}, operator {status} {body}); again"
        );
    }
    panic!("the operator/sweep race could not be set up in 3 attempts");
}

/// Defect 11: an Ethoca alert ACTION_REQUIRED without `action_required_deadline`.
async fn a_waiting_alert_without_deadline_is_told_once_and_listed_first(stack: &Stack) {
    let dated = stack.waiting_alert(6 * 60).await;
    let mut undated: Alert = serde_json::from_value(
        stack
            .cbs
            .call(Method::GET, &format!("/v1/alerts/{dated}"), None)
            .await
            .1,
    )
    .unwrap();
    undated.id = format!("{dated}-nodeadline");
    undated.action_required_deadline = None;
    let notifier = RecordingNotifier::default();
    for _ in 0..2 {
        store_fetched_alert_notifying(&stack.alerts, &notifier, &undated, chrono::Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(notifier.sent().len(), 1, "told once: {:?}", notifier.sent());
    assert_eq!(notifier.sent()[0].kind, "alert.no_deadline");

    // In the deadline-index (moto's real GSI), before every alert with a deadline, and read
    // back without one.
    let due = stack
        .alerts
        .awaiting_action_until("9999-12-31T23:59:59.999Z", 500)
        .await
        .unwrap();
    assert_eq!(due[0].alert_id, undated.id);
    assert_eq!(due[0].alert.action_required_deadline, None);

    // The ops queue lists it, marked for a person.
    let (status, page) = stack
        .ops(
            Method::GET,
            "api/alerts?status=ACTION_REQUIRED&limit=500",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == undated.id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("not in the ops queue: {page}"));
    assert_eq!(item["urgency"], "no_deadline", "{item}");
    assert!(item["action_required_deadline"].is_null(), "{item}");

    // The sweep reads it and neither fails nor acts on it.
    let swept = stack.sweep().await;
    assert_eq!(swept["sweep"]["errors"], 0, "{swept}");
    let stored = stack.alerts.get(&undated.id).await.unwrap().unwrap();
    assert!(stored.decisions.is_empty(), "{:?}", stored.decisions);
}
