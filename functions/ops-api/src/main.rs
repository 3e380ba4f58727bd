//! The ops API Lambda: read configuration, build the state, serve the router with lambda_http.
//! The same binary runs under `cargo lambda watch` locally.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let state = ops_api::wiring::from_env().await?;
    lambda_http::run(ops_api::router(state)).await
}
