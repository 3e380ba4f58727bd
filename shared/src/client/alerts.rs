//! Alerts: list (every filter, sort, limit/offset) with a paging iterator, get, and the PATCH
//! that actions an alert and/or saves a note.

use std::collections::VecDeque;

use reqwest::Method;

use super::{checked, ApiError, ChargebackStop, Repeat};
use crate::models::{Alert, AlertQuery, AlertStatus, Page, RefundOutcome, UpdateAlert};
use crate::validation::{validate_alert_query, validate_update_alert};

/// Page size the pager asks for when the query sets no `limit`.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

impl ChargebackStop {
    /// One page of `GET /v1/alerts/` (the reference's base URL, with its slash). The query is
    /// sent as given; `validation::validate_alert_query` catches an inverted date range before
    /// the API's 422 would.
    pub async fn list_alerts(&self, query: &AlertQuery) -> Result<Page<Alert>, ApiError> {
        let url = self.url(&["v1", "alerts"], true);
        checked(&Method::GET, &url, validate_alert_query(query))?;
        self.get(url, Some(query)).await
    }

    /// Every alert matching `query`, page by page, from `query.offset` (default 0).
    pub fn alerts(&self, query: AlertQuery) -> AlertPager {
        AlertPager::new(self.clone(), query)
    }

    /// The latest state of one alert: fetch it before an irreversible action.
    pub async fn get_alert(&self, alert_id: &str) -> Result<Alert, ApiError> {
        self.get::<_, ()>(self.url(&["v1", "alerts", alert_id], false), None)
            .await
    }

    /// Actions an Ethoca alert and/or saves its note. Retried on 429/5xx/timeouts: setting
    /// the same values again is harmless. If an earlier attempt may have landed (5xx, timeout)
    /// and the repeat is refused with a 422 because the alert is now resolved, the alert is
    /// fetched: when it shows exactly what we asked for, that was our own first attempt and
    /// the call succeeded; otherwise the 422 stands.
    pub async fn update_alert(
        &self,
        alert_id: &str,
        update: &UpdateAlert,
    ) -> Result<Alert, ApiError> {
        let url = self.url(&["v1", "alerts", alert_id], false);
        checked(&Method::PATCH, &url, validate_update_alert(update))?;
        let (result, ambiguous) = self
            .send_tracked(Method::PATCH, url, Some(update), Repeat::Safe)
            .await;
        match result {
            Err(err @ ApiError::Unprocessable { .. }) if ambiguous => {
                match self.get_alert(alert_id).await {
                    Ok(alert) if shows_update(&alert, update) => {
                        tracing::warn!(
                            alert_id,
                            "alert update refused on repeat, but the alert shows it: an earlier attempt landed"
                        );
                        Ok(alert)
                    }
                    _ => Err(err),
                }
            }
            other => other,
        }
    }
}

/// Whether `alert` is what `update` would have made of it: resolved with the outcome the
/// action gives (REFUND and REFUND_AND_CANCEL refund, CANCEL and ACCEPT_DISPUTE do not) and
/// the note we sent.
pub(crate) fn shows_update(alert: &Alert, update: &UpdateAlert) -> bool {
    let note_ok = match &update.note {
        Some(note) => alert.note.as_deref() == Some(note.as_str()),
        None => true,
    };
    let action_ok = match &update.action {
        None => true,
        Some(action) if !action.is_known() => false,
        Some(action) => {
            let expected = if action.refunds() {
                RefundOutcome::Refunded
            } else {
                RefundOutcome::NotRefunded
            };
            alert.status == AlertStatus::Resolved
                && alert.transaction_refund_outcome.as_ref() == Some(&expected)
        }
    };
    note_ok && action_ok
}

/// Walks `GET /v1/alerts` with limit/offset. Offsets shift if alerts stop matching while
/// paging (e.g. actioning ACTION_REQUIRED alerts during a walk over that status): collect
/// first, then act, or restart the walk.
///
/// ```ignore
/// let mut pager = api.alerts(AlertQuery::action_required());
/// while let Some(alert) = pager.next().await { let alert = alert?; ... }
/// ```
pub struct AlertPager {
    api: ChargebackStop,
    query: AlertQuery,
    limit: u32,
    offset: u32,
    buffer: VecDeque<Alert>,
    done: bool,
    pages_fetched: u32,
}

impl AlertPager {
    fn new(api: ChargebackStop, query: AlertQuery) -> Self {
        let limit = query.limit.filter(|l| *l > 0).unwrap_or(DEFAULT_PAGE_SIZE);
        let offset = query.offset.unwrap_or(0);
        Self {
            api,
            query,
            limit,
            offset,
            buffer: VecDeque::new(),
            done: false,
            pages_fetched: 0,
        }
    }

    /// The next page (`None` once the list is exhausted). After a retryable error the pager
    /// can be called again: it retries the same page; after a final one it is done.
    pub async fn next_page(&mut self) -> Option<Result<Vec<Alert>, ApiError>> {
        if self.done {
            return None;
        }
        let query = AlertQuery {
            limit: Some(self.limit),
            offset: Some(self.offset),
            ..self.query.clone()
        };
        let page = match self.api.list_alerts(&query).await {
            Ok(page) => page,
            Err(err) => {
                // A final error (401, 403, 422, invalid query) would only repeat: stop here so
                // a caller that logs and carries on does not loop. Retryable ones may be
                // tried again by calling again.
                if !err.is_retryable() {
                    self.done = true;
                }
                return Some(Err(err));
            }
        };
        self.pages_fetched += 1;
        let more = page.has_more(u64::from(self.offset), u64::from(self.limit));
        self.offset = self.offset.saturating_add(page.items.len() as u32);
        if !more || page.items.is_empty() {
            self.done = true;
        }
        if page.items.is_empty() {
            return None;
        }
        Some(Ok(page.items))
    }

    /// The next alert, fetching the next page when the current one is used up.
    pub async fn next(&mut self) -> Option<Result<Alert, ApiError>> {
        loop {
            if let Some(alert) = self.buffer.pop_front() {
                return Some(Ok(alert));
            }
            match self.next_page().await? {
                Ok(items) => self.buffer.extend(items),
                Err(err) => return Some(Err(err)),
            }
        }
    }

    /// Every remaining alert, or the first error.
    pub async fn collect_all(mut self) -> Result<Vec<Alert>, ApiError> {
        let mut all = Vec::new();
        while let Some(alert) = self.next().await {
            all.push(alert?);
        }
        Ok(all)
    }

    /// How many pages were fetched so far (for logs and tests).
    pub fn pages_fetched(&self) -> u32 {
        self.pages_fetched
    }
}
