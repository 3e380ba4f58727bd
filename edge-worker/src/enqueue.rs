//! Sends one message to SQS with the Worker's `fetch`, signed by `shared::sqs_request`, within a
//! bounded time. Only an answer SQS gave with a `MessageId` counts as enqueued.

use crate::config::Config;
use crate::{js, webcrypto};
use shared::sqs_request::{
    read_send_message_response, send_message_body, OutgoingMessage, SendOutcome,
};

pub enum EnqueueError {
    /// The request could not be built (bad endpoint URL, signing failed).
    Request(String),
    /// No answer: connection refused, DNS, TLS.
    Unreachable,
    /// No answer within the configured time.
    Timeout,
    /// SQS answered but did not accept the message.
    Refused { status: u16, code: String },
}

impl EnqueueError {
    /// A short reason for the log line; never the request, the body or a credential.
    pub fn reason(&self) -> String {
        match self {
            EnqueueError::Request(why) => format!("request: {why}"),
            EnqueueError::Unreachable => "unreachable".to_string(),
            EnqueueError::Timeout => "timeout".to_string(),
            EnqueueError::Refused { status, code } => format!("refused {status} {code}"),
        }
    }
}

/// Returns the SQS message id once SQS accepted the message.
pub async fn send(
    config: &Config,
    message: &OutgoingMessage,
    now_ms: u64,
) -> Result<String, EnqueueError> {
    let signer = config
        .signer
        .as_ref()
        .map_err(|e| EnqueueError::Request(e.to_string()))?;
    // The request body crosses into JavaScript once; WebCrypto hashes that copy for SigV4 and
    // `fetch` sends the same one.
    let body = send_message_body(&config.queue.queue_url, message);
    let body = js_sys::Uint8Array::from(body.as_slice());
    let body_sha256 = webcrypto::sha256(&body)
        .await
        .map_err(|_| EnqueueError::Request("sha-256".to_string()))?;
    let signed_headers = signer
        .signed_headers("SendMessage", &body_sha256, (now_ms / 1000) as i64)
        .map_err(|e| EnqueueError::Request(e.to_string()))?;

    // One deadline for the whole exchange, answer body included; the runtime aborts the request
    // when it passes, so it cannot complete after we answered 503.
    let timeout_ms = u32::try_from(config.sqs_timeout_ms).unwrap_or(u32::MAX);
    let exchange = js::post(signer.url(), &signed_headers, &body, timeout_ms);
    let (status, body) = match exchange.await {
        Ok(answer) => answer,
        Err(error) => {
            return Err(match js::error_name(&error).as_deref() {
                Some("TimeoutError") => EnqueueError::Timeout,
                _ => EnqueueError::Unreachable,
            })
        }
    };
    match read_send_message_response(status, &body) {
        SendOutcome::Accepted { message_id } => Ok(message_id),
        SendOutcome::Refused { status, code } => Err(EnqueueError::Refused { status, code }),
    }
}
