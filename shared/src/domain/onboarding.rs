//! Onboarding one customer, following ChargebackStop's partner integration guide:
//! organisation → memberships (optional) → merchants → a CUSTOM_ORDERS integration →
//! Ethoca and/or Verifi RDR enrolments (v2) → in TEST, simulate ENABLED → optional RDR ruleset.
//!
//! Every id ChargebackStop returns is saved in the customer's record as soon as its step
//! completes, so a run that fails midway (a 5xx, a crash, a timeout) is resumed by running it
//! again: steps whose id is already stored are skipped, nothing is created twice. A lease on the
//! record keeps two runs for the same customer from racing each other.
//!
//! TEST and LIVE are kept apart: the record carries the stack's mode, an organisation whose
//! `mode` differs from the stack's is refused before anything is created in it, and a partner key
//! whose prefix names the other mode is refused before any call.

mod api;
mod checks;
mod flow;
mod record;
mod spec;

pub use api::{ApiFailure, CreatedEnrolment, CreatedOrganisation, OnboardingApi};
pub use checks::{key_mode, refuse_key_of_other_mode, validate_spec, OnboardingError, SpecProblem};
pub use flow::Onboarding;
pub use spec::{
    CustomerSpec, EnrolmentSpec, IntegrationSpec, MembershipSpec, MerchantSpec, OrganisationSpec,
    RulesetSpec,
};

/// The customer's record lives in `records` (below both this and the store port); re-exported
/// here for the code that always found it here.
pub use crate::records::customer::{
    CustomerRecord, OnboardingFailure, OnboardingStatus, StoredEnrolment,
};

#[cfg(test)]
mod tests;
