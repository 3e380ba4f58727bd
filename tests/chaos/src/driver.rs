//! Plays a plan against the running stack: ChargebackStop's side (simulated alerts, enrolment
//! changes, webhook faults, API faults), the operators' side (actions and order imports through
//! the ops API) and the platform's faults (gates, killed and overlapping runs).

use crate::plan::{Planned, Step};
use crate::stack::ChaosStack;
use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod faults;

/// An onboarded organisation.
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub customer_id: String,
    pub organisation_id: String,
    pub integration_id: String,
    pub ethoca_enrolment_id: String,
    pub rdr_enrolment_id: String,
}

/// What happened, for the report (`report.json`'s `timeline`).
#[derive(Debug, Clone, Serialize)]
pub struct Happened {
    pub at_secs: f64,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct RunState {
    pub timeline: Vec<Happened>,
    /// (alert id, deadline) of every Ethoca alert simulated.
    pub ethoca: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    pub rdr: Vec<String>,
    /// Orders the intake accepted (stored or already queued).
    pub queued_orders: Vec<(String, String)>,
    pub operator_actions: Vec<(String, u16)>,
    pub driver_errors: Vec<String>,
}

pub struct Driver {
    pub chaos: Arc<ChaosStack>,
    pub orgs: Vec<Org>,
    pub state: Arc<Mutex<RunState>>,
    pub started: Instant,
    pub seed: u64,
}

/// The decision policies the organisations are onboarded with: amount rules act at once, the
/// middle band is left to a person (an operator, or the sweep at the cutoff).
fn policy(i: usize) -> Value {
    match i % 3 {
        0 => json!({"name": "chaos-refund-small", "refund_at_or_below_cents": 2500,
                    "accept_dispute_above_cents": 50000, "cutoff_action": "ACCEPT_DISPUTE"}),
        1 => json!({"name": "chaos-person-decides", "cutoff_action": "REFUND",
                    "note": "Refunded at the cutoff"}),
        _ => json!({"name": "chaos-refund-tiny", "refund_at_or_below_cents": 1000,
                    "refund_action": "REFUND"}),
    }
}

impl Driver {
    pub fn log(&self, what: &str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!(what, %detail, "chaos");
        self.state
            .lock()
            .expect("run state")
            .timeline
            .push(Happened {
                at_secs: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                what: what.into(),
                detail,
            });
    }

    pub(crate) fn error(&self, what: &str, e: impl std::fmt::Display) {
        let text = format!("{what}: {e}");
        tracing::warn!(%text, "chaos driver step failed");
        self.state
            .lock()
            .expect("run state")
            .driver_errors
            .push(text);
    }

    /// Onboards `n` organisations through the ops API (faults off).
    pub async fn onboard(chaos: &ChaosStack, seed: u64, n: usize) -> anyhow::Result<Vec<Org>> {
        let mut orgs = Vec::new();
        for i in 0..n {
            let customer_id = format!("chaos-{seed}-{i}");
            let mut spec = devstack::stack::customer_spec(&customer_id);
            spec["decision_policy"] = policy(i);
            let (status, record) = chaos
                .stack
                .ops(Method::POST, "api/onboarding", Some(spec))
                .await?;
            anyhow::ensure!(status.is_success(), "onboarding: {status} {record}");
            let s = |v: &Value| v.as_str().map(str::to_string);
            orgs.push(Org {
                customer_id,
                organisation_id: s(&record["organisation_id"]).context("organisation_id")?,
                integration_id: s(&record["integration_id"]).context("integration_id")?,
                ethoca_enrolment_id: s(&record["enrolments"]["ETHOCA_ALERT#1"]["enrolment_id"])
                    .context("ethoca enrolment")?,
                rdr_enrolment_id: s(&record["enrolments"]["VERIFI_RDR#1"]["enrolment_id"])
                    .context("rdr enrolment")?,
            });
        }
        Ok(orgs)
    }

    /// Runs every step at its time (each in its own task, so a slow one delays nothing) and
    /// waits (bounded) for the faults to end. Returns the workload tasks still running
    /// (operator actions wait for their moment, some near the cutoff): keep them while settling.
    pub async fn play(self: &Arc<Self>, plan: Vec<Planned>) -> tokio::task::JoinSet<()> {
        let mut faults = tokio::task::JoinSet::new();
        let mut workload = tokio::task::JoinSet::new();
        for planned in plan {
            let due = self.started + planned.at();
            tokio::time::sleep_until(due.into()).await;
            let me = self.clone();
            let set = match planned.step {
                Step::Fault(_) => &mut faults,
                _ => &mut workload,
            };
            set.spawn(async move { me.step(planned.step).await });
        }
        let _ = tokio::time::timeout(Duration::from_secs(180), async {
            while faults.join_next().await.is_some() {}
        })
        .await;
        faults.abort_all();
        workload
    }

