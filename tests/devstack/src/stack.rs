//! The whole platform on one machine, wired as in the cloud: ChargebackStop (the sandbox) signs
//! webhooks to the edge Worker, which sends them to the edge queue (moto, created from
//! infra/template.yaml); the bridge feeds the queue to `process-events` like an event source
//! mapping; the scheduler fires `order-upload` and `deadline-sweep` like the EventBridge
//! schedules; the ops API serves operators. `bin/dev` and the whole-flow tests both start this.
//!
//! Dropping a [`Stack`] stops every part it started (the bridge and scheduler first, so nothing
//! calls a part that is already gone).

use crate::worker::{Worker, WorkerOptions};
use crate::{paths, resources, wait};
use crate::{Bridge, BridgeOptions, Functions, Moto, QueueOptions, Resources, Sandbox};
use crate::{SandboxOptions, Scheduler};
use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the Worker runs: the built bundle (tests) or `wrangler dev`, which builds first (bin/dev).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    Built,
    WranglerDev,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// TABLE_PREFIX and stack name; a unique one when unset.
    pub table_prefix: Option<String>,
    pub worker: WorkerMode,
    /// Edge queue overrides (visibility timeout, maxReceiveCount); the template's when unset.
    pub queue: QueueOptions,
    /// Sandbox time factor for its webhook retry schedule (0.01: the 1-minute retry is 0.6 s).
    pub sandbox_time_factor: f64,
    /// Scheduled functions and how often to fire them; none for tests, which invoke directly.
    pub schedule: Vec<(String, Duration)>,
    /// Extra environment for every function (e.g. `DEFAULT_ALERT_POLICY`).
    pub function_env: Vec<(String, String)>,
    /// The emulator's endpoint as the Worker and the functions see it (e.g. a proxy that can cut
    /// them off, `bin/chaos`); moto's own endpoint when unset.
    pub aws_endpoint_via: Option<AwsEndpointVia>,
    /// Extra bindings for the Worker (e.g. `SIGNATURE_TOLERANCE_SECS`).
    pub worker_vars: Vec<(String, String)>,
}

/// A part of the stack that calls the AWS emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsCaller {
    /// The edge Worker (SQS SendMessage).
    Worker,
    /// The Lambda functions (DynamoDB, SQS, SNS).
    Functions,
}

/// Given the caller and moto's endpoint, the endpoint that caller uses.
#[derive(Clone)]
pub struct AwsEndpointVia(pub Arc<dyn Fn(AwsCaller, &str) -> String + Send + Sync>);

impl std::fmt::Debug for AwsEndpointVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsEndpointVia(..)")
    }
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            table_prefix: None,
            worker: WorkerMode::Built,
            queue: QueueOptions::default(),
            sandbox_time_factor: 0.01,
            schedule: Vec::new(),
            function_env: Vec::new(),
            aws_endpoint_via: None,
            worker_vars: Vec::new(),
        }
    }
}

/// The operator the stack mints a key for.
pub const OPERATOR: &str = "devstack-operator";

pub struct Stack {
    // Field order is drop order: the pollers go first, the emulator last.
    pub scheduler: Option<Scheduler>,
    pub bridge: Bridge,
    pub functions: Functions,
    pub worker: Worker,
    pub sandbox: Sandbox,
    pub resources: Resources,
    pub moto: Moto,
    /// `Authorization: Bearer` key for the ops API.
    pub operator_key: Secret,
    pub webhook_secret: Secret,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub http: reqwest::Client,
    /// How long [`Stack::start`] took.
    pub startup: Duration,
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let moto = Moto::start().await.context("start moto")?;
        let prefix = opts
            .table_prefix
            .clone()
            .unwrap_or_else(|| resources::unique_prefix("cbs"));
        let res = resources::create_with(&moto.endpoint, &prefix, &opts.queue)
            .await
            .context("create the resources of infra/template.yaml")?;
        tracing::info!(prefix = %res.table_prefix, "resources created");

