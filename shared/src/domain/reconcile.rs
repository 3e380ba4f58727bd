//! Reconciliation: the fallback for webhooks that never arrived. Pages through
//! `GET /v1/alerts?status=ACTION_REQUIRED&organisation_id=...` (oldest received first, so alerts
//! arriving meanwhile land on later pages instead of shifting the offset) and stores every
//! alert we do not hold, or hold in an older version, with the event processor's own
//! `store_fetched_alert_notifying`, so the sweep then sees it in the deadline-index like any other.

use super::alert_record::store_fetched_alert_notifying;
use crate::clock::Clock;
use crate::models::alert::{Alert, AlertQuery, AlertSort};
use crate::ports::alert_api::ApiCallError;
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::iso;
use crate::ports::notifier::{Notifier, OpsNotification};
use std::sync::Arc;

/// One page of `GET /v1/alerts?status=ACTION_REQUIRED`.
#[async_trait::async_trait]
pub trait ActionRequiredAlerts: Send + Sync {
    async fn page(
        &self,
        organisation_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Alert>, ApiCallError>;
}

/// The listing over the typed client: `GET /v1/alerts?status=ACTION_REQUIRED&organisation_id=`,
/// oldest received first.
pub struct ClientListing(pub crate::client::ChargebackStop);

#[async_trait::async_trait]
impl ActionRequiredAlerts for ClientListing {
    async fn page(
        &self,
        organisation_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Alert>, ApiCallError> {
        let query = AlertQuery {
            sort: Some(AlertSort::ReceivedOldestFirst),
            ..AlertQuery::action_required()
        }
        .for_organisation(organisation_id)
        .page(limit, offset);
        match self.0.list_alerts(&query).await {
            Ok(page) => Ok(page.items),
            Err(e) => {
                let id = organisation_id.to_string();
                let operation = "list ACTION_REQUIRED alerts";
                Err(match e.status() {
                    _ if e.is_retryable() => ApiCallError::Transient {
                        operation,
                        id,
                        detail: e.to_string(),
                    },
                    Some(404) => ApiCallError::NotFound { operation, id },
                    Some(status) => ApiCallError::Refused {
                        operation,
                        id,
                        status,
                        detail: e.to_string(),
                    },
                    None => ApiCallError::Transient {
                        operation,
                        id,
                        detail: e.to_string(),
                    },
                })
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub organisations: usize,
    pub pages: usize,
    pub seen: usize,
    /// Alerts we had never stored: their webhook never reached us.
    pub recovered: Vec<String>,
    /// Alerts we held in an older version.
    pub refreshed: usize,
    pub errors: usize,
}

pub struct Reconciler {
    pub api: Arc<dyn ActionRequiredAlerts>,
    pub alerts: Arc<dyn AlertStore>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub page_size: u32,
}

impl Reconciler {
    pub async fn run(&self, organisations: &[String]) -> ReconcileReport {
        let mut report = ReconcileReport {
            organisations: organisations.len(),
            ..Default::default()
        };
        for org in organisations {
            if let Err(e) = self.organisation(org, &mut report).await {
                report.errors += 1;
                tracing::error!(organisation_id = %org, error = %e, "alert reconciliation stopped for an organisation");
            }
        }
        tracing::info!(
            organisations = report.organisations,
            pages = report.pages,
            seen = report.seen,
            recovered = report.recovered.len(),
            refreshed = report.refreshed,
            errors = report.errors,
            "alert reconciliation finished"
        );
        report
    }

    async fn organisation(&self, org: &str, report: &mut ReconcileReport) -> Result<(), String> {
        let page_size = self.page_size.clamp(1, 100);
        let mut offset = 0;
        loop {
            let page = self
                .api
                .page(org, page_size, offset)
                .await
                .map_err(|e| e.to_string())?;
            report.pages += 1;
            report.seen += page.len();
            for alert in &page {
                let known = self
                    .alerts
                    .get(&alert.id)
                    .await
                    .map_err(|e| e.to_string())?;
                let (_, stale) = store_fetched_alert_notifying(
                    &*self.alerts,
                    &*self.notifier,
                    alert,
                    self.clock.now(),
                )
                .await
                .map_err(|e| e.to_string())?;
                match known {
                    None => {
                        report.recovered.push(alert.id.clone());
                        tracing::warn!(alert_id = %alert.id, organisation_id = %org, "alert found by reconciliation: its webhook never arrived");
                        let _ = self
                            .notifier
                            .notify(&OpsNotification {
                                kind: "alert.recovered_by_reconciliation".into(),
                                subject: format!(
                                    "Alert {} found by polling: its webhook never arrived",
                                    alert.id
                                ),
                                organisation_id: Some(org.to_string()),
                                object_id: alert.id.clone(),
                                status: Some(alert.status.to_string()),
                                note: alert
                                    .action_required_deadline
                                    .map(|d| format!("deadline {}", iso(d))),
                                at: iso(self.clock.now()),
                            })
                            .await;
                    }
                    Some(_) if !stale => report.refreshed += 1,
                    Some(_) => {}
                }
            }
            if (page.len() as u32) < page_size {
                return Ok(());
            }
            offset += page_size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryAlertStore, RecordingNotifier};
    use crate::clock::FixedClock;
    use crate::domain::alert_record::store_fetched_alert;
    use crate::domain::test_support::{alert, ts};
    use std::sync::Mutex;

    struct Listing {
        alerts: Vec<Alert>,
        calls: Mutex<Vec<(u32, u32)>>,
    }

    #[async_trait::async_trait]
    impl ActionRequiredAlerts for Listing {
        async fn page(
            &self,
            org: &str,
            limit: u32,
            offset: u32,
        ) -> Result<Vec<Alert>, ApiCallError> {
            self.calls.lock().unwrap().push((limit, offset));
            Ok(self
                .alerts
                .iter()
                .filter(|a| a.organisation_id == org)
                .skip(offset as usize)
                .take(limit as usize)
                .cloned()
                .collect())
        }
    }

    #[tokio::test]
    async fn pages_through_and_stores_only_what_was_missing() {
        let alerts: Vec<Alert> = (0..7)
            .map(|i| {
                alert(
                    &format!("netalrt_{i}"),
                    "ETHOCA_ALERT",
                    "ACTION_REQUIRED",
                    100,
                )
            })
            .collect();
        let store = Arc::new(MemoryAlertStore::default());
        // Webhooks arrived for all but netalrt_2 and netalrt_5.
        for a in alerts
            .iter()
            .filter(|a| a.id != "netalrt_2" && a.id != "netalrt_5")
        {
            store_fetched_alert(&*store, a, ts("2026-11-24T09:00:00Z"))
                .await
                .unwrap();
        }
        let listing = Arc::new(Listing {
            alerts: alerts.clone(),
            calls: Mutex::new(Vec::new()),
        });
        let notifier = Arc::new(RecordingNotifier::default());
        let reconciler = Reconciler {
            api: listing.clone(),
            alerts: store.clone(),
            notifier: notifier.clone(),
            clock: Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z"))),
            page_size: 3,
        };
        let report = reconciler.run(&["org_1".to_string()]).await;
        assert_eq!(report.recovered, vec!["netalrt_2", "netalrt_5"]);
        assert_eq!((report.pages, report.seen), (3, 7));
        assert_eq!(
            listing.calls.lock().unwrap().clone(),
            vec![(3, 0), (3, 3), (3, 6)]
        );
        let stored = store.get("netalrt_5").await.unwrap().unwrap();
        assert_eq!(
            stored.action_queue.as_deref(),
            Some(crate::domain::alert_record::ACTION_QUEUE)
        );
        assert_eq!(notifier.sent().len(), 2);
        // A second pass recovers nothing.
        assert!(reconciler
            .run(&["org_1".to_string()])
            .await
            .recovered
            .is_empty());
    }
}
