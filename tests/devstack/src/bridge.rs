//! The local SQS -> Lambda bridge: what an SQS event source mapping with
//! `ReportBatchItemFailures` does in the cloud, for the emulator, which cannot run functions.
//!
//! Long-poll the queue for up to `batch_size` messages, hand them to the function as one
//! `SqsEvent`, then delete every record the `SqsBatchResponse` did not list in
//! `batchItemFailures`. If the invocation itself failed, delete nothing. Records left behind
//! reappear after the queue's visibility timeout, and the queue's own redrive policy moves them
//! to the dead-letter queue after maxReceiveCount receives, exactly as in the cloud.
//!
//! Like the event source mapping, the bridge never touches the visibility of a record it does
//! not delete: the function sets it itself (ChangeMessageVisibility on the same queue, with the
//! receipt handle of this receive: its backoff for a failed record, 0 for one it handed back
//! untried), and that is when the record comes back. Every receive counts towards
//! maxReceiveCount, tried or not, as in SQS; moto locks a FIFO group while any of its messages
//! is in flight, as SQS does. Records the function dead-lettered itself are reported as
//! successes and deleted here.

use crate::functions::LambdaInvoker;
use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct BridgeOptions {
    pub queue_url: String,
    pub queue_arn: String,
    pub function: String,
    /// At most 10 (the SQS receive limit and the template's BatchSize).
    pub batch_size: i32,
    /// Long-poll wait per receive.
    pub wait_time_secs: i32,
}

impl BridgeOptions {
    pub fn new(queue_url: &str, queue_arn: &str, function: &str) -> Self {
        Self {
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
            function: function.into(),
            batch_size: 10,
            wait_time_secs: 1,
        }
    }
}

/// Counters a test can read to see what the bridge did.
#[derive(Debug, Default)]
pub struct BridgeStats {
    pub batches: AtomicU64,
    pub records_delivered: AtomicU64,
    pub records_deleted: AtomicU64,
    /// Records reported in batchItemFailures, or in a batch whose invocation failed.
    pub records_failed: AtomicU64,
    pub invoke_errors: AtomicU64,
}

impl BridgeStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub delivered: usize,
    pub deleted: usize,
    pub failed: usize,
    pub invoke_error: Option<String>,
}

