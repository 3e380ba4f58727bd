//! What every handler can reach: the stores, the ChargebackStop client, the clock and settings.
//! Built once per Lambda instance (`crate::wiring::from_env`) or by a test with its own parts.

use crate::upload_status::UploadStatusReader;
use shared::clock::Clock;
use shared::config::StackMode;
use shared::domain::onboarding::OnboardingApi;
use shared::ports::alert_api::AlertApi;
use shared::ports::alert_store::AlertStore;
use shared::ports::customer_store::CustomerStore;
use shared::ports::enrolment_api::EnrolmentApi;
use shared::ports::enrolment_store::EnrolmentStore;
use shared::ports::notifier::Notifier;
use shared::ports::operator_keys::OperatorKeys;
use shared::ports::order_outbox::OrderOutbox;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub mode: StackMode,
    /// Alerts whose deadline is closer than this are marked urgent (OPS_URGENT_HOURS, default 24).
    pub urgent_hours: i64,
    pub clock: Arc<dyn Clock>,
    pub operators: Arc<dyn OperatorKeys>,
    pub customers: Arc<dyn CustomerStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub enrolments: Arc<dyn EnrolmentStore>,
    pub outbox: Arc<dyn OrderOutbox>,
    pub upload_status: Arc<dyn UploadStatusReader>,
    pub alert_api: Arc<dyn AlertApi>,
    pub enrolment_api: Arc<dyn EnrolmentApi>,
    pub onboarding_api: Arc<dyn OnboardingApi>,
    /// Operations notifications (an action ChargebackStop refused while the alert still waits).
    pub notifier: Arc<dyn Notifier>,
    /// Replay and the dead-letter queue (`routes::recovery`); `None` answers 503.
    pub recovery: Option<crate::routes::recovery::Recovery>,
}
