//! Refund first, then action, over real parts: orders taken in through the ops API and created
//! at the sandbox by order-upload, alerts simulated at the sandbox, their `alert.created`
//! events processed by `process-events`, the policy's refund hook answered by the stand-in
//! billing system (`cbs-billing`, its signing secret in moto's Secrets Manager), the deadline
//! sweep at the cutoff. Judged from ChargebackStop's side: the sandbox's request log.
//!
//! Scenarios, one organisation, one stack:
//! 1. the hook refunds: the alert is REFUNDed at the sandbox with the billing system's refund
//!    reference in the note; the next order-upload PATCHes that refund onto the order;
//! 2. the hook answers twice (refunds, answers the first POST too late; the retry gets the same
//!    refund): one refund at the billing system, one PATCH;
//! 3. the hook refuses: nothing PATCHed, the alert is a person's (LEFT_FOR_PERSON, still queued),
//!    `refund_hook.refused` notified;
//! 4. the hook never answers: nothing PATCHed, PENDING stored with the reason; at the cutoff the
//!    sweep applies the cutoff action and tells a person (`refund_hook.unconfirmed_at_cutoff`).
//!
//! Needs the debug binaries `process-events`, `ops-api`, `order-upload`, `deadline-sweep`,
//! `cbs-sandbox`, `cbs-billing` and `cbs` (`cargo build --workspace --bins`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use devstack::orders_customer::OrdersCustomer;
use devstack::scheduler::scheduled_event;
use devstack::{paths, resources, Billing, Functions, Moto, Resources, Sandbox, SandboxClient};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::AlertRecord;
use shared::domain::decision::DecisionResult;
use shared::ports::alert_store::AlertStore;
use shared::records::refund_hook::RefundHookState;
use std::path::PathBuf;

struct Stack {
    #[allow(dead_code)]
    moto: Moto,
    res: Resources,
    #[allow(dead_code)]
    sandbox: Sandbox,
    billing: Billing,
    functions: Functions,
    cbs: SandboxClient,
    alerts: DynamoAlertStore,
    http: reqwest::Client,
    notifications: PathBuf,
    operator_key: String,
    org: String,
    integration: String,
    enrolment: String,
    /// Onboarded at the sandbox by `onboard` (its ids are copied into the fields above).
    customer: Option<OrdersCustomer>,
    authorised_at: DateTime<Utc>,
    next: std::sync::atomic::AtomicU32,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let prefix = resources::unique_prefix("hook");
        let res = resources::create(&moto.endpoint, &prefix)
            .await
            .expect("tables and queues from the template");
        let sandbox = Sandbox::start(Default::default()).await.expect("sandbox");
        // A POST held 20 s: far past the hook's 1.5 s timeout.
        let billing = Billing::start(&moto.endpoint, &prefix, 20)
            .await
            .expect("billing system (cargo build -p cbs-billing)");
        let policy = json!({
            "name": "hook-e2e", "note": "Refunded in the partner's platform",
            "refund_at_or_below_cents": 5000,
            "cutoff_action": "ACCEPT_DISPUTE", "cutoff_minutes_before_deadline": 120,
            "refund_hook": billing.hook_config(1500, 2),
            "rules": [{"name": "unmatched", "when": {"match_status": ["UNMATCHED", "AMBIGUOUS"]}, "then": "PERSON"}]
        });
        let notifications =
            paths::log_dir().join(format!("{}-notifications.jsonl", res.table_prefix));
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.retain(|(k, _)| k != "NOTIFY_TOPIC_ARN");
        env.extend(
            [
                ("STACK_MODE", "TEST".to_string()),
                ("DEFAULT_ALERT_POLICY", policy.to_string()),
                ("NOTIFY_SINK", format!("file://{}", notifications.display())),
                ("RECONCILE", "off".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let functions = Functions::start_binaries(
            env.clone(),
            &[
                "process-events",
                "ops-api",
                "order-upload",
                "deadline-sweep",
            ],
        )
        .await
        .expect("function binaries (cargo build --workspace --bins)");
        let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let tables = TableNames::new(res.table_prefix.clone());
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .unwrap();
        let cbs = SandboxClient::new(&sandbox, http.clone());
        let out = tokio::process::Command::new(paths::debug_binary("cbs"))
            .args(["operator-key", "create", "--operator", "e2e-refund-hook"])
            .envs(env)
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut stack = Stack {
            alerts: DynamoAlertStore::new(Table::new(dynamo, tables.alerts(), Default::default())),
            moto,
            res,
            sandbox,
            billing,
            functions,
            cbs,
            http,
            notifications,
            operator_key: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            org: String::new(),
            integration: String::new(),
            enrolment: String::new(),
            customer: None,
            authorised_at: Utc::now() - Duration::days(2),
            next: Default::default(),
        };
        stack.onboard().await;
        stack
    }

    async fn onboard(&mut self) {
        let c = OrdersCustomer::onboard(&self.cbs, "Refund Hook Fitness").await;
        self.customer = Some(c);
        let c = self.customer.as_ref().unwrap();
        (self.org, self.integration, self.enrolment) =
            (c.org.clone(), c.integration.clone(), c.enrolment.clone());
    }

    /// A COMPLETE, unrefunded order with one card transaction.
    fn order(&self, reference: &str, arn: &str, amount: i64) -> Value {
        self.customer.as_ref().expect("onboarded").card_order(
            reference,
            arn,
            amount,
            false,
            self.authorised_at,
        )
    }

    /// `POST /api/orders` of the ops API.
    async fn take_in(&self, orders: Vec<Value>) {
        let (status, body) = self
            .functions
            .take_in_orders(&self.http, &self.operator_key, orders)
            .await
            .expect("ops API answers");
        assert_eq!(status, 202, "{body}");
    }

    async fn invoke(&self, function: &str) -> Value {
        self.functions
            .invoke(function, scheduled_event(function))
            .await
            .unwrap_or_else(|e| panic!("{function}: {e}"))
    }

    async fn simulate(&self, arn: &str, amount: i64, deadline: Option<DateTime<Utc>>) -> String {
        let mut body = json!({"organisation_id": self.org, "enrolment_id": self.enrolment,
            "currency_code": "USD", "transaction_authorised_at": iso(self.authorised_at),
            "amount_in_cents": amount, "transaction_acquirer_reference_number": arn});
        if let Some(d) = deadline {
            body["action_required_deadline"] = json!(iso(d));
        }
        let a = self
            .cbs
            .api(reqwest::Method::POST, "/v1/simulate/alerts", body)
            .await;
        a["id"].as_str().unwrap().to_string()
    }

    /// Feeds the sandbox's `alert.created` for `alert_id` to process-events as an SQS record;
    /// returns the batch answer.
    async fn process(&self, alert_id: &str) -> Value {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = self
            .functions
            .process_alert_created(&self.cbs, &self.res.edge_queue_arn, &self.org, n, alert_id)
            .await
            .expect("process-events answers");
        assert_eq!(
            answer["batchItemFailures"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0),
            0,
            "every outcome of the hook completes the event: {answer}"
        );
        answer
    }

    async fn record(&self, alert_id: &str) -> AlertRecord {
        self.alerts
            .get(alert_id)
            .await
            .unwrap()
            .expect("alert stored")
    }

    /// ChargebackStop's request log: PATCHes of `path` answered 200, their bodies.
    async fn patches(&self, path: &str) -> Vec<Value> {
        self.cbs
            .admin(reqwest::Method::GET, "requests?since=0", None)
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == "PATCH" && r["path"] == path && r["status"].as_u64() == Some(200)
            })
            .map(|r| r["body"].clone())
            .collect()
    }

