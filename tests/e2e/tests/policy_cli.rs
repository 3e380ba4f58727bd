//! `cbs policy test` and `cbs escalations export` (and the ops API's `GET /api/escalations.csv`)
//! over real parts: orders taken in through the ops API (indexed in moto's `transactions`
//! table), alerts simulated at the sandbox and processed by the real `process-events` under the
//! stack's policy (DEFAULT_ALERT_POLICY), then the real `cbs` binary run against the same
//! tables.
//!
//! Four alerts: refunded and matched by ARN (REFUND), unmatched (a person's), ambiguous between
//! two orders (a person's), matched, small and unrefunded (ACCEPT_DISPUTE). The dry run of the
//! stored policy agrees with all four; a more generous policy file would refund three of them
//! otherwise; it writes nothing. The escalation export holds the unmatched and the ambiguous
//! alert with the Orders guide's fields; the ops API serves the same CSV.
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
use shared::ports::alert_store::AlertStore;

const POLICY: &str = r#"{"name":"stored","note":"Refunded in the partner's platform",
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
    authorised_at: DateTime<Utc>,
    next: std::sync::atomic::AtomicU32,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let res = resources::create(&moto.endpoint, &resources::unique_prefix("pcli"))
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
        let functions = Functions::start_binaries(env.clone(), &["ops-api", "process-events"])
            .await
            .expect("cargo lambda watch and the functions");
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
        let out = stack
            .cli(&["operator-key", "create", "--operator", "e2e-policy-cli"])
            .await;
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        stack.operator_key = out.stdout.trim().to_string();
        stack.onboard().await;
        stack
    }

    async fn cli(&self, args: &[&str]) -> Run {
        let out = tokio::process::Command::new(devstack::paths::debug_binary("cbs"))
            .args(args)
            .envs(self.env.clone())
            // Not the developer's dev stack file: only this stack's variables.
            .env("CBS_ENV_FILE", "/nonexistent/dev.env")
            .kill_on_drop(true)
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn onboard(&mut self) {
        let c = OrdersCustomer::onboard(&self.cbs, "Policy Test Fitness").await;
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

    fn ops_url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.functions.http_url("ops-api").trim_end_matches('/')
        )
    }

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

    async fn revisions(&self, ids: &[&str]) -> Vec<u64> {
        let mut out = Vec::new();
        for id in ids {
            out.push(self.alerts.get(id).await.unwrap().unwrap().revision);
        }
        out
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_test_dry_runs_a_policy_and_escalations_export_the_guides_record() {
    let s = Stack::start().await;
    s.take_in(vec![
        s.order("o-1", "ARN-0001", 4900, true),
        s.order("o-4a", "", 3100, false),
        s.order("o-4b", "", 3100, false),
        s.order("o-5", "ARN-0005", 900, false),
    ])
    .await;
    let refunded = s
        .simulate(
            json!({"amount_in_cents": 4900, "transaction_acquirer_reference_number": "ARN-0001"}),
        )
        .await;
    let unmatched = s
        .simulate(
            json!({"amount_in_cents": 4900, "transaction_acquirer_reference_number": "ARN-0099",
                         "transaction_authorisation_code": "AUTH77"}),
        )
        .await;
    let ambiguous = s
        .simulate(
            json!({"amount_in_cents": 3100, "transaction_card_bin": "424242",
                         "transaction_card_last4": "4242"}),
        )
        .await;
    let small = s
        .simulate(
            json!({"amount_in_cents": 900, "transaction_acquirer_reference_number": "ARN-0005"}),
        )
        .await;
    let ids = [
        refunded.as_str(),
        unmatched.as_str(),
        ambiguous.as_str(),
        small.as_str(),
    ];
    for id in ids {
        s.process(id).await;
    }
    let org = s.org.as_str();
    let dir = std::env::temp_dir().join(format!("policy-cli-{}", s.res.table_prefix));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. The stored policy (DEFAULT_ALERT_POLICY) decided these alerts: it agrees with itself.
    let run = s.cli(&["policy", "test", "--organisation", org]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("4 alert(s): 4 agree, 0 would differ, 0 not decided"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("policy \"stored\""), "{}", run.stderr);
    assert!(run
        .stdout
        .contains("  would:    REFUND  by stored/refund_when_partner_refunded"));
    assert!(
        run.stdout.contains("fully refunded (4900 cents)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("AMBIGUOUS BinLast4AmountWindow"));

    // 2. A more generous policy file: three alerts would be decided otherwise; nothing written.
    let before = s.revisions(&ids).await;
    let generous = write(
        &dir,
        "generous.json",
        r#"{"name":"generous","refund_at_or_below_cents":5000}"#,
    );
    let run = s
        .cli(&[
            "policy",
            "test",
            "--organisation",
            org,
            "--policy",
            &generous,
            "--json",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("--json prints one document");
    let line = |id: &str| {
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["alert_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {report}"))
    };
    let l = line(&refunded);
    assert_eq!(
        (l["would"].as_str(), l["decided"].as_str()),
        (Some("REFUND"), Some("REFUND"))
    );
    assert_eq!(l["rule"], "generous/refund_when_partner_refunded");
    assert_eq!(l["decided_rule"], "stored/refund_when_partner_refunded");
    let l = line(&unmatched);
    assert_eq!(
        (l["would"].as_str(), l["decided"].as_str()),
        (Some("REFUND"), Some("PERSON"))
    );
    assert_eq!(l["decided_rule"], "stored/unmatched");
    let l = line(&small);
    assert_eq!(
        (
            l["would"].as_str(),
            l["decided"].as_str(),
            l["same"].as_bool()
        ),
        (Some("REFUND"), Some("ACCEPT_DISPUTE"), Some(false))
    );
    let summary = &report["summary"];
    assert_eq!(
        (
            &summary["alerts"],
            &summary["agree"],
            &summary["would_differ"]
        ),
        (&json!(4), &json!(1), &json!(3)),
        "{summary}"
    );
    assert_eq!(
        summary["by_rule"]["generous/refund_at_or_below_cents"]["would_differ"],
        3
    );
    assert_eq!(summary["changes"]["PERSON → REFUND"], 2);
    assert_eq!(s.revisions(&ids).await, before, "a dry run writes nothing");
    let run = s
        .cli(&[
            "policy",
            "test",
            "--organisation",
            org,
            "--policy",
            &generous,
            "--fail-on-difference",
        ])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);

    // 3. --since after every alert: nothing to test.
    let tomorrow = (Utc::now() + Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let run = s
        .cli(&[
            "policy",
            "test",
            "--organisation",
            org,
            "--since",
            &tomorrow,
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("0 alert(s): 0 agree"), "{}", run.stdout);

    // 4. Clear refusals, exit code 2: an unknown organisation, an invalid policy file.
    let run = s
        .cli(&["policy", "test", "--organisation", "org_nobody"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown organisation org_nobody"),
        "{}",
        run.stderr
    );
    let bad = write(
        &dir,
        "bad.json",
        r#"{"name":"bad","refund_action":"ACCEPT_DISPUTE","cutoff_minutes_before_deadline":999999}"#,
    );
    let run = s
        .cli(&["policy", "test", "--organisation", org, "--policy", &bad])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("is invalid (2 problem(s))"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("  refund_action: must be REFUND or REFUND_AND_CANCEL"));
    assert!(run
        .stderr
        .contains("  cutoff_minutes_before_deadline: must be from 0"));
    assert!(run.stdout.is_empty(), "nothing printed as a report");

    // 5. The escalation export: the unmatched and the ambiguous alert, the guide's fields.
    let out = dir.join("escalations.csv");
    let run = s
        .cli(&[
            "escalations",
            "export",
            "--organisation",
            org,
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("2 alert(s) to escalate"),
        "{}",
        run.stderr
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("{id}: {csv}"))
    };
    let u = row(&unmatched);
    assert_eq!(u[col("match_status")], "UNMATCHED");
    assert_eq!(u[col("arn")], "ARN-0099");
    assert_eq!(u[col("auth_code")], "AUTH77");
    assert_eq!(
        (u[col("amount_in_cents")], u[col("currency")]),
        ("4900", "USD")
    );
    assert_eq!(u[col("rule")], "stored/unmatched");
    let a = row(&ambiguous);
    assert_eq!(a[col("match_status")], "AMBIGUOUS");
    assert_eq!(a[col("order_reference")], "o-4a; o-4b");
    assert_eq!(a[col("transaction_reference")], "txn-o-4a; txn-o-4b");
    assert_eq!((a[col("bin")], a[col("last4")]), ("424242", "4242"));
    assert!(!a[col("alert_received_at")].is_empty());
    assert!(!a[col("transaction_authorised_at")].is_empty());
    let run = s
        .cli(&["escalations", "export", "--organisation", "org_nobody"])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);

    // 6. The ops API serves the same CSV; an unknown organisation is 404.
    let resp = s
        .http
        .get(s.ops_url(&format!("api/escalations.csv?organisation_id={org}")))
        .bearer_auth(&s.operator_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(resp.text().await.unwrap(), csv);
    let resp = s
        .http
        .get(s.ops_url("api/escalations.csv?organisation_id=org_nobody"))
        .bearer_auth(&s.operator_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    std::fs::remove_dir_all(&dir).ok();
}
