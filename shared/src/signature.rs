//! ChargebackStop's webhook signature.
//!
//! `X-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA512(secret, "<t>.<raw body>")>`.
//! Several `v1` entries may appear (the sender may sign with more than one secret), and we may hold
//! two secrets ourselves during a rotation: any (secret, v1) pair that matches is accepted.
//!
//! The verifier works on the raw body bytes (never re-serialised JSON), compares in constant time
//! after checking the length (a known bug elsewhere accepted a bare `v1,` by comparing only up to
//! the shorter length), and takes the current time as an argument: it must run in wasm, where
//! `SystemTime::now()` panics.
//!
//! Errors name the check that failed and never contain the expected value or a secret.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha512;
use std::fmt;

type HmacSha512 = Hmac<Sha512>;

/// The header ChargebackStop signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "X-Signature";
/// Default tolerance between the signature's `t` and our clock, in both directions.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// HMAC-SHA512 output length in bytes (128 hex characters).
const MAC_LEN: usize = 64;
/// More entries than this is not a real header; refuse before doing any HMAC work.
const MAX_SIGNATURES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "signature timestamp is outside the {tolerance_secs} s tolerance (off by {skew_secs} s)"
    )]
    Stale { skew_secs: i64, tolerance_secs: i64 },
    #[error("signature does not match")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

impl SignatureError {
    /// A short machine-readable code for responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::Stale { .. } => "signature_stale",
            SignatureError::Mismatch => "signature_mismatch",
            SignatureError::NoSecret => "signature_no_secret",
        }
    }
}

/// The secrets we accept: the current one and, during a rotation, the previous one.
#[derive(Clone)]
pub struct WebhookSecrets {
    current: Secret,
    previous: Option<Secret>,
}

impl WebhookSecrets {
    pub fn new(current: Secret, previous: Option<Secret>) -> Self {
        let previous = previous.filter(|p| !p.is_empty());
        Self { current, previous }
    }

    fn iter(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("previous_set", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

/// A parsed `X-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    signatures: Vec<[u8; MAC_LEN]>,
}

impl SignatureHeader {
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in value.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, val) = part
                .split_once('=')
                .ok_or(SignatureError::Malformed("entry without '='"))?;
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::Malformed("more than one t"));
                    }
                    let t = val
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not a unix timestamp"))?;
                    timestamp = Some(t);
                }
                "v1" => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(SignatureError::Malformed("too many v1 entries"));
                    }
                    let val = val.trim();
                    if val.len() != MAC_LEN * 2 {
                        return Err(SignatureError::Malformed("v1 is not 128 hex characters"));
                    }
                    let mut bytes = [0u8; MAC_LEN];
                    hex::decode_to_slice(val, &mut bytes)
                        .map_err(|_| SignatureError::Malformed("v1 is not hex"))?;
                    signatures.push(bytes);
                }
                // Unknown schemes (a future v2) are ignored, as Stripe-style verifiers do.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed("no t entry"))?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed("no v1 entry"));
        }
        Ok(Self {
            timestamp,
            signatures,
        })
    }
}

/// What a successful verification tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The signature's `t`, kept with the event for delivery tracing.
    pub timestamp: i64,
    /// Whether the previous (rotating-out) secret matched rather than the current one.
    pub matched_previous_secret: bool,
}

/// Verify `header` over `body` at time `now_unix` (seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<Verified, SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let header = SignatureHeader::parse(header.ok_or(SignatureError::Missing)?)?;

    let skew_secs = now_unix.saturating_sub(header.timestamp);
    if skew_secs.abs() > tolerance_secs {
        return Err(SignatureError::Stale {
            skew_secs,
            tolerance_secs,
        });
    }

    let mut any_secret = false;
    for (index, secret) in secrets.iter().enumerate() {
        any_secret = true;
        let mac = keyed_mac(secret, header.timestamp, body);
        for candidate in &header.signatures {
            // verify_slice compares in constant time and checks the length first.
            if mac.clone().verify_slice(candidate).is_ok() {
                return Ok(Verified {
                    timestamp: header.timestamp,
                    matched_previous_secret: index > 0,
                });
            }
        }
    }
    if !any_secret {
        return Err(SignatureError::NoSecret);
    }
    Err(SignatureError::Mismatch)
}

/// The `X-Signature` value ChargebackStop would send for `body` at `timestamp`.
/// Used by the local sandbox and by tests.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let tag = keyed_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