    async fn alert_patches(&self, alert_id: &str) -> Vec<Value> {
        self.patches(&format!("/v1/alerts/{alert_id}")).await
    }

    /// ChargebackStop's id of an order we uploaded.
    async fn order_id(&self, reference: &str) -> String {
        let state = self.cbs.admin(reqwest::Method::GET, "state", None).await;
        state["orders"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(_, o)| o["reference_id"] == reference)
            .map(|(id, o)| o["id"].as_str().unwrap_or(id).to_string())
            .unwrap_or_else(|| panic!("order {reference} at ChargebackStop: {state}"))
    }

    fn notifications(&self, kind: &str, alert_id: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.notifications)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|n| n["kind"] == kind && n["object_id"] == alert_id)
            .collect()
    }

    async fn hook_posts(&self, alert_id: &str) -> Vec<Value> {
        self.billing
            .log()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e["idempotency_key"] == alert_id)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_are_made_in_the_partners_billing_system_before_the_alert_is_actioned() {
    let s = Stack::start().await;
    s.take_in(vec![
        s.order("o-1", "ARN-1001", 4900),
        s.order("o-2", "ARN-1002", 4800),
        s.order("o-3", "ARN-1003", 4700),
        s.order("o-4", "ARN-1004", 4600),
    ])
    .await;
    // The orders reach ChargebackStop (a refund is PATCHed onto an order it has).
    let upload = s.invoke("order-upload").await;
    let o1 = s.order_id("o-1").await;
    eprintln!("order-upload: {upload}");

    // 1. The billing system refunds: REFUND at ChargebackStop naming its refund reference.
    let a1 = s.simulate("ARN-1001", 4900, None).await;
    s.billing.set_mode(&a1, "refund").await.unwrap();
    s.process(&a1).await;
    let posts = s.hook_posts(&a1).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["signature"], "ok", "signed with our secret");
    assert_eq!(posts[0]["body"]["order_reference_id"], "o-1");
    assert_eq!(posts[0]["body"]["transaction_reference_id"], "txn-o-1");
    assert_eq!(posts[0]["body"]["amount_in_cents"], 4900);
    assert_eq!(posts[0]["body"]["requested_action"], "REFUND");
    let reference = posts[0]["answer"]["refund_reference"]
        .as_str()
        .unwrap()
        .to_string();
    let patches = s.alert_patches(&a1).await;
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["action"], "REFUND");
    assert!(
        patches[0]["note"].as_str().unwrap().contains(&reference),
        "{patches:?}"
    );
    let r1 = s.record(&a1).await;
    let hook = r1.refund_hook.clone().expect("hook outcome recorded");
    assert_eq!(hook.state, RefundHookState::Confirmed);
    assert_eq!(hook.refund_reference.as_deref(), Some(reference.as_str()));
    assert_eq!(hook.attempts, 1);
    let d = r1.decisions.last().unwrap();
    assert_eq!(d.result, DecisionResult::Applied);
    assert!(d.reason.contains("refund hook CONFIRMED"), "{}", d.reason);
    // The refund shows on ChargebackStop's order after the next upload run.
    s.invoke("order-upload").await;
    let order_patches = s.patches(&format!("/v1/orders/{o1}")).await;
    assert!(
        order_patches
            .iter()
            .any(|p| p["refunds"].as_array().is_some_and(|rs| rs
                .iter()
                .any(|r| r["reference_id"] == reference.as_str()
                    && r["original_transaction_reference_id"] == "txn-o-1"))),
        "the refund PATCHed onto order {o1}: {order_patches:?}"
    );

    // 2. The billing system answers twice: the first POST times out after refunding, the
    //    retry gets the same refund. One refund, one PATCH.
    let a4 = s.simulate("ARN-1004", 4600, None).await;
    s.billing.set_mode(&a4, "answer_twice").await.unwrap();
    s.process(&a4).await;
    let refunds: Vec<Value> = s
        .billing
        .refunds()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r["idempotency_key"] == a4.as_str())
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let patches = s.alert_patches(&a4).await;
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0]["note"]
        .as_str()
        .unwrap()
        .contains(refunds[0]["refund_reference"].as_str().unwrap()));
    assert_eq!(s.record(&a4).await.refund_hook.unwrap().attempts, 2);

    // 3. The billing system refuses: nothing sent, a person's, notified.
    let a2 = s.simulate("ARN-1002", 4800, None).await;
    s.billing.set_mode(&a2, "refuse").await.unwrap();
    s.process(&a2).await;
    assert!(s.alert_patches(&a2).await.is_empty(), "nothing PATCHed");
    let r2 = s.record(&a2).await;
    assert_eq!(
        r2.refund_hook.as_ref().unwrap().state,
        RefundHookState::Refused
    );
    assert!(
        r2.action_queue.is_some(),
        "still waiting in the action queue"
    );
    let d = r2.decisions.last().unwrap();
    assert_eq!(d.result, DecisionResult::LeftForPerson);
    assert!(
        d.detail.as_deref().unwrap_or_default().contains("REFUSED"),
        "{d:?}"
    );
    assert_eq!(s.notifications("refund_hook.refused", &a2).len(), 1);

    // 4. The billing system never answers: nothing sent, PENDING with the reason; the alert is
    //    due in 90 min, inside the 120 min cutoff: the sweep applies ACCEPT_DISPUTE and tells.
    let a3 = s
        .simulate("ARN-1003", 4700, Some(Utc::now() + Duration::minutes(90)))
        .await;
    s.billing.set_mode(&a3, "timeout").await.unwrap();
    s.process(&a3).await;
    assert!(s.alert_patches(&a3).await.is_empty(), "nothing PATCHed");
    let r3 = s.record(&a3).await;
    let hook = r3.refund_hook.clone().unwrap();
    assert_eq!(hook.state, RefundHookState::Pending);
    assert_eq!(hook.attempts, 2, "max_attempts: {hook:?}");
    assert!(
        hook.detail
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{hook:?}"
    );
    assert_eq!(
        s.hook_posts(&a3).await.len(),
        2,
        "{a3}: {:?}",
        s.billing.log().await
    );
    assert!(r3.action_claim.is_none(), "the claim was given back");
    let sweep = s.invoke("deadline-sweep").await;
    let patches = s.alert_patches(&a3).await;
    assert_eq!(patches.len(), 1, "{sweep} {patches:?}");
    assert_eq!(patches[0]["action"], "ACCEPT_DISPUTE");
    assert_eq!(
        s.notifications("refund_hook.unconfirmed_at_cutoff", &a3)
            .len(),
        1
    );
    // Nothing else was actioned by the sweep: the refused alert waits for its person.
    assert!(s.alert_patches(&a2).await.is_empty());
}
