//! The seed pages' own examples, run against the sandbox as a partner would run them against
//! ChargebackStop:
//! - the partner guide's onboarding script (`seed_examples/onboarding-flow.js`, copied verbatim
//!   from the guide), run with `node` after setting the two CONFIG constants the script asks
//!   to set (`API_BASE_URL`, `API_KEY`), by default and under `strict` + `strict_paths`;
//! - the Orders guide's curl sequence (`seed_examples/orders-api-integration-guide.md`, the
//!   guide as published): every `curl -X` block in page order, with `$CBS_API_BASE` and
//!   `$CBS_API_KEY` set as its first step says and the example ids (`org_abc123`, ...)
//!   replaced by the ids the earlier steps returned.
//!
//! Needs `node` (>= 20.3) and `curl` on PATH: bin/setup installs curl and checks node.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// A seed page beside this file. Cargo sets `CARGO_MANIFEST_DIR` for the test's run as well:
/// that one is this checkout's, where the compiled-in one is wherever the binary was built (a
/// clone at another path sharing the build cache reuses it, and found no pages).
fn example(name: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/seed_examples")
        .join(name)
}

async fn run_onboarding_script(h: &Harness) -> Value {
    let script = std::fs::read_to_string(example("onboarding-flow.js")).unwrap();
    let configured = script
        .replacen(
            r#"const API_BASE_URL = "https://api.chargebackstop.com";"#,
            &format!(r#"const API_BASE_URL = "{}";"#, h.base),
            1,
        )
        .replacen(
            r#"const API_KEY = "REPLACE_WITH_PARTNER_API_KEY";"#,
            &format!(r#"const API_KEY = "{PARTNER_KEY}";"#),
            1,
        );
    assert_ne!(
        script, configured,
        "the CONFIG lines are where the guide has them"
    );
    let dir = std::env::temp_dir().join(format!("cbs-seed-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("onboarding-flow.js");
    std::fs::write(&path, configured).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&path)
            .env("NO_PROXY", "127.0.0.1")
            .output()
            .expect("node runs (bin/setup installs it)")
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the guide's script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = stdout
        .split("Created IDs:\n")
        .nth(1)
        .expect("the script prints its IDs");
    serde_json::from_str(ids.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_guides_onboarding_script_runs_unmodified() {
    let h = start().await;
    for knobs in [json!({}), json!({ "strict": true, "strict_paths": true })] {
        h.faults(knobs.clone()).await;
        let ids = run_onboarding_script(&h).await;
        for (field, prefix) in [
            ("organisation_id", "org_"),
            ("membership_id", "mem_"),
            ("merchant_id", "mrch_"),
            ("integration_id", "int_"),
            ("ethoca_enrolment_id", "enrl_"),
            ("verifi_enrolment_id", "enrl_"),
            ("order_id", "ord_"),
        ] {
            assert!(
                ids[field].as_str().is_some_and(|v| v.starts_with(prefix)),
                "{knobs}: {field} = {}",
                ids[field]
            );
        }
        let org = h
            .get(
                &format!(
                    "/v1/organisations/{}",
                    ids["organisation_id"].as_str().unwrap()
                ),
                PARTNER_KEY,
            )
            .await;
        assert_eq!(org.body["name"], "[TEST] Acme Fitness");
    }
}

/// The `curl -X` blocks of the Orders guide, in page order.
fn guide_curl_blocks() -> Vec<String> {
    let guide = std::fs::read_to_string(example("orders-api-integration-guide.md")).unwrap();
    guide
        .split("```bash\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .filter(|block| block.starts_with("curl -X"))
        .map(str::to_string)
        .collect()
}

/// Runs one guide block with `-sS -w` added to see the status; answers (status, JSON body).
fn run_curl(block: &str, base: &str, ids: &[(&str, String)]) -> (u16, Value) {
    let mut command = block.replacen("curl -X", "curl -sS -w '\\n%{http_code}' -X", 1);
    for (example_id, real) in ids {
        command = command.replace(example_id, real);
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .env("CBS_API_BASE", base)
        .env("CBS_API_KEY", PARTNER_KEY)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("bash and curl run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_guides_curl_sequence_passes() {
    let h = start().await;
    h.faults(json!({ "strict_paths": true })).await;
    let blocks = guide_curl_blocks();
    assert_eq!(blocks.len(), 13, "the guide's curl examples");
    let base = h.base.clone();
    let mut ids: Vec<(&str, String)> = Vec::new();
    let mut statuses = Vec::new();
    let mut last_alert = None;
    for block in &blocks {
        let first_line = block.lines().next().unwrap().to_string();
        let b = block.clone();
        let known = ids.clone();
        let base2 = base.clone();
        let (status, body) = tokio::task::spawn_blocking(move || run_curl(&b, &base2, &known))
            .await
            .unwrap();
        statuses.push((first_line.clone(), status));
        let id = body["id"].as_str().map(str::to_string);
        // Save what the guide says to save, under the guide's example id.
        let save = |name: &'static str| (name, id.clone().unwrap_or_default());
        if first_line.contains("/v1/organisations/\"") {
            ids.push(save("org_abc123"));
        } else if first_line.contains("/v1/merchants/") {
            ids.push(save("mrch_abc123"));
        } else if first_line.contains("/v1/integrations/") {
            ids.push(save("int_abc123"));
        } else if first_line.contains("/v2/enrolments/") {
            let example = if body["type"] == "VERIFI_RDR" {
                "enrl_rdr123"
            } else {
                "enrl_ethoca123"
            };
            ids.push((example, id.clone().unwrap_or_default()));
        } else if first_line.contains("/v1/orders/\"") {
            let order = body["results"][0]["id"].as_str().unwrap_or_default();
            ids.push(("ord_abc123", order.to_string()));
        } else if first_line.contains("/v1/simulate/alerts") {
            ids.push(save("netalrt_abc123"));
            last_alert = id.clone();
        }
        if first_line.contains("PATCH") && first_line.contains("/v1/alerts/") {
            // The guide gives REFUND and ACCEPT_DISPUTE as alternatives: each on its own
            // simulated alert, as a partner following either branch would.
            let simulate = blocks
                .iter()
                .find(|b| b.starts_with("curl -X POST \"$CBS_API_BASE/v1/simulate/alerts\""))
                .unwrap()
                .clone();
            let known = ids.clone();
            let base2 = base.clone();
            let (_, fresh) =
                tokio::task::spawn_blocking(move || run_curl(&simulate, &base2, &known))
                    .await
                    .unwrap();
            if let Some(slot) = ids.iter_mut().find(|(k, _)| *k == "netalrt_abc123") {
                slot.1 = fresh["id"].as_str().unwrap_or_default().to_string();
            }
        }
        assert!(
            (200..300).contains(&status),
            "{first_line}: {status} {body}"
        );
    }
    // The simulated alert of the guide matched the guide's order by its ARN.
    let alert_id = last_alert.expect("an alert was simulated");
    let alert = h
        .get(&format!("/v1/alerts/{alert_id}"), PARTNER_KEY)
        .await
        .body;
    let order = h
        .get(
            &format!(
                "/v1/orders/{}",
                ids.iter().find(|(k, _)| *k == "ord_abc123").unwrap().1
            ),
            PARTNER_KEY,
        )
        .await
        .body;
    assert_eq!(alert["integration_id"], order["integration_id"]);
    assert_eq!(alert["integration_transaction_id"], "txn-10001");
    assert_eq!(order["refunds"][0]["status"], "SUCCEEDED");
    eprintln!("{statuses:#?}");
}
