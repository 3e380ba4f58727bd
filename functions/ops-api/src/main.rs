//! The ops API Lambda: read configuration, build the state, serve the router with lambda_http.
//! The same binary runs under `cargo lambda watch` locally.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_json_logs();
    let state = ops_api::wiring::from_env().await?;
    lambda_http::run(ops_api::router(state)).await
}