pub struct Bridge {
    pub stats: Arc<BridgeStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Polls in a background task until dropped.
    pub fn start(sqs: aws_sdk_sqs::Client, invoker: LambdaInvoker, opts: BridgeOptions) -> Self {
        let stats = Arc::new(BridgeStats::default());
        let task_stats = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                match pump_once(&sqs, &invoker, &opts, &task_stats).await {
                    Ok(outcome) if outcome.delivered > 0 => {
                        tracing::info!(?outcome, "bridge batch");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "bridge poll failed");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Self { stats, task }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One receive -> invoke -> delete round.
pub async fn pump_once(
    sqs: &aws_sdk_sqs::Client,
    invoker: &LambdaInvoker,
    opts: &BridgeOptions,
    stats: &BridgeStats,
) -> anyhow::Result<BatchOutcome> {
    let received = sqs
        .receive_message()
        .queue_url(&opts.queue_url)
        .max_number_of_messages(opts.batch_size.clamp(1, 10))
        .wait_time_seconds(opts.wait_time_secs)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let event = to_sqs_event(&messages, &opts.queue_arn);
    let mut outcome = BatchOutcome {
        delivered: messages.len(),
        ..Default::default()
    };
    stats.batches.fetch_add(1, Ordering::SeqCst);
    stats
        .records_delivered
        .fetch_add(messages.len() as u64, Ordering::SeqCst);

    let failed_ids: HashSet<String> = match invoker
        .invoke(&opts.function, serde_json::to_value(&event)?)
        .await
    {
        Ok(response) => failures(response),
        Err(e) => {
            // The whole batch stays on the queue and comes back after the visibility timeout.
            stats.invoke_errors.fetch_add(1, Ordering::SeqCst);
            stats
                .records_failed
                .fetch_add(messages.len() as u64, Ordering::SeqCst);
            outcome.failed = messages.len();
            outcome.invoke_error = Some(e.to_string());
            return Ok(outcome);
        }
    };

    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed_ids.contains(m.message_id().unwrap_or_default()))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    outcome.failed = messages.len() - entries.len();
    outcome.deleted = entries.len();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(&opts.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    stats
        .records_deleted
        .fetch_add(outcome.deleted as u64, Ordering::SeqCst);
    stats
        .records_failed
        .fetch_add(outcome.failed as u64, Ordering::SeqCst);
    Ok(outcome)
}

/// The message ids the function reported as failed. A null or empty response means success,
/// as with a real event source mapping; an unreadable one fails the whole batch.
fn failures(response: serde_json::Value) -> HashSet<String> {
    if response.is_null() {
        return HashSet::new();
    }
    match serde_json::from_value::<SqsBatchResponse>(response.clone()) {
        Ok(r) => r
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        Err(_) if response.as_object().is_some_and(|o| o.is_empty()) => HashSet::new(),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable SqsBatchResponse: the whole batch is retried");
            HashSet::from(["*".to_string()])
        }
    }
}

/// The `SqsEvent` Lambda would receive for these messages.
pub fn to_sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.md5_of_message_attributes = m.md5_of_message_attributes.clone();
            record.attributes = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            record.message_attributes = m
                .message_attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, to_lambda_attribute(&v)))
                .collect::<HashMap<_, _>>();
            record.event_source_arn = Some(queue_arn.to_string());
            record.event_source = Some("aws:sqs".to_string());
            record.aws_region = Some(crate::moto::REGION.to_string());
            record
        })
        .collect();
    event
}

fn to_lambda_attribute(v: &aws_sdk_sqs::types::MessageAttributeValue) -> SqsMessageAttribute {
    let mut a = SqsMessageAttribute::default();
    a.data_type = Some(v.data_type().to_string());
    a.string_value = v.string_value.clone();
    a.binary_value = v
        .binary_value
        .as_ref()
        .map(|b| base64_data(b.as_ref().to_vec()));
    a.string_list_values = v.string_list_values.clone().unwrap_or_default();
    a.binary_list_values = v
        .binary_list_values
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|b| base64_data(b.into_inner()))
        .collect();
    a
}

fn base64_data(bytes: Vec<u8>) -> Base64Data {
    // Base64Data is non_exhaustive: build it from Default and fill it through DerefMut.
    let mut data = Base64Data::default();
    *data = bytes;
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_or_empty_response_fails_nothing() {
        assert!(failures(serde_json::Value::Null).is_empty());
        assert!(failures(serde_json::json!({"batchItemFailures": []})).is_empty());
    }

    #[test]
    fn listed_records_are_failures() {
        let f = failures(serde_json::json!({
            "batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]
        }));
        assert_eq!(f, HashSet::from(["m-2".to_string(), "m-3".to_string()]));
    }

    #[test]
    fn event_carries_ids_attributes_and_source_arn() {
        let msg = aws_sdk_sqs::types::Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"id\":\"evt_1\"}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .message_attributes(
                "event_type",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("alert.created")
                    .build()
                    .unwrap(),
            )
            .build();
        let event = to_sqs_event(&[msg], "arn:aws:sqs:eu-west-1:123456789012:q.fifo");
        let json = serde_json::to_value(&event).unwrap();
        let r = &json["Records"][0];
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["receiptHandle"], "rh-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(
            r["messageAttributes"]["event_type"]["stringValue"],
            "alert.created"
        );
        assert_eq!(
            r["eventSourceARN"],
            "arn:aws:sqs:eu-west-1:123456789012:q.fifo"
        );
        assert_eq!(r["eventSource"], "aws:sqs");
    }
}