    async fn step(self: Arc<Self>, step: Step) {
        match step {
            Step::EthocaAlert {
                org,
                amount,
                deadline_secs,
                operator_after,
                operator_action,
            } => {
                self.ethoca_alert(org, amount, deadline_secs, operator_after, operator_action)
                    .await
            }
            Step::RdrAlert { org, amount } => self.rdr_alert(org, amount).await,
            Step::EnrolmentChange {
                org,
                status,
                back_after,
            } => self.enrolment_change(org, status, back_after).await,
            Step::ImportOrders {
                org,
                batch,
                count,
                bad_integration,
                invalid_first,
                resend,
            } => {
                self.import_orders(org, batch, count, bad_integration, invalid_first, resend)
                    .await
            }
            Step::Fault(f) => self.fault(f).await,
        }
    }

    /// A partner-API request as ChargebackStop's own tooling (simulations) makes it: retried
    /// while the fault knobs refuse it (a 5xx or 429 from the knobs happens before anything is
    /// done, so a retry creates nothing twice).
    async fn cbs_api_retried(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut last = None;
        for attempt in 0..30u32 {
            match self
                .chaos
                .stack
                .cbs_api(method.clone(), path, Some(body.clone()))
                .await
            {
                Ok((s, v)) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    last = Some(format!("{s} {v}"));
                }
                Ok(answer) => return Ok(answer),
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(500 + 250 * attempt.min(8) as u64)).await;
        }
        anyhow::bail!(
            "{method} {path}: still refused: {}",
            last.unwrap_or_default()
        )
    }

