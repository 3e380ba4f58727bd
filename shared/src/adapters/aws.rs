//! Loading AWS configuration. The SDK itself honours `AWS_ENDPOINT_URL` (the local emulator),
//! `AWS_REGION` and the credential variables, so nothing here special-cases local runs.

pub use aws_config::SdkConfig;

/// The SDK's configuration, its HTTPS client trusting the roots this process has read once
/// (`crate::tls`) instead of reading the certificate store again.
pub async fn load_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match crate::tls::aws_http_client() {
        Some(http) => loader.http_client(http).load().await,
        None => loader.load().await,
    }
}
