//! The edge of the platform: a Cloudflare Worker that receives ChargebackStop's signed webhooks,
//! verifies them with the shared verifier and puts them on the SQS edge queue.
//!
//! It answers 2xx only once SQS has accepted the message, so ChargebackStop retries (for up to two
//! days) anything we did not durably keep. Everything else happens behind the queue.
//!
//! The handler takes the raw `web_sys::Request` and returns a `web_sys::Response`: the stock
//! `worker::Request` conversion parses the URL in wasm on every request and pulls the `url`
//! crate into the bundle (workers-rs issue #1044); we only need the path.

mod config;
mod delivery;
mod enqueue;
mod envelope;
mod init;
mod js;
mod log;
mod message;
mod refused;
mod reply;
mod settle;
mod sigv4;
mod time;
mod webcrypto;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::{Request, Response};

/// Errors are JavaScript values (what the runtime's APIs throw).
pub type Result<T> = std::result::Result<T, JsValue>;

/// The path ChargebackStop is configured to deliver to.
pub const WEBHOOK_PATH: &str = "/webhooks/chargebackstop";

/// The Worker's `fetch` handler, called by the entry module (`js/entry.mjs`) with the runtime's
/// request, `env` and context. An error no handler turned into a response is a 500 (and a log line).
#[wasm_bindgen]
pub async fn fetch(req: Request, env: JsValue, _ctx: JsValue) -> Result<JsValue> {
    let response = match route(req, &env).await {
        Ok(response) => response,
        Err(error) => {
            log::internal_error(&error);
            reply::error(500, "internal_error")?
        }
    };
    Ok(response.into())
}

async fn route(req: Request, env: &JsValue) -> Result<Response> {
    let url = req.url();
    let method = req.method();
    match (path_of(&url), method.as_str()) {
        (WEBHOOK_PATH, "POST") => delivery::receive(req, env).await,
        (WEBHOOK_PATH, _) => reply::method_not_allowed("POST"),
        ("/healthz", "GET" | "HEAD") => reply::json(200, r#"{"status":"ok"}"#),
        ("/healthz", _) => reply::method_not_allowed("GET, HEAD"),
        _ => reply::error(404, "not_found"),
    }
}

/// The path of an absolute URL as the runtime gives it (`scheme://authority/path?query#frag`),
/// without parsing the rest. The runtime has already normalised it.
fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path = match after_scheme.find(['/', '?', '#']) {
        Some(i) if after_scheme[i..].starts_with('/') => &after_scheme[i..],
        _ => return "/",
    };
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn path_of_takes_only_the_path() {
        assert_eq!(
            path_of("https://edge.example/webhooks/chargebackstop"),
            "/webhooks/chargebackstop"
        );
        assert_eq!(path_of("http://127.0.0.1:8787/healthz?x=1#y"), "/healthz");
        assert_eq!(path_of("http://edge.test"), "/");
        assert_eq!(path_of("http://edge.test?q=/a"), "/");
        assert_eq!(path_of("http://edge.test/a/b#/c"), "/a/b");
    }
}
