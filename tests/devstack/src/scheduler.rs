//! The local stand-in for the EventBridge schedules: invokes order-upload and deadline-sweep on
//! an interval with the scheduled-event payload EventBridge sends.

use crate::functions::LambdaInvoker;
use std::time::Duration;

/// The payload of an EventBridge scheduled rule firing `rule` now.
pub fn scheduled_event(rule: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": crate::moto::REGION,
        "resources": [format!("arn:aws:events:{}:123456789012:rule/{rule}", crate::moto::REGION)],
        "detail": {}
    })
}

/// Runs until dropped: every `interval`, each function in turn (one invocation at a time per
/// function, as a one-minute EventBridge rule with a short function effectively behaves).
pub struct Scheduler {
    task: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    pub fn start(invoker: LambdaInvoker, schedule: Vec<(String, Duration)>) -> Self {
        let task = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (function, every) in schedule {
                let invoker = invoker.clone();
                tasks.spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        match invoker.invoke(&function, scheduled_event(&function)).await {
                            Ok(out) => tracing::info!(%function, %out, "scheduled invoke"),
                            Err(e) => {
                                tracing::warn!(%function, error = %e, "scheduled invoke failed")
                            }
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        Self { task }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
