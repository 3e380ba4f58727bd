//! What every DynamoDB adapter of the event pipeline shares: the client, the table name, the
//! mapping of SDK errors to `StoreError` kinds, and read/write counters (the figures "DynamoDB
//! reads and writes per event" come from these).

use crate::ports::store_error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Request counts of one process (or one test), shared by the adapters built with it.
#[derive(Debug, Default)]
pub struct DynamoCounters {
    reads: AtomicU64,
    writes: AtomicU64,
}

impl DynamoCounters {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) name: String,
    pub(crate) counters: Arc<DynamoCounters>,
}

impl Table {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        name: impl Into<String>,
        counters: Arc<DynamoCounters>,
    ) -> Self {
        Self {
            client,
            name: name.into(),
            counters,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Classify an SDK failure. Throttling, timeouts and 5xx are transient (SQS redelivers);
    /// anything else (missing table, validation) is permanent and needs a person.
    pub(crate) fn error<E>(&self, operation: &'static str, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = |detail: String| StoreError::Transient {
            operation,
            table: self.name.clone(),
            detail,
        };
        match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_string();
                let message = service.err().message().unwrap_or_default().to_string();
                let detail = format!("{code}: {message}");
                let retryable = matches!(
                    code.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "TransactionConflictException"
                        | "LimitExceededException"
                ) || service.raw().status().is_server_error();
                if retryable {
                    transient(detail)
                } else {
                    StoreError::Permanent {
                        operation,
                        table: self.name.clone(),
                        detail,
                    }
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => transient(format!("{err}")),
            _ => StoreError::Permanent {
                operation,
                table: self.name.clone(),
                detail: format!("{err}"),
            },
        }
    }

    pub(crate) fn bad_item(
        &self,
        operation: &'static str,
        err: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Permanent {
            operation,
            table: self.name.clone(),
            detail: format!("item does not map: {err}"),
        }
    }
}

/// Whether an SDK error is DynamoDB's ConditionalCheckFailedException.
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    matches!(err, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}
