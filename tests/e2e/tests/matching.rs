//! Matching alerts to the partner's own orders, over real parts: orders taken in through the
//! ops API (indexed in the `transactions` table of moto), alerts simulated at the sandbox, their
//! `alert.created` events processed by `process-events` (under `cargo lambda watch`), actions
//! seen at the sandbox. The policy (DEFAULT_ALERT_POLICY) refunds what the partner refunded,
//! leaves unmatched and ambiguous alerts to a person and disputes small unrefunded ones.
//!
//! Scenarios, one organisation, one stack:
//! 1. a refunded order matched by ARN: REFUND at once, match/evidence/rule on the alert;
//! 2. the same with the order also at ChargebackStop: the alert carries
//!    `integration_transaction_id`, matched by it;
//! 3. late data: an alert with no order waits; its refunded order taken in afterwards through
//!    the ops API decides it (REFUND at the sandbox);
//! 4. two transactions fit BIN + last 4 + amount + currency + date: AMBIGUOUS, a person's, both
//!    candidates recorded;
//! 5. matched, not refunded, small: ACCEPT_DISPUTE by the policy's rule, evidence recorded.
//!
//! Needs the debug binaries `process-events`, `ops-api`, `cbs-sandbox` and `cbs`
//! (`cargo build --bins -p process-events -p ops-api -p cbs-sandbox -p cbs-cli`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use devstack::orders_customer::OrdersCustomer;
use devstack::{resources, Functions, Moto, Resources, Sandbox, SandboxClient, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::alerts::DynamoAlertStore;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::alert_record::AlertRecord;
use shared::domain::decision::DecisionResult;
use shared::ports::alert_store::AlertStore;
use shared::records::matching::{MatchMethod, MatchStatus};

const POLICY: &str = r#"{"name":"match-e2e","note":"Refunded in the partner's platform",
 "rules":[{"name":"unmatched","when":{"match_status":["UNMATCHED","AMBIGUOUS"]},"then":"PERSON"},
          {"name":"small-unrefunded","when":{"partner_refunded":["NONE"],"amount_at_most_cents":1000},"then":"ACCEPT_DISPUTE"}]}"#;

