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

use crate::clock::Clock;
use crate::config::StackMode;
use crate::ports::customer_store::CustomerStore;
use crate::ports::store_error::StoreError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long one run may hold a customer before another run may take over.
const RUN_LEASE_SECS: i64 = 300;

// ---------------------------------------------------------------------------------------------
// What the operator asks for (customer.json / POST /onboarding)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    /// Our own stable id for the customer (the `customers` table key).
    pub customer_id: String,
    pub organisation: OrganisationSpec,
    #[serde(default)]
    pub memberships: Vec<MembershipSpec>,
    pub merchants: Vec<MerchantSpec>,
    /// The CUSTOM_ORDERS integration; defaults to "<organisation name> Orders".
    #[serde(default)]
    pub integration: Option<IntegrationSpec>,
    #[serde(default)]
    pub enrolments: Vec<EnrolmentSpec>,
    /// Optional RDR ruleset, attached to the customer's VERIFI_RDR enrolments.
    #[serde(default)]
    pub rdr_ruleset: Option<RulesetSpec>,
    /// How automatic decisions are taken for this customer; stored as given.
    #[serde(default)]
    pub decision_policy: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipSpec {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default = "default_role")]
    pub role: String,
    #[serde(default = "yes")]
    pub is_alert_action_required_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_alert_resolved_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_alert_dismissed_email_enabled: bool,
    #[serde(default = "yes")]
    pub is_evidence_requested_email_enabled: bool,
}

