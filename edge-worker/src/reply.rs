//! Small JSON responses. Error bodies are a short code only: never a secret, a signature or
//! anything of the payload.

use crate::Result;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::Response;

#[wasm_bindgen(inline_js = r#"
export function json(status, body) {
  return new Response(body, { status, headers: { "content-type": "application/json" } });
}
"#)]
extern "C" {
    /// `body` must already be JSON. One call into JavaScript for the whole answer, where
    /// `web_sys`'s `Headers`, `set`, `ResponseInit` and `Response` took six.
    #[wasm_bindgen(catch)]
    pub fn json(status: u16, body: &str) -> Result<Response>;
}

/// `{"error":"<code>"}`; codes are fixed ASCII identifiers, so they need no escaping.
pub fn error(status: u16, code: &str) -> Result<Response> {
    debug_assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    json(status, &format!(r#"{{"error":"{code}"}}"#))
}

/// `{"status":"enqueued","event_id":...}` with the id escaped as JSON.
pub fn enqueued(event_id: &str) -> Result<Response> {
    let id = serde_json::to_string(event_id).map_err(|e| JsValue::from_str(&e.to_string()))?;
    json(200, &format!(r#"{{"status":"enqueued","event_id":{id}}}"#))
}

pub fn method_not_allowed(allow: &str) -> Result<Response> {
    let response = error(405, "method_not_allowed")?;
    response.headers().set("allow", allow)?;
    Ok(response)
}
