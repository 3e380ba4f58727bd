//! The edge queue's dead-letter queue, as the recovery tools see it: read what is there (without
//! taking it), and move a message back to the source queue.

use std::collections::BTreeMap;

/// One message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterMessage {
    /// The DLQ's own message id.
    pub message_id: String,
    /// Valid for the receive that returned the message (to delete it after a redrive).
    pub receipt_handle: String,
    pub body: String,
    /// String message attributes (`reason`, `event_id`, `event_type`, `body_encoding`, ...).
    pub attributes: BTreeMap<String, String>,
    /// ApproximateReceiveCount in the DLQ.
    pub receive_count: u32,
    /// MessageGroupId (FIFO), to send it back into the same group.
    pub group_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{operation} on {queue} failed: {detail}")]
    Failed {
        operation: &'static str,
        queue: String,
        detail: String,
    },
}

/// Where an SQS move task (StartMessageMoveTask) stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MoveTaskStatus {
    /// `RUNNING`, `COMPLETED`, `CANCELLING`, `CANCELLED` or `FAILED`.
    pub status: String,
    pub moved: u64,
    /// How many the task set out to move, when the service says.
    pub to_move: Option<u64>,
    pub failure_reason: Option<String>,
}

impl MoveTaskStatus {
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "RUNNING" | "CANCELLING")
    }
}

#[async_trait::async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Starts a move of every message from the DLQ to the source queue on the queue service's
    /// side (SQS StartMessageMoveTask) and answers the task's handle; `Ok(None)` when the
    /// service does not run move tasks (the local emulator): redrive then moves the messages
    /// one by one.
    async fn start_move_task(&self) -> Result<Option<String>, QueueError> {
        Ok(None)
    }

    /// Where the move task `task` stands (SQS ListMessageMoveTasks).
    async fn move_task_status(&self, task: &str) -> Result<MoveTaskStatus, QueueError> {
        Err(QueueError::Failed {
            operation: "ListMessageMoveTasks",
            queue: "dlq".into(),
            detail: format!("no move task {task} on a queue service without move tasks"),
        })
    }

    /// ApproximateNumberOfMessages (+ NotVisible) of the DLQ.
    async fn depth(&self) -> Result<u64, QueueError>;

    /// Receives up to `max` messages, hiding them for `hide_secs` (0: a look only; they stay
    /// visible to the next reader).
    async fn receive(&self, max: u32, hide_secs: u32)
        -> Result<Vec<DeadLetterMessage>, QueueError>;

    /// Sends the message back to the source queue, with `deduplication_id` (FIFO: a second send
    /// with the same id within five minutes is dropped by the queue).
    async fn send_to_source(
        &self,
        message: &DeadLetterMessage,
        deduplication_id: &str,
    ) -> Result<(), QueueError>;

    /// Makes a received message visible again now (ChangeMessageVisibility 0).
    async fn release(&self, message: &DeadLetterMessage) -> Result<(), QueueError>;

    /// Deletes the message from the DLQ (by the receipt of its last receive).
    async fn delete(&self, message: &DeadLetterMessage) -> Result<(), QueueError>;
}
