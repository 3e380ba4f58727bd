//! Each function reads the partner API key from its secret while the rest of its init runs
//! (`PartnerEnv::from_env_reading_key`), and its init still ends only once the key is read: a
//! secret that cannot be read, or that holds a key of the other mode, stops the function before
//! it asks for work, with a message naming the variable. Over the real binaries, moto's Secrets
//! Manager and a runtime API stub that notes the first poll for an invocation.

use devstack::functions::{build_functions, ALL};
use devstack::runtime_stub::RuntimeApiStub;
use devstack::{paths, resources, Moto};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Debug)]
enum Init {
    /// Init ended: the function asked the runtime API for its first invocation.
    Polled,
    /// The function stopped first; its output.
    Stopped { output: String },
}

/// Starts `bin` against a fresh runtime API stub and tells how its init ended.
async fn init_of(bin: &str, env: &[(String, String)]) -> anyhow::Result<Init> {
    let path = paths::debug_binary(bin);
    anyhow::ensure!(path.is_file(), "{} is missing", path.display());
    let stub = RuntimeApiStub::bind().await?;
    let mut child = tokio::process::Command::new(&path)
        .envs(env.iter().cloned())
        .envs(stub.lambda_env(bin)?)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let polled = stub.first_poll();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            conn = polled => { conn?; Ok::<_, anyhow::Error>(None) }
            status = child.wait() => Ok(Some(status?)),
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("{bin} neither asked for work nor stopped within 60 s"))??;
    if ended.is_none() {
        child.kill().await.ok();
        return Ok(Init::Polled);
    }
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut output).await.ok();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut output).await.ok();
    }
    Ok(Init::Stopped { output })
}

#[tokio::test]
async fn every_function_ends_init_only_once_its_key_is_read() {
    build_functions().await.expect("build the functions");
    let moto = Moto::start().await.expect("moto");
    let prefix = resources::unique_prefix("initkey");
    let res = resources::create(&moto.endpoint, &prefix)
        .await
        .expect("resources");
    let mut base = moto.env();
    base.extend(res.env());
    base.push(("STACK_MODE".into(), "TEST".into()));
    // Nothing is called at init: an address that answers nothing will do.
    base.push(("CBS_API_BASE_URL".into(), "http://127.0.0.1:9".into()));
    let with_secret = |name: &str| {
        let mut env = base.clone();
        env.push(("CBS_API_KEY_SECRET_ID".into(), name.to_string()));
        env
    };
    let good = format!("{prefix}/good-key");
    resources::put_secret(&moto.endpoint, &good, "cbs_test_init_key_read")
        .await
        .unwrap();
    let live = format!("{prefix}/live-key");
    resources::put_secret(&moto.endpoint, &live, "cbs_live_on_a_test_stack")
        .await
        .unwrap();
    let missing = format!("{prefix}/no-such-secret");

    for bin in ALL {
        let init = init_of(bin, &with_secret(&good)).await.unwrap();
        assert!(matches!(init, Init::Polled), "{bin}: {init:?}");

        for (secret, says) in [
            (&missing, "could not be read"),
            (&live, "holds no usable key"),
        ] {
            let init = init_of(bin, &with_secret(secret)).await.unwrap();
            let Init::Stopped { output } = init else {
                panic!("{bin} asked for work with the key in {secret} unusable");
            };
            for part in ["CBS_API_KEY_SECRET_ID", secret.as_str(), says] {
                assert!(
                    output.contains(part),
                    "{bin}, {secret}: {part:?} in {output}"
                );
            }
            assert!(
                !output.contains("cbs_live_on_a_test_stack"),
                "{bin}: the key itself never appears: {output}"
            );
        }
    }
}
