//! `bin/chaos`: the whole local stack under a seeded workload and seeded faults, then the
//! promise checked from ChargebackStop's own records against our tables and the DLQ.
//!
//! - [`plan`]: the seeded schedule (workload and faults), pure;
//! - [`stack`]: devstack's `Stack` with TCP gates in front of the emulator, kill/restart;
//! - [`gate`]: the TCP gate;
//! - [`relay`]: the runtime-API relay that fails a killed instance's invocation;
//! - [`driver`]: plays the plan;
//! - [`collect`]: the dumps (and `--out DIR`);
//! - [`check`]: the invariants over the dumps, pure.

pub mod check;
pub mod collect;
pub mod driver;
pub use devstack::gate;
pub mod plan;
pub mod relay;
pub mod stack;
