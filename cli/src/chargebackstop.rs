//! The ChargebackStop API the commands call: CBS_API_BASE_URL with the partner key.

use shared::client::{ChargebackStop, ClientConfig};
use shared::config;
use shared::secret::Secret;

pub fn from_env(key: Secret) -> anyhow::Result<ChargebackStop> {
    let base_url = config::required("CBS_API_BASE_URL")?;
    Ok(ChargebackStop::new(ClientConfig::new(base_url, key))?)
}
