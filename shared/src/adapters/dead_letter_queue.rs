//! The edge DLQ over SQS (`ports::dead_letters`).

use crate::ports::dead_letters::{DeadLetterMessage, DeadLetterQueue, MoveTaskStatus, QueueError};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};

/// An SQS client for the environment's AWS configuration (so callers need no SQS crate).
pub fn aws_sdk_sqs_client(aws: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(aws)
}

#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    pub client: aws_sdk_sqs::Client,
    pub dlq_url: String,
    /// Where a redrive sends messages back: the edge queue.
    pub source_url: String,
}

impl SqsDeadLetterQueue {
    /// From `EDGE_DLQ_URL` and `EDGE_QUEUE_URL` with the environment's AWS configuration.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let dlq_url = crate::config::required("EDGE_DLQ_URL")?;
        let source_url = crate::config::required("EDGE_QUEUE_URL")?;
        let aws = crate::adapters::aws::load_config().await;
        Ok(Self {
            client: aws_sdk_sqs::Client::new(&aws),
            dlq_url,
            source_url,
        })
    }

    fn failed(
        &self,
        operation: &'static str,
        queue: &str,
        e: impl std::fmt::Display,
    ) -> QueueError {
        QueueError::Failed {
            operation,
            queue: queue.rsplit('/').next().unwrap_or(queue).to_string(),
            detail: e.to_string(),
        }
    }
}

impl SqsDeadLetterQueue {
    async fn queue_arn(&self, url: &str) -> Result<String, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "GetQueueAttributes",
                    url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        out.attributes
            .unwrap_or_default()
            .remove(&QueueAttributeName::QueueArn)
            .ok_or_else(|| self.failed("GetQueueAttributes", url, "no QueueArn"))
    }
}

/// Error codes with which a queue service says it does not run move tasks (moto answers
/// unknown actions so); anything else is a real refusal, reported.
fn move_tasks_unsupported(code: Option<&str>, message: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InvalidAction"
                | "UnsupportedOperation"
                | "AWS.SimpleQueueService.UnsupportedOperation"
                | "NotImplemented"
                | "InternalFailure"
        )
    ) || message.is_some_and(|m| m.to_ascii_lowercase().contains("not implemented"))
}

#[async_trait::async_trait]
impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn start_move_task(&self) -> Result<Option<String>, QueueError> {
        let source = self.queue_arn(&self.dlq_url).await?;
        let destination = self.queue_arn(&self.source_url).await?;
        // The destination is named: messages process-events sent to the DLQ itself have no
        // original source queue recorded by SQS.
        match self
            .client
            .start_message_move_task()
            .source_arn(source)
            .destination_arn(destination)
            .send()
            .await
        {
            Ok(out) => Ok(out.task_handle),
            Err(e) if move_tasks_unsupported(e.code(), e.message()) => {
                tracing::info!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "the queue service runs no move tasks; moving message by message");
                Ok(None)
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() >= 500) => {
                tracing::info!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "StartMessageMoveTask answered a server error; moving message by message");
                Ok(None)
            }
            Err(e) => Err(self.failed(
                "StartMessageMoveTask",
                &self.dlq_url,
                aws_sdk_sqs::error::DisplayErrorContext(e),
            )),
        }
    }

    async fn move_task_status(&self, task: &str) -> Result<MoveTaskStatus, QueueError> {
        let source = self.queue_arn(&self.dlq_url).await?;
        let out = self
            .client
            .list_message_move_tasks()
            .source_arn(source)
            .max_results(10)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "ListMessageMoveTasks",
                    &self.dlq_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        let results = out.results.unwrap_or_default();
        // The running task carries its handle; a finished one may not: the newest is ours.
        let ours = results
            .iter()
            .find(|r| r.task_handle.as_deref() == Some(task))
            .or_else(|| results.first())
            .ok_or_else(|| self.failed("ListMessageMoveTasks", &self.dlq_url, "no move task"))?;
        Ok(MoveTaskStatus {
            status: ours.status.clone().unwrap_or_default(),
            moved: ours.approximate_number_of_messages_moved.max(0) as u64,
            to_move: ours
                .approximate_number_of_messages_to_move
                .map(|n| n.max(0) as u64),
            failure_reason: ours.failure_reason.clone(),
        })
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "GetQueueAttributes",
                    &self.dlq_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: QueueAttributeName| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    async fn receive(
        &self,
        max: u32,
        hide_secs: u32,
    ) -> Result<Vec<DeadLetterMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(hide_secs as i32)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "ReceiveMessage",
                    &self.dlq_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let system = m.attributes.unwrap_or_default();
                DeadLetterMessage {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    attributes: m
                        .message_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                        .collect(),
                    receive_count: system
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                    group_id: system
                        .get(&MessageSystemAttributeName::MessageGroupId)
                        .cloned(),
                }
            })
            .collect())
    }

    async fn send_to_source(
        &self,
        message: &DeadLetterMessage,
        deduplication_id: &str,
    ) -> Result<(), QueueError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.source_url)
            .message_body(&message.body);
        // The Worker's attributes go back as they were; the DLQ's own (why, when) stay behind
        // except `redriven_from`, so the processor's logs can tell a redrive.
        for (k, v) in &message.attributes {
            if matches!(
                k.as_str(),
                "reason" | "dead_lettered_at" | "source_message_id" | "receive_count"
            ) {
                continue;
            }
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| self.failed("SendMessage", &self.source_url, e))?;
            request = request.message_attributes(k, value);
        }
        if self.source_url.ends_with(".fifo") {
            request = request
                .message_group_id(message.group_id.clone().unwrap_or_else(|| "redrive".into()))
                .message_deduplication_id(deduplication_id);
        }
        request.send().await.map_err(|e| {
            self.failed(
                "SendMessage",
                &self.source_url,
                aws_sdk_sqs::error::DisplayErrorContext(e),
            )
        })?;
        Ok(())
    }

    async fn release(&self, message: &DeadLetterMessage) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.dlq_url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "ChangeMessageVisibility",
                    &self.dlq_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(())
    }

    async fn delete(&self, message: &DeadLetterMessage) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.dlq_url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "DeleteMessage",
                    &self.dlq_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        Ok(())
    }
}
