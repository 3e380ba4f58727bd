// The Worker's entry module. bin/build bundles it with wasm-bindgen's glue (`./index.js`, next to
// it in the staging directory) into build/index.js.
//
// A plain `export default { fetch }`, called once per request. worker-build's shim, used until
// 2026-12-02, made the default export a Proxy around a `WorkerEntrypoint` class and built, per
// request, an instance, a second Proxy with a fresh handler object and a third around `fetch`:
// measured here at 0.01-0.12 ms of CPU per request (eight A/B runs, all in favour of this one).
//
// Kept from that shim (worker-build 0.8.7, src/js/shim.js, Apache-2.0/MIT): after a trap
// (`WebAssembly.RuntimeError`, which a panic becomes) or a panic (src/init.rs sets
// `criticalError`), the wasm instance is reset before the next request. wasm-bindgen's own abort
// handler (src/init.rs) also re-instantiates it after an abort.
import * as glue from "./index.js";

Error.stackTraceLimit = 100;
const initState = glue.__worker_init_state();

function resetAfterCriticalError() {
  if (initState.criticalError) {
    console.log("Reinitializing Wasm application");
    glue.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

function noteIfCritical(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    console.error("Critical", error);
    initState.criticalError = true;
  }
}

// A trap inside a task the glue runs later (js/microtask.mjs) ends as an unhandled rejection, not
// an uncaught error: both are watched.
addEventListener("error", (event) => noteIfCritical(event.error));
addEventListener("unhandledrejection", (event) => noteIfCritical(event.reason));

export default {
  fetch(request, env, ctx) {
    resetAfterCriticalError();
    try {
      return glue.fetch(request, env, ctx);
    } catch (error) {
      noteIfCritical(error);
      throw error;
    }
  },
};
