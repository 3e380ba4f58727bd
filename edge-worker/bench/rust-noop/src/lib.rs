//! The Rust no-op Worker for `bin/bench` (row `rust-noop`): answers 200 and does nothing else,
//! with the same entry point as the real Worker, so the gap between the two rows is our work.

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let response = Response::ok(r#"{"status":"ok"}"#)?;
    response.headers().set("content-type", "application/json")?;
    Ok(response)
}
