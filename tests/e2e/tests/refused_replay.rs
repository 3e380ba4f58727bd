//! Webhooks the Worker refused, recovered from the archive, over the real local stack (moto, the
//! sandbox, the Worker under workerd, the bridge, `process-events`, the real `cbs` binary).
//!
//! ChargebackStop signs with a secret the Worker does not have (the secret was rotated at
//! ChargebackStop and `WEBHOOK_SECRET` never updated), for longer than its retries. Every
//! delivery is answered 401, and the Worker keeps a copy marked `refused`, which `process-events`
//! archives without processing and reports (a notification, the first of the day). A forged
//! delivery, signed with a secret nobody has, is kept the same way.
//!
//! 1. Nothing is processed: no alert stored, no call to ChargebackStop about them.
//! 2. `cbs events replay` without `--refused` lists them as refused at the edge and changes
//!    nothing.
//! 3. The operators' copy of the signing secret updated (Secrets Manager), `cbs events replay
//!    --refused` verifies each archived delivery as it arrived and replays those that verify:
//!    both alerts are stored and decided, each once. The forged one is still refused: its alert
//!    is never fetched. The command exits non-zero and says so.
//! 4. Again: the replayed events are skipped (completed), nothing is applied twice.
//!
//! Needs every debug binary (`cargo build --workspace --bins`) and the built Worker.

