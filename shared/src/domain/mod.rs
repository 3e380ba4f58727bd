//! Plain types and decisions, no I/O: alert policy, enrolment lifecycle, order batching,
//! sweep selection.
pub mod alert_policy;
pub mod alert_record;
pub mod deadline_sweep;
pub mod decision;
pub mod enrolment_lifecycle;
pub mod escalation;
pub mod event_processing;
pub mod insights;
pub mod matching;
pub mod onboarding;
pub mod order_intake;
pub mod order_upload;
pub mod rate_limit;
pub mod reconcile;
pub mod recovery;
pub mod refund_hook;
pub mod run_lease;
#[cfg(test)]
pub(crate) mod test_support;