        let aws_endpoint = |caller: AwsCaller| match &opts.aws_endpoint_via {
            Some(via) => (via.0)(caller, &moto.endpoint),
            None => moto.endpoint.clone(),
        };
        let webhook_secret = Secret::new(format!("whsec_local_{}", uuid::Uuid::new_v4().simple()));
        // The operators' record copy, as in the cloud (`cbs events replay --refused` reads it).
        resources::put_secret(
            &moto.endpoint,
            &resources::webhook_secret_name(&res.table_prefix),
            webhook_secret.expose(),
        )
        .await
        .context("keep the webhook secret in Secrets Manager")?;
        let mut worker_opts = WorkerOptions::new(
            &aws_endpoint(AwsCaller::Worker),
            &res.edge_queue_url,
            webhook_secret.expose(),
        );
        worker_opts.extra_vars = opts.worker_vars.clone();
        let worker = match opts.worker {
            WorkerMode::Built => Worker::start_built(&worker_opts).await,
            WorkerMode::WranglerDev => Worker::start_wrangler_dev(&worker_opts).await,
        }
        .context("start the edge Worker")?;
        tracing::info!(url = %worker.base_url, "worker up");

        let sandbox = Sandbox::start(SandboxOptions {
            webhook_urls: vec![worker.webhook_url()],
            webhook_secret: Some(webhook_secret.expose().to_string()),
            time_factor: Some(opts.sandbox_time_factor),
            ..Default::default()
        })
        .await
        .context("start the sandbox")?;
        tracing::info!(url = %sandbox.base_url, "sandbox up");

        let mut env = crate::moto::aws_env(&aws_endpoint(AwsCaller::Functions));
        env.extend(res.env());
        env.extend(sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        env.extend(opts.function_env.clone());
        let functions = Functions::start_binaries(env, &crate::functions::ALL)
            .await
            .context("start the functions")?;
        tracing::info!(url = %functions.base_url, "functions up");

        let config = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let bridge = Bridge::start(
            sqs.clone(),
            functions.invoker.clone(),
            BridgeOptions::new(&res.edge_queue_url, &res.edge_queue_arn, "process-events"),
        );
        let scheduler = (!opts.schedule.is_empty())
            .then(|| Scheduler::start(functions.invoker.clone(), opts.schedule.clone()));

        let mut stack = Self {
            scheduler,
            bridge,
            functions,
            worker,
            sandbox,
            resources: res,
            moto,
            operator_key: Secret::new(""),
            webhook_secret,
            sqs,
            dynamo,
            http: reqwest::Client::builder()
                // Generous: a function's first request waits for `cargo run` to start it.
                .timeout(Duration::from_secs(300))
                .build()?,
            startup: Duration::ZERO,
        };
        stack.operator_key = stack.mint_operator_key(OPERATOR).await?;
        // Start the HTTP function now, so the first operator request does not wait for it.
        let (status, body) = stack.ops(Method::GET, "api/me", None).await?;
        anyhow::ensure!(status.is_success(), "ops API /api/me: {status} {body}");
        stack.startup = started.elapsed();
        Ok(stack)
    }