use devstack::{paths, resources, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use shared::secret::Secret;

/// What ChargebackStop now signs with (the Worker still has the stack's first secret).
const ROTATED_SECRET: &str = "whsec_rotated_at_chargebackstop";

/// `cbs` with the stack's environment: (exit success, stdout, stderr), whatever the status.
async fn cbs(stack: &Stack, args: &[&str]) -> (bool, String, String) {
    let binary = paths::debug_binary("cbs");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p cbs-cli`",
        binary.display()
    );
    let out = tokio::process::Command::new(binary)
        .args(args)
        .envs(stack.env())
        .output()
        .await
        .expect("run cbs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The archive's items that are refused deliveries: (event id, delivery id, refusal code).
async fn refused_in_archive(stack: &Stack) -> Vec<(String, String, String)> {
    let out = stack
        .dynamo
        .scan()
        .table_name(format!("{}-archive", stack.resources.table_prefix))
        .send()
        .await
        .unwrap();
    let mut found: Vec<(String, String, String)> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            let code = item
                .get("headers")
                .and_then(|h| h.as_m().ok())
                .and_then(|h| h.get("x-edge-refused"))
                .and_then(|v| v.as_s().ok())
                .cloned()?;
            Some((s("event_id")?, s("delivery_id")?, code))
        })
        .collect();
    found.sort();
    found
}

/// Requests ChargebackStop received for one alert.
async fn requests_about(stack: &Stack, alert_id: &str) -> Vec<Value> {
    stack
        .sandbox_admin_ok(Method::GET, "requests", None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(alert_id)))
        .cloned()
        .collect()
}

#[tokio::test]
async fn refused_webhooks_are_kept_and_replayed_once_fixed_and_forgeries_never() {
    let prefix = resources::unique_prefix("refused");
    let notifications = devstack::log_dir().join(format!("{prefix}-notifications.jsonl"));
    let stack = Stack::start(StackOptions {
        table_prefix: Some(prefix.clone()),
        // ChargebackStop's retries (+1 m ... +12 h) within seconds: "past the retries" is quick.
        sandbox_time_factor: 0.0001,
        function_env: vec![
            ("NOTIFY_TOPIC_ARN".into(), String::new()),
            (
                "NOTIFY_SINK".into(),
                format!("file://{}", notifications.display()),
            ),
        ],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"));
    let customer = stack.onboard("refused-customer").await.expect("onboarding");
    let org = customer.organisation_id.clone();

    // ChargebackStop signs with a secret the Worker does not have, past its last retry.
    stack
        .sandbox_admin_ok(
            Method::PUT,
            "webhooks/secrets",
            Some(json!({ "secrets": [ROTATED_SECRET] })),
        )
        .await;
    let mut alerts = Vec::new();
    for amount in [2100, 2200] {
        let a = stack
            .simulate_alert(&org, &customer.ethoca_enrolment_id, amount)
            .await
            .unwrap();
        alerts.push(a["id"].as_str().unwrap().to_string());
    }
    let mut events = Vec::new();
    for id in &alerts {
        let event = stack.sandbox_events_about(id).await[0].clone();
        stack
            .eventually("ChargebackStop gives up on the refused webhook", || async {
                stack
                    .sandbox_deliveries(&event)
                    .await
                    .unwrap()
                    .iter()
                    .any(|d| d["outcome"] == "gave_up")
                    .then_some(())
            })
            .await
            .unwrap();
        events.push(event);
    }
    // A forgery: an event about an alert nobody created, signed with a secret nobody has.
    let forged_event = "evt_forged_1";
    let forged_alert = "netalrt_forged_1";
    let body = json!({
        "id": forged_event,
        "type": "alert.created",
        "created_at": chrono::Utc::now().to_rfc3339(),
        "data": { "object": { "id": forged_alert, "organisation_id": org } },
        "api_version": "v1",
    })
    .to_string();
    let t = chrono::Utc::now().timestamp();
    let forged = stack
        .http
        .post(stack.worker.webhook_url())
        .header("content-type", "application/json")
        .header(
            "x-signature",
            shared::signature::sign(&Secret::new("whsec_attacker"), t, body.as_bytes()),
        )
        .header("x-idempotency-key", "idem-forged-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    // 1. Every refused delivery is archived apart (one item per delivery, however often it was
    //    retried), and nothing was processed.
    let mut expected: Vec<String> = events.clone();
    expected.push(forged_event.to_string());
    expected.sort();
    // Only these three are judged: another refused event may follow (an update ChargebackStop
    // sends about one of the alerts), and it is kept the same way.
    let refused = stack
        .eventually("the refused deliveries archived", || async {
            let all = refused_in_archive(&stack).await;
            let refused: Vec<_> = all
                .iter()
                .filter(|(e, _, _)| expected.contains(e))
                .cloned()
                .collect();
            let mut ids: Vec<String> = refused.iter().map(|(e, _, _)| e.clone()).collect();
            ids.dedup();
            if ids == expected && all.len() > refused.len() {
                eprintln!("other refused deliveries archived: {all:?}");
            }
            (ids == expected).then_some(refused)
        })
        .await
        .unwrap();
    assert_eq!(
        refused.len(),
        3,
        "one archive item per delivery: {refused:?}"
    );
    for (_, delivery_id, code) in &refused {
        assert!(delivery_id.starts_with("refused:"), "{delivery_id}");
        assert_eq!(code, "signature_mismatch");
    }
    for id in &alerts {
        assert!(stack.stored_alert(id).await.unwrap().is_none());
    }
    assert!(stack.stored_alert(forged_alert).await.unwrap().is_none());
    assert!(requests_about(&stack, forged_alert).await.is_empty());
    // Operations heard of it: the first refusal of the day, with what to do.
    let told: Vec<Value> = std::fs::read_to_string(&notifications)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|n: &Value| n["kind"] == "webhook.refused_at_edge")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["note"]
            .as_str()
            .unwrap()
            .contains("cbs events replay --refused"),
        "{told:?}"
    );

    // The operations page's DLQ panel counts them.
    let (code, dlq) = stack.ops(Method::GET, "api/dlq", None).await.unwrap();
    assert!(code.is_success(), "{code} {dlq}");
    assert!(
        dlq["refused_at_edge"]["today"].as_u64().unwrap() >= 3,
        "{dlq}"
    );

    // 2. Without --refused: listed, left alone.
    let (ok, out, err) = cbs(&stack, &["events", "replay", "--since", "1h"]).await;
    assert!(ok, "{out}{err}");
    for event in &expected {
        let line = out.lines().find(|l| l.starts_with(event.as_str())).unwrap();
        assert!(line.contains("refused at the edge"), "{out}");
    }
    for id in &alerts {
        assert!(stack.stored_alert(id).await.unwrap().is_none());
    }

    // 3. The operators' copy of the secret updated; --refused verifies and replays.
    resources::put_secret(
        &stack.moto.endpoint,
        &resources::webhook_secret_name(&stack.resources.table_prefix),
        ROTATED_SECRET,
    )
    .await
    .unwrap();
    let (ok, out, err) = cbs(&stack, &["events", "replay", "--since", "1h", "--refused"]).await;
    assert!(
        !ok,
        "a delivery that still does not verify is a failure: {out}{err}"
    );
    assert!(err.contains("not replayed"), "{err}");
    for event in &events {
        let line = out.lines().find(|l| l.starts_with(event.as_str())).unwrap();
        assert!(line.contains("replayed"), "{out}");
    }
    let forged_line = out.lines().find(|l| l.starts_with(forged_event)).unwrap();
    assert!(
        forged_line.contains("still refused") && forged_line.contains("does not match"),
        "{out}"
    );
    for id in &alerts {
        let stored = stack.stored_alert(id).await.unwrap().expect("replayed");
        assert!(
            !stored["decisions"].as_array().unwrap().is_empty(),
            "decided: {stored}"
        );
    }
    assert!(stack.stored_alert(forged_alert).await.unwrap().is_none());
    assert!(
        requests_about(&stack, forged_alert).await.is_empty(),
        "the forged alert is never fetched"
    );
    let patches = |reqs: Vec<Value>| reqs.iter().filter(|r| r["method"] == "PATCH").count();
    let mut acted = Vec::new();
    for id in &alerts {
        acted.push(patches(requests_about(&stack, id).await));
    }

    // 4. Again: nothing applied twice.
    let (_, out, _) = cbs(&stack, &["events", "replay", "--since", "1h", "--refused"]).await;
    for event in &events {
        let line = out.lines().find(|l| l.starts_with(event.as_str())).unwrap();
        assert!(line.contains("skipped (completed)"), "{out}");
    }
    for (id, before) in alerts.iter().zip(acted) {
        assert_eq!(patches(requests_about(&stack, id).await), before, "{id}");
        assert!(before <= 1, "at most one action per alert: {id} {before}");
    }
}
