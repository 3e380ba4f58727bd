//! The run: claim the customer, then each step in order, saving every id as soon as it is
//! returned, so a failed run is resumed by running again.

use super::api::{ApiFailure, CreatedOrganisation, OnboardingApi};
use super::checks::{mode_name, validate_spec, OnboardingError};
use super::spec::CustomerSpec;
use crate::clock::Clock;
use crate::config::StackMode;
use crate::ports::customer_store::CustomerStore;
use crate::ports::store_error::StoreError;
use crate::records::customer::{
    CustomerRecord, OnboardingFailure, OnboardingStatus, StoredEnrolment,
};
use std::collections::BTreeMap;

/// How long one run may hold a customer before another run may take over.
const RUN_LEASE_SECS: i64 = 300;

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
                    // Unknown (no body, look-up failed): the enrolment webhooks and
                    // reconciliation bring the status; the enable itself happened.
                    if let Some(status) = status {
                        e.status = status;
                    }
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
