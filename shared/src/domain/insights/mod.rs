//! Insights: what an operations lead and a customer success manager look at every morning.
//! Counters per organisation per day (`facts`: what a record contributes; `counting`: kept
//! current where alerts and orders are written; `backfill`: rebuilt from stored records), and
//! the views drawn from them (`report`). Stored by `ports::insights_store`.
pub mod backfill;
pub mod counting;
pub mod export;
pub mod facts;
pub mod gauges;
#[cfg(test)]
mod intake_cost_tests;
pub mod report;
#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;

pub use counting::{count_match_outcome, CountingAlertStore, CountingOrderOutbox};
pub use facts::MatchOutcome;
