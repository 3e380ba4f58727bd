//! One module per resource; `crate::router` mounts them.
pub mod alerts;
pub mod enrolments;
pub mod escalations;
pub mod insights;
pub mod meta;
pub mod onboarding;
pub mod orders;
pub mod recovery;
