//! The edge of the platform: a Cloudflare Worker that receives ChargebackStop's signed webhooks,
//! verifies them with the shared verifier and puts them on the SQS edge queue.
//!
//! It answers 2xx only once SQS has accepted the message, so ChargebackStop retries (for up to two
//! days) anything we did not durably keep. Everything else happens behind the queue.

mod config;
mod delivery;
mod enqueue;
mod log;
mod message;
mod reply;

use worker::{event, Context, Env, Method, Request, Response, Result};

/// The path ChargebackStop is configured to deliver to.
pub const WEBHOOK_PATH: &str = "/webhooks/chargebackstop";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    match (path.as_str(), req.method()) {
        (WEBHOOK_PATH, Method::Post) => delivery::receive(req, &env).await,
        (WEBHOOK_PATH, _) => reply::method_not_allowed("POST"),
        ("/healthz", Method::Get | Method::Head) => {
            reply::json(200, &serde_json::json!({"status": "ok"}))
        }
        ("/healthz", _) => reply::method_not_allowed("GET, HEAD"),
        _ => reply::error(404, "not_found"),
    }
}
