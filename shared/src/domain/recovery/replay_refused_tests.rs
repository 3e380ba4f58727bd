//! Replaying deliveries the edge refused: reported without the secret, replayed only when they
//! verify with it, never when forged; an accepted delivery of the same event comes first.

use super::replay::{ReplayOptions, ReplayResult, Replayer};
use super::tests::{ids, raw, to_json, world, World};
use crate::domain::test_support::{alert, ts};
use crate::ports::alert_store::AlertStore;
use crate::ports::event_log::EventStatus;
use crate::secret::Secret;
use crate::signature::{sign, WebhookSecrets};
use std::time::Duration;

const SECRET: &str = "whsec_what_chargebackstop_signs_with";
const RECEIVED: &str = "2026-11-24T09:00:00Z";

/// A delivery of `evt` about alert `a` the edge refused, signed with `secret` a second before
/// it arrived.
fn refused(event_id: &str, alert_id: &str, secret: &str) -> super::archive::RawDelivery {
    let a = alert(alert_id, "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    let mut r = raw(event_id, "alert.created", to_json(&a), RECEIVED);
    let t = ts(RECEIVED).timestamp() - 1;
    r.attributes
        .insert("signature".into(), sign(&Secret::new(secret), t, &r.body));
    r.attributes
        .insert("refused".into(), "signature_mismatch".into());
    r
}

async fn replay_with(w: &World, secret: Option<&str>, event: &str) -> ReplayResult {
    let r = Replayer {
        verify_refused_with: secret.map(|s| WebhookSecrets::new(Secret::new(s), None)),
        ..w.replayer()
    };
    let selected = r.select(&ids(&[event])).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = r
        .replay(&selected, ReplayOptions::default(), deadline, 30, |_| {})
        .await;
    assert_eq!(out.len(), 1);
    out.remove(0).result
}

#[tokio::test]
async fn a_refused_delivery_is_replayed_only_once_it_verifies_with_the_secret() {
    let w = world();
    w.api
        .put_alert(alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100));
    w.archive_only(&refused("evt_1", "a1", SECRET)).await;

    // Without the secret: reported with what to do, nothing fetched or written.
    let without = replay_with(&w, None, "evt_1").await;
    assert!(
        matches!(&without, ReplayResult::RefusedAtEdge { reason } if reason.contains("--refused")),
        "{without:?}"
    );
    // With a secret it does not verify with (the operators' copy is wrong too): still refused.
    let wrong = replay_with(&w, Some("whsec_still_wrong"), "evt_1").await;
    assert!(
        matches!(&wrong, ReplayResult::StillRefused { reason } if reason.contains("does not match")),
        "{wrong:?}"
    );
    assert_eq!(w.api.gets(), 0);
    assert!(w.alerts.get("a1").await.unwrap().is_none());
    assert!(w.events.record("evt_1").is_none());

    // With the right secret: through the processor, once, under its original delivery id.
    let right = replay_with(&w, Some(SECRET), "evt_1").await;
    assert!(matches!(right, ReplayResult::Replayed { .. }), "{right:?}");
    assert!(w.alerts.get("a1").await.unwrap().is_some());
    let record = w.events.record("evt_1").unwrap();
    assert_eq!(record.status, EventStatus::Completed);
    assert_eq!(record.idempotency_key.as_deref(), Some("idem-evt_1"));
    let again = replay_with(&w, Some(SECRET), "evt_1").await;
    assert!(
        matches!(again, ReplayResult::SkippedCompleted { .. }),
        "{again:?}"
    );
    assert_eq!(w.api.gets(), 1);
}

#[tokio::test]
async fn a_forged_delivery_is_never_processed_whatever_it_names() {
    let w = world();
    w.api
        .put_alert(alert("a_real", "ETHOCA_ALERT", "ACTION_REQUIRED", 100));
    // Signed by someone without the secret, naming a real alert.
    w.archive_only(&refused("evt_forged", "a_real", "whsec_attacker"))
        .await;
    let out = replay_with(&w, Some(SECRET), "evt_forged").await;
    assert!(matches!(out, ReplayResult::StillRefused { .. }), "{out:?}");
    assert_eq!(w.api.gets(), 0, "not even fetched");
    assert!(w.alerts.get("a_real").await.unwrap().is_none());
}

#[tokio::test]
async fn an_accepted_delivery_of_the_same_event_comes_before_a_refused_one() {
    let w = world();
    let a = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
    w.api.put_alert(a.clone());
    // Accepted and processed; a refused copy of it arrived later (a second endpoint's Worker
    // still had the old secret).
    w.deliver(&raw(
        "evt_1",
        "alert.created",
        to_json(&a),
        "2026-11-24T08:00:00Z",
    ))
    .await;
    w.archive_only(&refused("evt_1", "a1", "whsec_attacker"))
        .await;
    let out = replay_with(&w, None, "evt_1").await;
    assert!(
        matches!(out, ReplayResult::SkippedCompleted { .. }),
        "the accepted delivery, not the refused one: {out:?}"
    );
}
