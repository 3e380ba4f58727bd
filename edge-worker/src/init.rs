//! The start-up glue the `worker` crate's `#[event(fetch)]` used to bring, which our entry module
//! (`js/entry.mjs`, bundled into `build/index.js`) relies on: the `__worker_init_state` export
//! and, after a panic or an abort, a fresh wasm instance for the next request. Adapted from `worker` 0.8.7's `src/init.rs`
//! (Apache-2.0/MIT); the Worker no longer depends on that crate (its request, response, streams
//! and Durable Object glue were about a third of the bundle).

use std::panic;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "
export const state = globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
")]
extern "C" {
    type InitState;

    #[wasm_bindgen(thread_local_v2, js_name = state)]
    static INIT_STATE: InitState;

    #[wasm_bindgen(method, setter, js_name = criticalError)]
    fn set_critical_error(this: &InitState, val: bool);

    #[wasm_bindgen(method, getter, js_name = instanceId)]
    fn instance_id(this: &InitState) -> u32;

    #[wasm_bindgen(method, setter, js_name = instanceId)]
    fn set_instance_id(this: &InitState, val: u32);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(label: &str, error: &JsValue);
}

/// After an abort the glue re-instantiates the module before the next request.
fn on_abort() {
    wasm_bindgen::handler::schedule_reinit();
}

#[wasm_bindgen(start, private)]
fn init() {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let panic_err = js_sys::Error::new(&format!("Rust panic: {info}"));
        console_error("Critical", &panic_err.into());
        INIT_STATE.with(|s| s.set_critical_error(true));
    }));

    INIT_STATE.with(|s| {
        let id = s.instance_id();
        s.set_instance_id(id + 1);
    });

    wasm_bindgen::handler::set_on_abort(on_abort);
}

#[wasm_bindgen(js_name = "__worker_init_state")]
pub fn worker_init_state() -> JsValue {
    INIT_STATE.with(|s| s.into())
}
