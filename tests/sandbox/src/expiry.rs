//! Alert expiry. The docs: an Ethoca alert must be actioned before `action_required_deadline`;
//! "if no action is taken, the dispute proceeds". They do not say what the alert shows then, so
//! the sandbox chooses (knob `expiry_outcome`, default RESOLVED with
//! `transaction_refund_outcome: NOT_REFUNDED`, i.e. auto-declined), sends `alert.updated`, and a
//! later PATCH with an action gets the "resolved alert cannot be actioned" 422.
//!
//! Expiry happens lazily before any alert route answers (so no request ever sees an alert past
//! its deadline still ACTION_REQUIRED) and on a ticker (so the webhook goes out even when nobody
//! asks). Only watched alerts expire: those whose deadline was in the future when it was set.
//! A deadline set in the past (admin PATCH, simulate extension) describes an overdue alert
//! ChargebackStop has not processed yet; `POST /_sandbox/alerts/{id}/expire` expires it.

use crate::model::ts;
use crate::state::{App, ExpiryOutcome, SharedApp, Store};
use chrono::Utc;
use serde_json::{json, Value};
use std::time::Duration;

/// How often the ticker looks for alerts past their deadline.
pub const EXPIRY_TICK: Duration = Duration::from_millis(200);

/// Expire every watched alert whose deadline has passed, unless the `alert_expiry` knob is off.
/// Returns how many expired.
pub fn expire_due(app: &App, store: &mut Store) -> usize {
    let (enabled, outcome) = {
        let rt = app.runtime();
        (rt.faults.alert_expiry, rt.faults.expiry_outcome)
    };
    if !enabled || store.expiry_watch.is_empty() {
        return 0;
    }
    let now = Utc::now();
    let due: Vec<String> = store
        .expiry_watch
        .iter()
        .filter(|id| {
            store
                .alerts
                .get(*id)
                .and_then(|a| a.action_required_deadline)
                .is_none_or(|d| d <= now)
        })
        .cloned()
        .collect();
    let mut expired = 0;
    for id in due {
        store.expiry_watch.remove(&id);
        if expire(app, store, &id, outcome) {
            expired += 1;
        }
    }
    expired
}

/// Move one ACTION_REQUIRED alert to what `outcome` says and send `alert.updated`. False when
/// the alert is unknown or not ACTION_REQUIRED.
pub fn expire(app: &App, store: &mut Store, alert_id: &str, outcome: ExpiryOutcome) -> bool {
    let Some(before) = store.alerts.get(alert_id).cloned() else {
        return false;
    };
    if before.status != "ACTION_REQUIRED" {
        return false;
    }
    let mut alert = before.clone();
    let (status, refund) = match outcome {
        ExpiryOutcome::ResolvedNotRefunded => ("RESOLVED", Some("NOT_REFUNDED")),
        ExpiryOutcome::ResolvedNoOutcome => ("RESOLVED", None),
        ExpiryOutcome::Invalid => ("INVALID", None),
    };
    alert.status = status.into();
    alert.transaction_refund_outcome = refund.map(str::to_string);
    alert.updated_at = Utc::now();
    let previous = json!({
        "status": before.status,
        "transaction_refund_outcome": before.transaction_refund_outcome,
        "updated_at": ts::format(&before.updated_at),
    });
    store.expiry_watch.remove(alert_id);
    store.alerts.insert(alert_id.to_string(), alert.clone());
    tracing::info!(alert_id, status, "alert expired past its deadline");
    app.emit(store, "alert.updated", "v1", json!(alert), previous);
    app.changed();
    true
}

/// Watch (or stop watching) an alert for expiry after its deadline or status changed: only an
/// ACTION_REQUIRED Ethoca alert whose deadline is still ahead is watched.
pub fn rearm(store: &mut Store, alert_id: &str) {
    let watch = store.alerts.get(alert_id).is_some_and(|a| {
        a.status == "ACTION_REQUIRED"
            && a.enrolment_type == crate::model::ETHOCA_ALERT
            && a.action_required_deadline.is_some_and(|d| d > Utc::now())
    });
    if watch {
        store.expiry_watch.insert(alert_id.to_string());
    } else {
        store.expiry_watch.remove(alert_id);
    }
}

/// Runs until the sandbox stops: expires due alerts so their webhooks go out unasked.
pub async fn ticker(app: SharedApp) {
    loop {
        tokio::time::sleep(EXPIRY_TICK).await;
        let mut store = app.store();
        expire_due(&app, &mut store);
    }
}

/// For the admin API: the alert as JSON after a forced expiry.
pub fn expire_now(app: &App, alert_id: &str) -> Option<Value> {
    let outcome = app.runtime().faults.expiry_outcome;
    let mut store = app.store();
    store.alerts.get(alert_id)?;
    expire(app, &mut store, alert_id, outcome);
    store.alerts.get(alert_id).map(|a| json!(a))
}