fn default_role() -> String {
    "ADMIN".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantSpec {
    pub name: String,
    #[serde(rename = "type", default = "default_merchant_type")]
    pub merchant_type: String,
    /// The merchant identifier our team recognises (MID, CAID, provider account); also the key
    /// that maps a merchant in the spec to the id ChargebackStop returned.
    pub external_id: String,
}

fn default_merchant_type() -> String {
    "GENERIC".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentSpec {
    /// `ETHOCA_ALERT` or `VERIFI_RDR`.
    #[serde(rename = "type")]
    pub enrolment_type: String,
    /// External ids of the spec's merchants to enrol; all of them when absent.
    #[serde(default)]
    pub merchants: Option<Vec<String>>,
    #[serde(default)]
    pub ethoca_alert: Option<serde_json::Value>,
    #[serde(default)]
    pub verifi_rdr: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetSpec {
    pub outcome: String,
    #[serde(default = "default_join")]
    pub join_operator: String,
    #[serde(default = "yes")]
    pub is_enabled: bool,
    pub rules: Vec<serde_json::Value>,
}

fn default_join() -> String {
    "AND".into()
}

impl EnrolmentSpec {
    /// The key under which the enrolment's id is stored: type and position among enrolments of
    /// that type (`ETHOCA_ALERT#1`), so re-runs of the same file map to the same enrolment.
    fn key(&self, position_in_type: usize) -> String {
        format!("{}#{}", self.enrolment_type, position_in_type + 1)
    }

    /// The `POST /v2/enrolments/` body, given the merchant ids.
    pub fn request_body(&self, merchant_ids: &[String]) -> serde_json::Value {
        let mut body = serde_json::json!({
            "merchant_ids": merchant_ids,
            "type": self.enrolment_type,
        });
        if let Some(e) = &self.ethoca_alert {
            body["ethoca_alert"] = e.clone();
        }
        if let Some(v) = &self.verifi_rdr {
            body["verifi_rdr"] = v.clone();
        }
        body
    }
}

impl RulesetSpec {
    /// The `POST /v1/rulesets/` body.
    pub fn request_body(
        &self,
        organisation_id: &str,
        enrolment_ids: &[String],
    ) -> serde_json::Value {
        serde_json::json!({
            "organisation_id": organisation_id,
            "enrolment_ids": enrolment_ids,
            "outcome": self.outcome,
            "join_operator": self.join_operator,
            "is_enabled": self.is_enabled,
            "rules": self.rules,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// What we store (the `customers` table)
// ---------------------------------------------------------------------------------------------

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
    fn new(spec: &CustomerSpec, mode: StackMode, now: &str) -> Self {
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

    fn mark_done(&mut self, step: String) {
        if !self.steps_done.contains(&step) {
            self.steps_done.push(step);
        }
    }

    /// The enrolment ids of one type, in key order.
    pub fn enrolment_ids_of_type(&self, enrolment_type: &str) -> Vec<String> {
        self.enrolments
            .values()
            .filter(|e| e.enrolment_type == enrolment_type)
            .map(|e| e.enrolment_id.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The ChargebackStop calls onboarding needs (implemented over the shared client)
// ---------------------------------------------------------------------------------------------

/// A refused or failed ChargebackStop call, as much as onboarding needs of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    /// HTTP status when there was a response.
    pub status: Option<u16>,
    /// ChargebackStop's error code, when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// The request field ChargebackStop named, when it named one.
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOrganisation {
    pub id: String,
    /// `TEST` or `LIVE` as ChargebackStop reports it.
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedEnrolment {
    pub id: String,
    pub status: String,
}

#[async_trait::async_trait]
pub trait OnboardingApi: Send + Sync {
    async fn create_organisation(&self, name: &str) -> Result<CreatedOrganisation, ApiFailure>;
    async fn get_organisation(&self, id: &str) -> Result<CreatedOrganisation, ApiFailure>;
    async fn create_membership(
        &self,
        organisation_id: &str,
        spec: &MembershipSpec,
    ) -> Result<String, ApiFailure>;
    async fn create_merchant(
        &self,
        organisation_id: &str,
        spec: &MerchantSpec,
    ) -> Result<String, ApiFailure>;
    /// A merchant of the organisation with this external id, if one exists: covers a crash
    /// between ChargebackStop creating the merchant and us saving its id.
    async fn find_merchant(
        &self,
        organisation_id: &str,
        external_id: &str,
    ) -> Result<Option<String>, ApiFailure>;
    async fn create_integration(
        &self,
        organisation_id: &str,
        name: &str,
        merchant_ids: &[String],
    ) -> Result<String, ApiFailure>;
    async fn create_enrolment(
        &self,
        body: &serde_json::Value,
    ) -> Result<CreatedEnrolment, ApiFailure>;
    /// TEST only: `PATCH /v1/simulate/enrolments/{id}` `{"status": "ENABLED"}`.
    async fn simulate_enable(&self, enrolment_id: &str) -> Result<String, ApiFailure>;
    async fn create_ruleset(&self, body: &serde_json::Value) -> Result<String, ApiFailure>;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One problem with the spec, naming the field (JSON path) it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecProblem {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("the customer spec is invalid: {}", describe(.0))]
    Invalid(Vec<SpecProblem>),
    #[error("{0}")]
    ModeMismatch(String),
    #[error(
        "customer {customer_id} is being onboarded by another run; try again in a few minutes"
    )]
    Busy { customer_id: String },
    #[error("step {step} failed: {failure}")]
    Api { step: String, failure: ApiFailure },
    #[error("saving progress failed: {0}")]
    Store(#[from] StoreError),
}

fn describe(problems: &[SpecProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Checks done before any call
// ---------------------------------------------------------------------------------------------

/// The mode a ChargebackStop key names in its prefix, if it names one (`cbs_test_…`,
/// `cbs_live_…`). Keys without such a prefix cannot be told apart and are not refused here; the
/// organisation's `mode` check catches them.
pub fn key_mode(key: &Secret) -> Option<StackMode> {
    let k = key.expose();
    if k.starts_with("cbs_test_") {
        Some(StackMode::Test)
    } else if k.starts_with("cbs_live_") {
        Some(StackMode::Live)
    } else {
        None
    }
}

/// Refuses a partner key that names the other mode. The message never contains the key.
pub fn refuse_key_of_other_mode(stack: StackMode, key: &Secret) -> Result<(), OnboardingError> {
    match key_mode(key) {
        Some(m) if m != stack => Err(OnboardingError::ModeMismatch(format!(
            "this is a {} stack but CBS_API_KEY is a {} key",
            mode_name(stack),
            mode_name(m)
        ))),
        _ => Ok(()),
    }
}

fn mode_name(mode: StackMode) -> &'static str {
    match mode {
        StackMode::Test => "TEST",
        StackMode::Live => "LIVE",
    }
}

/// Everything wrong with the spec, each with its field, before anything is sent.
pub fn validate_spec(spec: &CustomerSpec) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: String, message: &str| {
        problems.push(SpecProblem {
            field,
            message: message.to_owned(),
        })
    };
    if !valid_customer_id(&spec.customer_id) {
        problem(
            "customer_id".into(),
            "must be 1-64 characters of letters, digits, '-', '_' or '.'",
        );
    }
    if spec.organisation.name.trim().is_empty() {
        problem("organisation.name".into(), "must not be empty");
    }
    let mut emails = std::collections::HashSet::new();
    for (i, m) in spec.memberships.iter().enumerate() {
        if !m.email.contains('@') || m.email.trim() != m.email {
            problem(
                format!("memberships[{i}].email"),
                "must be an email address",
            );
        } else if !emails.insert(m.email.to_lowercase()) {
            problem(format!("memberships[{i}].email"), "appears twice");
        }
        if m.first_name.trim().is_empty() {
            problem(format!("memberships[{i}].first_name"), "must not be empty");
        }
        if m.last_name.trim().is_empty() {
            problem(format!("memberships[{i}].last_name"), "must not be empty");
        }
    }
    if spec.merchants.is_empty() {
        problem("merchants".into(), "at least one merchant is required");
    }
    let mut external_ids = std::collections::HashSet::new();
    for (i, m) in spec.merchants.iter().enumerate() {
        if m.name.trim().is_empty() {
            problem(format!("merchants[{i}].name"), "must not be empty");
        }
        if m.external_id.trim().is_empty() {
            problem(format!("merchants[{i}].external_id"), "must not be empty");
        } else if !external_ids.insert(m.external_id.as_str()) {
            problem(format!("merchants[{i}].external_id"), "appears twice");
        }
    }
    if let Some(integration) = &spec.integration {
        if integration.name.trim().is_empty() {
            problem("integration.name".into(), "must not be empty");
        }
    }
    for (i, e) in spec.enrolments.iter().enumerate() {
        let at = format!("enrolments[{i}]");
        if let Some(names) = &e.merchants {
            if names.is_empty() {
                problem(
                    format!("{at}.merchants"),
                    "must name at least one merchant or be left out",
                );
            }
            let mut seen = std::collections::HashSet::new();
            for (j, n) in names.iter().enumerate() {
                if !external_ids.contains(n.as_str()) {
                    problem(
                        format!("{at}.merchants[{j}]"),
                        "is not the external_id of a merchant in this spec",
                    );
                } else if !seen.insert(n) {
                    problem(format!("{at}.merchants[{j}]"), "appears twice");
                }
            }
        }
        for p in enrolment_problems(e) {
            problem(format!("{at}.{}", p.field), &p.message);
        }
    }
    if let Some(r) = &spec.rdr_ruleset {
        if !spec
            .enrolments
            .iter()
            .any(|e| e.enrolment_type == "VERIFI_RDR")
        {
            problem(
                "rdr_ruleset".into(),
                "needs a VERIFI_RDR enrolment in this spec to attach to",
            );
        }
        for p in ruleset_problems(r) {
            problem(format!("rdr_ruleset.{}", p.field), &p.message);
        }
    }
    if let Some(policy) = &spec.decision_policy {
        if let Err(invalid) = crate::domain::alert_policy::AlertPolicy::from_json(policy) {
            for p in invalid.0 {
                let field = if p.field == "decision_policy" {
                    p.field
                } else {
                    format!("decision_policy.{}", p.field)
                };
                problem(field, &p.message);
            }
        }
    }
    problems
}

fn valid_customer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn sp(field: &str, message: &str) -> SpecProblem {
    SpecProblem {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// The enrolment rules from the guides: Ethoca is descriptor based (STARTS_WITH/EXACT_MATCH),
/// Verifi RDR needs `bin` and `caid` together or at least one ARN, and each type carries only
/// its own block.
fn enrolment_problems(e: &EnrolmentSpec) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    match e.enrolment_type.as_str() {
        "ETHOCA_ALERT" => {
            if e.verifi_rdr.is_some() {
                out.push(sp("verifi_rdr", "is only for VERIFI_RDR enrolments"));
            }
            let descriptors = e
                .ethoca_alert
                .as_ref()
                .and_then(|v| v.get("descriptors"))
                .and_then(|d| d.as_array());
            match descriptors {
                None => out.push(sp(
                    "ethoca_alert.descriptors",
                    "an Ethoca enrolment needs at least one descriptor",
                )),
                Some(list) if list.is_empty() => out.push(sp(
                    "ethoca_alert.descriptors",
                    "an Ethoca enrolment needs at least one descriptor",
                )),
                Some(list) => {
                    for (i, d) in list.iter().enumerate() {
                        let text = d.get("descriptor").and_then(|v| v.as_str()).unwrap_or("");
                        if text.trim().is_empty() {
                            out.push(sp(
                                &format!("ethoca_alert.descriptors[{i}].descriptor"),
                                "must not be empty",
                            ));
                        }
                        let mt = d.get("match_type").and_then(|v| v.as_str());
                        if !matches!(mt, Some("STARTS_WITH") | Some("EXACT_MATCH")) {
                            out.push(sp(
                                &format!("ethoca_alert.descriptors[{i}].match_type"),
                                "must be STARTS_WITH or EXACT_MATCH",
                            ));
                        }
                    }
                }
            }
        }
        "VERIFI_RDR" => {
            if e.ethoca_alert.is_some() {
                out.push(sp("ethoca_alert", "is only for ETHOCA_ALERT enrolments"));
            }
            let rdr = e.verifi_rdr.as_ref();
            let s = |k: &str| {
                rdr.and_then(|v| v.get(k))
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.trim().is_empty())
            };
            let arns = rdr
                .and_then(|v| v.get("arns"))
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .unwrap_or(0);
            match (s("bin"), s("caid")) {
                (Some(bin), Some(_)) => {
                    if !(bin.len() >= 6
                        && bin.len() <= 8
                        && bin.chars().all(|c| c.is_ascii_digit()))
                    {
                        out.push(sp("verifi_rdr.bin", "must be 6 to 8 digits"));
                    }
                }
                (Some(_), None) => {
                    out.push(sp("verifi_rdr.caid", "bin and caid must be given together"))
                }
                (None, Some(_)) => {
                    out.push(sp("verifi_rdr.bin", "bin and caid must be given together"))
                }
                (None, None) if arns == 0 => out.push(sp(
                    "verifi_rdr",
                    "give either bin and caid, or at least one ARN in arns",
                )),
                (None, None) => {}
            }
        }
        _ => out.push(sp("type", "must be ETHOCA_ALERT or VERIFI_RDR")),
    }
    out
}

/// RDR ruleset rules from the guide: outcome REFUND or ACCEPT_DISPUTE (REFUND_AND_CANCEL is
/// published as REFUND; CANCEL is not for RDR), AND/OR, AMOUNT and DESCRIPTOR rules, one of each
/// type at most, amounts in USD.
fn ruleset_problems(r: &RulesetSpec) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    if !matches!(
        r.outcome.as_str(),
        "REFUND" | "ACCEPT_DISPUTE" | "REFUND_AND_CANCEL"
    ) {
        out.push(sp(
            "outcome",
            "must be REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL for Verifi RDR",
        ));
    }
    if !matches!(r.join_operator.as_str(), "AND" | "OR") {
        out.push(sp("join_operator", "must be AND or OR"));
    }
    if r.rules.is_empty() {
        out.push(sp("rules", "a ruleset needs at least one rule"));
    }
    let mut types = std::collections::HashSet::new();
    for (i, rule) in r.rules.iter().enumerate() {
        let t = rule.get("type").and_then(|v| v.as_str()).unwrap_or("");
        match t {
            "AMOUNT" => {
                let p = rule.get("parameters");
                let cur = p
                    .and_then(|p| p.get("currency_code"))
                    .and_then(|v| v.as_str());
                if cur != Some("USD") {
                    out.push(sp(
                        &format!("rules[{i}].parameters.currency_code"),
                        "must be USD",
                    ));
                }
                if p.and_then(|p| p.get("amount_in_cents"))
                    .and_then(|v| v.as_u64())
                    .is_none()
                {
                    out.push(sp(
                        &format!("rules[{i}].parameters.amount_in_cents"),
                        "must be a non-negative whole number of cents",
                    ));
                }
            }
            "DESCRIPTOR" => {
                let ok = rule
                    .get("parameters")
                    .and_then(|p| p.get("descriptors"))
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| !a.is_empty());
                if !ok {
                    out.push(sp(
                        &format!("rules[{i}].parameters.descriptors"),
                        "needs at least one descriptor",
                    ));
                }
            }
            _ => out.push(sp(
                &format!("rules[{i}].type"),
                "must be AMOUNT or DESCRIPTOR",
            )),
        }
        if !t.is_empty() && !types.insert(t) {
            out.push(sp(
                &format!("rules[{i}].type"),
                "only one rule of each type is allowed per ruleset",
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------------

pub struct Onboarding<'a> {
    pub api: &'a dyn OnboardingApi,
    pub store: &'a dyn CustomerStore,
    pub clock: &'a dyn Clock,
    pub mode: StackMode,
}

impl Onboarding<'_> {
    /// Runs (or resumes) onboarding for one customer and returns the saved record.
    pub async fn run(&self, spec: &CustomerSpec) -> Result<CustomerRecord, OnboardingError> {
        let problems = validate_spec(spec);
        if !problems.is_empty() {
            return Err(OnboardingError::Invalid(problems));
        }
        let now = self.now();
        let mut record = match self.store.get(&spec.customer_id).await? {
            Some(existing) => {
                if existing.mode != self.mode {
                    return Err(OnboardingError::ModeMismatch(format!(
                        "customer {} was onboarded in {} mode; this is a {} stack",
                        existing.customer_id,
                        mode_name(existing.mode),
                        mode_name(self.mode)
                    )));
                }
                existing
            }
            None => CustomerRecord::new(spec, self.mode, &now),
        };
        if record.refused_organisation_id.is_some() && record.organisation_id.is_none() {
            return Err(OnboardingError::ModeMismatch(format!(
                "customer {}: ChargebackStop created its organisation in the other mode; \
                 check the partner key for this {} stack",
                record.customer_id,
                mode_name(self.mode)
            )));
        }

        // Take the lease before any call, so a second run for the same customer stops here.
        record.run_token = Some(uuid::Uuid::new_v4().to_string());
        record.run_lease_until = Some(iso(
            self.clock.now() + chrono::Duration::seconds(RUN_LEASE_SECS)
        ));
        record.status = OnboardingStatus::InProgress;
        record.decision_policy = spec.decision_policy.clone().or(record.decision_policy);
        record.updated_at = now.clone();
        match self.store.claim(&record, &now).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(OnboardingError::Busy {
                    customer_id: spec.customer_id.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        }

        match self.steps(spec, &mut record).await {
            Ok(()) => {
                record.status = OnboardingStatus::Completed;
                record.last_failure = None;
                self.release(&mut record).await?;
                Ok(record)
            }
            Err(err) => {
                record.status = OnboardingStatus::Failed;
                let (step, field) = match &err {
                    OnboardingError::Api { step, failure } => (step.clone(), failure.field.clone()),
                    OnboardingError::ModeMismatch(_) => ("organisation".into(), None),
                    _ => ("save".into(), None),
                };
                record.last_failure = Some(OnboardingFailure {
                    step,
                    message: err.to_string(),
                    field,
                    at: self.now(),
                });
                // Best effort: the error we return matters more than recording it.
                let _ = self.release(&mut record).await;
                Err(err)
            }
        }
    }

    async fn steps(
        &self,
        spec: &CustomerSpec,
        record: &mut CustomerRecord,
    ) -> Result<(), OnboardingError> {
        // 1. Organisation, and its mode.
        let organisation_id = match record.organisation_id.clone() {
            Some(id) => {
                let org = self
                    .api
                    .get_organisation(&id)
                    .await
                    .map_err(|f| api_err("organisation", f))?;
                self.check_mode(&org)?;
                id
            }
            None => {
                let org = self
                    .api
                    .create_organisation(&spec.organisation.name)
                    .await
                    .map_err(|f| api_err("organisation", f))?;
                if let Err(e) = self.check_mode(&org) {
                    record.refused_organisation_id = Some(org.id.clone());
                    self.save(record).await?;
                    return Err(e);
                }
                record.organisation_id = Some(org.id.clone());
                record.mark_done("organisation".into());
                self.save(record).await?;
                org.id
            }
        };

        // 2. Memberships (optional).
        for m in &spec.memberships {
            if record.memberships.contains_key(&m.email) {
                continue;
            }
            let id = self
                .api
                .create_membership(&organisation_id, m)
                .await
                .map_err(|f| api_err(&format!("membership {}", m.email), f))?;
            record.memberships.insert(m.email.clone(), id);
            record.mark_done(format!("membership {}", m.email));
            self.save(record).await?;
        }

        // 3. Merchants.
        for m in &spec.merchants {
            if record.merchants.contains_key(&m.external_id) {
                continue;
            }
            let step = format!("merchant {}", m.external_id);
            let existing = self
                .api
                .find_merchant(&organisation_id, &m.external_id)
                .await
                .map_err(|f| api_err(&step, f))?;
            let id = match existing {
                Some(id) => id,
                None => self
                    .api
                    .create_merchant(&organisation_id, m)
                    .await
                    .map_err(|f| api_err(&step, f))?,
            };
            record.merchants.insert(m.external_id.clone(), id);
            record.mark_done(step);
            self.save(record).await?;
        }
        let merchants = record.merchants.clone();
        let merchant_ids_for = |names: Option<&Vec<String>>| -> Vec<String> {
            let names: Vec<&String> = match names {
                Some(n) => n.iter().collect(),
                None => spec.merchants.iter().map(|m| &m.external_id).collect(),
            };
            names
                .into_iter()
                .filter_map(|n| merchants.get(n).cloned())
                .collect()
        };

        // 4. The CUSTOM_ORDERS integration over every merchant.
        if record.integration_id.is_none() {
            let name = spec
                .integration
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_else(|| format!("{} Orders", spec.organisation.name));
            let all = merchant_ids_for(None);
            let id = self
                .api
                .create_integration(&organisation_id, &name, &all)
                .await
                .map_err(|f| api_err("integration", f))?;
            record.integration_id = Some(id);
            record.mark_done("integration".into());
            self.save(record).await?;
        }

        // 5. Enrolments.
        let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
        let mut keys = Vec::new();
        for e in &spec.enrolments {
            let n = per_type.entry(e.enrolment_type.as_str()).or_default();
            let key = e.key(*n);
            *n += 1;
            keys.push(key.clone());
            if record.enrolments.contains_key(&key) {
                continue;
            }
            let body = e.request_body(&merchant_ids_for(e.merchants.as_ref()));
            let created = self
                .api
                .create_enrolment(&body)
                .await
                .map_err(|f| api_err(&format!("enrolment {key}"), f))?;
            record.enrolments.insert(
                key.clone(),
                StoredEnrolment {
                    enrolment_id: created.id,
                    enrolment_type: e.enrolment_type.clone(),
                    status: created.status,
                    simulated_enabled: false,
                },
            );
            record.mark_done(format!("enrolment {key}"));
            self.save(record).await?;
        }

        // 6. TEST only: enable each enrolment through the simulation endpoint.
        if self.mode == StackMode::Test {
            for key in &keys {
                let Some(stored) = record.enrolments.get(key).cloned() else {
                    continue;
                };
                if stored.simulated_enabled {
                    continue;
                }
                let status = self
                    .api
                    .simulate_enable(&stored.enrolment_id)
                    .await
                    .map_err(|f| api_err(&format!("simulate-enable {key}"), f))?;
                if let Some(e) = record.enrolments.get_mut(key) {
                    e.simulated_enabled = true;
                    e.status = status;
                }
                record.mark_done(format!("simulate-enable {key}"));
                self.save(record).await?;
            }
        }

        // 7. Optional RDR ruleset over the customer's VERIFI_RDR enrolments.
        if let (Some(r), None) = (&spec.rdr_ruleset, &record.ruleset_id) {
            let rdr_ids: Vec<String> = keys
                .iter()
                .filter_map(|k| record.enrolments.get(k))
                .filter(|e| e.enrolment_type == "VERIFI_RDR")
                .map(|e| e.enrolment_id.clone())
                .collect();
            let body = r.request_body(&organisation_id, &rdr_ids);
            let id = self
                .api
                .create_ruleset(&body)
                .await
                .map_err(|f| api_err("rdr ruleset", f))?;
            record.ruleset_id = Some(id);
            record.mark_done("rdr ruleset".into());
            self.save(record).await?;
        }
        Ok(())
    }

    fn check_mode(&self, org: &CreatedOrganisation) -> Result<(), OnboardingError> {
        let expected = mode_name(self.mode);
        if org.mode.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(OnboardingError::ModeMismatch(format!(
                "organisation {} is {} but this is a {} stack; refusing to use it",
                org.id, org.mode, expected
            )))
        }
    }

    async fn save(&self, record: &mut CustomerRecord) -> Result<(), OnboardingError> {
        record.updated_at = self.now();
        match self.store.save(record).await {
            Err(StoreError::Conflict { .. }) => Err(OnboardingError::Busy {
                customer_id: record.customer_id.clone(),
            }),
            other => Ok(other?),
        }
    }

    /// Final save that also gives the lease up.
    async fn release(&self, record: &mut CustomerRecord) -> Result<(), OnboardingError> {
        record.run_lease_until = None;
        self.save(record).await
        // run_token stays as the last run's id: `save` is conditional on it.
    }

    fn now(&self) -> String {
        iso(self.clock.now())
    }
}

fn api_err(step: &str, failure: ApiFailure) -> OnboardingError {
    OnboardingError::Api {
        step: step.to_owned(),
        failure,
    }
}

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
