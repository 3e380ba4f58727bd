//! The order upload's guarantees over real parts: `order-upload` (two instances polling one
//! function, so two invocations really overlap) and `ops-api` started from the debug build
//! behind `cargo lambda watch`; DynamoDB from moto with the tables of `infra/template.yaml`;
//! ChargebackStop from the sandbox with its rate limit on (100 requests per 10 s window per
//! route and pool) and the client budget matched to it (`ORDER_RATE_LIMIT=100/10s`: the order
//! upload's 99 per 10 s, burst 1). Runs are short (`ORDER_MAX_RUN_SECS=3`) so one scenario needs several, and
//! batches of one order (`ORDER_BATCH_SIZE=1`) keep every run sending from its first moment to
//! its stop time: back-to-back runs are what a fresh full burst per run would push over the
//! budget.
//!
//! - a FAILED order corrected and requeued through the ops API, and another through
//!   `cbs orders requeue --file`, each ends CREATED, once;
//! - 100 orders created before a lost answer are resent: each POSTed once, answered
//!   DUPLICATE_ORDER, then looked up by reference, recorded one by one across budgeted runs,
//!   never POSTed again and never a second order;
//! - two overlapping runs: one works, the other exits at once naming the lease holder;
//! - every request those runs sent, from the sandbox's own log: no 10 s window over the
//!   budget, no 429 (each run continues the stored bucket instead of a fresh burst).
//!
//! Needs the debug binaries `order-upload`, `ops-api`, `cbs` and `cbs-sandbox`
//! (`cargo build -p order-upload -p ops-api -p cbs-cli -p cbs-sandbox`).

use devstack::scheduler::scheduled_event;
use devstack::{paths, resources, Functions, Moto, Resources, Sandbox, SandboxOptions};
use serde_json::{json, Value};
use shared::adapters::dynamo::orders::DynamoOrderOutbox;
use shared::adapters::dynamo::table::Table;
use shared::config::TableNames;
use shared::domain::order_intake::intake_orders;
use shared::ports::order_outbox::{OrderOutbox, UploadState};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const RATE_WINDOW_SECS: u64 = 10;
/// Our budget per window: the order upload's 99 % of the sandbox's 100
/// (`RateLimit::ORDER_UPLOAD`).
const BUDGET: usize = 99;
/// The unit tests resend 100; here the local DynamoDB emulator's pace sets the count.
const DUPLICATES: usize = 40;

