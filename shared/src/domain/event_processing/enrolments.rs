//! Enrolment events: merge the re-fetched enrolment into its lifecycle, telling operations
//! when it needs attention, and write it with the event COMPLETED in one commit.

use super::{Applied, ApplyError, EventProcessor, Pending};
use crate::domain::enrolment_lifecycle::{
    merge_fetched, EnrolmentMerge, EnrolmentState, StoreEnrolmentError,
};
use crate::ports::alert_api::ApiCallError;
use crate::ports::event_log::EventStatus;

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
        pending: &mut Pending,
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
        // The same merge as `store_fetched_enrolment` (out-of-order safe, the status history,
        // a person told before the write), its write joined to the event's.
        let existing = self.enrolments.get(&fetched.id).await?;
        let (status, record) =
            match merge_fetched(existing, fetched.clone(), Some(event_id), self.clock.now()) {
                EnrolmentMerge::Stale(stored) => (stored.enrolment.status.clone(), None),
                EnrolmentMerge::Updated { record, notify } => {
                    if let Some(n) = &notify {
                        self.notifier.notify(n).await?;
                    }
                    (record.enrolment.status.clone(), Some(record))
                }
            };
        let applied = Applied::new(EnrolmentState::of(&status).as_outcome());
        let write = pending.finish(self.clock.now(), EventStatus::Completed, &applied.outcome);
        self.commit_with(pending, Some(write), None, record).await?;
        Ok(applied)
    }
}
