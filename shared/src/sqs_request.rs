//! Builds a SigV4-signed SQS `SendMessage` request (AWS JSON 1.0 protocol) as plain data, without
//! doing any I/O, so the Worker can send it with its own `fetch` and native tests with reqwest.
//!
//! Signing is the `aws-sigv4` crate's (it builds for wasm32-unknown-unknown without its defaults'
//! I/O). The time is always passed in: `SystemTime::now()` panics on wasm32-unknown-unknown, so we
//! only ever build a `SystemTime` as `UNIX_EPOCH + duration`.

use crate::secret::Secret;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

mod message_body;
pub use message_body::{send_message_body, sqs_accepts};

/// The JSON protocol's content type and the target header values SQS expects.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const TARGET_PREFIX: &str = "AmazonSQS.";
const SERVICE: &str = "sqs";

/// AWS credentials for signing. The secret parts never print.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Only for temporary credentials (STS); a Worker normally has a long-lived IAM user key.
    pub session_token: Option<Secret>,
}

/// Where the queue is and how to reach it.
#[derive(Clone, Debug)]
pub struct QueueTarget {
    pub region: String,
    pub queue_url: String,
    /// Set locally to an emulator (`http://127.0.0.1:5000`); `None` uses
    /// `https://sqs.<region>.amazonaws.com/`.
    pub endpoint: Option<String>,
}

impl QueueTarget {
    /// FIFO queues' names end in `.fifo`; they need a group id and deduplicate by id.
    pub fn is_fifo(&self) -> bool {
        self.queue_url.trim_end_matches('/').ends_with(".fifo")
    }

    /// The URL the JSON protocol posts to: the service endpoint's root.
    pub fn endpoint_url(&self) -> String {
        match self
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            Some(endpoint) => format!("{}/", endpoint.trim_end_matches('/')),
            None => format!("https://sqs.{}.amazonaws.com/", self.region),
        }
    }
}

/// One message to send. Attributes are SQS `String` attributes; empty values are left out
/// because SQS refuses an attribute without a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// FIFO only: the same id within 5 minutes is accepted and dropped by SQS.
    pub deduplication_id: Option<String>,
    /// FIFO only: messages of one group are delivered in order.
    pub group_id: Option<String>,
}

/// A signed HTTP request, ready for any HTTP client. `Host` is not in `headers`: every client
/// derives it from `url`, and the signature covers exactly that value (with the port).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for SignedRequest {
    // The Authorization header is not a secret, but it is useless in a log; keep logs small.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqsRequestError {
    #[error("the SQS endpoint URL cannot be signed: {0}")]
    BadEndpoint(String),
    #[error("signing the SQS request failed: {0}")]
    Signing(String),
}

/// The `SendMessage` request for `message` on `target`, signed at `now` (time since the epoch).
pub fn send_message(
    credentials: &AwsCredentials,
    target: &QueueTarget,
    message: &OutgoingMessage,
    now: Duration,
) -> Result<SignedRequest, SqsRequestError> {
    let body = send_message_body(&target.queue_url, message);
    signed_action(credentials, target, "SendMessage", body, now)
}

/// Any SQS JSON-protocol action with `body` as its JSON input, signed at `now`. Used for
/// `SendMessage` here and by tests for `CreateQueue`/`ReceiveMessage`.
pub fn signed_action(
    credentials: &AwsCredentials,
    target: &QueueTarget,
    action: &str,
    body: Vec<u8>,
    now: Duration,
) -> Result<SignedRequest, SqsRequestError> {
    let url = target.endpoint_url();
    let target_header = format!("{TARGET_PREFIX}{action}");
    let mut headers = vec![
        ("content-type".to_string(), CONTENT_TYPE.to_string()),
        ("x-amz-target".to_string(), target_header),
    ];

    let identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "edge-worker",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name(SERVICE)
        .time(UNIX_EPOCH + now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SqsRequestError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| SqsRequestError::BadEndpoint(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SqsRequestError::Signing(e.to_string()))?
        .into_parts();
    let (signing_headers, _query) = instructions.into_parts();
    for header in signing_headers {
        headers.push((header.name().to_string(), header.value().to_string()));
    }
    Ok(SignedRequest {
        method: "POST",
        url,
        headers,
        body,
    })
}

/// What SQS answered to `SendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Accepted {
        message_id: String,
    },
    /// SQS answered but refused; `code` is its error type (e.g. `QueueDoesNotExist`), never the
    /// message body we sent.
    Refused {
        status: u16,
        code: String,
    },
}

