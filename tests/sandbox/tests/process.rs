//! The `cbs-sandbox` binary as other suites start it (flags, the SANDBOX_LISTENING line, SIGTERM),
//! and the state file surviving a restart.

mod common;

use common::*;
use serde_json::{json, Value};
use shared::secret::Secret;
use shared::signature::{verify, WebhookSecrets};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the child if a test fails half-way.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cbs-sandbox-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Start the binary and read its one stdout line (on a blocking thread: the read blocks).
async fn spawn(args: &[String]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbs-sandbox"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sandbox binary starts");
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("SANDBOX_LISTENING within 60 s")
        .unwrap()
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("SANDBOX_LISTENING ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, base)
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_honours_its_flags_and_saves_state_on_sigterm() {
    let receiver = Receiver::start(vec![]).await;
    let dir = temp_dir("binary");
    let state = dir.join("state.json");
    let key = "cbs_test_binary_partner";
    let args: Vec<String> = [
        "--addr",
        "127.0.0.1:0",
        "--partner-key",
        key,
        "--webhook-url",
        &receiver.url,
        "--webhook-secret",
        "whsec_binary",
        "--time-factor",
        "0.001",
        "--rate-limit",
        "3",
        "--rate-window-ms",
        "600000",
        "--state-file",
        state.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (mut child, base) = spawn(&args).await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = http
        .get(format!("{base}/_sandbox/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let (status, org) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/organisations/"),
        key,
        Some(json!({ "name": "Binary" })),
    )
    .await;
    assert_eq!(status, 201);
    let org_id = org["id"].as_str().unwrap().to_string();
    let (_, merchant) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/merchants/"),
        key,
        Some(json!({ "organisation_id": org_id, "name": "m", "type": "GENERIC" })),
    )
    .await;
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/v2/enrolments/"),
        key,
        Some(json!({ "merchant_ids": [merchant["id"]], "type": "VERIFI_RDR", "verifi_rdr": { "arns": ["1"] } })),
    )
    .await;
    assert_eq!(status, 201);
    // --webhook-url and --webhook-secret.
    let hook = &receiver.wait_for(1).await[0];
    let secrets = WebhookSecrets::new(Secret::new("whsec_binary"), None);
    verify(
        hook.signature.as_deref(),
        &hook.body,
        &secrets,
        chrono::Utc::now().timestamp(),
        300,
    )
    .expect("signed with --webhook-secret");
    // --rate-limit 3 in a 10-minute window.
    for _ in 0..3 {
        let (s, _) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/v1/alerts"),
            key,
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/v1/alerts"),
        key,
        None,
    )
    .await;
    assert_eq!(s, 429);

    // SIGTERM: a clean stop that leaves the state file behind.
    let pid = child.0.id().to_string();
    // The shell's own `kill` (a fresh machine may lack /bin/kill).
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || child.0.wait().map(|s| (s, child)))
        .await
        .unwrap()
        .unwrap();
    assert!(exit.0.success(), "exit status {:?}", exit.0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(saved["organisations"].get(&org_id).is_some());

    // A restart on the same file knows the organisation and the key.
    let (_child, base) = spawn(&args).await;
    let (status, got) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/v1/organisations/{org_id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "[TEST] Binary");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_an_in_process_restart_but_not_a_reset() {
    let dir = temp_dir("state");
    let mut cfg = config();
    cfg.state_file = Some(dir.join("state.json"));
    let h = start_with(cfg.clone()).await;
    let Alerted { o, alert, .. } = h.onboard_with_alert(PARTNER_KEY, "Saved").await;
    let saved_order = json!([{ "type": "COMPLETE", "organisation_id": o.org_id, "integration_id": o.integration_id,
                 "reference_id": "saved-1", "order_datetime": "2026-02-17T09:59:00Z", "order_number": "1",
                 "order_subtotal_amount_in_cents": 1, "order_currency": "USD",
                 "order_total_amount_in_cents": 1, "order_status": "OTHER" }]);
    let r = h
        .post("/v1/orders/", PARTNER_KEY, saved_order.clone())
        .await;
    assert_eq!(r.body["created"], 1);
    h.sandbox.stop().await;

    let h = start_with(cfg.clone()).await;
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    assert_eq!(
        h.get(&path, PARTNER_KEY).await.body["status"],
        "ACTION_REQUIRED"
    );
    // The reference index is rebuilt: the same reference is still a duplicate.
    let again = h.post("/v1/orders/", PARTNER_KEY, saved_order).await;
    assert_eq!(again.body["errors"][0]["code"], "DUPLICATE_ORDER");

    h.admin(reqwest::Method::POST, "/_sandbox/reset", None)
        .await;
    assert_eq!(h.get(&path, PARTNER_KEY).await.status, 404);
    assert_eq!(
        h.get("/v1/alerts", PARTNER_KEY).await.status,
        200,
        "keys survive a reset"
    );
    h.sandbox.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
