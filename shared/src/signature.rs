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
//!
//! Two time windows (see [`Tolerance`]): a signature whose `t` is within `fresh_secs` of our clock
//! (either way) is a fresh delivery. ChargebackStop does not document whether a retry is signed
//! afresh or carries its first attempt's signature; for the second case a correctly signed `t`
//! further in the past, up to `retried_delivery_secs`, is accepted and reported as
//! [`Freshness::RetriedDelivery`], so the caller can apply its own stricter rules to it (the Worker
//! requires a readable event envelope and relies on event-id dedupe downstream).

use crate::secret::Secret;
use std::fmt;
use subtle::ConstantTimeEq;

mod mac;
pub use mac::WebhookMac;

/// The header ChargebackStop signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "X-Signature";
/// Default tolerance between the signature's `t` and our clock, in both directions.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// ChargebackStop retries at +1 m, +5 m, +30 m, +2 h and +12 h (about 15 h in all) but documents
/// "about 2 days": a signature carried over from the first attempt may be that old. 50 h covers
/// the documented two days with a margin for clock skew and a slow last attempt.
pub const DEFAULT_RETRIED_DELIVERY_SECS: i64 = 50 * 3600;
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

    /// The non-empty secrets, current first: the keys a [`WebhookMac`] computes with.
    pub fn keys(&self) -> impl Iterator<Item = &Secret> {
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
                    // Digits as the sender writes them: the MAC covers `t` as formatted here,
                    // so "+123" or "0123" would verify as a header nobody sent.
                    let val = val.trim();
                    let t = val
                        .parse::<i64>()
                        .ok()
                        .filter(|t| t.to_string() == val)
                        .ok_or(SignatureError::Malformed("t is not a unix timestamp"))?;
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

/// How far a signature's `t` may be from our clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// Either way (clock skew), for a delivery signed when it was sent.
    pub fresh_secs: i64,
    /// How far in the past `t` may be for a delivery that carries an earlier attempt's signature
    /// (a retry that was not re-signed); at most `fresh_secs` turns the second window off.
    pub retried_delivery_secs: i64,
}

impl Tolerance {
    /// One window, both ways, and no allowance for retried deliveries.
    pub fn fresh_only(fresh_secs: i64) -> Self {
        Self {
            fresh_secs,
            retried_delivery_secs: 0,
        }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            fresh_secs: DEFAULT_TOLERANCE_SECS,
            retried_delivery_secs: DEFAULT_RETRIED_DELIVERY_SECS,
        }
    }
}

/// Which window a verified signature's `t` fell in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within `fresh_secs` of our clock.
    Fresh,
    /// Older than `fresh_secs` but within `retried_delivery_secs`: a retry carrying the first
    /// attempt's signature, or a replay of a captured delivery. The HMAC is correct either way,
    /// so the bytes are ChargebackStop's; the caller decides what else it requires.
    RetriedDelivery { age_secs: i64 },
}

/// What a successful verification tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The signature's `t`, kept with the event for delivery tracing.
    pub timestamp: i64,
    /// Whether the previous (rotating-out) secret matched rather than the current one.
    pub matched_previous_secret: bool,
    pub freshness: Freshness,
}

/// Verify `header` over `body` at time `now_unix` (seconds), with one window of
/// `tolerance_secs` both ways and no allowance for retried deliveries.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<Verified, SignatureError> {
    verify_delivery(
        header,
        body,
        secrets,
        now_unix,
        Tolerance::fresh_only(tolerance_secs),
    )
}

/// Verify `header` over `body` at time `now_unix` (seconds) with both windows of `tolerance`.
/// The time check comes first and costs no HMAC work; a `t` in neither window is `Stale`, a `t`
/// in either window must still carry a matching HMAC. The MAC is the `hmac` crate's.
pub fn verify_delivery(
    header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now_unix: i64,
    tolerance: Tolerance,
) -> Result<Verified, SignatureError> {
    let verdict = mac::run_ready(verify_delivery_with(
        header, body, secrets, now_unix, tolerance,
    ));
    match verdict {
        Ok(verdict) => verdict,
        Err(never) => match never {},
    }
}

