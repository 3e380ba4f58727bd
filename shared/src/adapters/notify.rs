//! The implementations of the one notification port (`ports::notifier`):
//! - `SnsNotifier`: publish to an SNS topic (`NOTIFY_TOPIC_ARN`), in the cloud;
//! - `LogNotifier`: a JSON log line (`tracing`), always on locally;
//! - `FileSink`: append one JSON line per notification (`NOTIFY_SINK=file:///path`);
//! - `HttpSink`: POST the JSON to a URL (`NOTIFY_SINK=http://...`).
//!
//! `from_env` picks them; it refuses to start when neither variable is set, so a deployment
//! without a way to reach a person fails at start-up rather than silently.

use crate::config::{optional, ConfigError};
use crate::ports::notifier::{Notifier, NotifyError, OpsNotification};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, n: &OpsNotification) -> Result<(), NotifyError> {
        let message = serde_json::to_string(n).map_err(|e| NotifyError::Permanent {
            sink: "sns",
            detail: e.to_string(),
        })?;
        // SNS subjects are limited to 100 characters.
        let subject: String = n.subject.chars().take(100).collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| NotifyError::Transient {
                sink: "sns",
                detail: aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}

/// Writes the notification as a structured log line (no payloads, no secrets: only ids,
/// statuses and the note ChargebackStop meant people to read).
#[derive(Debug, Default)]
pub struct LogNotifier;

#[async_trait::async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, n: &OpsNotification) -> Result<(), NotifyError> {
        tracing::warn!(
            notification = %n.kind,
            object_id = %n.object_id,
            organisation_id = n.organisation_id.as_deref().unwrap_or(""),
            status = n.status.as_deref().unwrap_or(""),
            subject = %n.subject,
            "operations notification"
        );
        Ok(())
    }
}

/// Appends JSON lines to a local file (tests read it back).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for FileSink {
    async fn notify(&self, n: &OpsNotification) -> Result<(), NotifyError> {
        let fail = |e: std::io::Error| NotifyError::Transient {
            sink: "file",
            detail: e.to_string(),
        };
        let mut line = serde_json::to_vec(n).map_err(|e| NotifyError::Permanent {
            sink: "file",
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(fail)?;
        file.write_all(&line).await.map_err(fail)?;
        file.flush().await.map_err(fail)
    }
}

/// POSTs the JSON to a local collector.
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
}

impl HttpSink {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            client: crate::tls::http_client_builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            url: url.into(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for HttpSink {
    async fn notify(&self, n: &OpsNotification) -> Result<(), NotifyError> {
        let response = self
            .client
            .post(&self.url)
            .json(n)
            .send()
            .await
            .map_err(|e| NotifyError::Transient {
                sink: "http",
                detail: e.without_url().to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(NotifyError::Transient {
                sink: "http",
                detail: format!("status {status}"),
            })
        } else {
            Err(NotifyError::Permanent {
                sink: "http",
                detail: format!("status {status}"),
            })
        }
    }
}

/// Sends each notification to every sink in turn; the first failure is returned (the event is
/// then redelivered, so a sink may see a notification twice: at least once, never lost).
pub struct FanOut(pub Vec<Box<dyn Notifier>>);

#[async_trait::async_trait]
impl Notifier for FanOut {
    async fn notify(&self, n: &OpsNotification) -> Result<(), NotifyError> {
        for sink in &self.0 {
            sink.notify(n).await?;
        }
        Ok(())
    }
}

/// Where notifications go, as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyTarget {
    Sns {
        topic_arn: String,
    },
    File(PathBuf),
    Http(String),
    /// `NOTIFY_SINK=log`: the log line only.
    LogOnly,
}

impl NotifyTarget {
    /// `NOTIFY_TOPIC_ARN` wins; otherwise `NOTIFY_SINK` (`file:///path`, `http(s)://...`, `log`).
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Some(topic_arn) = optional("NOTIFY_TOPIC_ARN") {
            return Ok(NotifyTarget::Sns { topic_arn });
        }
        let sink = optional("NOTIFY_SINK")
            .ok_or(ConfigError::Missing("NOTIFY_TOPIC_ARN or NOTIFY_SINK"))?;
        Self::parse_sink(&sink)
    }

    pub fn parse_sink(sink: &str) -> Result<Self, ConfigError> {
        if let Some(path) = sink.strip_prefix("file://") {
            if path.is_empty() {
                return Err(ConfigError::Invalid {
                    name: "NOTIFY_SINK",
                    reason: "file:// needs a path".into(),
                });
            }
            Ok(NotifyTarget::File(PathBuf::from(path)))
        } else if sink.starts_with("http://") || sink.starts_with("https://") {
            Ok(NotifyTarget::Http(sink.to_string()))
        } else if sink == "log" {
            Ok(NotifyTarget::LogOnly)
        } else {
            Err(ConfigError::Invalid {
                name: "NOTIFY_SINK",
                reason: "expected file:///path, http(s)://url or log".into(),
            })
        }
    }

    /// Builds the notifier: the log line always, plus the configured sink.
    pub fn build(&self, aws: Option<&aws_config::SdkConfig>) -> Box<dyn Notifier> {
        let mut sinks: Vec<Box<dyn Notifier>> = vec![Box::new(LogNotifier)];
        match self {
            NotifyTarget::Sns { topic_arn } => {
                let client = match aws {
                    Some(config) => aws_sdk_sns::Client::new(config),
                    None => aws_sdk_sns::Client::from_conf(
                        aws_sdk_sns::Config::builder()
                            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                            .build(),
                    ),
                };
                sinks.push(Box::new(SnsNotifier::new(client, topic_arn.clone())));
            }
            NotifyTarget::File(path) => sinks.push(Box::new(FileSink::new(path.clone()))),
            NotifyTarget::Http(url) => sinks.push(Box::new(HttpSink::new(url.clone()))),
            NotifyTarget::LogOnly => {}
        }
        Box::new(FanOut(sinks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OpsNotification {
        OpsNotification {
            kind: "enrolment.failed".into(),
            subject: "Enrolment enrl_1 FAILED".into(),
            organisation_id: Some("org_1".into()),
            object_id: "enrl_1".into(),
            status: Some("FAILED".into()),
            note: Some("Descriptor rejected".into()),
            at: "2026-11-24T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn sinks_parse_from_their_url_form() {
        assert_eq!(
            NotifyTarget::parse_sink("file:///tmp/n.jsonl").unwrap(),
            NotifyTarget::File("/tmp/n.jsonl".into())
        );
        assert_eq!(
            NotifyTarget::parse_sink("http://127.0.0.1:9/x").unwrap(),
            NotifyTarget::Http("http://127.0.0.1:9/x".into())
        );
        assert_eq!(
            NotifyTarget::parse_sink("log").unwrap(),
            NotifyTarget::LogOnly
        );
        assert!(NotifyTarget::parse_sink("ftp://x").is_err());
        assert!(NotifyTarget::parse_sink("file://").is_err());
    }

    #[tokio::test]
    async fn file_sink_appends_one_json_line_per_notification() {
        let dir = std::env::temp_dir().join(format!("notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = NotifyTarget::File(path.clone()).build(None);
        sink.notify(&sample()).await.unwrap();
        sink.notify(&sample()).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<OpsNotification> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![sample(), sample()]);
    }
}
