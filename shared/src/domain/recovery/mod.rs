//! Recovering from what went wrong: the webhook archive (`archive`), replaying archived events
//! through the processor (`replay`), the dead-letter queue (`dlq`), deliveries the edge refused
//! (`refused`), and rebuilding the alerts and enrolments tables (`rebuild`). Driven from `cbs`
//! and the ops API.

pub mod archive;
pub mod dlq;
mod journal_restore;
pub mod rebuild;
#[cfg(test)]
mod rebuild_tests;
pub mod refused;
pub mod replay;
#[cfg(test)]
mod replay_refused_tests;
#[cfg(test)]
mod tests;
