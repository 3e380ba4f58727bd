//! An enrolment as kept in the `enrolments` table: the API's view, its `live` flag and our
//! status history. The rules that write it are in `domain::enrolment_lifecycle`;
//! `ports::enrolment_store` stores it.

use crate::models::enrolment::{Enrolment, EnrolmentStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: EnrolmentStatus,
    /// The enrolment's `updated_at` (or when we fetched it, if it has none).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The event that made us fetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentRecord {
    /// Table key (= `enrolment.id`).
    pub enrolment_id: String,
    /// Every field as last fetched, top-level (`organisation_id` is the index key). Its `note`
    /// is the customer-facing note; a later view without a note does not erase it while the
    /// enrolment still needs attention.
    #[serde(flatten)]
    pub enrolment: Enrolment,
    pub version_key: String,
    pub fetched_at: String,
    /// True only while ENABLED.
    pub live: bool,
    /// Every status seen, oldest first; one entry per change.
    #[serde(default)]
    pub status_history: Vec<StatusChange>,
    pub revision: u64,
}
