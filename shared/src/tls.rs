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
pub fn aws_http_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
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
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
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

    #[test]
    fn pem_round_trips_to_the_same_der() {
        for len in [0usize, 1, 47, 48, 49, 95, 96, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let back = CertificateDer::from_pem_slice(&pem(&der)).unwrap();
            assert_eq!(back.as_ref(), der.as_slice(), "length {len}");
        }
    }
}
