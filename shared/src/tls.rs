//! The machine's trusted root certificates, read once per process for every HTTPS client.
//!
//! Without this, each `reqwest::Client` reads the whole certificate store when it is built (its
//! platform verifier does), and the AWS SDK reads it once more for its own client: three to
//! four reads during a function's init, each a `statx` and a parse per file of the store (about
//! 6 ms on a Debian machine's store of about 150 certificates). The roots are the same
//! `rustls-native-certs` reads (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), so whom we
//! trust does not change; only how often we read it.
//!
//! Written here rather than taken from a crate: the two HTTPS stacks take roots in different
//! forms (DER for reqwest, PEM for the SDK's `TrustStore`), and the SDK's connector panics on a
//! PEM certificate it cannot parse, so the certificates rustls refuses are left out first.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use base64::Engine;
use rustls_native_certs::CertificateResult;
use rustls_pki_types::CertificateDer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
static READS: AtomicUsize = AtomicUsize::new(0);

/// The store's certificates that rustls accepts as trust anchors, read on first use.
pub fn trusted_roots() -> &'static [CertificateDer<'static>] {
    ROOTS.get_or_init(|| {
        READS.fetch_add(1, Ordering::Relaxed);
        let CertificateResult { certs, errors, .. } = rustls_native_certs::load_native_certs();
        for error in &errors {
            tracing::warn!(%error, "a root certificate of this machine could not be read");
        }
        let usable: Vec<_> = certs
            .into_iter()
            .filter(|cert| rustls::RootCertStore::empty().add(cert.clone()).is_ok())
            .collect();
        if usable.is_empty() {
            tracing::warn!("no usable root certificate on this machine: HTTPS will fail");
        }
        usable
    })
}

/// How many times this process has read the store (1 once anything has used it).
pub fn store_reads() -> usize {
    READS.load(Ordering::Relaxed)
}

/// A `reqwest` client builder that trusts [`trusted_roots`], without reading the store again.
/// With no usable root, the stock builder: its own read then fails with its own message.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let roots = trusted_roots();
    let builder = reqwest::Client::builder();
    if roots.is_empty() {
        return builder;
    }
    let certs = roots
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
    builder.tls_certs_only(certs)
}

/// The AWS SDK's own HTTPS client (rustls with aws-lc, as its default), trusting
/// [`trusted_roots`] instead of reading the store itself. `None` with no usable root: the SDK's
/// default client then reads the store and reports.
pub fn aws_http_client() -> Option<SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let roots = trusted_roots();
    if roots.is_empty() {
        return None;
    }
    let mut store = TrustStore::empty().with_native_roots(false);
    for der in roots {
        store.add_pem_certificate(pem(der.as_ref()));
    }
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| tracing::warn!(error = %e, "the AWS SDK's TLS context: using its default"))
        .ok()?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    Some(SharedHttpClient::new(ConnectorOnFirstRequest(client)))
}

/// The SDK's HTTPS client without the connector it builds and throws away in every
/// `Client::new`: the stock client's `validate_base_client_config` builds one so that the native
/// certificate store is read during init rather than on the first request. With our roots that
/// read has happened already, and each throwaway connector parses every root from PEM again
/// (a `perf` profile of `cbs-bench init`'s `hello+clients` put 29 % of its CPU in the PEM
/// parser; without them, its init went from 13.1 to 7.5-8.0 ms, process-events' from 21.3 to
/// 14.4-15.7 ms, release, one bundle of 144 roots). Connectors for requests are built and cached
/// by the inner client as before, on the first request with each set of settings. What the
/// throwaway connector could have caught early, a root rustls refuses, [`trusted_roots`] has
/// already left out.
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// One certificate as PEM (RFC 7468: base64 in lines of 64).
fn pem(der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    /// An SDK HTTP client that counts what the SDK asks of it; its connector refuses every
    /// request.
    #[derive(Debug, Default)]
    struct Counts {
        validated: AtomicUsize,
        connectors: AtomicUsize,
    }

    #[derive(Debug, Default)]
    struct Counting(std::sync::Arc<Counts>);

    #[derive(Debug)]
    struct Refusing;

    impl aws_smithy_runtime_api::client::http::HttpConnector for Refusing {
        fn call(
            &self,
            _: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Err(
                aws_smithy_runtime_api::client::result::ConnectorError::other(
                    "refused by the test".into(),
                    None,
                ),
            ))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.0.connectors.fetch_add(1, Ordering::SeqCst);
            SharedHttpConnector::new(Refusing)
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
            self.0.validated.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn sdk_clients_build_no_connector_until_their_first_request() {
        let inner = std::sync::Arc::new(Counts::default());
        let http = SharedHttpClient::new(ConnectorOnFirstRequest(SharedHttpClient::new(Counting(
            std::sync::Arc::clone(&inner),
        ))));
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .http_client(http)
            .build();
        let clients: Vec<_> = (0..3)
            .map(|_| aws_sdk_sqs::Client::from_conf(config.clone()))
            .collect();
        assert_eq!(
            inner.validated.load(Ordering::SeqCst),
            0,
            "no throwaway connector"
        );
        assert_eq!(inner.connectors.load(Ordering::SeqCst), 0);

        let refused = clients[0].list_queues().send().await;
        assert!(refused.is_err(), "the test's connector refuses");
        assert!(
            inner.connectors.load(Ordering::SeqCst) >= 1,
            "requests still go through the inner client's connectors"
        );
    }

    #[test]
    fn pem_round_trips_to_the_same_der() {
        for len in [0usize, 1, 47, 48, 49, 95, 96, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let back = CertificateDer::from_pem_slice(&pem(&der)).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "length {len}");
        }
    }
}