struct Stack {
    #[allow(dead_code)]
    moto: Moto,
    res: Resources,
    #[allow(dead_code)]
    sandbox: Sandbox,
    functions: Functions,
    cbs: SandboxClient,
    alerts: DynamoAlertStore,
    http: reqwest::Client,
    operator_key: String,
    env: Vec<(String, String)>,
    org: String,
    integration: String,
    enrolment: String,
    /// Onboarded at the sandbox by `onboard` (its ids are copied into the fields above).
    customer: Option<OrdersCustomer>,
    /// When every test order was authorised (the alerts say the same).
    authorised_at: DateTime<Utc>,
    next: std::sync::atomic::AtomicU32,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let res = resources::create(&moto.endpoint, &resources::unique_prefix("match"))
            .await
            .expect("tables and queues from the template");
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox");
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        env.push(("DEFAULT_ALERT_POLICY".into(), POLICY.into()));
        let functions = Functions::start_prebuilt(env.clone())
            .await
            .expect("cargo lambda watch");
        let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let tables = TableNames::new(res.table_prefix.clone());
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .unwrap();
        let cbs = SandboxClient::new(&sandbox, http.clone());
        let mut stack = Stack {
            alerts: DynamoAlertStore::new(Table::new(dynamo, tables.alerts(), Default::default())),
            moto,
            res,
            sandbox,
            functions,
            cbs,
            http,
            operator_key: String::new(),
            env,
            org: String::new(),
            integration: String::new(),
            enrolment: String::new(),
            customer: None,
            authorised_at: Utc::now() - Duration::days(2),
            next: Default::default(),
        };
        let out = tokio::process::Command::new(devstack::paths::debug_binary("cbs"))
            .args(["operator-key", "create", "--operator", "e2e-matching"])
            .envs(stack.env.clone())
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stack.operator_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        stack.onboard().await;
        stack
    }

    async fn onboard(&mut self) {
        let c = OrdersCustomer::onboard(&self.cbs, "Matching Fitness").await;
        self.customer = Some(c);
        let c = self.customer.as_ref().unwrap();
        (self.org, self.integration, self.enrolment) =
            (c.org.clone(), c.integration.clone(), c.enrolment.clone());
    }

    /// A COMPLETE order with one card transaction; `arn` may be empty (none sent).
    fn order(&self, reference: &str, arn: &str, amount: i64, refunded: bool) -> Value {
        self.customer.as_ref().expect("onboarded").card_order(
            reference,
            arn,
            amount,
            refunded,
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

    async fn simulate(&self, fields: Value) -> String {
        let mut body = json!({"organisation_id": self.org, "enrolment_id": self.enrolment,
            "currency_code": "USD", "transaction_authorised_at": iso(self.authorised_at)});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let a = self
            .cbs
            .api(reqwest::Method::POST, "/v1/simulate/alerts", body)
            .await;
        a["id"].as_str().unwrap().to_string()
    }

    /// Feeds the sandbox's `alert.created` for `alert_id` to process-events as an SQS record.
    async fn process(&self, alert_id: &str) {
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
            "{answer}"
        );
    }

    async fn record(&self, alert_id: &str) -> AlertRecord {
        self.alerts
            .get(alert_id)
            .await
            .unwrap()
            .expect("alert stored")
    }

    /// Actions ChargebackStop accepted for the alert (PATCH bodies answered 200).
    async fn actions(&self, alert_id: &str) -> Vec<String> {
        self.cbs
            .admin(reqwest::Method::GET, "requests?since=0", None)
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == "PATCH"
                    && r["path"] == format!("/v1/alerts/{alert_id}")
                    && r["status"].as_u64() == Some(200)
            })
            .map(|r| r["body"]["action"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_decided_on_the_partners_own_orders() {
    let s = Stack::start().await;
    let refunded = s.order("o-1", "ARN-0001", 4900, true);
    let at_cbs = s.order("o-2", "ARN-0002", 4900, true);
    s.take_in(vec![refunded, at_cbs.clone()]).await;
    // o-2 also reached ChargebackStop (as the upload would send it): it matches alerts itself.
    let created = s
        .cbs
        .api(
            reqwest::Method::POST,
            "/v1/orders/",
            Value::Array(vec![at_cbs]),
        )
        .await;
    assert_eq!(created["created"], 1, "{created}");

    // 1. matched by ARN, already refunded: REFUND at once, match, evidence and rule recorded.
    let a1 = s
        .simulate(
            json!({"amount_in_cents": 4900, "transaction_acquirer_reference_number": "ARN-0001"}),
        )
        .await;
    s.process(&a1).await;
    assert_eq!(s.actions(&a1).await, vec!["REFUND"]);
    let r1 = s.record(&a1).await;
    let m1 = r1.alert_match.clone().expect("match on the alert record");
    assert_eq!(
        (m1.matched.status, m1.matched.method),
        (MatchStatus::Matched, Some(MatchMethod::Arn))
    );
    assert_eq!(
        m1.matched.transaction.as_ref().unwrap().order_reference_id,
        "o-1"
    );
    assert_eq!(
        m1.rule.as_deref(),
        Some("match-e2e/refund_when_partner_refunded")
    );
    assert!(m1.evidence.as_ref().unwrap().fully_refunded);
    assert_eq!(r1.decisions.last().unwrap().result, DecisionResult::Applied);
    assert!(r1
        .decisions
        .last()
        .unwrap()
        .reason
        .contains("fully refunded"));

    // 2. ChargebackStop matched it too: integration_transaction_id decides first.
    let a2 = s
        .simulate(
            json!({"amount_in_cents": 4900, "transaction_acquirer_reference_number": "ARN-0002"}),
        )
        .await;
    s.process(&a2).await;
    let r2 = s.record(&a2).await;
    assert_eq!(
        r2.alert.integration_transaction_id.as_deref(),
        Some("txn-o-2")
    );
    let m2 = r2.alert_match.unwrap();
    assert_eq!(
        m2.matched.method,
        Some(MatchMethod::IntegrationTransactionId)
    );
    assert_eq!(m2.matched.reads, 1);
    assert_eq!(s.actions(&a2).await, vec!["REFUND"]);

    // 3. late data: no order yet, the alert waits; the order taken in decides it.
    let a3 = s
        .simulate(
            json!({"amount_in_cents": 4900, "transaction_acquirer_reference_number": "ARN-0003"}),
        )
        .await;
    s.process(&a3).await;
    let r3 = s.record(&a3).await;
    assert_eq!(
        r3.alert_match.as_ref().unwrap().matched.status,
        MatchStatus::Unmatched
    );
    assert_eq!(
        r3.decisions.last().unwrap().result,
        DecisionResult::LeftForPerson
    );
    assert!(s.actions(&a3).await.is_empty());
    s.take_in(vec![s.order("o-3", "ARN-0003", 4900, true)])
        .await;
    assert_eq!(
        s.actions(&a3).await,
        vec!["REFUND"],
        "decided when its order arrived"
    );
    let r3 = s.record(&a3).await;
    assert_eq!(
        r3.alert_match.as_ref().unwrap().matched.status,
        MatchStatus::Matched
    );
    let last = r3.decisions.last().unwrap();
    assert_eq!(last.result, DecisionResult::Applied);
    assert!(
        last.reason.starts_with("late data (was UNMATCHED)"),
        "{}",
        last.reason
    );

    // 4. two transactions fit the card lookup: ambiguous, a person's, both candidates kept.
    s.take_in(vec![
        s.order("o-4a", "", 3100, false),
        s.order("o-4b", "", 3100, false),
    ])
    .await;
    let a4 = s
        .simulate(
            json!({"amount_in_cents": 3100, "transaction_card_bin": "424242",
                         "transaction_card_last4": "4242"}),
        )
        .await;
    s.process(&a4).await;
    let r4 = s.record(&a4).await;
    let m4 = r4.alert_match.unwrap();
    assert_eq!(m4.matched.status, MatchStatus::Ambiguous, "{m4:?}");
    assert_eq!(m4.matched.method, Some(MatchMethod::BinLast4AmountWindow));
    assert_eq!(m4.matched.candidates.len(), 2);
    assert_eq!(m4.rule.as_deref(), Some("match-e2e/unmatched"));
    assert!(s.actions(&a4).await.is_empty());

    // 5. matched, not refunded, small: the policy's rule disputes it, on that evidence.
    s.take_in(vec![s.order("o-5", "ARN-0005", 900, false)])
        .await;
    let a5 = s
        .simulate(
            json!({"amount_in_cents": 900, "transaction_acquirer_reference_number": "ARN-0005"}),
        )
        .await;
    s.process(&a5).await;
    assert_eq!(s.actions(&a5).await, vec!["ACCEPT_DISPUTE"]);
    let r5 = s.record(&a5).await;
    let m5 = r5.alert_match.unwrap();
    assert_eq!(m5.rule.as_deref(), Some("match-e2e/small-unrefunded"));
    assert_eq!(m5.evidence.unwrap().refunded_cents, 0);
}
