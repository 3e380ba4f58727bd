//! Enrolment events: merge the re-fetched enrolment into its lifecycle, telling operations
//! when it needs attention.

use super::{Applied, ApplyError, EventProcessor};
use crate::domain::enrolment_lifecycle::{merge_fetched, EnrolmentMerge, EnrolmentState};
use crate::ports::alert_api::ApiCallError;
use crate::ports::store_error::StoreError;

const ENROLMENT_WRITE_ATTEMPTS: usize = 5;

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
        let mut last_conflict = None;
        for _ in 0..ENROLMENT_WRITE_ATTEMPTS {
            let existing = self.enrolments.get(enrolment_id).await?;
            match merge_fetched(existing, fetched.clone(), Some(event_id), self.clock.now()) {
                EnrolmentMerge::Stale(stored) => {
                    return Ok(Applied::new(
                        EnrolmentState::of(&stored.enrolment.status).as_outcome(),
                    ))
                }
                EnrolmentMerge::Updated { record, notify } => {
                    // Tell operations before writing: if the write fails, the redelivery tells
                    // them again (at least once) rather than never.
                    if let Some(n) = &notify {
                        self.notifier.notify(n).await?;
                    }
                    match self.enrolments.put(&record).await {
                        Ok(()) => {
                            return Ok(Applied::new(
                                EnrolmentState::of(&record.enrolment.status).as_outcome(),
                            ))
                        }
                        Err(c @ StoreError::Conflict { .. }) => last_conflict = Some(c),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(last_conflict.expect("at least one attempt").into())
    }
}
