//! The few JavaScript APIs the Worker calls directly (`fetch`, body reading), on `web_sys` types,
//! without the `worker` crate's request and response wrappers.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Request, RequestInit, Response};

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The global `fetch` (Workers have no `window`).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Promise;
}

/// `fetch(url, init)`, resolved.
pub async fn fetch(url: &str, init: &RequestInit) -> Result<Response, JsValue> {
    JsFuture::from(global_fetch(url, init))
        .await?
        .dyn_into::<Response>()
}

/// A `Response`'s whole body as bytes.
pub async fn response_bytes(response: &Response) -> Result<Vec<u8>, JsValue> {
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The request body in one piece (`arrayBuffer()`: one copy into wasm). For a body whose size is
/// known and within the limit.
pub async fn request_bytes(request: &Request) -> Result<Vec<u8>, JsValue> {
    let buffer = JsFuture::from(request.array_buffer()?).await?;
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
        let step = JsFuture::from(reader.read()).await?;
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
