//! What the function does to the edge queue itself, beside the partial batch response: set a
//! failed message's visibility (its backoff) and send a message to the dead-letter queue with
//! the reason. The event source mapping deletes every record not reported as failed, so a
//! dead-lettered record is reported as a success once its copy is in the DLQ.

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// SQS allows 10 message attributes per message.
const MAX_ATTRIBUTES: usize = 10;
/// The reason is for a person; a serde message can be long.
const MAX_REASON_CHARS: usize = 1000;

#[async_trait::async_trait]
pub trait EdgeQueue: Send + Sync {
    /// ChangeMessageVisibility: the message is received again after `visibility_secs`.
    async fn retry_after(&self, receipt_handle: &str, visibility_secs: u32) -> anyhow::Result<()>;

    /// SendMessage of the record's body to the dead-letter queue, with `dead_letter_attributes`.
    async fn dead_letter(
        &self,
        record: &SqsMessage,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
}

/// The attributes of the dead-letter copy: why, when, which message, then as many of the
/// original attributes (`event_id`, `event_type`, `body_encoding`, ...) as SQS allows.
pub fn dead_letter_attributes(
    record: &SqsMessage,
    reason: &str,
    now: DateTime<Utc>,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "reason".to_string(),
        reason.chars().take(MAX_REASON_CHARS).collect(),
    );
    attributes.insert(
        "dead_lettered_at".to_string(),
        shared::ports::event_log::iso(now),
    );
    attributes.insert(
        "source_message_id".to_string(),
        record.message_id.clone().unwrap_or_default(),
    );
    if let Some(count) = record.attributes.get("ApproximateReceiveCount") {
        attributes.insert("receive_count".to_string(), count.clone());
    }
    let mut originals: Vec<(&String, &String)> = record
        .message_attributes
        .iter()
        .filter_map(|(k, v)| v.string_value.as_ref().map(|s| (k, s)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    // body_encoding first: without it the body cannot be read. The whole `signature` last: the
    // archive already has it, and its timestamp travels on its own.
    originals.sort_by_key(|(k, _)| {
        let rank = match k.as_str() {
            "body_encoding" => 0,
            "signature" => 2,
            _ => 1,
        };
        (rank, k.to_string())
    });
    for (k, v) in originals {
        if attributes.len() >= MAX_ATTRIBUTES {
            break;
        }
        attributes.entry(k.clone()).or_insert_with(|| v.clone());
    }
    attributes
}

pub struct SqsEdgeQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dlq_url: String,
}

#[async_trait::async_trait]
impl EdgeQueue for SqsEdgeQueue {
    async fn retry_after(&self, receipt_handle: &str, visibility_secs: u32) -> anyhow::Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(visibility_secs).unwrap_or(i32::MAX))
            .send()
            .await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        record: &SqsMessage,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(record.body.clone().unwrap_or_default());
        for (name, value) in dead_letter_attributes(record, reason, now) {
            request = request.message_attributes(
                name,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()?,
            );
        }
        if self.dlq_url.ends_with(".fifo") {
            let message_id = record.message_id.clone().unwrap_or_default();
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_else(|| "dead-letter".to_string());
            // The source message id: a second copy from a retried send within five minutes is
            // dropped by the DLQ's deduplication.
            request = request
                .message_group_id(group)
                .message_deduplication_id(message_id);
        }
        request.send().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    fn attribute(v: &str) -> SqsMessageAttribute {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(v.into());
        a.data_type = Some("String".into());
        a
    }

    #[test]
    fn the_copy_says_why_and_keeps_what_reads_the_body() {
        let mut r = SqsMessage::default();
        r.message_id = Some("m-1".into());
        r.attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
        for i in 0..12 {
            r.message_attributes
                .insert(format!("a{i:02}"), attribute("x"));
        }
        r.message_attributes
            .insert("body_encoding".into(), attribute("base64"));
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let long = "r".repeat(5000);
        let a = dead_letter_attributes(&r, &long, now);
        assert_eq!(a.len(), MAX_ATTRIBUTES);
        assert_eq!(a["reason"].len(), MAX_REASON_CHARS);
        assert_eq!(a["source_message_id"], "m-1");
        assert_eq!(a["receive_count"], "3");
        assert_eq!(a["body_encoding"], "base64");
        assert_eq!(a["dead_lettered_at"], "2026-11-24T10:00:00.000Z");
    }
}
