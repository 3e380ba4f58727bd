//! Simulation endpoints (TEST organisations only; LIVE ones refuse them).

use reqwest::Method;

use super::{ApiError, ChargebackStop, Repeat};
use crate::models::{Alert, Enrolment, EnrolmentStatus, SimulateAlert, SimulateEnrolmentStatus};

impl ChargebackStop {
    /// Moves a TEST enrolment to `ENABLED` or `UNENROLLED` and answers the enrolment. Setting a
    /// status again is harmless, so it is retried. The docs show no answer body: when it is not
    /// the enrolment (an empty 200, a 204), the enrolment is fetched.
    pub async fn simulate_enrolment_status(
        &self,
        enrolment_id: &str,
        status: EnrolmentStatus,
    ) -> Result<Enrolment, ApiError> {
        match self.request_enrolment_status(enrolment_id, status).await? {
            Some(enrolment) => Ok(enrolment),
            None => self.get_enrolment(enrolment_id).await,
        }
    }

    /// The PATCH alone: `Some` when the answer was the enrolment, `None` when it was empty or
    /// not an enrolment (the change was accepted either way: a refusal is an error status).
    pub async fn request_enrolment_status(
        &self,
        enrolment_id: &str,
        status: EnrolmentStatus,
    ) -> Result<Option<Enrolment>, ApiError> {
        let url = self.url(&["v1", "simulate", "enrolments", enrolment_id], false);
        let answer: Option<serde_json::Value> = self
            .send(
                Method::PATCH,
                url,
                Some(&SimulateEnrolmentStatus { status }),
                Repeat::Safe,
            )
            .await?;
        Ok(answer.and_then(|body| serde_json::from_value::<Enrolment>(body).ok()))
    }

    /// Creates a simulated alert (and its `alert.created` webhook). Sent once: a repeat would
    /// create a second alert.
    pub async fn simulate_alert(&self, body: &SimulateAlert) -> Result<Alert, ApiError> {
        self.send(
            Method::POST,
            self.url(&["v1", "simulate", "alerts"], false),
            Some(body),
            Repeat::Never,
        )
        .await
    }
}