    /// The environment of this TEST stack, as the functions and the `cbs` command line see it.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.env();
        env.extend(self.resources.env());
        env.extend(self.sandbox.env());
        env.push(("STACK_MODE".into(), "TEST".into()));
        env.push((
            "WEBHOOK_SECRET_ID".into(),
            resources::webhook_secret_name(&self.resources.table_prefix),
        ));
        env
    }

    /// `cbs operator-key create --operator <name>`: the real command line, against these tables.
    pub async fn mint_operator_key(&self, operator: &str) -> anyhow::Result<Secret> {
        let out = self
            .cbs(&["operator-key", "create", "--operator", operator])
            .await?;
        let key = out.trim().to_string();
        anyhow::ensure!(key.starts_with("cbsop_"), "unexpected operator key output");
        Ok(Secret::new(key))
    }

    /// Runs the `cbs` binary with this stack's environment; its stdout.
    pub async fn cbs(&self, args: &[&str]) -> anyhow::Result<String> {
        let binary = paths::debug_binary("cbs");
        anyhow::ensure!(
            binary.is_file(),
            "{} is missing: run `cargo build -p cbs-cli`",
            binary.display()
        );
        let out = tokio::process::Command::new(binary)
            .args(args)
            .envs(self.env())
            .kill_on_drop(true)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "cbs {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The ops API's base URL (ends in `/`); the operations page is served at it.
    pub fn ops_url(&self) -> String {
        self.functions.http_url("ops-api")
    }

    /// A request to the ops API as the stack's operator.
    pub async fn ops(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{}", self.ops_url(), path.trim_start_matches('/'));
        let req = self
            .http
            .request(method, url)
            .bearer_auth(self.operator_key.expose());
        send(req, body).await
    }

    /// A request to the ChargebackStop API (the sandbox) with the partner key.
    pub async fn cbs_api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let req = self
            .http
            .request(method, self.sandbox.url(path))
            .bearer_auth(&self.sandbox.partner_key);
        send(req, body).await
    }

    /// Every delivery attempt ChargebackStop (the sandbox) made of one event, oldest first
    /// (`GET /_sandbox/deliveries?event_id=`).
    pub async fn sandbox_deliveries(&self, event_id: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("deliveries?event_id={event_id}");
        let (status, value) = self.sandbox_admin(Method::GET, &path, None).await?;
        anyhow::ensure!(status.is_success(), "/_sandbox/{path}: {status} {value}");
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// A request to the sandbox's admin API (`/_sandbox/<path>`).
    pub async fn sandbox_admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let req = self.http.request(method, self.sandbox.admin_url(path));
        send(req, body).await
    }

    /// [`sandbox_admin`](Self::sandbox_admin) for tests: the answer of a call that must
    /// succeed; panics naming the path, the status and the answer otherwise.
    pub async fn sandbox_admin_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (code, value) = self
            .sandbox_admin(method, path, body)
            .await
            .expect("sandbox admin API");
        assert!(code.is_success(), "/_sandbox/{path}: {code} {value}");
        value
    }

    /// The ids of the events ChargebackStop emitted about `object_id`, in the sandbox's order.
    pub async fn sandbox_events_about(&self, object_id: &str) -> Vec<String> {
        let events = self.sandbox_admin_ok(Method::GET, "events", None).await;
        events
            .as_array()
            .expect("the sandbox's events are a list")
            .iter()
            .filter(|e| e["data"]["object"]["id"] == object_id)
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect()
    }

    /// Onboards a TEST customer through the ops API (`POST /api/onboarding`): organisation,
    /// merchant, integration, an Ethoca and a Verifi RDR enrolment, both simulated ENABLED.
    pub async fn onboard(&self, customer_id: &str) -> anyhow::Result<Customer> {
        self.onboard_spec(customer_spec(customer_id)).await
    }

    /// Onboards the customer `spec` describes (e.g. [`customer_spec`] with a `decision_policy`).
    pub async fn onboard_spec(&self, spec: Value) -> anyhow::Result<Customer> {
        // A 502 says ChargebackStop failed a step and progress is saved: run it again, as the
        // answer tells an operator to (the realistic profile injects such failures).
        let mut attempt = 0;
        let (status, record) = loop {
            let (status, record) = self
                .ops(Method::POST, "api/onboarding", Some(spec.clone()))
                .await?;
            attempt += 1;
            if status == StatusCode::BAD_GATEWAY && attempt < 5 {
                tracing::warn!(%record, "onboarding stopped at a ChargebackStop failure; resuming");
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                continue;
            }
            break (status, record);
        };
        anyhow::ensure!(status.is_success(), "onboarding: {status} {record}");
        Customer::from_record(&record)
    }

    /// Every item of `<prefix>-<table>` as JSON (moto tables are small); binary attributes
    /// (the archive's bodies) as `{"base64": "..."}`, which JSON has no other form for.
    pub async fn scan(&self, table: &str) -> anyhow::Result<Vec<Value>> {
        let name = format!("{}-{table}", self.resources.table_prefix);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamo
                .scan()
                .table_name(&name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("scan {name}"))?;
            for item in out.items.unwrap_or_default() {
                let item: std::collections::HashMap<_, _> = item
                    .into_iter()
                    .map(|(k, v)| (k, binary_as_base64(v)))
                    .collect();
                items.push(serde_dynamo::from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The stored alert (`<prefix>-alerts`), if any.
    pub async fn stored_alert(&self, alert_id: &str) -> anyhow::Result<Option<Value>> {
        self.get_item("alerts", "alert_id", alert_id).await
    }

    pub async fn stored_enrolment(&self, enrolment_id: &str) -> anyhow::Result<Option<Value>> {
        self.get_item("enrolments", "enrolment_id", enrolment_id)
            .await
    }

    pub async fn stored_event(&self, event_id: &str) -> anyhow::Result<Option<Value>> {
        self.get_item("events", "event_id", event_id).await
    }

    async fn get_item(&self, table: &str, key: &str, id: &str) -> anyhow::Result<Option<Value>> {
        let out = self
            .dynamo
            .get_item()
            .table_name(format!("{}-{table}", self.resources.table_prefix))
            .key(
                key,
                aws_sdk_dynamodb::types::AttributeValue::S(id.to_string()),
            )
            .consistent_read(true)
            .send()
            .await?;
        Ok(match out.item {
            Some(item) => Some(serde_dynamo::from_item(item)?),
            None => None,
        })
    }

    /// Polls `probe` until it returns `Some` (generous: two cores, other builds running).
    pub async fn eventually<T, F, Fut>(&self, what: &str, probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        wait::until(what, Duration::from_secs(180), probe).await
    }

    /// Waits until the stored alert satisfies `pred`; returns it.
    pub async fn wait_stored_alert(
        &self,
        alert_id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let pred = &pred;
        self.eventually(what, || async move {
            self.stored_alert(alert_id)
                .await
                .ok()
                .flatten()
                .filter(|a| pred(a))
        })
        .await
    }

    /// Waits until the stored enrolment satisfies `pred`; returns it.
    pub async fn wait_stored_enrolment(
        &self,
        enrolment_id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let pred = &pred;
        self.eventually(what, || async move {
            self.stored_enrolment(enrolment_id)
                .await
                .ok()
                .flatten()
                .filter(|e| pred(e))
        })
        .await
    }

    /// The sandbox's view of an alert (`GET /v1/alerts/{id}`).
    pub async fn cbs_alert(&self, alert_id: &str) -> anyhow::Result<Value> {
        let (status, alert) = self
            .cbs_api(Method::GET, &format!("/v1/alerts/{alert_id}"), None)
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "GET alert {alert_id}: {status} {alert}"
        );
        Ok(alert)
    }

    /// `POST /v1/simulate/alerts` for one of the customer's enrolments; the new alert.
    pub async fn simulate_alert(
        &self,
        organisation_id: &str,
        enrolment_id: &str,
        amount_in_cents: i64,
    ) -> anyhow::Result<Value> {
        // A 429, or the realistic profile's 503, is answered before the handler runs (no alert
        // was raised): sent again a few times, so set-up holds under the `realistic` profile.
        let mut attempt = 0u64;
        let (status, alert) = loop {
            let (status, alert) = self
                .cbs_api(
                    Method::POST,
                    "/v1/simulate/alerts",
                    Some(serde_json::json!({
                        "organisation_id": organisation_id,
                        "enrolment_id": enrolment_id,
                        "amount_in_cents": amount_in_cents,
                        "currency_code": "USD",
                    })),
                )
                .await?;
            attempt += 1;
            let refused = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE;
            if refused && attempt < 6 {
                tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                continue;
            }
            break (status, alert);
        };
        anyhow::ensure!(status.is_success(), "simulate alert: {status} {alert}");
        Ok(alert)
    }

    /// Messages still on the edge queue (visible or in flight) and on its dead-letter queue.
    pub async fn queue_depths(&self) -> anyhow::Result<(u64, u64)> {
        let depth = |url: String| async move {
            let out = self
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await?;
            let attrs = out.attributes.unwrap_or_default();
            let n = |name: aws_sdk_sqs::types::QueueAttributeName| -> u64 {
                attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0)
            };
            use aws_sdk_sqs::types::QueueAttributeName as A;
            anyhow::Ok(
                n(A::ApproximateNumberOfMessages)
                    + n(A::ApproximateNumberOfMessagesNotVisible)
                    + n(A::ApproximateNumberOfMessagesDelayed),
            )
        };
        Ok((
            depth(self.resources.edge_queue_url.clone()).await?,
            depth(self.resources.edge_dlq_url.clone()).await?,
        ))
    }

    /// Where each part listens, for a person.
    pub fn describe(&self) -> String {
        let r = &self.resources;
        format!(
            "AWS emulator (moto)      {moto}\n\
             tables                   {prefix}-events, -archive, -alerts, -enrolments, -orders, -customers, -operators\n\
             edge queue               {queue}\n\
             dead-letter queue        {dlq}\n\
             ChargebackStop sandbox   {sandbox}  (API /v1, admin /_sandbox)\n\
             edge Worker (workerd)    {worker}/webhooks/chargebackstop\n\
             functions (cargo lambda) {functions}  (invoke API /2015-03-31/functions/<name>/invocations)\n\
             operations page          {ops}\n\
             logs                     {logs}",
            moto = self.moto.endpoint,
            prefix = r.table_prefix,
            queue = r.edge_queue_url,
            dlq = r.edge_dlq_url,
            sandbox = self.sandbox.base_url,
            worker = self.worker.base_url,
            functions = self.functions.base_url,
            ops = self.ops_url(),
            logs = paths::log_dir().display(),
        )
    }
}