/// Reads a `SendMessage` response. Only a 2xx with a `MessageId` counts as accepted.
pub fn read_send_message_response(status: u16, body: &[u8]) -> SendOutcome {
    #[derive(Deserialize)]
    struct Accepted {
        #[serde(rename = "MessageId")]
        message_id: String,
    }
    #[derive(Deserialize)]
    struct Refused {
        #[serde(rename = "__type", default)]
        error_type: Option<String>,
    }
    if (200..300).contains(&status) {
        if let Ok(ok) = serde_json::from_slice::<Accepted>(body) {
            if !ok.message_id.is_empty() {
                return SendOutcome::Accepted {
                    message_id: ok.message_id,
                };
            }
        }
        return SendOutcome::Refused {
            status,
            code: "UnreadableResponse".to_string(),
        };
    }
    let code = serde_json::from_slice::<Refused>(body)
        .ok()
        .and_then(|r| r.error_type)
        // `com.amazonaws.sqs#QueueDoesNotExist` -> `QueueDoesNotExist`
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Unknown".to_string());
    SendOutcome::Refused { status, code }
}

/// The message attribute the edge Worker sets on a delivery it refused for its signature and
/// queued only to be archived (the refusal's code); the processor never processes such a
/// message (`domain::recovery::refused`).
pub const REFUSED_ATTRIBUTE: &str = "refused";

