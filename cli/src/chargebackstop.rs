//! The ChargebackStop API the commands call: CBS_API_BASE_URL with the partner key.

use shared::adapters::partner_http::PartnerHttp;
use shared::config;
use shared::secret::Secret;

pub fn from_env(key: Secret) -> anyhow::Result<PartnerHttp> {
    let base_url = config::required("CBS_API_BASE_URL")?;
    Ok(PartnerHttp::new(base_url, key))
}
