//! Rulesets (RDR and Ethoca decisioning) and their rules.

use reqwest::Method;

use super::{ApiError, ChargebackStop, ListQuery, Repeat};
use crate::models::{CreateRuleset, Page, PatchRule, PatchRuleset, Rule, Ruleset};

impl ChargebackStop {
    /// All or nothing: an invalid rule rolls the whole create back. Sent once.
    pub async fn create_ruleset(&self, body: &CreateRuleset) -> Result<Ruleset, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "rulesets"], true),
            Some(body),
            Repeat::Never,
        )
        .await
    }

    pub async fn list_rulesets(&self, query: &ListQuery) -> Result<Page<Ruleset>, ApiError> {
        self.get(self.url(&["v1", "rulesets"], true), Some(query))
            .await
    }

    pub async fn get_ruleset(&self, ruleset_id: &str) -> Result<Ruleset, ApiError> {
        self.get::<_, ()>(self.url(&["v1", "rulesets", ruleset_id], false), None)
            .await
    }

    /// `enrolment_ids`, `outcome`, `join_operator`, `is_enabled`; never rules.
    pub async fn update_ruleset(
        &self,
        ruleset_id: &str,
        patch: &PatchRuleset,
    ) -> Result<Ruleset, ApiError> {
        self.send(
            Method::PATCH,
            self.url(&["v1", "rulesets", ruleset_id], false),
            Some(patch),
            Repeat::Safe,
        )
        .await
    }

    /// New criteria for one rule of a ruleset.
    pub async fn update_rule(
        &self,
        ruleset_id: &str,
        rule_id: &str,
        patch: &PatchRule,
    ) -> Result<Rule, ApiError> {
        let url = self.url(&["v1", "rulesets", ruleset_id, "rules", rule_id], false);
        self.send(Method::PATCH, url, Some(patch), Repeat::Safe)
            .await
    }
}
