//! The faults of a plan, played: the sandbox's knobs (API errors, 429, latency, webhook drops,
//! duplicates, reordering, redeliveries), the TCP gates, killed and overlapping runs.

use super::{outcome_text, short, Driver};
use crate::plan::Fault;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Driver {
    /// The sandbox's fault knobs (`PUT /_sandbox/faults`).
    async fn knobs(&self, knobs: Value) {
        if let Err(e) = self.admin(Method::PUT, "faults", Some(knobs)).await {
            self.error("fault knobs", e);
        }
    }

    pub(crate) async fn fault(self: Arc<Self>, f: Fault) {
        let name = f.name();
        self.log(name, format!("start {f:?}"));
        match f {
            Fault::ApiErrors { rate, status, secs } => {
                self.knobs(json!({"error_rate": rate, "error_status": status}))
                    .await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.knobs(json!({"error_rate": 0.0})).await;
            }
            Fault::Burst429 { n } => self.knobs(json!({"burst_429": n})).await,
            Fault::ApiLatency { ms, secs } => {
                self.knobs(json!({"latency_ms": ms})).await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.knobs(json!({"latency_ms": 0})).await;
            }
            Fault::DropWebhooks { n, late_secs } => {
                self.knobs(json!({"drop_next": n})).await;
                tokio::time::sleep(Duration::from_secs(late_secs)).await;
                let n = self.redeliver_dropped().await;
                self.log(name, format!("redelivered {n} dropped events late"));
            }
            Fault::DuplicateWebhooks { secs } => {
                self.knobs(json!({"duplicate_deliveries": true})).await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.knobs(json!({"duplicate_deliveries": false})).await;
            }
            Fault::ReorderWebhooks { secs } => {
                self.knobs(json!({"out_of_order": true, "out_of_order_batch": 2,
                                  "out_of_order_window_ms": 3000}))
                    .await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.knobs(json!({"out_of_order": false})).await;
            }
            Fault::LateRedeliveries { n, pick } => {
                let events = self.admin(Method::GET, "events", None).await;
                let ids: Vec<String> = events
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_string))
                    .collect();
                if ids.is_empty() {
                    return;
                }
                for k in 0..n as u64 {
                    let id = &ids[((pick + k * 7919) % ids.len() as u64) as usize];
                    match self
                        .admin(Method::POST, &format!("events/{id}/redeliver"), None)
                        .await
                    {
                        Ok(_) => self.log(name, format!("redelivered {id}")),
                        Err(e) => self.error("late redelivery", e),
                    }
                }
            }
            Fault::EdgeSqsDown { secs } => {
                self.chaos.edge_gate.close();
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.chaos.edge_gate.open();
            }
            Fault::DynamoDown { secs } => {
                self.chaos.dynamo_gate.close();
                tokio::time::sleep(Duration::from_secs(secs)).await;
                self.chaos.dynamo_gate.open();
            }
            Fault::KillProcessor { restart_after } => {
                // Mid-work: wait (bounded) until it holds a batch.
                let waited = Instant::now();
                while self.chaos.relay.busy("process-events") == 0
                    && waited.elapsed() < Duration::from_secs(20)
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let busy = self.chaos.relay.busy("process-events") > 0;
                self.log(name, format!("processor busy at the kill: {busy}"));
                match self
                    .chaos
                    .kill_and_restart("process-events", Duration::from_secs(restart_after))
                    .await
                {
                    Ok(k) => self.log(name, format!("killed {k} instance(s), restarted")),
                    Err(e) => self.error("kill processor", e),
                }
            }
            Fault::KillScheduledRun {
                function,
                kill_after_ms,
                restart_after,
            } => {
                // Start a run now, kill it mid-work.
                let invoker = self.chaos.stack.functions.invoker.clone();
                let run = tokio::spawn(async move {
                    invoker
                        .invoke(function, devstack::scheduler::scheduled_event(function))
                        .await
                });
                let waited = Instant::now();
                while self.chaos.relay.busy(function) == 0
                    && waited.elapsed() < Duration::from_secs(20)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
                let busy = self.chaos.relay.busy(function) > 0;
                self.log(name, format!("{function} busy at the kill: {busy}"));
                match self
                    .chaos
                    .kill_and_restart(function, Duration::from_secs(restart_after))
                    .await
                {
                    Ok(k) => self.log(
                        name,
                        format!("{function}: killed {k} instance(s), restarted"),
                    ),
                    Err(e) => self.error("kill scheduled run", e),
                }
                let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
                self.log(
                    name,
                    format!(
                        "{function}: the killed invoke ended: {}",
                        outcome_text(outcome)
                    ),
                );
            }
            Fault::OverlappingRuns { function } => {
                let invoker = &self.chaos.stack.functions.invoker;
                let event = devstack::scheduler::scheduled_event(function);
                let (a, b) = tokio::join!(
                    invoker.invoke(function, event.clone()),
                    invoker.invoke(function, devstack::scheduler::scheduled_event(function))
                );
                self.log(
                    name,
                    format!(
                        "{function}: {} | {}",
                        a.map(|v| short(&v)).unwrap_or_else(|e| e.to_string()),
                        b.map(|v| short(&v)).unwrap_or_else(|e| e.to_string())
                    ),
                );
            }
        }
        self.log(name, "end");
    }

    /// Redelivers every event whose only delivery records are knob drops (what ChargebackStop's
    /// retries would have done); the number sent.
    pub async fn redeliver_dropped(&self) -> usize {
        let Ok(deliveries) = self.admin(Method::GET, "deliveries", None).await else {
            return 0;
        };
        let mut dropped = std::collections::BTreeSet::new();
        let mut sent = std::collections::BTreeSet::new();
        for d in deliveries.as_array().into_iter().flatten() {
            let id = d["event_id"].as_str().unwrap_or_default().to_string();
            if d["outcome"] == "dropped" {
                dropped.insert(id);
            } else {
                sent.insert(id);
            }
        }
        let mut n = 0;
        for id in dropped.difference(&sent) {
            match self
                .admin(Method::POST, &format!("events/{id}/redeliver"), None)
                .await
            {
                Ok(_) => n += 1,
                Err(e) => self.error("redeliver a dropped event", e),
            }
        }
        n
    }

    /// Every fault off: knobs normal, gates open, every function running.
    pub async fn all_faults_off(&self) {
        self.knobs(json!({
            "error_rate": 0.0, "burst_429": 0, "latency_ms": 0, "duplicate_deliveries": false,
            "out_of_order": false, "drop_next": 0, "drop_webhooks": false, "hold_webhooks": false
        }))
        .await;
        self.chaos.edge_gate.open();
        self.chaos.dynamo_gate.open();
        if let Err(e) = self.chaos.ensure_functions().await {
            self.error("restart functions", e);
        }
    }
}
