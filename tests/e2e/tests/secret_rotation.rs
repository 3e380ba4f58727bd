//! The partner API key rotated while a function runs, over real parts: the key in moto's Secrets
//! Manager (the function gets only the secret's name, `CBS_API_KEY_SECRET_ID`, as in the cloud),
//! `deadline-sweep` started once from its debug binary under `cargo lambda watch`'s runtime API,
//! its reconciliation calling the sandbox. The sandbox's request log says which key each call
//! carried and what it got.
//!
//! Rotation as an operator does it: a new key is created at ChargebackStop and put into the
//! secret; later the old key stops working (here: it expires). The function must keep working
//! without a restart or a deploy: it keeps the cached key while that works (no read per call),
//! gets a 401 once the old key is gone, re-reads the secret, and sends the call again with the
//! new key.
//!
//! Needs the debug binaries `deadline-sweep` and `cbs-sandbox`
//! (`cargo build -p deadline-sweep -p cbs-sandbox`; `bin/test` builds every binary first).

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use devstack::scheduler::scheduled_event;
use devstack::{resources, Functions, Moto, Sandbox, SandboxClient, SandboxOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// How long the first key lives: long enough for start-up and two runs on a loaded machine.
const FIRST_KEY_LIFETIME_SECS: i64 = 60;

struct Key {
    id: String,
    key: String,
}

async fn partner_key(
    sandbox: &SandboxClient,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Key {
    let mut body = json!({
        "scope": "partner",
        "mode": "TEST",
        "admin": true,
        "key": format!("cbs_test_{name}_{}", &resources::unique_prefix("k")[2..]),
    });
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    let created = sandbox.admin(Method::POST, "keys", Some(body)).await;
    Key {
        id: created["id"].as_str().unwrap().to_string(),
        key: created["key"].as_str().unwrap().to_string(),
    }
}

/// `(key_id, status)` of every `GET /v1/alerts` the sandbox received since the last clear.
async fn alert_listings(sandbox: &SandboxClient) -> Vec<(String, u64)> {
    let log = sandbox.admin(Method::GET, "requests", None).await;
    log.as_array()
        .expect("the request log is a list")
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/v1/alerts"))
        })
        .map(|r| {
            (
                r["key_id"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

async fn clear_log(sandbox: &SandboxClient) {
    sandbox.admin(Method::DELETE, "requests", None).await;
}

async fn sweep(functions: &Functions) -> Value {
    functions
        .invoke("deadline-sweep", scheduled_event("secret-rotation"))
        .await
        .expect("the sweep runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_api_key_is_picked_up_without_a_restart() {
    let moto = Moto::start().await.expect("moto");
    let res = resources::create(&moto.endpoint, &resources::unique_prefix("rotation"))
        .await
        .expect("tables and queues");
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let http = reqwest::Client::new();
    let cbs = SandboxClient::new(&sandbox, http.clone());
    let org = cbs
        .api(
            Method::POST,
            "/v1/organisations/",
            json!({ "name": "Rotation" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The key in use at start-up, valid for a minute; it is only ever in the secret.
    let first_expires = Utc::now() + ChronoDuration::seconds(FIRST_KEY_LIFETIME_SECS);
    let first = partner_key(&cbs, "first", Some(first_expires)).await;
    let secret = resources::api_key_secret_name(&res.table_prefix);
    resources::put_secret(&moto.endpoint, &secret, &first.key)
        .await
        .expect("put the key into Secrets Manager");

    let mut env: Vec<(String, String)> = moto.env();
    env.extend(res.env());
    // The sandbox's URL, not its key: the function finds the key by the secret's name only.
    env.extend(
        sandbox
            .env()
            .into_iter()
            .filter(|(k, _)| k != "CBS_API_KEY"),
    );
    env.extend(
        [
            ("STACK_MODE", "TEST".to_string()),
            ("CBS_API_KEY_SECRET_ID", secret.clone()),
            ("RECONCILE_ORGANISATION_IDS", org.clone()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    assert!(!env.iter().any(|(k, _)| k == "CBS_API_KEY"));
    let mut functions = Functions::start_binaries(env, &["deadline-sweep"])
        .await
        .expect("the sweep under cargo lambda watch");

    // 1. The key read from the secret works.
    clear_log(&cbs).await;
    sweep(&functions).await;
    let calls = alert_listings(&cbs).await;
    assert!(
        !calls.is_empty(),
        "reconciliation lists the organisation's alerts"
    );
    assert!(
        calls
            .iter()
            .all(|(key, status)| *key == first.id && *status == 200),
        "{calls:?}"
    );

    // 2. Rotation begins: the new key exists and is in the secret; the old one still works, and
    //    the function keeps using its cached key (no read per call, no 401).
    let second = partner_key(&cbs, "second", None).await;
    resources::put_secret(&moto.endpoint, &secret, &second.key)
        .await
        .expect("rotate the secret");
    clear_log(&cbs).await;
    sweep(&functions).await;
    assert!(
        Utc::now() < first_expires,
        "the machine was too slow: the first key expired before the second run finished"
    );
    let calls = alert_listings(&cbs).await;
    assert!(!calls.is_empty());
    assert!(
        calls
            .iter()
            .all(|(key, status)| *key == first.id && *status == 200),
        "{calls:?}"
    );

    // 3. The old key stops working. The same process answers the next run: one 401 with the old
    //    key, then every call with the new key from the secret.
    let wait = (first_expires - Utc::now()).num_milliseconds().max(0) as u64 + 1_500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    clear_log(&cbs).await;
    let report = sweep(&functions).await;
    let calls = alert_listings(&cbs).await;
    // The sandbox names no key for a request it refused (the key is not valid).
    assert!(
        calls
            .first()
            .is_some_and(|(key, status)| *status == 401 && (key.is_empty() || *key == first.id)),
        "the expired key is refused first: {calls:?}"
    );
    assert!(
        calls.len() >= 2
            && calls[1..]
                .iter()
                .all(|(key, status)| *key == second.id && *status == 200),
        "then the rotated key is used and accepted: {calls:?}"
    );
    if let Some(errors) = report.pointer("/reconcile/errors").and_then(Value::as_u64) {
        assert_eq!(errors, 0, "{report}");
    }

    // 4. From then on only the new key, without a 401.
    clear_log(&cbs).await;
    sweep(&functions).await;
    let calls = alert_listings(&cbs).await;
    assert!(!calls.is_empty());
    assert!(
        calls
            .iter()
            .all(|(key, status)| *key == second.id && *status == 200),
        "{calls:?}"
    );
    // The function never restarted: the process started at the beginning is still the one.
    functions
        .ensure_running()
        .expect("the sweep process is still running");
    assert_eq!(functions.instances.len(), 1);
}