struct Stack {
    #[allow(dead_code)]
    moto: Moto,
    #[allow(dead_code)]
    res: Resources,
    sandbox: Sandbox,
    functions: Functions,
    http: reqwest::Client,
    outbox: DynamoOrderOutbox,
    ops_api: String,
    operator_key: String,
    notifications: PathBuf,
    org: String,
    integration: String,
    /// What `cbs` needs to reach this stack (tables, emulator, sandbox).
    cbs_env: Vec<(String, String)>,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await.expect("moto");
        let res = resources::create(&moto.endpoint, &resources::unique_prefix("og"))
            .await
            .expect("tables from the template");
        let sandbox = Sandbox::start(SandboxOptions {
            rate_limit: Some(100),
            rate_window_secs: Some(RATE_WINDOW_SECS),
            ..SandboxOptions::default()
        })
        .await
        .expect("sandbox (cargo build -p cbs-sandbox)");
        let notifications =
            paths::log_dir().join(format!("{}-notifications.jsonl", res.table_prefix));
        let mut env = moto.env();
        env.extend(res.env());
        env.extend(sandbox.env());
        env.retain(|(k, _)| k != "NOTIFY_TOPIC_ARN");
        env.extend(
            [
                ("STACK_MODE", "TEST".to_string()),
                ("NOTIFY_SINK", format!("file://{}", notifications.display())),
                ("ORDER_RATE_LIMIT", format!("100/{RATE_WINDOW_SECS}s")),
                ("ORDER_LEASE_SECS", "60".into()),
                ("ORDER_STOP_MARGIN_SECS", "1".into()),
                ("ORDER_MAX_RUN_SECS", "3".into()),
                ("ORDER_BATCH_SIZE", "1".into()),
                // An order a 5xx sent back (the realistic profile) is due again within a run.
                ("ORDER_RETRY_SECS", "1".into()),
                ("ORDER_IN_FLIGHT", "4".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let functions =
            Functions::start_binaries(env.clone(), &["order-upload", "order-upload", "ops-api"])
                .await
                .expect("cargo lambda watch and the function binaries");
        let ops_api = functions.http_url("ops-api");
        let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let outbox = DynamoOrderOutbox::new(Table::new(
            dynamo,
            TableNames::new(res.table_prefix.clone()).orders(),
            Default::default(),
        ));
        let operator = tokio::process::Command::new(paths::debug_binary("cbs"))
            .args(["operator-key", "create", "--operator", "e2e-orders"])
            .envs(env.clone())
            .kill_on_drop(true)
            .output()
            .await
            .expect("run cbs (cargo build -p cbs-cli)");
        assert!(
            operator.status.success(),
            "{}",
            String::from_utf8_lossy(&operator.stderr)
        );
        let mut stack = Stack {
            moto,
            res,
            sandbox,
            functions,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            outbox,
            ops_api,
            operator_key: String::from_utf8_lossy(&operator.stdout).trim().to_string(),
            notifications,
            org: String::new(),
            integration: String::new(),
            cbs_env: env,
        };
        stack.onboard().await;
        stack
    }

    async fn sandbox_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(self.sandbox.url(path))
            .bearer_auth(&self.sandbox.partner_key)
            .json(&body)
            .send()
            .await
            .expect("sandbox answers");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> Value {
        let resp = self
            .http
            .request(method, self.sandbox.admin_url(path))
            .send()
            .await
            .expect("sandbox admin answers");
        assert!(
            resp.status().is_success(),
            "admin {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn onboard(&mut self) {
        let org = self
            .sandbox_post("/v1/organisations/", json!({ "name": "Orders" }))
            .await;
        self.org = org["id"].as_str().unwrap().to_string();
        let merchant = self
            .sandbox_post(
                "/v1/merchants/",
                json!({ "organisation_id": self.org, "name": "Orders store",
                        "type": "GENERIC", "external_id": "ext-orders" }),
            )
            .await;
        let integration = self
            .sandbox_post(
                "/v1/integrations/",
                json!({ "organisation_id": self.org, "name": "orders", "type": "CUSTOM_ORDERS",
                        "status": "ENABLED", "merchant_ids": [merchant["id"]] }),
            )
            .await;
        self.integration = integration["id"].as_str().unwrap().to_string();
    }

    fn order(&self, reference: &str) -> Value {
        json!({
            "type": "COMPLETE",
            "organisation_id": self.org,
            "integration_id": self.integration,
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
                "payment_method_reference_id": format!("pi-{reference}"),
                "authorised_at": "2026-02-17T09:59:05Z",
                "payment_method_card_brand": "VISA",
                "payment_method_card_last_4": "4242"
            }]
        })
    }

    async fn enqueue(&self, orders: Vec<Value>) {
        let n = orders.len();
        let report = intake_orders(&self.outbox, orders, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(report.stored.len(), n, "{report:?}");
    }

    async fn invoke(&self) -> (Value, Duration) {
        let started = Instant::now();
        let report = self
            .functions
            .invoke("order-upload", scheduled_event("order-upload"))
            .await
            .unwrap_or_else(|e| panic!("order-upload: {e}"));
        (report, started.elapsed())
    }

    async fn ops(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method,
                format!("{}{}", self.ops_api, path.trim_start_matches('/')),
            )
            .bearer_auth(&self.operator_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("ops api answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The sandbox's orders of our organisation: reference_id -> every order id created for it.
    async fn sandbox_orders(&self) -> HashMap<String, Vec<String>> {
        let state = self.admin(reqwest::Method::GET, "state").await;
        let mut by_reference: HashMap<String, Vec<String>> = HashMap::new();
        for order in state["orders"].as_object().unwrap().values() {
            if order["organisation_id"] == self.org.as_str() {
                by_reference
                    .entry(order["reference_id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(order["id"].as_str().unwrap().to_string());
            }
        }
        by_reference
    }

    fn notifications(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.notifications)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    async fn pending_left(&self) -> usize {
        self.outbox
            .pending(&self.org, None, 500)
            .await
            .unwrap()
            .orders
            .len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_upload_guarantees_over_real_parts() {
    let t0 = Instant::now();
    let stack = Stack::start().await;
    println!("stack up: {:?}", t0.elapsed());
    // Only the upload's own requests from here on.
    stack.admin(reqwest::Method::DELETE, "requests").await;
    a_failed_order_corrected_and_requeued_is_created_once(&stack).await;
    println!("requeue: {:?}", t0.elapsed());
    duplicates_after_a_lost_answer_are_reconciled_across_budgeted_runs(&stack).await;
    println!("duplicates: {:?}", t0.elapsed());
    overlapping_runs_one_works_the_other_names_the_lease_holder(&stack).await;
    println!("overlap: {:?}", t0.elapsed());
    no_window_of_the_runs_exceeded_the_rate_budget(&stack).await;
    println!("total: {:?}", t0.elapsed());
}

async fn a_failed_order_corrected_and_requeued_is_created_once(stack: &Stack) {
    let mut wrong = stack.order("rq-1");
    wrong["integration_id"] = json!("int_doesnotexist");
    stack.enqueue(vec![wrong]).await;
    let (first, _) = stack.invoke().await;
    assert_eq!(first["failed"], 1, "{first}");
    let (status, view) = stack
        .ops(
            reqwest::Method::GET,
            &format!("/api/orders/{}/rq-1", stack.org),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "FAILED", "{view}");
    assert_eq!(view["error_field"], "integration_id", "{view}");
    let told: Vec<Value> = stack
        .notifications()
        .into_iter()
        .filter(|n| n["kind"] == "order.upload_failed")
        .collect();
    assert_eq!(told.len(), 1, "a person is told: {told:?}");
    assert!(told[0]["note"].as_str().unwrap().contains("rq-1"));

    // A correction that changes the reference is refused, naming the field; nothing changes.
    let path = format!("/api/orders/{}/rq-1/requeue", stack.org);
    let (status, err) = stack
        .ops(
            reqwest::Method::POST,
            &path,
            Some(json!({ "order": stack.order("rq-2") })),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "order.reference_id", "{err}");
    // The corrected order goes back to the queue under the same reference.
    let (status, view) = stack
        .ops(
            reqwest::Method::POST,
            &path,
            Some(json!({ "order": stack.order("rq-1") })),
        )
        .await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(
        (view["status"].as_str(), view["attempts"].as_u64()),
        (Some("PENDING"), Some(0))
    );
    let (again, _) = stack.invoke().await;
    assert_eq!(again["created"], 1, "{again}");
    let stored = stack.outbox.get(&stack.org, "rq-1").await.unwrap().unwrap();
    assert_eq!(stored.state, UploadState::Created);
    let at_chargebackstop = stack.sandbox_orders().await;
    assert_eq!(
        at_chargebackstop.get("rq-1").map(Vec::len),
        Some(1),
        "exactly one order: {at_chargebackstop:?}"
    );
    assert_eq!(
        stored.order_id.as_ref(),
        Some(&at_chargebackstop["rq-1"][0])
    );
    // Requeued once, it cannot be requeued again.
    let (status, err) = stack
        .ops(reqwest::Method::POST, &path, Some(json!({})))
        .await;
    assert_eq!(status, 409, "{err}");

    a_failed_order_is_requeued_from_the_command_line(stack).await;
}

/// The same through `cbs orders requeue` (the operator's other way in): a correction that
/// changes the reference is refused naming the field, the corrected file is accepted, the next
/// run creates it once, and a second requeue is refused.
async fn a_failed_order_is_requeued_from_the_command_line(stack: &Stack) {
    let mut wrong = stack.order("rq-cli");
    wrong["integration_id"] = json!("int_doesnotexist");
    stack.enqueue(vec![wrong]).await;
    let (first, _) = stack.invoke().await;
    assert_eq!(first["failed"], 1, "{first}");

    let dir = paths::log_dir().join(format!("{}-requeue", stack.org));
    std::fs::create_dir_all(&dir).unwrap();
    let cbs = |args: Vec<String>| {
        let env = stack.cbs_env.clone();
        async move {
            tokio::process::Command::new(paths::debug_binary("cbs"))
                .args(args)
                .envs(env)
                .kill_on_drop(true)
                .output()
                .await
                .expect("run cbs (cargo build -p cbs-cli)")
        }
    };
    let requeue = |file: Option<&std::path::Path>| {
        let mut args = vec![
            "orders".to_string(),
            "requeue".into(),
            stack.org.clone(),
            "rq-cli".into(),
        ];
        if let Some(file) = file {
            args.extend(["--file".to_string(), file.display().to_string()]);
        }
        args
    };
    let renamed = dir.join("renamed.json");
    std::fs::write(&renamed, stack.order("rq-other").to_string()).unwrap();
    let refused = cbs(requeue(Some(&renamed))).await;
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success(), "a changed reference is refused");
    assert!(said.contains("reference_id"), "names the field: {said}");

    let corrected = dir.join("corrected.json");
    std::fs::write(&corrected, stack.order("rq-cli").to_string()).unwrap();
    let done = cbs(requeue(Some(&corrected))).await;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let (again, _) = stack.invoke().await;
    assert_eq!(again["created"], 1, "{again}");
    let stored = stack
        .outbox
        .get(&stack.org, "rq-cli")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, UploadState::Created);
    assert_eq!(
        stack.sandbox_orders().await.get("rq-cli").map(Vec::len),
        Some(1),
        "created once at ChargebackStop"
    );
    let twice = cbs(requeue(None)).await;
    assert!(!twice.status.success(), "a CREATED order is not requeued");
}

async fn duplicates_after_a_lost_answer_are_reconciled_across_budgeted_runs(stack: &Stack) {
    // A run POSTed these and died before it heard the answer: ChargebackStop has them, our
    // outbox still says PENDING.
    let orders: Vec<Value> = (0..DUPLICATES)
        .map(|i| stack.order(&format!("dup-{i:03}")))
        .collect();
    let created = stack.sandbox_post("/v1/orders/", json!(orders)).await;
    assert_eq!(created["created"], DUPLICATES, "{created}");
    stack.enqueue(orders).await;
    let posts_before = stack.sandbox_orders().await.len();

    let mut runs = Vec::new();
    let mut settled = Vec::new();
    for _ in 0..20 {
        let (report, took) = stack.invoke().await;
        // 3 s of work, then finishing what is in flight against the (slow) emulator.
        assert!(
            took < Duration::from_secs(25),
            "a run stops at its budget: {took:?} {report}"
        );
        assert_eq!(report["created"], 0, "never a second order: {report}");
        runs.push(report);
        let left = stack.pending_left().await;
        settled.push(DUPLICATES - left);
        if left == 0 {
            break;
        }
    }
    println!("duplicates settled after each run: {settled:?}; runs: {runs:?}");
    assert_eq!(settled.last(), Some(&DUPLICATES), "{settled:?}");
    assert!(
        settled.len() > 1,
        "the lookups needed more than one run: {settled:?}"
    );
    assert!(
        settled.windows(2).all(|w| w[1] > w[0]),
        "every run recorded progress: {settled:?}"
    );
    let lookups: u64 = runs.iter().map(|r| r["lookups"].as_u64().unwrap()).sum();
    // One lookup per order, plus one more for each lookup a 5xx or 429 refused (the realistic
    // profile injects those).
    let refused: u64 = runs
        .iter()
        .map(|r| r["server_errors"].as_u64().unwrap() + r["rate_limited"].as_u64().unwrap())
        .sum();
    assert!(
        (DUPLICATES as u64..=DUPLICATES as u64 + refused).contains(&lookups),
        "one lookup per order ({lookups} for {DUPLICATES}, {refused} refused): {runs:?}"
    );
    // Each order was POSTed by the runs exactly once: RECONCILE is never sent again. A POST
    // refused with a 429 or a 5xx (the realistic profile injects those) is sent again, so only
    // the answered ones count.
    let mut posted: HashMap<String, usize> = HashMap::new();
    for r in stack
        .admin(reqwest::Method::GET, "requests?method=POST&path=/v1/orders")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let status = r["status"].as_u64().unwrap_or(0);
            status != 429 && status < 500
        })
    {
        for o in r["body"].as_array().into_iter().flatten() {
            if let Some(reference) = o["reference_id"].as_str() {
                *posted.entry(reference.to_string()).or_default() += 1;
            }
        }
    }
    for i in 0..DUPLICATES {
        let reference = format!("dup-{i:03}");
        // Once by the test (the answer that was lost), once by the upload.
        assert_eq!(posted.get(&reference), Some(&2), "{reference}");
    }
    let at_chargebackstop = stack.sandbox_orders().await;
    assert_eq!(at_chargebackstop.len(), posts_before, "no new order");
    for i in 0..DUPLICATES {
        let reference = format!("dup-{i:03}");
        let ids = &at_chargebackstop[&reference];
        assert_eq!(ids.len(), 1, "{reference}: {ids:?}");
        let ours = stack
            .outbox
            .get(&stack.org, &reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ours.state, UploadState::Duplicate, "{reference}");
        assert_eq!(ours.order_id.as_ref(), Some(&ids[0]), "{reference}");
    }
}

async fn overlapping_runs_one_works_the_other_names_the_lease_holder(stack: &Stack) {
    let orders: Vec<Value> = (0..40)
        .map(|i| stack.order(&format!("ov-{i:03}")))
        .collect();
    stack.sandbox_post("/v1/orders/", json!(orders)).await;
    stack.enqueue(orders).await;
    let ((a, a_took), (b, b_took)) = tokio::join!(stack.invoke(), stack.invoke());
    println!("overlapping runs: {a} in {a_took:?}; {b} in {b_took:?}");
    let (worked, skipped, skipped_took) = match (a.get("lease_held_by"), b.get("lease_held_by")) {
        (None, Some(_)) => (a, b, b_took),
        (Some(_), None) => (b, a, a_took),
        _ => panic!("exactly one run must find the lease held: {a} / {b}"),
    };
    let holder = skipped["lease_held_by"]["owner"].as_str().unwrap();
    assert!(holder.starts_with("order-upload/"), "{skipped}");
    assert_eq!(skipped["requests"], 0, "{skipped}");
    assert!(
        skipped_took < Duration::from_secs(2),
        "the second run exits at once: {skipped_took:?}"
    );
    assert!(worked["duplicate"].as_u64().unwrap() > 0, "{worked}");
    // The rest goes out in later runs, one at a time.
    for _ in 0..15 {
        if stack.pending_left().await == 0 {
            break;
        }
        stack.invoke().await;
    }
    assert_eq!(stack.pending_left().await, 0);
}

/// Every request the runs sent, as the sandbox received them: within any 10 s window at most
/// our budget per endpoint (a method and a path: the creates' `POST /v1/orders/` and the
/// DUPLICATE_ORDER lookups' `GET /v1/orders/` have a pool each, `Endpoint::OrderLookup`), and
/// never a 429 of the real rate limit.
async fn no_window_of_the_runs_exceeded_the_rate_budget(stack: &Stack) {
    let log = stack
        .admin(reqwest::Method::GET, "requests?path=/v1/orders")
        .await;
    let mut times: std::collections::BTreeMap<String, Vec<chrono::DateTime<chrono::Utc>>> =
        Default::default();
    let mut rate_limited = 0;
    for r in log.as_array().unwrap() {
        // The real rate limit only: the realistic profile's injected 429s are not ours.
        if r["status"] == 429 && r["injected"] != true {
            rate_limited += 1;
        }
        times
            .entry(r["method"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(r["at"].as_str().unwrap().parse().unwrap());
    }
    // The test's own POSTs (the "lost answers") are in the log too: they are not the runs'.
    let ours = times.values().map(Vec::len).sum::<usize>() - 2;
    let window = chrono::Duration::seconds(RATE_WINDOW_SECS as i64);
    let mut busiest = std::collections::BTreeMap::new();
    for (method, times) in &mut times {
        times.sort();
        let most = (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0);
        busiest.insert(method.clone(), most);
    }
    println!(
        "{ours} requests to /v1/orders by the runs; busiest {RATE_WINDOW_SECS} s window per method: {busiest:?}; 429: {rate_limited}"
    );
    assert!(ours > BUDGET, "enough traffic to fill a window: {ours}");
    // +2: the two test POSTs may fall into the busiest window.
    for (method, most) in &busiest {
        assert!(
            *most <= BUDGET + 2,
            "a {RATE_WINDOW_SECS} s window held {most} {method} requests (budget {BUDGET})"
        );
    }
    assert_eq!(rate_limited, 0);
}
