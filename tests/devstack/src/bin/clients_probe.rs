//! `clients-probe`: the floor of a function that creates its clients during init, for
//! `cbs-bench init`. The hello-world (`bridge-probe`) plus exactly what every function makes
//! before it takes work, and nothing of our own: JSON logs, the AWS configuration with a
//! DynamoDB and an SQS client, and the ChargebackStop client (its HTTPS stack and trust roots).
//! No table, queue or secret is read. Answers every SQS batch with no failures.
//!
//! `CBS_PROBE_UP_TO=<step>` stops init after that step, so `cbs-bench init` can show what each
//! step of that floor costs, in this one binary (the same size, the same dynamic linking), in
//! order: `nothing`, `logs`, `roots` (the trusted roots read once, `shared::tls`), `aws-config`
//! (the SDK's configuration and its HTTPS client), `sdk-clients` (DynamoDB and SQS). Unset: every
//! step, then the ChargebackStop client. An unknown step is refused before anything starts.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

/// The steps, in the order init takes them.
const STEPS: [&str; 5] = ["nothing", "logs", "roots", "aws-config", "sdk-clients"];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let last = match std::env::var("CBS_PROBE_UP_TO") {
        Ok(step) => STEPS.iter().position(|s| *s == step).ok_or_else(|| {
            format!(
                "CBS_PROBE_UP_TO={step}: not a step; the steps are {}",
                STEPS.join(", ")
            )
        })?,
        Err(_) => STEPS.len(),
    };
    let past = |step: &str| STEPS.iter().position(|s| *s == step).unwrap_or(0) <= last;

    if past("logs") {
        tracing_subscriber::fmt().json().init();
    }
    if past("roots") {
        shared::tls::trusted_roots();
    }
    let aws = if past("aws-config") {
        Some(shared::adapters::aws::load_config().await)
    } else {
        None
    };
    let sdk = match &aws {
        Some(aws) if past("sdk-clients") => Some((
            aws_sdk_dynamodb::Client::new(aws),
            aws_sdk_sqs::Client::new(aws),
        )),
        _ => None,
    };
    let api = if last == STEPS.len() {
        Some(shared::client::ChargebackStop::new(
            shared::client::ClientConfig::new(
                std::env::var("CBS_API_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:9".into()),
                shared::secret::Secret::new("cbs_test_clients_probe"),
            ),
        )?)
    } else {
        None
    };
    lambda_runtime::run(service_fn(move |_: LambdaEvent<SqsEvent>| {
        // Held so the clients live as long as the function, as in the real ones.
        let _clients = (&aws, &sdk, &api);
        async { Ok::<_, Error>(SqsBatchResponse::default()) }
    }))
    .await
}
