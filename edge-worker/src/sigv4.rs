//! SigV4 for the one request the Worker sends (`POST` of an SQS JSON-protocol action to the
//! endpoint's root), with the signing key derived once per day instead of on every request.
//!
//! `shared::sqs_request::signed_action` (the `aws-sigv4` crate, checked against botocore and
//! against moto with signature checks on) is the reference: the tests below require this signer
//! to produce exactly its headers for the same input, including a session token and endpoints
//! with ports. It exists because `aws-sigv4` derives the key on every call and brings its own
//! `http`, `bytes`, `sha2`/`hmac` versions into the wasm bundle; here the crypto is the same
//! `hmac`/`sha2` the webhook verifier uses.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use shared::secret::Secret;
#[cfg(test)]
use shared::sqs_request::SignedRequest;
use shared::sqs_request::{AwsCredentials, QueueTarget, SqsRequestError, CONTENT_TYPE};
use std::cell::RefCell;
use std::fmt::Write;

type HmacSha256 = Hmac<Sha256>;
const SERVICE: &str = "sqs";

/// Signs requests for one set of credentials and one queue; keeps the day's signing key.
pub struct Signer {
    credentials: AwsCredentials,
    target: QueueTarget,
    /// `endpoint_url()`, its `host[:port]` as signed, and its path, computed once.
    url: String,
    host: String,
    path: String,
    /// (`YYYYMMDD`, key): the key is HMAC(…HMAC("AWS4"+secret, date)…, "aws4_request").
    day_key: RefCell<Option<(String, [u8; 32])>>,
}

impl Signer {
    pub fn new(credentials: AwsCredentials, target: QueueTarget) -> Result<Self, SqsRequestError> {
        let url = target.endpoint_url();
        let (host, path) =
            split_url(&url).ok_or_else(|| SqsRequestError::BadEndpoint(url.clone()))?;
        Ok(Self {
            credentials,
            target,
            host,
            path,
            url,
            day_key: RefCell::new(None),
        })
    }

    /// `action` with `body`, signed at `now_secs`: the whole request, as
    /// `shared::sqs_request::signed_action` builds it (the tests compare the two).
    #[cfg(test)]
    pub fn signed_action(
        &self,
        action: &str,
        body: Vec<u8>,
        now_secs: i64,
    ) -> Result<SignedRequest, SqsRequestError> {
        let body_sha256: [u8; 32] = Sha256::digest(&body).into();
        Ok(SignedRequest {
            method: "POST",
            url: self.url.clone(),
            headers: self.signed_headers(action, &body_sha256, now_secs)?,
            body,
        })
    }

