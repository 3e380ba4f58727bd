//! Operator API keys for the operations API. Only the SHA-256 of a key is stored (the `operators`
//! table's key is `key_hash`): a leaked table does not leak a usable key, and the ops API finds an
//! operator with one GetItem instead of comparing against every key.

use crate::ports::store_error::StoreError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every operator key starts with this, so it is never mistaken for a ChargebackStop key (`cbs_`).
pub const OPERATOR_KEY_PREFIX: &str = "cbsop_";

/// One row of the `operators` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    /// Lowercase hex SHA-256 of the whole key (prefix included).
    pub key_hash: String,
    /// Who holds the key; written into every decision the operator makes.
    pub operator: String,
    pub created_at: String,
    #[serde(default)]
    pub revoked: bool,
}

#[async_trait::async_trait]
pub trait OperatorKeys: Send + Sync {
    async fn find_by_hash(&self, key_hash: &str) -> Result<Option<OperatorRecord>, StoreError>;
    /// Stores a new key; never overwrites an existing one (`Conflict` if the hash exists).
    async fn insert(&self, record: &OperatorRecord) -> Result<(), StoreError>;
}

/// Lowercase hex SHA-256 of the presented key.
pub fn hash_key(key: &Secret) -> String {
    hex::encode(Sha256::digest(key.expose().as_bytes()))
}

/// A new random key: the prefix and 32 random bytes in hex (256 bits).
pub fn mint_key() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!("{OPERATOR_KEY_PREFIX}{}", hex::encode(bytes)))
}

/// Constant-time equality of two hashes. The lookup is by hash, but the final comparison of the
/// stored hash against the presented key's hash must not leak how many leading bytes matched.
pub fn hashes_match(stored: &str, presented: &str) -> bool {
    let (a, b) = (stored.as_bytes(), presented.as_bytes());
    // Lengths are public (always 64 hex chars); checking first keeps `ct_eq` on equal lengths.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Why a request's key was refused. One message for every case, so a caller cannot probe which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    Missing,
    Unknown,
    Revoked,
}

/// Looks a presented key up and checks it. Returns the operator's name when the key is good.
pub async fn authenticate(
    keys: &dyn OperatorKeys,
    presented: &Secret,
) -> Result<Result<OperatorRecord, KeyRefusal>, StoreError> {
    if presented.is_empty() || !presented.expose().starts_with(OPERATOR_KEY_PREFIX) {
        return Ok(Err(KeyRefusal::Unknown));
    }
    let presented_hash = hash_key(presented);
    match keys.find_by_hash(&presented_hash).await? {
        None => Ok(Err(KeyRefusal::Unknown)),
        Some(record) if !hashes_match(&record.key_hash, &presented_hash) => {
            Ok(Err(KeyRefusal::Unknown))
        }
        Some(record) if record.revoked => Ok(Err(KeyRefusal::Revoked)),
        Some(record) => Ok(Ok(record)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Keys(Mutex<HashMap<String, OperatorRecord>>);

    #[async_trait::async_trait]
    impl OperatorKeys for Keys {
        async fn find_by_hash(&self, h: &str) -> Result<Option<OperatorRecord>, StoreError> {
            Ok(self.0.lock().unwrap().get(h).cloned())
        }
        async fn insert(&self, r: &OperatorRecord) -> Result<(), StoreError> {
            self.0.lock().unwrap().insert(r.key_hash.clone(), r.clone());
            Ok(())
        }
    }

    fn record(key: &Secret, revoked: bool) -> OperatorRecord {
        OperatorRecord {
            key_hash: hash_key(key),
            operator: "ops@example.com".into(),
            created_at: "2026-11-24T10:00:00Z".into(),
            revoked,
        }
    }

    #[test]
    fn minted_keys_are_prefixed_random_and_hash_to_64_hex() {
        let (a, b) = (mint_key(), mint_key());
        assert!(a.expose().starts_with(OPERATOR_KEY_PREFIX));
        assert_eq!(a.expose().len(), OPERATOR_KEY_PREFIX.len() + 64);
        assert_ne!(a.expose(), b.expose());
        let h = hash_key(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(a.expose()));
    }

    #[test]
    fn hash_comparison_rejects_prefixes_and_different_lengths() {
        let h = hash_key(&Secret::new("cbsop_x"));
        assert!(hashes_match(&h, &h.clone()));
        assert!(!hashes_match(&h, &h[..10]));
        assert!(!hashes_match(&h, ""));
        let mut other = h.clone();
        other.replace_range(63..64, if h.ends_with('0') { "1" } else { "0" });
        assert!(!hashes_match(&h, &other));
    }

    #[tokio::test]
    async fn authenticate_accepts_only_a_stored_unrevoked_key() {
        let keys = Keys::default();
        let good = mint_key();
        let revoked = mint_key();
        keys.insert(&record(&good, false)).await.unwrap();
        keys.insert(&record(&revoked, true)).await.unwrap();

        let ok = authenticate(&keys, &good).await.unwrap().unwrap();
        assert_eq!(ok.operator, "ops@example.com");
        assert_eq!(
            authenticate(&keys, &revoked).await.unwrap(),
            Err(KeyRefusal::Revoked)
        );
        assert_eq!(
            authenticate(&keys, &mint_key()).await.unwrap(),
            Err(KeyRefusal::Unknown)
        );
        assert_eq!(
            authenticate(&keys, &Secret::new("cbs_live_partnerkey"))
                .await
                .unwrap(),
            Err(KeyRefusal::Unknown)
        );
        assert_eq!(
            authenticate(&keys, &Secret::new("")).await.unwrap(),
            Err(KeyRefusal::Unknown)
        );
    }
}
