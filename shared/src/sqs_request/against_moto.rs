use super::*;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's Python and the emulator launcher every local part uses
/// (`tests/devstack/moto/serve.py`; the run's `CARGO_MANIFEST_DIR` is this checkout's).
fn moto_command() -> Command {
    let python = match std::env::var("CBS_VENV") {
        Ok(venv) if std::path::Path::new(&venv).join("bin/python").exists() => {
            format!("{venv}/bin/python")
        }
        _ => "python3".to_string(),
    };
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let mut command = Command::new(python);
    command.arg(std::path::Path::new(&crate_dir).join("../tests/devstack/moto/serve.py"));
    command
}

/// moto on a free loopback port, waited for generously (a loaded CI machine imports Python
/// slowly). If another process took the port between our probe and moto's bind, moto exits
/// and we try another port.
async fn start_moto() -> Moto {
    for _attempt in 0..3 {
        if let Some(moto) = start_moto_once().await {
            return moto;
        }
    }
    panic!("the emulator (serve.py) exited three times on start (are moto and waitress installed? bin/setup puts them in the venv)");
}

async fn start_moto_once() -> Option<Moto> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = moto_command()
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python must be installed (bin/setup makes the venv with moto and waitress)");
    let mut moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if moto.child.try_wait().ok().flatten().is_some() {
            return None;
        }
        if http
            .get(format!("{}/moto-api/", moto.url))
            .send()
            .await
            .is_ok()
        {
            return Some(moto);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the emulator (serve.py) did not answer on {} within 60 s",
        moto.url
    );
}

/// `application/x-www-form-urlencoded` by the `url` crate's encoder that reqwest already
/// carries (reqwest's `form` needs a feature the workspace does not enable).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).expect(open) + open.len();
    let end = text[start..].find(close).expect(close) + start;
    &text[start..end]
}

/// An IAM user with full access, created while moto's auth is still off; then auth is
/// switched on so every later request must carry a valid signature for this key.
async fn iam_key_then_enforce_auth(http: &reqwest::Client, moto: &str) -> AwsCredentials {
    let iam = |form: &'static [(&'static str, &'static str)]| {
        http.post(format!("{moto}/"))
            // moto routes by the credential scope's service; auth is still off here.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(form))
            .send()
    };
    let ok = |r: reqwest::Response| {
        assert!(r.status().is_success(), "{}", r.status());
        r
    };
    ok(iam(&[
        ("Action", "CreateUser"),
        ("UserName", "edge"),
        ("Version", "2010-05-08"),
    ])
    .await
    .unwrap());
    ok(iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", "edge"),
        ("PolicyName", "sqs-all"),
        (
            "PolicyDocument",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
        ),
        ("Version", "2010-05-08"),
    ])
    .await
    .unwrap());
    let xml = ok(iam(&[
        ("Action", "CreateAccessKey"),
        ("UserName", "edge"),
        ("Version", "2010-05-08"),
    ])
    .await
    .unwrap())
    .text()
    .await
    .unwrap();
    let credentials = AwsCredentials {
        access_key_id: between(&xml, "<AccessKeyId>", "</AccessKeyId>").to_string(),
        secret_access_key: Secret::new(between(&xml, "<SecretAccessKey>", "</SecretAccessKey>")),
        session_token: None,
    };
    let r = http
        .post(format!("{moto}/moto-api/reset-auth"))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    credentials
}

fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
}

async fn send(http: &reqwest::Client, req: &SignedRequest) -> (u16, Vec<u8>) {
    let mut builder = http.post(&req.url).body(req.body.clone());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn action(
    http: &reqwest::Client,
    creds: &AwsCredentials,
    target: &QueueTarget,
    name: &str,
    input: serde_json::Value,
) -> serde_json::Value {
    let req = signed_action(
        creds,
        target,
        name,
        serde_json::to_vec(&input).unwrap(),
        now(),
    )
    .unwrap();
    let (status, body) = send(http, &req).await;
    assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn moto_accepts_the_signed_send_message_and_the_message_reads_back() {
    let moto = start_moto().await;
    let http = reqwest::Client::new();
    let creds = iam_key_then_enforce_auth(&http, &moto.url).await;
    let mut target = QueueTarget {
        region: "eu-west-1".into(),
        queue_url: String::new(),
        endpoint: Some(moto.url.clone()),
    };
    let created = action(
        &http,
        &creds,
        &target,
        "CreateQueue",
        serde_json::json!({"QueueName": "edge.fifo", "Attributes": {"FifoQueue": "true"}}),
    )
    .await;
    target.queue_url = created["QueueUrl"].as_str().unwrap().to_string();
    assert!(target.is_fifo());

    let message = OutgoingMessage {
        body: r#"{"id":"evt_moto","type":"alert.created"}"#.into(),
        attributes: [
            ("event_id".to_string(), "evt_moto".to_string()),
            ("event_type".to_string(), "alert.created".to_string()),
        ]
        .into_iter()
        .collect(),
        deduplication_id: Some("evt_moto".into()),
        group_id: Some("netalrt_1".into()),
    };
    // Sent twice: the FIFO deduplication id collapses the second one.
    for _ in 0..2 {
        let req = send_message(&creds, &target, &message, now()).unwrap();
        let (status, body) = send(&http, &req).await;
        assert!(
            matches!(
                read_send_message_response(status, &body),
                SendOutcome::Accepted { .. }
            ),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    let received = action(
        &http,
        &creds,
        &target,
        "ReceiveMessage",
        serde_json::json!({
            "QueueUrl": target.queue_url,
            "MaxNumberOfMessages": 10,
            "MessageAttributeNames": ["All"],
        }),
    )
    .await;
    let messages = received["Messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{received}");
    assert_eq!(messages[0]["Body"], serde_json::json!(message.body));
    assert_eq!(
        messages[0]["MessageAttributes"]["event_type"]["StringValue"],
        serde_json::json!("alert.created")
    );

    // The same request signed with the wrong secret is refused: the check above was real.
    let wrong = AwsCredentials {
        secret_access_key: Secret::new("not-the-secret"),
        ..creds.clone()
    };
    let req = send_message(&wrong, &target, &message, now()).unwrap();
    let (status, body) = send(&http, &req).await;
    assert!(
        matches!(
            read_send_message_response(status, &body),
            SendOutcome::Refused { .. }
        ),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
}
