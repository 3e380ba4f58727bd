//! process-events: consumes the edge queue (SQS, FIFO, batches with partial failures) and keeps
//! the partner's alerts and enrolments right in DynamoDB. The logic is
//! `shared::domain::event_processing`; this binary reads the configuration, builds the
//! adapters and maps a batch to `batchItemFailures`.

mod archive;
mod batch;
mod config;
mod cost;
mod counting;
mod metrics;
mod queue;
mod wiring;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::clock::Clock;
use std::sync::Arc;
use std::time::Instant;

/// How long a claimed event stays ours when the invocation has no deadline (local runs).
const FALLBACK_CLAIM_SECS: i64 = 60;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    init_json_logs();
    let wired = match wiring::from_env().await {
        Ok(w) => Arc::new(w),
        Err(e) => {
            tracing::error!(error = %e, "process-events cannot start");
            return Err(e.into());
        }
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        peak_rss_kb = metrics::peak_rss_kb(),
        "process-events ready"
    );
    // The metric dimension: read once, it does not change while the container lives.
    let function_name: Arc<str> = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "process-events".into())
        .into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let wired = wired.clone();
        let function_name = function_name.clone();
        async move { Ok::<_, Error>(handle(&wired, &function_name, event).await) }
    }))
    .await
}

async fn handle(
    wired: &wiring::Wired,
    function_name: &str,
    event: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let now = shared::clock::SystemClock.now();
    // The claim on each event lasts as long as this invocation may run: if it dies, the
    // redelivery can take the event over once the deadline has passed.
    let in_progress_until = i64::try_from(event.context.deadline)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .filter(|deadline| *deadline > now)
        .unwrap_or(now + chrono::Duration::seconds(FALLBACK_CLAIM_SECS));
    let started = Instant::now();
    let ctx = batch::BatchContext {
        processor: &wired.processor,
        queue: &wired.queue,
        meter: &wired.meter,
        settings: wired.settings,
        archive: Some(&wired.archive),
    };
    // The claim's end is also when the batch stops taking records (less the stop margin).
    let (response, summary) = batch::handle_batch(&ctx, event.payload, in_progress_until).await;
    tracing::info!(
        request_id = %event.context.request_id,
        records = summary.records,
        applied = summary.applied,
        duplicates = summary.duplicates,
        failed = summary.failed,
        held_back = summary.held_back,
        out_of_time = summary.out_of_time,
        poison = summary.poison,
        dead_lettered = summary.dead_lettered,
        refused_at_edge = summary.refused_at_edge,
        duration_ms = started.elapsed().as_millis() as u64,
        peak_rss_kb = metrics::peak_rss_kb(),
        "batch done"
    );
    println!(
        "{}",
        metrics::emf_line(function_name, &summary, now.timestamp_millis())
    );
    response
}

/// JSON log lines on stdout (CloudWatch with `LogFormat: JSON`); `RUST_LOG` filters, `info`
/// by default. Nothing here logs payloads or keys.
fn init_json_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .init();
}
