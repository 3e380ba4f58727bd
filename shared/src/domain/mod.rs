//! Plain types and decisions, no I/O: alert policy, enrolment lifecycle, order batching,
//! sweep selection.
pub mod onboarding;