    /// The URL every request is posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers of `action` for a body whose SHA-256 is `body_sha256` (computed by the caller,
    /// the Worker with WebCrypto on the bytes it sends), signed at `now_secs`.
    pub fn signed_headers(
        &self,
        action: &str,
        body_sha256: &[u8; 32],
        now_secs: i64,
    ) -> Result<Vec<(String, String)>, SqsRequestError> {
        let amz_date = crate::time::amz_date(now_secs)
            .ok_or_else(|| SqsRequestError::Signing("time out of range".to_string()))?;
        let day = &amz_date[..8];
        let target_header = format!("AmazonSQS.{action}");
        let token = self.credentials.session_token.as_ref().map(Secret::expose);

        let mut canonical = String::with_capacity(320);
        let signed_headers = if token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        } else {
            "content-type;host;x-amz-date;x-amz-target"
        };
        let _ = write!(
            canonical,
            "POST\n{}\n\ncontent-type:{CONTENT_TYPE}\nhost:{}\nx-amz-date:{amz_date}\n",
            self.path, self.host
        );
        if let Some(token) = token {
            let _ = writeln!(canonical, "x-amz-security-token:{}", token.trim());
        }
        let _ = write!(
            canonical,
            "x-amz-target:{target_header}\n\n{signed_headers}\n{}",
            hex::encode(body_sha256)
        );
        let scope = format!("{day}/{}/{SERVICE}/aws4_request", self.target.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let key = self.day_key(day);
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));

        let mut headers = vec![
            ("content-type".to_string(), CONTENT_TYPE.to_string()),
            ("x-amz-target".to_string(), target_header),
            ("x-amz-date".to_string(), amz_date.clone()),
            (
                "authorization".to_string(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                    self.credentials.access_key_id
                ),
            ),
        ];
        if let Some(token) = token {
            headers.push(("x-amz-security-token".to_string(), token.to_string()));
        }
        Ok(headers)
    }

    /// The signing key for `day`, derived at most once per day per isolate.
    fn day_key(&self, day: &str) -> [u8; 32] {
        let mut cached = self.day_key.borrow_mut();
        if let Some((cached_day, key)) = cached.as_ref() {
            if cached_day == day {
                return *key;
            }
        }
        let secret = format!("AWS4{}", self.credentials.secret_access_key.expose());
        let mut key = hmac(secret.as_bytes(), day.as_bytes());
        for part in [self.target.region.as_str(), SERVICE, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        *cached = Some((day.to_string(), key));
        key
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The `Host` value SigV4 signs (the authority, without a default port) and the canonical path
/// of an `http(s)://authority/path` URL. Only plain paths (unreserved characters and `/`, no
/// query, no dot segments) are accepted: that is every SQS endpoint, and needs no encoding.
fn split_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let plain = path.split('/').all(|segment| {
        segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'.'))
    });
    if !plain {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let host = match (
        scheme.to_ascii_lowercase().as_str(),
        authority.rsplit_once(':'),
    ) {
        ("https", Some((h, "443"))) | ("http", Some((h, "80"))) => h.to_string(),
        ("http" | "https", _) => authority,
        _ => return None,
    };
    Some((host, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sqs_request::signed_action;
    use std::time::Duration;

    fn credentials(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
        }
    }

    fn target(endpoint: Option<&str>, region: &str) -> QueueTarget {
        QueueTarget {
            region: region.into(),
            queue_url: format!("https://sqs.{region}.amazonaws.com/123456789012/edge.fifo"),
            endpoint: endpoint.map(String::from),
        }
    }

    fn sorted(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
        headers.sort();
        headers
    }

    /// The same request, byte for byte, as the aws-sigv4 reference for every endpoint shape,
    /// with and without a session token, across days (the cached key must follow the date).
    #[test]
    fn signs_exactly_like_the_aws_sigv4_reference() {
        let endpoints = [
            None,
            Some(""),
            Some("http://127.0.0.1:4566"),
            Some("http://127.0.0.1:4566/"),
            Some("http://localhost:80/"),
            Some("https://sqs.eu-west-1.amazonaws.com:443"),
            Some("https://sqs-fips.us-east-1.amazonaws.com/"),
            Some("http://127.0.0.1:5000/prefix/path"),
        ];
        let bodies: [&[u8]; 3] = [
            b"",
            br#"{"QueueUrl":"q","MessageBody":"x"}"#,
            &[b'a'; 20_000],
        ];
        // 2026-02-17T10:30:00Z, a second before midnight, midnight, and a leap day.
        let times = [
            1_771_324_200_i64,
            1_771_372_799,
            1_771_372_800,
            1_709_208_000,
        ];
        for endpoint in endpoints {
            for region in ["eu-west-1", "us-east-1"] {
                for token in [None, Some("token123")] {
                    let creds = credentials(token);
                    let target = target(endpoint, region);
                    let signer = Signer::new(creds.clone(), target.clone()).unwrap();
                    for &now in &times {
                        for body in bodies {
                            let reference = signed_action(
                                &creds,
                                &target,
                                "SendMessage",
                                body.to_vec(),
                                Duration::from_secs(now as u64),
                            )
                            .unwrap();
                            let ours = signer
                                .signed_action("SendMessage", body.to_vec(), now)
                                .unwrap();
                            assert_eq!(ours.url, reference.url, "{endpoint:?}");
                            assert_eq!(ours.body, reference.body);
                            assert_eq!(
                                sorted(ours.headers),
                                sorted(reference.headers),
                                "{endpoint:?} {region} {token:?} {now}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_day_key_follows_the_date() {
        let signer = Signer::new(credentials(None), target(None, "eu-west-1")).unwrap();
        let a = signer.day_key("20260217");
        assert_eq!(signer.day_key("20260217"), a);
        let b = signer.day_key("20260218");
        assert_ne!(a, b);
        assert_eq!(signer.day_key("20260218"), b);
    }

    #[test]
    fn endpoints_it_cannot_sign_plainly_are_refused() {
        for endpoint in [
            "ftp://x/",
            "http://user@host/",
            "http:///",
            "http://h/a?b=c",
            "http://h/a b",
            "http://h/../x",
        ] {
            assert!(
                Signer::new(credentials(None), target(Some(endpoint), "eu-west-1")).is_err(),
                "{endpoint}"
            );
        }
    }
}
