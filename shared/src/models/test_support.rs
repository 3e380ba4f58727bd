//! Test helpers shared by the model files.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What we send (or store) reads back as the same value: serialise to JSON, deserialise,
/// compare. Returns the value read back so callers can assert more on it.
pub(crate) fn assert_round_trips<T>(value: &T) -> T
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json).unwrap();
    assert_eq!(&back, value);
    back
}
