//! Counts the calls the processor makes to ChargebackStop, so every record's log line can say
//! how many API calls it cost (the "API calls per event" figure). Wraps any implementation of
//! the ports; the count is of calls through the port (the client's own retries of a GET or
//! PATCH after a 5xx are not counted here; the sandbox's request log counts those).

use shared::models::alert::{Alert, UpdateAlert};
use shared::models::enrolment::Enrolment;
use shared::ports::alert_api::{AlertApi, ApiCallError};
use shared::ports::enrolment_api::EnrolmentApi;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct CountingApi<T> {
    inner: T,
    calls: AtomicU64,
}

impl<T> CountingApi<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl<T: AlertApi> AlertApi for CountingApi<T> {
    async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiCallError> {
        self.count();
        self.inner.get_alert(alert_id).await
    }

    async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiCallError> {
        self.count();
        self.inner.update_alert(alert_id, update).await
    }
}

#[async_trait::async_trait]
impl<T: EnrolmentApi> EnrolmentApi for CountingApi<T> {
    async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiCallError> {
        self.count();
        self.inner.get_enrolment(enrolment_id).await
    }
}
