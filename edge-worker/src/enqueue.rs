//! Sends one message to SQS with the Worker's `fetch`, signed by `shared::sqs_request`, within a
//! bounded time. Only an answer SQS gave with a `MessageId` counts as enqueued.

use crate::config::Config;
use futures_util::future::{select, Either};
use shared::sqs_request::{self, read_send_message_response, OutgoingMessage, SendOutcome};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

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
    let signed = sqs_request::send_message(
        &config.credentials,
        &config.queue,
        message,
        Duration::from_millis(now_ms),
    )
    .map_err(|e| EnqueueError::Request(e.to_string()))?;

    let headers = Headers::new();
    for (name, value) in &signed.headers {
        headers
            .set(name, value)
            .map_err(|_| EnqueueError::Request(format!("header {name}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(
            js_sys::Uint8Array::from(signed.body.as_slice()).into(),
        ));
    let request = Request::new_with_init(&signed.url, &init)
        .map_err(|_| EnqueueError::Request("endpoint url".to_string()))?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let fetch = Fetch::Request(request);
        let mut response = fetch
            .send_with_signal(&signal)
            .await
            .map_err(|_| EnqueueError::Unreachable)?;
        let status = response.status_code();
        let body = response
            .bytes()
            .await
            .map_err(|_| EnqueueError::Unreachable)?;
        Ok::<_, EnqueueError>((status, body))
    };
    let deadline = Delay::from(Duration::from_millis(config.sqs_timeout_ms));
    let (status, body) = match select(Box::pin(exchange), deadline).await {
        Either::Left((answer, _)) => answer?,
        Either::Right(((), _)) => {
            // Stop the request so it cannot complete after we answered 503.
            controller.abort();
            return Err(EnqueueError::Timeout);
        }
    };
    match read_send_message_response(status, &body) {
        SendOutcome::Accepted { message_id } => Ok(message_id),
        SendOutcome::Refused { status, code } => Err(EnqueueError::Refused { status, code }),
    }
}
