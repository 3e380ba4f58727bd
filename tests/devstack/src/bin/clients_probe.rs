//! `clients-probe`: the floor of a function that creates its clients during init, for
//! `cbs-bench init`. The hello-world (`bridge-probe`) plus exactly what every function makes
//! before it takes work, and nothing of our own: JSON logs, the AWS configuration with a
//! DynamoDB and an SQS client, and the ChargebackStop client (its HTTPS stack and trust roots).
//! No table, queue or secret is read. Answers every SQS batch with no failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().init();
    let aws = shared::adapters::aws::load_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let api = shared::client::ChargebackStop::new(shared::client::ClientConfig::new(
        std::env::var("CBS_API_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:9".into()),
        shared::secret::Secret::new("cbs_test_clients_probe"),
    ))?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<SqsEvent>| {
        // Held so the clients live as long as the function, as in the real ones.
        let _clients = (&dynamo, &sqs, &api);
        async { Ok::<_, Error>(SqsBatchResponse::default()) }
    }))
    .await
}
