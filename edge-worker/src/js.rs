//! The few JavaScript APIs the Worker calls directly (`fetch`, body reading), on `web_sys` types,
//! without the `worker` crate's request and response wrappers.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ReadableStreamDefaultReader, Request};

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function post(url, headerLines, body, timeoutMs) {
  // A plain object: workerd reads it into its own header list in one call, where a Headers
  // object takes one call per header.
  const headers = {};
  const lines = headerLines.split("\n");
  for (let i = 0; i + 1 < lines.length; i += 2) headers[lines[i]] = lines[i + 1];
  return fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) })
    .then((r) => r.text().then((text) => [r.status, text]));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = post)]
    fn post_js(
        url: &str,
        header_lines: &str,
        body: &Uint8Array,
        timeout_ms: u32,
    ) -> Result<Promise, JsValue>;
}

/// `POST url` with `headers` and `body`, aborted after `timeout_ms` (the answer's body included):
/// the answer's status and body. One call and one promise: the headers cross as one string, the
/// request and the answer's body are read on the JavaScript side.
pub async fn post(
    url: &str,
    headers: &[(String, String)],
    body: &Uint8Array,
    timeout_ms: u32,
) -> Result<(u16, Vec<u8>), JsValue> {
    let mut lines = String::with_capacity(512);
    for (name, value) in headers {
        // Header names and values never hold a line break (`Headers` would refuse them).
        lines.push_str(name);
        lines.push('\n');
        lines.push_str(value);
        lines.push('\n');
    }
    let answer: js_sys::Array = crate::settle::settled(&post_js(url, &lines, body, timeout_ms)?)
        .await?
        .unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    // SQS answers in JSON (or XML): text, read as text, with no buffer of its own on either side.
    let text = answer.get(1).as_string().unwrap_or_default();
    Ok((status, text.into_bytes()))
}

/// The request body in one piece (`arrayBuffer()`: one copy into wasm). For a body whose size is
/// known and within the limit.
pub async fn request_bytes(request: &Request) -> Result<Vec<u8>, JsValue> {
    let buffer = crate::settle::settled(&request.array_buffer()?).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Reads the request body chunk by chunk, handing each to `take` until it returns `false`
/// (then the rest is left unread). No body at all is no chunk.
pub async fn for_each_chunk(
    request: &Request,
    mut take: impl FnMut(&Uint8Array) -> bool,
) -> Result<(), JsValue> {
    let Some(stream) = request.body() else {
        return Ok(());
    };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    loop {
        let step = crate::settle::settled(&reader.read()).await?;
        let done = js_sys::Reflect::get(&step, &JsValue::from_str("done"))?;
        if done.is_truthy() {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&step, &JsValue::from_str("value"))?;
        let chunk: Uint8Array = value.dyn_into()?;
        if !take(&chunk) {
            let _ = reader.cancel();
            return Ok(());
        }
    }
}

/// The name of a JavaScript error (`TimeoutError`, `AbortError`, `TypeError`), if it has one.
pub fn error_name(error: &JsValue) -> Option<String> {
    js_sys::Reflect::get(error, &JsValue::from_str("name"))
        .ok()?
        .as_string()
}
