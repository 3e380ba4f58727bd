//! The one step of webhook verification that may run elsewhere: HMAC-SHA512 with each of our
//! webhook secrets over `"<t>.<raw body>"`.
//!
//! [`super::verify_delivery_with`] (header grammar, time windows, the constant-time comparison and
//! which secret matched) is the same code everywhere; only the MAC computation is pluggable. The
//! host uses the `hmac` crate ([`WebhookSecrets`] itself); the Worker uses WebCrypto with its keys
//! imported once per isolate (`edge-worker/src/webcrypto.rs`), so the hash never runs in wasm.

use super::{WebhookSecrets, MAC_LEN};
use hmac::{Hmac, Mac};
use sha2::Sha512;
use std::convert::Infallible;
use std::future::{ready, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// HMAC-SHA512 keyed by our webhook secrets, in order: the current one first, then (during a
/// rotation) the previous one. Empty secrets are not keys.
pub trait WebhookMac {
    /// Why a MAC could not be computed at all (not a verdict on the signature).
    type Error;

    /// How many keys there are; none makes every verification `NoSecret`.
    fn key_count(&self) -> usize;

    /// `HMAC-SHA512(key[index], "<timestamp>." + body)`, `timestamp` in decimal as it was signed.
    fn mac(
        &self,
        index: usize,
        timestamp: &str,
        body: &[u8],
    ) -> impl Future<Output = Result<[u8; MAC_LEN], Self::Error>>;
}

/// The host backend: the `hmac` crate, synchronous.
impl WebhookMac for WebhookSecrets {
    type Error = Infallible;

    fn key_count(&self) -> usize {
        self.keys().count()
    }

    fn mac(
        &self,
        index: usize,
        timestamp: &str,
        body: &[u8],
    ) -> impl Future<Output = Result<[u8; MAC_LEN], Infallible>> {
        let secret = self.keys().nth(index).expect("index < key_count");
        ready(Ok(hmac_sha512(secret.expose().as_bytes(), timestamp, body)))
    }
}

/// `HMAC-SHA512(key, "<timestamp>." + body)` with the `hmac` crate.
pub(super) fn hmac_sha512(key: &[u8], timestamp: &str, body: &[u8]) -> [u8; MAC_LEN] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Runs a future that never waits (the host backend's): the synchronous API on top of the shared
/// async verifier.
pub(super) fn run_ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("the host MAC backend never waits"),
    }
}