async fn send(
    req: reqwest::RequestBuilder,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// An onboarded customer: the ids ChargebackStop returned.
#[derive(Debug, Clone)]
pub struct Customer {
    pub customer_id: String,
    pub organisation_id: String,
    pub merchant_id: String,
    pub ethoca_enrolment_id: String,
    pub rdr_enrolment_id: String,
}

impl Customer {
    fn from_record(record: &Value) -> anyhow::Result<Self> {
        let s = |v: &Value| v.as_str().map(str::to_string);
        let enrolment = |key: &str| {
            s(&record["enrolments"][key]["enrolment_id"])
                .with_context(|| format!("no enrolment {key} in {record}"))
        };
        Ok(Self {
            customer_id: s(&record["customer_id"]).context("customer_id")?,
            organisation_id: s(&record["organisation_id"])
                .with_context(|| format!("no organisation_id in {record}"))?,
            merchant_id: record["merchants"]
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(s)
                .with_context(|| format!("no merchant in {record}"))?,
            ethoca_enrolment_id: enrolment("ETHOCA_ALERT#1")?,
            rdr_enrolment_id: enrolment("VERIFI_RDR#1")?,
        })
    }
}

/// A TEST customer with one merchant, an Ethoca and a Verifi RDR enrolment.
pub fn customer_spec(customer_id: &str) -> Value {
    let upper = customer_id.to_uppercase().replace('-', "");
    serde_json::json!({
        "customer_id": customer_id,
        "organisation": { "name": format!("Acme {customer_id}") },
        "merchants": [
            { "name": "Acme web shop", "external_id": format!("mid-{customer_id}") }
        ],
        "enrolments": [
            {
                "type": "ETHOCA_ALERT",
                "ethoca_alert": { "descriptors": [
                    { "descriptor": format!("ACME*{upper}"), "match_type": "STARTS_WITH" }
                ]}
            },
            {
                "type": "VERIFI_RDR",
                "verifi_rdr": { "bin": "411111", "caid": format!("CAID{upper}") }
            }
        ]
    })
}

/// `B` and `BS` values as maps holding their base64 text, at any depth.
fn binary_as_base64(
    v: aws_sdk_dynamodb::types::AttributeValue,
) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use base64::Engine;
    let text = |b: &aws_sdk_dynamodb::primitives::Blob| {
        A::M(std::collections::HashMap::from([(
            "base64".to_string(),
            A::S(base64::engine::general_purpose::STANDARD.encode(b.as_ref())),
        )]))
    };
    match v {
        A::B(b) => text(&b),
        A::Bs(bs) => A::L(bs.iter().map(text).collect()),
        A::L(items) => A::L(items.into_iter().map(binary_as_base64).collect()),
        A::M(map) => A::M(
            map.into_iter()
                .map(|(k, v)| (k, binary_as_base64(v)))
                .collect(),
        ),
        other => other,
    }
}
