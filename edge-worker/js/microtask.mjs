// `queueMicrotask` for wasm-bindgen's glue only: bin/build imports it at the top of the generated
// index.js, where it shadows the global of that name. The glue's task queue (js-sys's
// `futures::queue`) calls `queueMicrotask` each time a Rust future is woken: four to six times per
// delivery.
//
// workerd's `queueMicrotask` wraps every callback it is given in a native function that holds a
// weak handle to its C++ side. A young-generation collection cannot free those, so each one is
// copied and promoted, and waits for a full collection (`bin/bench --trace-gc`, 2026-12-02: 6.9
// embedder handles promoted per delivery with it, 2.4 without; median young pause 9.9 ms
// against 4.8; p99 34.9 ms against 25.3, JavaScript's 25.0).
//
// A then() on a resolved promise is V8's own microtask, with nothing of workerd's: the fallback
// js-sys itself uses where `queueMicrotask` is missing. Same order, same tick.
const resolved = Promise.resolve();

export function queueMicrotask(task) {
  resolved.then(task);
}
