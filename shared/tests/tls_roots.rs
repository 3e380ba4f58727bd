//! The HTTPS clients (reqwest's, the AWS SDK's) trust the machine's roots as read once by
//! `shared::tls`: a server whose certificate chains to a trusted root is reached, one that does
//! not is refused by both, and the store was read once for all of them (after that read the
//! store is emptied, so a client that read it again would reach no one).
//!
//! One test in its own binary: the roots are read once per process, so `SSL_CERT_FILE` must
//! name the local CA before anything reads them.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Issued {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A root CA (its PEM) and a certificate for 127.0.0.1 it signed.
fn local_ca() -> (String, Issued) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "chargeback-platform test root");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .unwrap();
    (
        ca_cert.pem(),
        Issued {
            chain: vec![leaf.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        },
    )
}

/// A certificate for 127.0.0.1 that no trusted root signed.
fn self_signed() -> Issued {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Issued {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// An HTTPS server on loopback answering every request with DynamoDB's empty ListTables.
async fn serve(issued: Issued) -> String {
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(issued.chain, issued.key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the point of one of the checks: nothing to report.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = r#"{"TableNames":[]}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://127.0.0.1:{}", addr.port())
}

/// Refused because no trusted root signed the server's certificate, not for any other reason.
fn refused_for_its_issuer(refused: impl std::fmt::Debug) {
    assert!(
        format!("{refused:?}").contains("UnknownIssuer"),
        "refused for its issuer: {refused:?}"
    );
}

async fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let aws = shared::adapters::aws::load_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&aws)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn both_https_stacks_trust_the_roots_read_once() {
    let dir = std::env::temp_dir().join(format!("cbs-tls-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let (ca_pem, trusted) = local_ca();
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    // The store this process reads: the local CA only. Set before anything reads it.
    std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem"));
    std::env::set_var("SSL_CERT_DIR", dir.join("certs"));
    for (k, v) in [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_ENDPOINT_URL");
    assert_eq!(shared::tls::store_reads(), 0);
    assert_eq!(shared::tls::trusted_roots().len(), 1, "the local CA");
    // From here the store holds nothing: a client that read it again would trust no one.
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    std::env::set_var("SSL_CERT_FILE", dir.join("empty.pem"));

    let good = serve(trusted).await;
    let bad = serve(self_signed()).await;

    // reqwest, through the builder every client of ours uses (built twice: still one read).
    let http = shared::tls::http_client_builder().build().unwrap();
    let again = shared::tls::http_client_builder().build().unwrap();
    let answer = http.get(&good).send().await.expect("a trusted server");
    assert_eq!(answer.status(), 200);
    assert!(again.get(&good).send().await.is_ok());
    refused_for_its_issuer(
        http.get(&bad)
            .send()
            .await
            .expect_err("an untrusted server"),
    );

    // The AWS SDK, configured by load_config as every function's is.
    let tables = dynamodb(&good)
        .await
        .list_tables()
        .send()
        .await
        .expect("the SDK reaches a trusted server");
    assert!(tables.table_names().is_empty());
    refused_for_its_issuer(
        dynamodb(&bad)
            .await
            .list_tables()
            .send()
            .await
            .expect_err("the SDK refuses an untrusted server"),
    );

    assert_eq!(
        shared::tls::store_reads(),
        1,
        "the store is read once for every client"
    );
    let _ = std::fs::remove_dir_all(dir);
}
