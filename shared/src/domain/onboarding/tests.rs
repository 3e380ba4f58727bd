//! The flow against in-memory fakes: every simulate-enable answer ChargebackStop might give,
//! and a resumed run creating nothing twice.

use super::*;
use crate::clock::FixedClock;
use crate::config::StackMode;
use crate::ports::customer_store::CustomerStore;
use crate::ports::store_error::StoreError;
use std::sync::Mutex;

/// What the fake's simulate-enable answers.
#[derive(Clone, Copy)]
enum EnableAnswer {
    /// The enrolment (status known).
    Enrolment,
    /// An empty 200 or a 204 whose follow-up look-up failed: enabled, status unknown.
    Unknown,
    /// Refused.
    Refused,
}

struct FakeApi {
    enable: EnableAnswer,
    calls: Mutex<Vec<String>>,
}

impl FakeApi {
    fn new(enable: EnableAnswer) -> Self {
        Self {
            enable,
            calls: Mutex::new(Vec::new()),
        }
    }
    fn called(&self, what: String) -> usize {
        let mut calls = self.calls.lock().unwrap();
        calls.push(what);
        calls.len()
    }
    fn count(&self, prefix: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

#[async_trait::async_trait]
impl OnboardingApi for FakeApi {
    async fn create_organisation(&self, _name: &str) -> Result<CreatedOrganisation, ApiFailure> {
        self.called("create_organisation".into());
        Ok(CreatedOrganisation {
            id: "org_1".into(),
            mode: "TEST".into(),
        })
    }
    async fn get_organisation(&self, id: &str) -> Result<CreatedOrganisation, ApiFailure> {
        Ok(CreatedOrganisation {
            id: id.into(),
            mode: "TEST".into(),
        })
    }
    async fn create_membership(&self, _: &str, _: &MembershipSpec) -> Result<String, ApiFailure> {
        Ok(format!("mem_{}", self.called("create_membership".into())))
    }
    async fn create_merchant(&self, _: &str, _: &MerchantSpec) -> Result<String, ApiFailure> {
        Ok(format!("mrch_{}", self.called("create_merchant".into())))
    }
    async fn find_merchant(&self, _: &str, _: &str) -> Result<Option<String>, ApiFailure> {
        Ok(None)
    }
    async fn create_integration(
        &self,
        _: &str,
        _: &str,
        _: &[String],
    ) -> Result<String, ApiFailure> {
        Ok(format!("int_{}", self.called("create_integration".into())))
    }
    async fn create_enrolment(
        &self,
        _: &serde_json::Value,
    ) -> Result<CreatedEnrolment, ApiFailure> {
        Ok(CreatedEnrolment {
            id: format!("enrl_{}", self.called("create_enrolment".into())),
            status: "PENDING".into(),
        })
    }
    async fn simulate_enable(&self, id: &str) -> Result<Option<String>, ApiFailure> {
        self.called(format!("simulate_enable {id}"));
        match self.enable {
            EnableAnswer::Enrolment => Ok(Some("ENABLED".into())),
            EnableAnswer::Unknown => Ok(None),
            EnableAnswer::Refused => Err(ApiFailure {
                status: Some(403),
                code: None,
                message: "TEST only".into(),
                field: None,
            }),
        }
    }
    async fn create_ruleset(&self, _: &serde_json::Value) -> Result<String, ApiFailure> {
        Ok("rset_1".into())
    }
}

#[derive(Default)]
struct MemoryCustomers(Mutex<Option<CustomerRecord>>);

#[async_trait::async_trait]
impl CustomerStore for MemoryCustomers {
    async fn get(&self, _: &str) -> Result<Option<CustomerRecord>, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn claim(&self, record: &CustomerRecord, _: &str) -> Result<(), StoreError> {
        *self.0.lock().unwrap() = Some(record.clone());
        Ok(())
    }
    async fn save(&self, record: &CustomerRecord) -> Result<(), StoreError> {
        *self.0.lock().unwrap() = Some(record.clone());
        Ok(())
    }
    async fn by_organisation(&self, _: &str) -> Result<Vec<CustomerRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn list(&self, _: usize) -> Result<Vec<CustomerRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn scan(
        &self,
        _: usize,
    ) -> Result<crate::ports::customer_store::CustomerScan, StoreError> {
        Ok(crate::ports::customer_store::CustomerScan {
            records: self.0.lock().unwrap().clone().into_iter().collect(),
            skipped: Vec::new(),
            truncated: false,
        })
    }
}

fn spec() -> CustomerSpec {
    serde_json::from_value(serde_json::json!({
        "customer_id": "acme",
        "organisation": { "name": "Acme Fitness" },
        "merchants": [{ "name": "Acme Store", "external_id": "mid_1" }],
        "enrolments": [
            { "type": "ETHOCA_ALERT",
              "ethoca_alert": { "descriptors": [{ "descriptor": "ACMEFIT", "match_type": "STARTS_WITH" }] } }
        ]
    }))
    .unwrap()
}

async fn run(api: &FakeApi, store: &MemoryCustomers) -> Result<CustomerRecord, OnboardingError> {
    let clock = FixedClock::at("2026-02-17T10:00:00Z".parse().unwrap());
    Onboarding {
        api,
        store,
        clock: &clock,
        mode: StackMode::Test,
    }
    .run(&spec())
    .await
}

#[tokio::test]
async fn onboarding_completes_whatever_the_simulate_enable_answer_says() {
    for (answer, status) in [
        (EnableAnswer::Enrolment, "ENABLED"),
        (EnableAnswer::Unknown, "PENDING"),
    ] {
        let (api, store) = (FakeApi::new(answer), MemoryCustomers::default());
        let record = run(&api, &store).await.unwrap();
        assert_eq!(record.status, OnboardingStatus::Completed);
        let enrolment = &record.enrolments["ETHOCA_ALERT#1"];
        assert!(enrolment.simulated_enabled);
        // Unknown: kept as created; the enrolment webhooks bring ENABLED later.
        assert_eq!(enrolment.status, status);
        // A second run does not enable again nor create anything.
        let again = run(&api, &store).await.unwrap();
        assert_eq!(again.status, OnboardingStatus::Completed);
        assert_eq!(api.count("simulate_enable"), 1);
        assert_eq!(api.count("create_"), 4);
    }
}

#[tokio::test]
async fn a_refused_enable_fails_the_step_and_a_rerun_resumes_there() {
    let store = MemoryCustomers::default();
    let refused = FakeApi::new(EnableAnswer::Refused);
    let err = run(&refused, &store).await.unwrap_err();
    assert!(
        matches!(&err, OnboardingError::Api { step, .. } if step == "simulate-enable ETHOCA_ALERT#1"),
        "{err}"
    );
    let ok = FakeApi::new(EnableAnswer::Unknown);
    let record = run(&ok, &store).await.unwrap();
    assert_eq!(record.status, OnboardingStatus::Completed);
    // Nothing created twice: the rerun only enabled.
    assert_eq!(ok.count("create_"), 0);
    assert_eq!(ok.count("simulate_enable"), 1);
}