/// SQS accepts deduplication and group ids of 1 to 128 characters from this set. An id that does
/// not fit is replaced by its SHA-256 (hex), which does and stays the same for the same input.
pub fn fifo_safe_id(id: &str) -> String {
    let fits = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if fits {
        id.to_string()
    } else {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }
    }

    fn target(endpoint: Option<&str>) -> QueueTarget {
        QueueTarget {
            region: "eu-west-1".into(),
            queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/edge.fifo".into(),
            endpoint: endpoint.map(String::from),
        }
    }

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            body: r#"{"id":"evt_1"}"#.into(),
            attributes: [
                ("event_id".to_string(), "evt_1".to_string()),
                ("idempotency_key".to_string(), String::new()),
            ]
            .into_iter()
            .collect(),
            deduplication_id: Some("evt_1".into()),
            group_id: Some("netalrt_1".into()),
        }
    }

    // 2026-02-17T10:30:00Z
    const NOW: Duration = Duration::from_secs(1_771_324_200);

    fn header<'a>(req: &'a SignedRequest, name: &str) -> Option<&'a str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn signature_matches_botocore_for_the_same_request() {
        // Expected value computed independently with botocore's SigV4Auth (Python) over the
        // same method, URL, headers, body (BOTOCORE_BODY), credentials and time, with the clock
        // patched to 2026-02-17T10:30:00Z.
        let req = send_message(&credentials(), &target(None), &message(), NOW).unwrap();
        assert_eq!(String::from_utf8(req.body.clone()).unwrap(), BOTOCORE_BODY);
        assert_eq!(req.url, "https://sqs.eu-west-1.amazonaws.com/");
        assert_eq!(header(&req, "x-amz-date"), Some("20260217T103000Z"));
        assert_eq!(header(&req, "x-amz-target"), Some("AmazonSQS.SendMessage"));
        assert_eq!(header(&req, "content-type"), Some(CONTENT_TYPE));
        let auth = header(&req, "authorization").unwrap();
        assert_eq!(
            auth,
            BOTOCORE_AUTHORIZATION,
            "body was {}",
            String::from_utf8_lossy(&req.body)
        );
    }

    const BOTOCORE_BODY: &str = r#"{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/edge.fifo","MessageBody":"{\"id\":\"evt_1\"}","MessageAttributes":{"event_id":{"DataType":"String","StringValue":"evt_1"}},"MessageDeduplicationId":"evt_1","MessageGroupId":"netalrt_1"}"#;
    const BOTOCORE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260217/eu-west-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=ac58e9392047b7bc293cd24e76abc0f030ee66fba434320e9efbcb6fc328234c";

    #[test]
    fn the_body_is_the_json_protocol_input_without_empty_attributes() {
        let req = send_message(&credentials(), &target(None), &message(), NOW).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/edge.fifo",
                "MessageBody": "{\"id\":\"evt_1\"}",
                "MessageAttributes": {"event_id": {"DataType": "String", "StringValue": "evt_1"}},
                "MessageDeduplicationId": "evt_1",
                "MessageGroupId": "netalrt_1",
            })
        );
        let standard = OutgoingMessage {
            deduplication_id: None,
            group_id: None,
            attributes: BTreeMap::new(),
            ..message()
        };
        let body: serde_json::Value =
            serde_json::from_slice(&send_message_body("q", &standard)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"QueueUrl": "q", "MessageBody": "{\"id\":\"evt_1\"}"})
        );
    }

    #[test]
    fn an_endpoint_override_is_signed_with_its_port() {
        let req = send_message(
            &credentials(),
            &target(Some("http://127.0.0.1:4566/")),
            &message(),
            NOW,
        )
        .unwrap();
        assert_eq!(req.url, "http://127.0.0.1:4566/");
        assert!(!req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host")));
        let auth = header(&req, "authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260217/eu-west-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
        ), "{auth}");
        // A different port is a different signature: the Host header is signed.
        let other = send_message(
            &credentials(),
            &target(Some("http://127.0.0.1:4567")),
            &message(),
            NOW,
        )
        .unwrap();
        assert_ne!(header(&other, "authorization"), Some(auth));
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let mut creds = credentials();
        creds.session_token = Some(Secret::new("token123"));
        let req = send_message(&creds, &target(None), &message(), NOW).unwrap();
        assert_eq!(header(&req, "x-amz-security-token"), Some("token123"));
        assert!(header(&req, "authorization").unwrap().contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        ));
    }

    #[test]
    fn an_empty_endpoint_means_the_aws_endpoint() {
        // wrangler.toml sets SQS_ENDPOINT = "" in the cloud environments.
        assert_eq!(
            target(Some("")).endpoint_url(),
            "https://sqs.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            target(Some("  ")).endpoint_url(),
            "https://sqs.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            target(None).endpoint_url(),
            "https://sqs.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn fifo_is_recognised_by_the_queue_name() {
        assert!(target(None).is_fifo());
        let mut standard = target(None);
        standard.queue_url = "http://127.0.0.1:5000/123456789012/edge".into();
        assert!(!standard.is_fifo());
    }

    #[test]
    fn responses_are_accepted_only_with_a_message_id() {
        assert_eq!(
            read_send_message_response(200, br#"{"MessageId":"m-1","MD5OfMessageBody":"x"}"#),
            SendOutcome::Accepted {
                message_id: "m-1".into()
            }
        );
        assert_eq!(
            read_send_message_response(200, b"<html>proxy</html>"),
            SendOutcome::Refused {
                status: 200,
                code: "UnreadableResponse".into()
            }
        );
        assert_eq!(
            read_send_message_response(
                400,
                br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"nope"}"#
            ),
            SendOutcome::Refused {
                status: 400,
                code: "QueueDoesNotExist".into()
            }
        );
        assert_eq!(
            read_send_message_response(503, b""),
            SendOutcome::Refused {
                status: 503,
                code: "Unknown".into()
            }
        );
    }

    #[test]
    fn fifo_ids_that_do_not_fit_are_hashed_stably() {
        assert_eq!(fifo_safe_id("evt_123"), "evt_123");
        let long = "x".repeat(129);
        assert_eq!(fifo_safe_id(&long).len(), 64);
        assert_eq!(fifo_safe_id(&long), fifo_safe_id(&long));
        assert_ne!(fifo_safe_id("évt"), "évt");
        assert_ne!(fifo_safe_id("a b"), "a b");
        assert_eq!(fifo_safe_id("").len(), 64);
    }
}

/// Sends requests built here to a real moto server with its IAM signature checks switched on, so
/// a wrong signature would be refused exactly as AWS refuses it (moto recomputes it with botocore).
#[cfg(all(test, feature = "native"))]
mod against_moto;
