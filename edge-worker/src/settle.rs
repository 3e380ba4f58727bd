//! Awaiting a JavaScript promise from Rust through one callback that lives as long as the isolate,
//! instead of `wasm_bindgen_futures::JsFuture`.
//!
//! Why: `JsFuture` makes two wasm-bindgen `Closure`s per promise, and wasm-bindgen's glue registers
//! every closure in a `FinalizationRegistry` (to free its Rust half if JavaScript drops it). V8
//! keeps each registration's `WeakCell` in the old generation, and the young-generation collector
//! treats what it points at as alive: every closure, with what it holds, is promoted, and only a
//! mark-compact frees it. At four promises per delivery that is eight promoted closures per
//! webhook, and the Worker's slowest requests were the ones in flight during those mark-compacts
//! (`edge-worker/README.md`, "Benchmark", has the figures).
//!
//! Here the JavaScript side attaches two arrow functions to the promise (plain short-lived
//! garbage) that call [`ON_SETTLED`], created once, with the promise's id. [`Waiting`] is the
//! Rust bookkeeping, free of JavaScript so it is tested natively.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// The promises being awaited, by id: not settled yet (with the task to wake), or settled and
/// not yet taken. An id is removed when its value is taken or its future dropped; a value that
/// arrives for an id no longer here is dropped (its future was dropped first). A list searched
/// by id, not a map: a few promises per request in flight, and no hasher in the bundle.
pub struct Waiting<T> {
    next: u32,
    slots: Vec<(u32, Slot<T>)>,
}

enum Slot<T> {
    Pending(Option<Waker>),
    Settled(T),
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Self {
            next: 0,
            slots: Vec::new(),
        }
    }
}

impl<T> Waiting<T> {
    /// A fresh id, never one still in use (ids wrap after 2^32 promises in one isolate).
    pub fn open(&mut self) -> u32 {
        loop {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            if self.find(id).is_none() {
                self.slots.push((id, Slot::Pending(None)));
                return id;
            }
        }
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(|(open, _)| *open == id)
    }

    fn take(&mut self, id: u32) -> Option<Slot<T>> {
        Some(self.slots.swap_remove(self.find(id)?).1)
    }

    /// Record `id`'s value; the task to wake, if one is waiting. A second value for the same id
    /// (never sent by a promise) and a value for a closed id are dropped.
    #[must_use]
    pub fn settle(&mut self, id: u32, value: T) -> Option<Waker> {
        let index = self.find(id)?;
        match &mut self.slots[index].1 {
            slot @ Slot::Pending(_) => {
                let Slot::Pending(waker) = std::mem::replace(slot, Slot::Settled(value)) else {
                    unreachable!("matched Pending")
                };
                waker
            }
            Slot::Settled(_) => None,
        }
    }

    /// `id`'s value if it has settled (closing the id), else remember `waker`.
    pub fn poll(&mut self, id: u32, waker: &Waker) -> Poll<T> {
        match self.take(id) {
            Some(Slot::Settled(value)) => Poll::Ready(value),
            Some(Slot::Pending(_)) => {
                self.slots.push((id, Slot::Pending(Some(waker.clone()))));
                Poll::Pending
            }
            None => panic!("promise {id} polled after it was taken or dropped"),
        }
    }

    /// Forget `id` (its future was dropped, settled or not).
    pub fn close(&mut self, id: u32) {
        self.take(id);
    }

    /// Ids open now.
    #[cfg(test)]
    pub fn open_count(&self) -> usize {
        self.slots.len()
    }
}

#[wasm_bindgen(inline_js = r#"
export function settle(promise, id, onSettled) {
  promise.then((value) => onSettled(id, value, true), (error) => onSettled(id, error, false));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = settle)]
    fn settle_js(promise: &Promise, id: u32, on_settled: &js_sys::Function);
}

type Outcome = Result<JsValue, JsValue>;

thread_local! {
    static WAITING: RefCell<Waiting<Outcome>> = RefCell::new(Waiting::default());
    /// The one callback every awaited promise calls, for the isolate's lifetime.
    static ON_SETTLED: Closure<dyn Fn(u32, JsValue, bool)> =
        Closure::new(|id: u32, value: JsValue, fulfilled: bool| {
            let outcome = if fulfilled { Ok(value) } else { Err(value) };
            // The borrow ends before the wake (which only queues the task).
            let waker = WAITING.with(|w| w.borrow_mut().settle(id, outcome));
            if let Some(waker) = waker {
                waker.wake();
            }
        });
}

/// A promise's value (`Ok`) or rejection (`Err`), as `JsFuture` gives it.
pub struct Settled {
    id: u32,
    taken: bool,
}

/// Await `promise` without a closure of its own.
pub fn settled(promise: &Promise) -> Settled {
    let id = WAITING.with(|w| w.borrow_mut().open());
    ON_SETTLED.with(|callback| settle_js(promise, id, callback.as_ref().unchecked_ref()));
    Settled { id, taken: false }
}

impl Future for Settled {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let polled = WAITING.with(|w| w.borrow_mut().poll(self.id, cx.waker()));
        if polled.is_ready() {
            self.taken = true;
        }
        polled
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if !self.taken {
            WAITING.with(|w| w.borrow_mut().close(self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn a_value_settled_before_the_first_poll_is_ready_at_once() {
        let mut w = Waiting::default();
        let id = w.open();
        assert!(w.settle(id, "v").is_none(), "nobody waits yet");
        let (_, waker) = waker();
        assert_eq!(w.poll(id, &waker), Poll::Ready("v"));
        assert_eq!(w.open_count(), 0);
    }

    #[test]
    fn a_waiting_task_is_woken_once_with_its_own_value() {
        let mut w = Waiting::default();
        let a = w.open();
        let b = w.open();
        let (count, waker) = waker();
        assert_eq!(w.poll(a, &waker), Poll::Pending);
        assert_eq!(w.poll(b, &waker), Poll::Pending);
        w.settle(b, "b").expect("b's task").wake();
        w.settle(a, "a").expect("a's task").wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(w.poll(a, &waker), Poll::Ready("a"));
        assert_eq!(w.poll(b, &waker), Poll::Ready("b"));
    }

    #[test]
    fn a_late_value_for_a_dropped_future_never_reaches_another() {
        let mut w = Waiting::default();
        let dropped = w.open();
        w.close(dropped);
        let next = w.open();
        assert_ne!(next, dropped);
        assert!(w.settle(dropped, "late").is_none());
        let (_, waker) = waker();
        assert_eq!(w.poll(next, &waker), Poll::Pending);
        assert_eq!(w.open_count(), 1, "the late value was not kept");
    }

    #[test]
    fn a_second_value_for_one_id_is_ignored() {
        let mut w = Waiting::default();
        let id = w.open();
        let _ = w.settle(id, "first");
        assert!(w.settle(id, "second").is_none());
        let (_, waker) = waker();
        assert_eq!(w.poll(id, &waker), Poll::Ready("first"));
    }

    #[test]
    fn ids_wrap_around_without_reusing_one_in_use() {
        let mut w: Waiting<&str> = Waiting::default();
        let held = w.open();
        assert_eq!(held, 0);
        w.next = u32::MAX;
        assert_eq!(w.open(), u32::MAX);
        assert_eq!(w.open(), 1, "0 is still waiting");
    }
}