/// [`verify_delivery`] with the MAC computed by `macs` (the Worker's WebCrypto, say): the same
/// header grammar, windows, constant-time comparison and secret order, whatever computes the
/// HMAC. The outer `Err` is the backend's failure to compute a MAC at all (not a verdict on the
/// signature: the caller should answer with a retryable error); the inner result is the verdict.
pub async fn verify_delivery_with<M: WebhookMac>(
    header: Option<&str>,
    body: &[u8],
    macs: &M,
    now_unix: i64,
    tolerance: Tolerance,
) -> Result<Result<Verified, SignatureError>, M::Error> {
    let (header, freshness) = match check_header(header, now_unix, tolerance) {
        Ok(checked) => checked,
        Err(err) => return Ok(Err(err)),
    };
    let key_count = macs.key_count();
    if key_count == 0 {
        return Ok(Err(SignatureError::NoSecret));
    }
    // The MAC covers `t` as the sender wrote it, which parsing guarantees is its decimal form.
    let timestamp = header.timestamp.to_string();
    for index in 0..key_count {
        let mac = macs.mac(index, &timestamp, body).await?;
        for candidate in &header.signatures {
            // Both are MAC_LEN bytes (the parser refuses any other length), compared in
            // constant time.
            if bool::from(mac.ct_eq(candidate)) {
                return Ok(Ok(Verified {
                    timestamp: header.timestamp,
                    matched_previous_secret: index > 0,
                    freshness,
                }));
            }
        }
    }
    Ok(Err(SignatureError::Mismatch))
}

/// Parses the header and checks its `t` against both windows; no MAC work.
fn check_header(
    header: Option<&str>,
    now_unix: i64,
    tolerance: Tolerance,
) -> Result<(SignatureHeader, Freshness), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let header = SignatureHeader::parse(header.ok_or(SignatureError::Missing)?)?;

    let skew_secs = now_unix.saturating_sub(header.timestamp);
    let freshness = if skew_secs.unsigned_abs() <= tolerance.fresh_secs.max(0) as u64 {
        Freshness::Fresh
    } else if skew_secs > 0 && skew_secs <= tolerance.retried_delivery_secs {
        Freshness::RetriedDelivery {
            age_secs: skew_secs,
        }
    } else {
        // A `t` in the future gets only the fresh window; one in the past the wider of the two.
        let tolerance_secs = if skew_secs > 0 {
            tolerance.fresh_secs.max(tolerance.retried_delivery_secs)
        } else {
            tolerance.fresh_secs
        };
        return Err(SignatureError::Stale {
            skew_secs,
            tolerance_secs,
        });
    };

    Ok((header, freshness))
}

