//! What enrolment processing needs from ChargebackStop: the current enrolment.

use super::alert_api::ApiCallError;
use crate::models::enrolment::Enrolment;

#[async_trait::async_trait]
pub trait EnrolmentApi: Send + Sync {
    /// `GET /v2/enrolments/{id}`: the source of truth before showing an enrolment live or blocked.
    async fn get_enrolment(&self, enrolment_id: &str) -> Result<Enrolment, ApiCallError>;
}
