//! Enrolment events: merge the re-fetched enrolment into its lifecycle, telling operations
//! when it needs attention.

use super::{Applied, ApplyError, EventProcessor};
use crate::domain::enrolment_lifecycle::{
    store_fetched_enrolment, EnrolmentState, EnrolmentStored, StoreEnrolmentError,
};
use crate::ports::alert_api::ApiCallError;

impl From<StoreEnrolmentError> for ApplyError {
    fn from(e: StoreEnrolmentError) -> Self {
        match e {
            StoreEnrolmentError::Store(e) => ApplyError::Store(e),
            StoreEnrolmentError::Notify(e) => ApplyError::Notify(e),
        }
    }
}

impl EventProcessor {
    pub(super) async fn apply_enrolment(
        &self,
        enrolment_id: &str,
        event_id: &str,
    ) -> Result<Applied, ApplyError> {
        let fetched = match self.enrolment_api.get_enrolment(enrolment_id).await {
            Ok(enrolment) => enrolment,
            Err(ApiCallError::NotFound { .. }) => {
                return Err(ApplyError::NotFound {
                    what: "enrolment",
                    id: enrolment_id.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let stored = store_fetched_enrolment(
            &*self.enrolments,
            &*self.notifier,
            &fetched,
            Some(event_id),
            self.clock.now(),
        )
        .await?;
        let status = match &stored {
            EnrolmentStored::Written { record, .. } => &record.enrolment.status,
            EnrolmentStored::Kept(Some(record)) => &record.enrolment.status,
            // Not reached with an event id (only a poll keeps without a stored record).
            EnrolmentStored::Kept(None) => &fetched.status,
        };
        Ok(Applied::new(EnrolmentState::of(status).as_outcome()))
    }
}
