//! An alert event about a version we already hold, of an alert no longer waiting for us, is
//! completed without a GET (above all the `alert.updated` our own PATCH causes); anything
//! newer, unreadable or still waiting is fetched first.

use super::tests::{alert_event, message, world};
use crate::domain::test_support::alert;

#[tokio::test]
async fn the_update_our_patch_caused_is_completed_without_a_get() {
    let w = world();
    let mut a = alert("netalrt_1", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    a.updated_at = Some(crate::domain::test_support::ts("2026-11-24T09:00:00Z"));
    w.api.put_alert(a.clone());
    let created = w
        .run(&alert_event("evt_1", "alert.created", &a))
        .await
        .unwrap();
    assert_eq!(created.outcome, "alert_actioned:REFUND");
    assert_eq!(w.api.gets(), 1);

    // ChargebackStop's alert.updated carries the alert as our PATCH left it.
    let resolved = w.api.alert("netalrt_1").expect("the alert");
    assert_ne!(resolved.status, a.status, "the PATCH resolved it");
    let updated = w
        .run(&alert_event("evt_2", "alert.updated", &resolved))
        .await
        .unwrap();
    assert_eq!(updated.outcome, "alert_already_current");
    assert_eq!(w.api.gets(), 1, "no GET for a version we hold");

    // A later change (a newer version) is fetched, as is an object without a version.
    let mut later = resolved.clone();
    later.updated_at = later.updated_at.map(|t| t + chrono::Duration::minutes(5));
    w.api.put_alert(later.clone());
    w.run(&alert_event("evt_3", "alert.updated", &later))
        .await
        .unwrap();
    assert_eq!(w.api.gets(), 2, "a newer version is fetched");
    let mut unversioned = serde_json::to_value(&later).unwrap();
    unversioned.as_object_mut().unwrap().remove("updated_at");
    w.run(&message("evt_4", "alert.updated", unversioned))
        .await
        .unwrap();
    assert_eq!(w.api.gets(), 3, "an object without updated_at is fetched");
}

#[tokio::test]
async fn an_alert_still_waiting_is_always_fetched() {
    let w = world();
    // Left for a person: no final decision, still ACTION_REQUIRED.
    let mut a = alert("netalrt_2", "ETHOCA_ALERT", "ACTION_REQUIRED", 1000);
    a.transaction_amount_in_cents = Some(10_000_000);
    w.api.put_alert(a.clone());
    let first = w
        .run(&alert_event("evt_1", "alert.created", &a))
        .await
        .unwrap();
    let gets = w.api.gets();
    let again = w
        .run(&alert_event("evt_2", "alert.updated", &a))
        .await
        .unwrap();
    assert_ne!(
        again.outcome, "alert_already_current",
        "{first:?} then {again:?}"
    );
    assert_eq!(w.api.gets(), gets + 1);
}
