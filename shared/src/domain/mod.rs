//! Plain types and decisions, no I/O: alert policy, enrolment lifecycle, order batching,
//! sweep selection.
pub mod onboarding;
pub mod order_intake;
pub mod order_upload;
pub mod rate_limit;
