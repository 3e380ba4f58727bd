//! What we store per customer (the `customers` table): every id ChargebackStop returned and how
//! far onboarding got. The rules that write it are in `domain::onboarding`;
//! `ports::customer_store` stores it.

use crate::records::stack_mode::StackMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnboardingStatus {
    InProgress,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEnrolment {
    pub enrolment_id: String,
    #[serde(rename = "type")]
    pub enrolment_type: String,
    pub status: String,
    /// TEST only: the simulate-enable step has been done for it.
    #[serde(default)]
    pub simulated_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingFailure {
    pub step: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub customer_id: String,
    pub mode: StackMode,
    pub organisation_name: String,
    /// Absent until the organisation exists (it is the `organisation-index` key, and a GSI key
    /// attribute may not be NULL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    /// An organisation ChargebackStop created in the other mode: never used, kept for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_organisation_id: Option<String>,
    /// email → membership id
    #[serde(default)]
    pub memberships: BTreeMap<String, String>,
    /// external_id → merchant id
    #[serde(default)]
    pub merchants: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// `ETHOCA_ALERT#1` → the enrolment
    #[serde(default)]
    pub enrolments: BTreeMap<String, StoredEnrolment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_policy: Option<serde_json::Value>,
    pub status: OnboardingStatus,
    /// Steps in the order they completed, each once.
    #[serde(default)]
    pub steps_done: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<OnboardingFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_lease_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CustomerRecord {
    /// The enrolment ids of one type, in key order.
    pub fn enrolment_ids_of_type(&self, enrolment_type: &str) -> Vec<String> {
        self.enrolments
            .values()
            .filter(|e| e.enrolment_type == enrolment_type)
            .map(|e| e.enrolment_id.clone())
            .collect()
    }
}
