//! `clients-probe`, the floor `cbs-bench init` measures functions against, stops its init after
//! the step `CBS_PROBE_UP_TO` names and refuses a step it does not know, so each row of the
//! bench's breakdown measures what it says. Over the real binary and a runtime API stub.

use devstack::runtime_stub::RuntimeApiStub;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How the probe's init ended, and what it printed (its JSON logs go to stdout).
struct Init {
    polled: bool,
    output: String,
}

/// A certificate store of one usable root, then one section that is not base64: reading it
/// logs a warning, so the output tells whether the probe read its roots.
fn store_with_one_unreadable_root() -> std::path::PathBuf {
    let usable = rcgen::generate_simple_self_signed(vec!["probe.test".into()])
        .unwrap()
        .cert
        .pem();
    let unreadable = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    static STORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("clients-probe-{}-{n}.pem", std::process::id()));
    std::fs::write(&path, format!("{usable}{unreadable}")).unwrap();
    path
}

async fn init_up_to(step: Option<&str>) -> Init {
    let stub = RuntimeApiStub::bind().await.unwrap();
    let store = store_with_one_unreadable_root();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_clients-probe"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "probe")
        .env("AWS_SECRET_ACCESS_KEY", "probe")
        .env("SSL_CERT_FILE", &store)
        .env("RUST_LOG", "warn")
        .envs(stub.lambda_env("clients-probe").unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(step) = step {
        command.env("CBS_PROBE_UP_TO", step);
    }
    let mut child = command.spawn().unwrap();
    let polled = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            conn = stub.first_poll() => { conn.unwrap(); true }
            _ = child.wait() => false,
        }
    })
    .await
    .expect("the probe neither asked for work nor stopped within 60 s");
    child.start_kill().ok();
    child.wait().await.ok();
    std::fs::remove_file(&store).ok();
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut output).await.ok();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut output).await.ok();
    }
    Init { polled, output }
}

const ROOTS_READ: &str = "a root certificate of this machine could not be read";

#[tokio::test]
async fn each_step_ends_init_there_and_only_the_steps_it_names_run() {
    for step in ["nothing", "logs"] {
        let init = init_up_to(Some(step)).await;
        assert!(init.polled, "up to {step}: init ends: {}", init.output);
        assert!(
            !init.output.contains(ROOTS_READ),
            "up to {step}: the roots are not read: {}",
            init.output
        );
    }
    for step in [Some("roots"), Some("aws-config"), Some("sdk-clients"), None] {
        let init = init_up_to(step).await;
        assert!(init.polled, "up to {step:?}: init ends: {}", init.output);
        assert!(
            init.output.contains(ROOTS_READ),
            "up to {step:?}: the roots are read (and the unreadable one reported): {}",
            init.output
        );
    }
}

#[tokio::test]
async fn a_step_it_does_not_know_stops_it_before_init_and_names_the_steps() {
    let init = init_up_to(Some("sdk-client")).await;
    assert!(!init.polled, "no poll for work: {}", init.output);
    assert!(
        init.output
            .contains("CBS_PROBE_UP_TO=sdk-client: not a step")
            && init
                .output
                .contains("nothing, logs, roots, aws-config, sdk-clients"),
        "the message names the steps: {}",
        init.output
    );
}
