//! The one crate of logic. Entry points (Lambda binaries, the Worker, the CLI) only read
//! configuration, build adapters and call into here.
//!
//! Without the `native` feature this crate is the wasm-safe core the Worker uses: it never reads
//! the system clock (`SystemTime::now()` panics on wasm32-unknown-unknown), does no I/O and pulls
//! in neither tokio nor the AWS SDK.

pub mod clock;
pub mod event;
pub mod models;
pub mod secret;
pub mod signature;
pub mod sqs_request;
pub mod validation;

#[cfg(feature = "native")]
pub mod adapters;
#[cfg(feature = "native")]
pub mod client;
#[cfg(feature = "native")]
pub mod config;
#[cfg(feature = "native")]
pub mod domain;
#[cfg(feature = "native")]
pub mod ports;
#[cfg(feature = "native")]
pub mod records;
#[cfg(feature = "native")]
pub mod telemetry;
#[cfg(feature = "native")]
pub mod tls;