/// The `X-Signature` value ChargebackStop would send for `body` at `timestamp`.
/// Used by the local sandbox and by tests.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let tag = mac::hmac_sha512(secret.expose().as_bytes(), &timestamp.to_string(), body);
    format!("t={timestamp},v1={}", hex::encode(tag))
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
            // Not as the sender writes `t`: the MAC would cover another text.
            &format!("t=+{T},v1={CURRENT_SIG}"),
            &format!("t=0{T},v1={CURRENT_SIG}"),
            &format!("t=-0,v1={CURRENT_SIG}"),
            &format!("t={T}.0,v1={CURRENT_SIG}"),
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
    fn a_retried_delivery_with_its_first_signature_is_accepted_within_the_wider_window() {
        let tolerance = Tolerance {
            fresh_secs: 300,
            retried_delivery_secs: 50 * 3600,
        };
        let at =
            |now| verify_delivery(Some(&header(CURRENT_SIG)), BODY, &secrets(), now, tolerance);
        assert_eq!(at(T + 300).unwrap().freshness, Freshness::Fresh);
        // The +12 h retry of a delivery first signed at T, 14.6 h later.
        let retried = at(T + 52_560).unwrap();
        assert_eq!(
            retried.freshness,
            Freshness::RetriedDelivery { age_secs: 52_560 }
        );
        assert_eq!(retried.timestamp, T);
        assert_eq!(
            at(T + 50 * 3600).unwrap().freshness,
            Freshness::RetriedDelivery {
                age_secs: 50 * 3600
            }
        );
        // Past the wider window: stale, and the error names the window that applied.
        assert_eq!(
            at(T + 50 * 3600 + 1),
            Err(SignatureError::Stale {
                skew_secs: 50 * 3600 + 1,
                tolerance_secs: 50 * 3600
            })
        );
        // The wider window is for the past only: a `t` from the future gets the fresh one.
        assert_eq!(
            at(T - 301),
            Err(SignatureError::Stale {
                skew_secs: -301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn the_wider_window_still_requires_the_right_hmac() {
        let tolerance = Tolerance::default();
        let forged = format!("t={T},v1={}", "ab".repeat(64));
        assert_eq!(
            verify_delivery(Some(&forged), BODY, &secrets(), T + 3600, tolerance),
            Err(SignatureError::Mismatch)
        );
        let other = WebhookSecrets::new(Secret::new("whsec_someone_else"), None);
        assert_eq!(
            verify_delivery(
                Some(&header(CURRENT_SIG)),
                BODY,
                &other,
                T + 3600,
                tolerance
            ),
            Err(SignatureError::Mismatch)
        );
        let mut changed = BODY.to_vec();
        changed[10] ^= 1;
        assert_eq!(
            verify_delivery(
                Some(&header(CURRENT_SIG)),
                &changed,
                &secrets(),
                T + 3600,
                tolerance
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn plain_verify_has_no_retried_delivery_window() {
        assert!(matches!(
            verify(Some(&header(CURRENT_SIG)), BODY, &secrets(), T + 3600, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify(Some(&header(CURRENT_SIG)), BODY, &secrets(), T, 300)
                .unwrap()
                .freshness,
            Freshness::Fresh
        );
    }

    #[test]
    fn extreme_timestamps_and_clocks_do_not_overflow() {
        for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
            for now in [i64::MIN, -1, 0, T, i64::MAX] {
                let value = format!("t={t},v1={CURRENT_SIG}");
                let _ = verify_delivery(Some(&value), BODY, &secrets(), now, Tolerance::default());
                let _ = verify(Some(&value), BODY, &secrets(), now, i64::MAX);
            }
        }
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

/// Property tests: whatever arrives, the verifier answers without panicking; it accepts exactly
/// what `sign` produces inside the tolerance, and refuses every single-byte change of the body or
/// of the signature.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_771_324_200;

    fn secrets(secret: &str) -> WebhookSecrets {
        WebhookSecrets::new(Secret::new(secret), None)
    }

    /// Headers built from the grammar's own pieces (so parsing gets past the first check often),
    /// mixed with arbitrary text.
    fn header_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<i64>().prop_map(|t| format!("t={t}")),
            "[0-9a-fA-F]{0,130}".prop_map(|h| format!("v1={h}")),
            "[ -~]{0,20}",
            Just("v1".to_string()),
            Just("t=".to_string()),
            Just(String::new()),
        ];
        prop_oneof![
            proptest::collection::vec(piece, 0..12).prop_map(|parts| parts.join(",")),
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_any_header_body_clock_or_tolerance(
            header in header_like(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            now in any::<i64>(),
            fresh in any::<i64>(),
            retried in any::<i64>(),
        ) {
            let tolerance = Tolerance { fresh_secs: fresh, retried_delivery_secs: retried };
            let _ = SignatureHeader::parse(&header);
            let _ = verify_delivery(Some(&header), &body, &secrets("whsec_p"), now, tolerance);
            let _ = verify(Some(&header), &body, &secrets("whsec_p"), now, fresh);
        }

        #[test]
        fn accepts_what_sign_produces_exactly_within_the_tolerance(
            secret in "[ -~]{1,64}",
            body in proptest::collection::vec(any::<u8>(), 0..512),
            skew in -1_000i64..1_000,
        ) {
            let t = NOW - skew;
            let value = sign(&Secret::new(secret.clone()), t, &body);
            let result = verify(Some(&value), &body, &secrets(&secret), NOW, 300);
            if skew.abs() <= 300 {
                let verified = result.unwrap();
                prop_assert_eq!(verified.timestamp, t);
                prop_assert_eq!(verified.freshness, Freshness::Fresh);
            } else {
                let is_stale = matches!(result, Err(SignatureError::Stale { .. }));
                prop_assert!(is_stale, "{:?}", result);
            }
        }

        #[test]
        fn a_retried_delivery_is_accepted_only_in_the_past_and_only_within_its_window(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            age in -200_000i64..200_000,
        ) {
            let value = sign(&Secret::new("whsec_p"), NOW - age, &body);
            let result = verify_delivery(Some(&value), &body, &secrets("whsec_p"), NOW, Tolerance::default());
            match result {
                Ok(Verified { freshness: Freshness::Fresh, .. }) => prop_assert!(age.abs() <= 300),
                Ok(Verified { freshness: Freshness::RetriedDelivery { age_secs }, .. }) => {
                    prop_assert_eq!(age_secs, age);
                    prop_assert!(age > 300 && age <= DEFAULT_RETRIED_DELIVERY_SECS);
                }
                Err(SignatureError::Stale { .. }) => {
                    prop_assert!(age < -300 || age > DEFAULT_RETRIED_DELIVERY_SECS)
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn any_single_byte_change_of_the_body_is_refused(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<proptest::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let value = sign(&Secret::new("whsec_p"), NOW, &body);
            let i = index.index(body.len());
            prop_assume!(body[i] != replacement);
            let mut changed = body.clone();
            changed[i] = replacement;
            let result = verify_delivery(Some(&value), &changed, &secrets("whsec_p"), NOW, Tolerance::default());
            prop_assert_eq!(result, Err(SignatureError::Mismatch));
        }

        #[test]
        fn truncating_or_extending_the_body_is_refused(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            cut in any::<proptest::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let value = sign(&Secret::new("whsec_p"), NOW, &body);
            let truncated = &body[..cut.index(body.len())];
            prop_assert_eq!(
                verify(Some(&value), truncated, &secrets("whsec_p"), NOW, 300),
                Err(SignatureError::Mismatch)
            );
            let mut longer = body.clone();
            longer.extend_from_slice(&extra);
            prop_assert_eq!(
                verify(Some(&value), &longer, &secrets("whsec_p"), NOW, 300),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn any_single_bit_flip_of_the_mac_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            byte in 0usize..MAC_LEN,
            bit in 0u8..8,
            uppercase in any::<bool>(),
        ) {
            let value = sign(&Secret::new("whsec_p"), NOW, &body);
            let (prefix, hex_mac) = value.split_once(",v1=").unwrap();
            let mut mac = hex::decode(hex_mac).unwrap();
            mac[byte] ^= 1 << bit;
            let mut hex_mac = hex::encode(mac);
            if uppercase {
                hex_mac = hex_mac.to_uppercase();
            }
            let forged = format!("{prefix},v1={hex_mac}");
            prop_assert_eq!(
                verify_delivery(Some(&forged), &body, &secrets("whsec_p"), NOW, Tolerance::default()),
                Err(SignatureError::Mismatch)
            );
        }

        /// Any one byte of the header replaced by any other: refused, unless the change only
        /// switched the case of a hex letter (the same MAC bytes).
        #[test]
        fn any_single_byte_change_of_the_header_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..128),
            index in any::<proptest::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let value = sign(&Secret::new("whsec_p"), NOW, &body);
            let mut bytes = value.clone().into_bytes();
            let i = index.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let Ok(changed) = String::from_utf8(bytes) else {
                // Not text: no HTTP stack hands it to us as a header value.
                return Ok(());
            };
            let result = verify_delivery(Some(&changed), &body, &secrets("whsec_p"), NOW, Tolerance::default());
            if result.is_ok() {
                prop_assert!(
                    changed.eq_ignore_ascii_case(&value) && i > value.find("v1=").unwrap() + 2,
                    "accepted {:?}", changed
                );
            }
        }

        #[test]
        fn another_secret_is_refused(
            secret in "[ -~]{1,64}",
            other in "[ -~]{1,64}",
            body in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            prop_assume!(secret != other);
            let value = sign(&Secret::new(other), NOW, &body);
            prop_assert_eq!(
                verify_delivery(Some(&value), &body, &secrets(&secret), NOW, Tolerance::default()),
                Err(SignatureError::Mismatch)
            );
        }
    }
}