/// The shared verifier driven by another backend: an asynchronous one (it yields once before
/// answering, as WebCrypto's promises do) that computes HMAC-SHA512 from RFC 2104's definition
/// over SHA-512 directly, independently of the `hmac` crate. Both must give the same verdict on
/// any input; and a backend that fails is reported as such, never as a verdict.
#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use proptest::prelude::*;
    use sha2::Digest;
    use std::cell::Cell;

    const NOW: i64 = 1_771_324_200;

    /// RFC 2104 over `sha2::Sha512`, block size 128, keyed by plain byte strings.
    struct Rfc2104 {
        keys: Vec<Vec<u8>>,
        calls: Cell<usize>,
        fail: bool,
    }

    impl Rfc2104 {
        fn new(keys: &[&str]) -> Self {
            Self {
                keys: keys
                    .iter()
                    .filter(|k| !k.is_empty())
                    .map(|k| k.as_bytes().to_vec())
                    .collect(),
                calls: Cell::new(0),
                fail: false,
            }
        }
    }

    /// Pending once, then ready: the caller must really await.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    impl WebhookMac for Rfc2104 {
        type Error = &'static str;

        fn key_count(&self) -> usize {
            self.keys.len()
        }

        async fn mac(
            &self,
            index: usize,
            timestamp: &str,
            body: &[u8],
        ) -> Result<[u8; 64], Self::Error> {
            YieldOnce(false).await;
            self.calls.set(self.calls.get() + 1);
            if self.fail {
                return Err("backend down");
            }
            let mut key = self.keys[index].clone();
            if key.len() > 128 {
                key = Sha512::digest(&key).to_vec();
            }
            key.resize(128, 0);
            let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
            let inner = Sha512::new()
                .chain_update(pad(0x36))
                .chain_update(timestamp.as_bytes())
                .chain_update(b".")
                .chain_update(body)
                .finalize();
            let outer = Sha512::new()
                .chain_update(pad(0x5c))
                .chain_update(inner)
                .finalize();
            Ok(outer.into())
        }
    }

    /// Polls to completion (the test backend wakes itself at once).
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        for _ in 0..1_000 {
            if let Poll::Ready(value) = future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                return value;
            }
        }
        panic!("did not finish");
    }

    fn with_rfc2104(
        header: &str,
        body: &[u8],
        backend: &Rfc2104,
        tolerance: Tolerance,
    ) -> Result<Verified, SignatureError> {
        block_on(verify_delivery_with(
            Some(header),
            body,
            backend,
            NOW,
            tolerance,
        ))
        .unwrap()
    }

    #[test]
    fn a_failing_backend_is_an_error_not_a_verdict_and_checks_before_the_mac_cost_nothing() {
        let mut backend = Rfc2104::new(&["whsec_a"]);
        backend.fail = true;
        let value = sign(&Secret::new("whsec_a"), NOW, b"{}");
        let result = block_on(verify_delivery_with(
            Some(&value),
            b"{}",
            &backend,
            NOW,
            Tolerance::default(),
        ));
        assert_eq!(result, Err("backend down"));
        // Malformed or stale: refused without asking the backend.
        backend.calls.set(0);
        let stale = sign(&Secret::new("whsec_a"), NOW - 10 * 86_400, b"{}");
        for header in ["t=1", stale.as_str()] {
            let result = block_on(verify_delivery_with(
                Some(header),
                b"{}",
                &backend,
                NOW,
                Tolerance::default(),
            ));
            assert!(matches!(
                result,
                Ok(Err(
                    SignatureError::Malformed(_) | SignatureError::Stale { .. }
                ))
            ));
        }
        assert_eq!(backend.calls.get(), 0);
        // No key at all.
        let none = Rfc2104::new(&[""]);
        assert_eq!(
            with_rfc2104(&value, b"{}", &none, Tolerance::default()),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn the_previous_key_is_asked_only_when_the_current_one_does_not_match() {
        let backend = Rfc2104::new(&["whsec_new", "whsec_old"]);
        let by_old = sign(&Secret::new("whsec_old"), NOW, b"x");
        let verified = with_rfc2104(&by_old, b"x", &backend, Tolerance::default()).unwrap();
        assert!(verified.matched_previous_secret);
        assert_eq!(backend.calls.get(), 2);
        backend.calls.set(0);
        let by_new = sign(&Secret::new("whsec_new"), NOW, b"x");
        assert!(
            !with_rfc2104(&by_new, b"x", &backend, Tolerance::default())
                .unwrap()
                .matched_previous_secret
        );
        assert_eq!(backend.calls.get(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Signed by either secret, by another one, over the body or a changed one, at any age,
        /// with keys shorter and longer than SHA-512's 128-byte block: the same verdict.
        #[test]
        fn both_backends_give_the_same_verdict(
            current in "\\PC{0,160}",
            previous in proptest::option::of("\\PC{0,160}"),
            signer in 0usize..3,
            body in proptest::collection::vec(any::<u8>(), 0..600),
            flip in proptest::option::of(any::<proptest::sample::Index>()),
            age in -400i64..200_000,
        ) {
            let other = "whsec_other".to_string();
            let by = [&current, previous.as_ref().unwrap_or(&other), &other][signer];
            let header = sign(&Secret::new(by.clone()), NOW - age, &body);
            let mut received = body.clone();
            if let (Some(i), false) = (flip, received.is_empty()) {
                let i = i.index(received.len());
                received[i] ^= 0x01;
            }
            let secrets = WebhookSecrets::new(Secret::new(current.clone()), previous.clone().map(Secret::new));
            let keys: Vec<&str> = std::iter::once(current.as_str()).chain(previous.as_deref()).collect();
            let backend = Rfc2104::new(&keys);
            let host = verify_delivery(Some(&header), &received, &secrets, NOW, Tolerance::default());
            let other_backend = with_rfc2104(&header, &received, &backend, Tolerance::default());
            prop_assert_eq!(host, other_backend);
        }
    }
}
