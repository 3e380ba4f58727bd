//! Simulation endpoints (TEST organisations only; LIVE ones refuse them).

use reqwest::Method;

use super::{ApiError, ChargebackStop, Repeat};
use crate::models::{Alert, Enrolment, EnrolmentStatus, SimulateAlert, SimulateEnrolmentStatus};

impl ChargebackStop {
    /// Moves a TEST enrolment to `ENABLED` or `UNENROLLED`. Setting a status again is
    /// harmless, so it is retried.
    pub async fn simulate_enrolment_status(
        &self,
        enrolment_id: &str,
        status: EnrolmentStatus,
    ) -> Result<Enrolment, ApiError> {
        let url = self.url(&["v1", "simulate", "enrolments", enrolment_id], false);
        self.send(
            Method::PATCH,
            url,
            Some(&SimulateEnrolmentStatus { status }),
            Repeat::Safe,
        )
        .await
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
