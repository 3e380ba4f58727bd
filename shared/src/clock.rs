//! Time is a port: domain code never reads the system clock. Lambda code uses `SystemClock`;
//! the Worker passes `Date.now()` in; tests use `FixedClock`.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock. Not available on wasm32-unknown-unknown, where `SystemTime::now()` panics.
#[cfg(feature = "native")]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[cfg(feature = "native")]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now_from_system()
    }
}

#[cfg(feature = "native")]
trait NowFromSystem {
    fn now_from_system() -> DateTime<Utc>;
}

#[cfg(feature = "native")]
impl NowFromSystem for Utc {
    fn now_from_system() -> DateTime<Utc> {
        // chrono is built without its `clock` feature so that nothing in the wasm build can
        // reach the system clock by accident; native code goes through here.
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        DateTime::<Utc>::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
            .unwrap_or_default()
    }
}

/// A clock for tests that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}