fn keyed_mac(secret: &Secret, timestamp: i64, body: &[u8]) -> HmacSha512 {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = HmacSha512::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed outside this code, with Python's hmac module:
    //   hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha512).hexdigest()
    const BODY: &[u8] = br#"{"id":"evt_123","type":"alert.created","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"netalrt_abc123"},"previous_attributes":null},"api_version":"v1"}"#;
    const T: i64 = 1_771_324_200;
    const CURRENT_SIG: &str = "312ce5852e36ef07d18e418f21c5eb20f8662a6dd9bc620391434eb11779254e8dabfec5d4e4806640774179da0901a1995b5c2be20ff7caac3ae9f26309f7eb";
    const PREVIOUS_SIG: &str = "c0366010a9221b5fa5328878374d1cec9fa2ce6287af72a58641b2a8e591a43c609233d14240750cb0b384fefeeae89c0f31a38a686ab3e8be43662472299aca";
    const EMPTY_BODY_SIG: &str = "fafc3d30f00440147ee9323056860829c807fd0ae33390b692c87b5ebcec2c893fd70f799581d2f96e70c96a109fc80aea2a75d4d53b0e6d00e7d798c8648af7";

    fn secrets() -> WebhookSecrets {
        WebhookSecrets::new(Secret::new("whsec_test_current"), None)
    }

    fn rotating() -> WebhookSecrets {
        WebhookSecrets::new(
            Secret::new("whsec_test_current"),
            Some(Secret::new("whsec_test_previous")),
        )
    }

    fn header(sig: &str) -> String {
        format!("t={T},v1={sig}")
    }

    #[test]
    fn sign_matches_independent_vectors() {
        let current = Secret::new("whsec_test_current");
        assert_eq!(sign(&current, T, BODY), header(CURRENT_SIG));
        assert_eq!(sign(&current, T, b""), header(EMPTY_BODY_SIG));
        let previous = Secret::new("whsec_test_previous");
        assert_eq!(sign(&previous, T, BODY), header(PREVIOUS_SIG));
    }

    #[test]
    fn accepts_a_valid_signature_within_tolerance_both_ways() {
        for now in [T, T + 300, T - 300] {
            let verified = verify(Some(&header(CURRENT_SIG)), BODY, &secrets(), now, 300).unwrap();
            assert_eq!(verified.timestamp, T);
            assert!(!verified.matched_previous_secret);
        }
    }

    #[test]
    fn refuses_outside_tolerance_in_both_directions() {
        let late = verify(Some(&header(CURRENT_SIG)), BODY, &secrets(), T + 301, 300);
        assert_eq!(
            late,
            Err(SignatureError::Stale {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        let early = verify(Some(&header(CURRENT_SIG)), BODY, &secrets(), T - 301, 300);
        assert!(matches!(
            early,
            Err(SignatureError::Stale {
                skew_secs: -301,
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_changed_body_even_by_whitespace() {
        // Re-serialised JSON differs from the raw bytes: verification must be over raw bytes.
        let reserialised =
            serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap())
                .unwrap();
        let result = verify(
            Some(&header(CURRENT_SIG)),
            &reserialised,
            &secrets(),
            T,
            300,
        );
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn refuses_another_secret_and_another_timestamp() {
        let other = WebhookSecrets::new(Secret::new("whsec_someone_else"), None);
        assert_eq!(
            verify(Some(&header(CURRENT_SIG)), BODY, &other, T, 300),
            Err(SignatureError::Mismatch)
        );
        // Same v1, a different t: the MAC covers the timestamp.
        let moved = format!("t={},v1={CURRENT_SIG}", T + 1);
        assert_eq!(
            verify(Some(&moved), BODY, &secrets(), T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_accepts_old_and_new_secret_and_says_which() {
        let new = verify(Some(&header(CURRENT_SIG)), BODY, &rotating(), T, 300).unwrap();
        assert!(!new.matched_previous_secret);
        let old = verify(Some(&header(PREVIOUS_SIG)), BODY, &rotating(), T, 300).unwrap();
        assert!(old.matched_previous_secret);
        // Without the previous secret configured, the old signature is refused.
        assert_eq!(
            verify(Some(&header(PREVIOUS_SIG)), BODY, &secrets(), T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_v1_entries_may_match() {
        let bogus = "0".repeat(128);
        let value = format!("t={T},v1={bogus},v1={CURRENT_SIG}");
        assert!(verify(Some(&value), BODY, &secrets(), T, 300).is_ok());
    }

    #[test]
    fn missing_and_malformed_headers_say_which_check_failed() {
        assert_eq!(
            verify(None, BODY, &secrets(), T, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("  "), BODY, &secrets(), T, 300),
            Err(SignatureError::Missing)
        );
        let cases = [
            "v1=abc",                                     // no t
            &format!("t={T}"),                            // no v1
            &format!("t={T},v1,"),                        // bare v1 (the known bug elsewhere)
            &format!("t={T},v1="),                        // empty v1
            &format!("t={T},v1={}", &CURRENT_SIG[..127]), // one char short
            &format!("t=abc,v1={CURRENT_SIG}"),
            &format!("t={T},v1={}", "zz".repeat(64)),
            &format!("t={T},t={T},v1={CURRENT_SIG}"),
        ];
        for case in cases {
            let result = verify(Some(case), BODY, &secrets(), T, 300);
            assert!(
                matches!(result, Err(SignatureError::Malformed(_))),
                "{case:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn uppercase_hex_is_accepted_as_the_same_bytes() {
        let value = header(&CURRENT_SIG.to_uppercase());
        assert!(verify(Some(&value), BODY, &secrets(), T, 300).is_ok());
    }

    #[test]
    fn unknown_schemes_are_ignored() {
        let value = format!("t={T},v0=whatever,v1={CURRENT_SIG}");
        assert!(verify(Some(&value), BODY, &secrets(), T, 300).is_ok());
    }

    #[test]
    fn errors_never_contain_the_secret_or_expected_value() {
        let err = verify(Some(&header(&"a".repeat(128))), BODY, &secrets(), T, 300).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("whsec_test_current"));
        assert!(!text.contains(CURRENT_SIG));
        assert!(!format!("{:?}", rotating()).contains("whsec"));
    }

    #[test]
    fn an_empty_secret_is_no_secret() {
        let none = WebhookSecrets::new(Secret::new(""), None);
        assert_eq!(
            verify(Some(&header(CURRENT_SIG)), BODY, &none, T, 300),
            Err(SignatureError::NoSecret)
        );
    }
}
