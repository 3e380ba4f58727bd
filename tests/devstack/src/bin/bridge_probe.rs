//! `bridge-probe`: a minimal SQS-triggered function used by devstack's own tests to check the
//! bridge behaves like an event source mapping. Records whose body starts with "fail" are
//! reported in `batchItemFailures`; a body "crash" fails the whole invocation.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

async fn handle(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let body = record.body.unwrap_or_default();
        if body == "crash" {
            return Err("probe asked to crash".into());
        }
        if body.starts_with("fail") {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
