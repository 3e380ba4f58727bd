//! Rulesets (RDR and Ethoca decisioning) and their rules.

use reqwest::Method;

use super::{checked, ApiError, ChargebackStop, ListQuery, Repeat};
use crate::models::{CreateRuleset, Page, PatchRule, PatchRuleset, Rule, Ruleset};
use crate::validation::validate_create_ruleset;

impl ChargebackStop {
    /// All or nothing: an invalid rule rolls the whole create back. Sent once.
    pub async fn create_ruleset(&self, body: &CreateRuleset) -> Result<Ruleset, ApiError> {
        self.create_ruleset_checked(body, false).await
    }

    /// A ruleset for Verifi RDR enrolments: also checks the RDR limits (outcome REFUND or
    /// ACCEPT_DISPUTE, AMOUNT rules in USD) before sending.
    pub async fn create_rdr_ruleset(&self, body: &CreateRuleset) -> Result<Ruleset, ApiError> {
        self.create_ruleset_checked(body, true).await
    }

    async fn create_ruleset_checked(
        &self,
        body: &CreateRuleset,
        rdr: bool,
    ) -> Result<Ruleset, ApiError> {
        let url = self.url(&["v1", "rulesets"], true);
        checked(&Method::POST, &url, validate_create_ruleset(body, rdr))?;
        self.send(Method::POST, url, Some(body), Repeat::Never)
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
