//! Starts and stops the real local parts of the platform for end-to-end tests and `bin/dev`:
//! the AWS emulator (moto), the data resources from `infra/template.yaml`, the ChargebackStop
//! sandbox, the Lambda functions under `cargo lambda watch`, the SQS -> Lambda bridge, the
//! scheduler and the edge Worker.
//!
//! Every part binds 127.0.0.1 on a free port, is polled until it answers, writes its logs to a
//! file under [`log_dir()`], and is stopped (its whole process group) when its handle is dropped.

pub mod billing;
pub mod bridge;
pub mod functions;
pub mod gate;
pub mod moto;
pub mod not_found_gate;
pub mod orders_customer;
pub mod paths;
pub mod process;
pub mod resources;
pub mod runtime_stub;
pub mod sandbox;
pub mod sandbox_client;
pub mod scenario;
pub mod scheduler;
pub mod stack;
pub mod wait;
pub mod worker;

pub use billing::Billing;
pub use bridge::{Bridge, BridgeOptions, BridgeStats};
pub use functions::{Functions, LambdaInvoker};
pub use moto::Moto;
pub use paths::log_dir;
pub use resources::{QueueOptions, Resources};
pub use sandbox::{Sandbox, SandboxOptions};
pub use sandbox_client::SandboxClient;
pub use scheduler::Scheduler;
pub use stack::{AwsCaller, AwsEndpointVia, Customer, Stack, StackOptions, WorkerMode};
pub use worker::{Worker, WorkerOptions};