    async fn ethoca_alert(
        self: Arc<Self>,
        org: usize,
        amount: i64,
        deadline_secs: u64,
        operator_after: Option<u64>,
        operator_action: &'static str,
    ) {
        let o = &self.orgs[org % self.orgs.len()];
        let deadline = chrono::Utc::now() + chrono::Duration::seconds(deadline_secs as i64);
        let body = json!({
            "organisation_id": o.organisation_id,
            "enrolment_id": o.ethoca_enrolment_id,
            "amount_in_cents": amount,
            "currency_code": "USD",
            "action_required_deadline": deadline.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let alert = match self
            .cbs_api_retried(Method::POST, "/v1/simulate/alerts", body)
            .await
        {
            Ok((s, alert)) if s.is_success() => alert,
            Ok((s, v)) => return self.error("simulate ethoca alert", format!("{s} {v}")),
            Err(e) => return self.error("simulate ethoca alert", e),
        };
        let Some(id) = alert["id"].as_str().map(str::to_string) else {
            return self.error("simulate ethoca alert", "no id");
        };
        let actual = alert["action_required_deadline"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(deadline);
        self.state
            .lock()
            .expect("run state")
            .ethoca
            .push((id.clone(), actual));
        self.log(
            "ethoca_alert",
            format!("{id} org {org} amount {amount} deadline in {deadline_secs}s"),
        );
        if let Some(after) = operator_after {
            tokio::time::sleep(Duration::from_secs(after)).await;
            let result = self
                .chaos
                .stack
                .ops(
                    Method::POST,
                    &format!("api/alerts/{id}/action"),
                    Some(json!({"action": operator_action, "note": "chaos operator"})),
                )
                .await;
            match result {
                Ok((s, v)) => {
                    self.log(
                        "operator_action",
                        format!("{id} {operator_action}: {s} {}", short(&v)),
                    );
                    self.state
                        .lock()
                        .expect("run state")
                        .operator_actions
                        .push((id, s.as_u16()));
                }
                Err(e) => self.error("operator action", e),
            }
        }
    }

    async fn rdr_alert(self: Arc<Self>, org: usize, amount: i64) {
        let o = &self.orgs[org % self.orgs.len()];
        let body = json!({
            "organisation_id": o.organisation_id,
            "enrolment_id": o.rdr_enrolment_id,
            "amount_in_cents": amount,
            "currency_code": "USD",
        });
        match self
            .cbs_api_retried(Method::POST, "/v1/simulate/alerts", body)
            .await
        {
            Ok((s, alert)) if s.is_success() => {
                let id = alert["id"].as_str().unwrap_or("?").to_string();
                self.log("rdr_alert", format!("{id} org {org}"));
                self.state.lock().expect("run state").rdr.push(id);
            }
            // The enrolment may be mid-change (not ENABLED): ChargebackStop refuses, fine.
            Ok((s, v)) => self.log("rdr_alert_refused", format!("{s} {}", short(&v))),
            Err(e) => self.error("simulate rdr alert", e),
        }
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (s, v) = self.chaos.stack.sandbox_admin(method, path, body).await?;
        anyhow::ensure!(s.is_success(), "/_sandbox/{path}: {s} {v}");
        Ok(v)
    }

    async fn enrolment_change(self: Arc<Self>, org: usize, status: &'static str, back_after: u64) {
        let o = &self.orgs[org % self.orgs.len()];
        let path = format!("enrolments/{}", o.rdr_enrolment_id);
        let note = (status == "ACTION_REQUIRED").then_some("Upload the processor letter");
        let body = match note {
            Some(n) => json!({"status": status, "note": n}),
            None => json!({"status": status}),
        };
        if let Err(e) = self.admin(Method::PATCH, &path, Some(body)).await {
            return self.error("enrolment change", e);
        }
        self.log(
            "enrolment_change",
            format!("{} -> {status}", o.rdr_enrolment_id),
        );
        tokio::time::sleep(Duration::from_secs(back_after)).await;
        match self
            .admin(
                Method::PATCH,
                &path,
                Some(json!({"status": "ENABLED", "note": null})),
            )
            .await
        {
            Ok(_) => self.log(
                "enrolment_change",
                format!("{} -> ENABLED", o.rdr_enrolment_id),
            ),
            Err(e) => self.error("enrolment change back", e),
        }
    }

    fn order(&self, o: &Org, reference: &str, integration: &str) -> Value {
        json!({
            "type": "COMPLETE",
            "organisation_id": o.organisation_id,
            "integration_id": integration,
            "reference_id": reference,
            "order_datetime": "2026-11-20T09:59:00Z",
            "order_number": format!("CH-{reference}"),
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
                "authorised_at": "2026-11-20T09:59:05Z",
                "payment_method_card_brand": "VISA",
                "payment_method_card_last_4": "4242"
            }]
        })
    }

    /// `POST /api/orders`, retried while the ops API cannot answer (an operator retries an
    /// import that failed with a 5xx; the intake is idempotent by reference_id).
    async fn intake(&self, orders: &Value) -> anyhow::Result<(StatusCode, Value)> {
        let mut last = String::new();
        for attempt in 0..20u32 {
            match self
                .chaos
                .stack
                .ops(Method::POST, "api/orders", Some(orders.clone()))
                .await
            {
                Ok((s, v)) if s.is_server_error() => last = format!("{s} {}", short(&v)),
                Ok(answer) => return Ok(answer),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_secs(2 + attempt.min(5) as u64)).await;
        }
        anyhow::bail!("order intake still failing: {last}")
    }

    async fn import_orders(
        self: Arc<Self>,
        org: usize,
        batch: usize,
        count: usize,
        bad_integration: usize,
        invalid_first: bool,
        resend: bool,
    ) {
        let o = &self.orgs[org % self.orgs.len()];
        let orders: Vec<Value> = (0..count)
            .map(|i| {
                let reference = format!("s{}-b{batch}-o{i}", self.seed);
                let integration = if i < bad_integration {
                    "intg_notknowntochargebackstop".to_string()
                } else {
                    o.integration_id.clone()
                };
                self.order(o, &reference, &integration)
            })
            .collect();
        if invalid_first {
            let mut broken = orders.clone();
            if let Some(obj) = broken.last_mut().and_then(Value::as_object_mut) {
                obj.remove("order_number");
            }
            match self.intake(&Value::Array(broken)).await {
                Ok((s, v)) if s.is_client_error() => self.log(
                    "orders_refused_whole",
                    format!("batch {batch}: {s} {}", short(&v)),
                ),
                Ok((s, v)) => {
                    return self.error(
                        "an import with a missing field",
                        format!("was not refused: {s} {}", short(&v)),
                    )
                }
                Err(e) => return self.error("order intake", e),
            }
        }
        let sends = if resend { 2 } else { 1 };
        for n in 0..sends {
            match self.intake(&Value::Array(orders.clone())).await {
                Ok((s, v)) if s.is_success() => {
                    let mut refs = Vec::new();
                    for key in ["stored", "already_queued"] {
                        for r in v[key].as_array().into_iter().flatten() {
                            if let Some(r) = r.as_str() {
                                refs.push((o.organisation_id.clone(), r.to_string()));
                            }
                        }
                    }
                    self.log(
                        "orders_imported",
                        format!(
                            "batch {batch} send {}: {} stored, {} already queued, {bad_integration} with an unknown integration",
                            n + 1,
                            v["stored"].as_array().map_or(0, Vec::len),
                            v["already_queued"].as_array().map_or(0, Vec::len)
                        ),
                    );
                    self.state
                        .lock()
                        .expect("run state")
                        .queued_orders
                        .extend(refs);
                }
                Ok((s, v)) => self.error("order intake", format!("{s} {}", short(&v))),
                Err(e) => self.error("order intake", e),
            }
        }
    }
}

pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

pub(crate) fn outcome_text(
    o: Result<Result<anyhow::Result<Value>, tokio::task::JoinError>, tokio::time::error::Elapsed>,
) -> String {
    match o {
        Err(_) => "still waiting after 120 s".into(),
        Ok(Err(e)) => format!("task: {e}"),
        Ok(Ok(Err(e))) => format!("error: {e}"),
        Ok(Ok(Ok(v))) => format!("ok: {}", short(&v)),
    }
}
