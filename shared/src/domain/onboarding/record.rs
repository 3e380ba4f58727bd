//! The onboarding rules of a customer's record: a new record for a spec, and a step marked done.
//! The record itself lives in `records::customer` (below both this and the store port).

use super::spec::CustomerSpec;
use crate::config::StackMode;
use crate::records::customer::{CustomerRecord, OnboardingStatus};
use std::collections::BTreeMap;

impl CustomerRecord {
    pub(super) fn new(spec: &CustomerSpec, mode: StackMode, now: &str) -> Self {
        Self {
            customer_id: spec.customer_id.clone(),
            mode,
            organisation_name: spec.organisation.name.clone(),
            organisation_id: None,
            refused_organisation_id: None,
            memberships: BTreeMap::new(),
            merchants: BTreeMap::new(),
            integration_id: None,
            enrolments: BTreeMap::new(),
            ruleset_id: None,
            decision_policy: spec.decision_policy.clone(),
            status: OnboardingStatus::InProgress,
            steps_done: Vec::new(),
            last_failure: None,
            run_token: None,
            run_lease_until: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    pub(super) fn mark_done(&mut self, step: String) {
        if !self.steps_done.contains(&step) {
            self.steps_done.push(step);
        }
    }
}
