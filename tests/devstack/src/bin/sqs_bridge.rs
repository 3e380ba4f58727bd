//! `sqs-bridge`: feeds the edge queue to process-events the way an event source mapping does
//! (see `devstack::bridge`). Reads the emulator from AWS_ENDPOINT_URL.

use clap::Parser;

#[derive(Parser)]
#[command(about = "Local SQS -> Lambda event source mapping")]
struct Args {
    #[arg(long, env = "EDGE_QUEUE_URL")]
    queue_url: String,
    #[arg(long)]
    queue_arn: String,
    /// The Lambda invoke API (cargo lambda watch), e.g. http://127.0.0.1:9000
    #[arg(long)]
    lambda_url: String,
    #[arg(long, default_value = "process-events")]
    function: String,
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().json().init();
    let args = Args::parse();
    let config = devstack::moto::sdk_config(&args.endpoint).await;
    let bridge = devstack::Bridge::start(
        aws_sdk_sqs::Client::new(&config),
        devstack::LambdaInvoker::new(args.lambda_url),
        devstack::BridgeOptions::new(&args.queue_url, &args.queue_arn, &args.function),
    );
    tokio::signal::ctrl_c().await?;
    drop(bridge);
    Ok(())
}
