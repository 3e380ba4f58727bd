//! Typed models of every ChargebackStop object in the API reference pages.
//!
//! Wasm-safe (serde, serde_json, chrono only). Unknown enum values are kept in `Other(String)`
//! (see `string_enum`), unknown fields are ignored (or passed through where noted), and `None`
//! request fields are never sent.

mod string_enum;
#[cfg(test)]
mod test_support;

pub mod alert;
pub mod common;
pub mod enrolment;
pub mod error;
pub mod integration;
pub mod membership;
pub mod merchant;
pub mod order;
pub mod organisation;
pub mod page;
pub mod ruleset;

pub use alert::{
    Alert, AlertAction, AlertQuery, AlertSort, AlertStatus, CancelOutcome, RefundOutcome,
    SimulateAlert, UpdateAlert,
};
pub use common::{CardBrand, Link, MatchType};
pub use enrolment::{
    CreateEnrolment, DescriptorStatus, Enrolment, EnrolmentStatus, EnrolmentType,
    EthocaAlertDetails, EthocaDescriptor, SimulateEnrolmentStatus, VerifiRdrDetails,
};
pub use error::{ApiErrorBody, ApiErrorItem};
pub use integration::{CreateIntegration, Integration, IntegrationStatus, IntegrationType};
pub use membership::{CreateMembership, Membership, MembershipRole};
pub use merchant::{CreateMerchant, Merchant, MerchantType};
pub use order::{
    AuthorisationStatus, Dispute, DisputeStatus, Order, OrderBatchResponse, OrderError,
    OrderErrorCode, OrderStatus, OrderType, PatchOrder, PaymentMethodType, Refund, RefundStatus,
    Transaction,
};
pub use organisation::{CreateOrganisation, Organisation, OrganisationMode};
pub use page::Page;
pub use ruleset::{
    AmountOperator, CreateRuleset, DescriptorCriterion, JoinOperator, PatchRule, PatchRuleset,
    Rule, RuleParameters, RuleType, Ruleset, RulesetOutcome,
};
