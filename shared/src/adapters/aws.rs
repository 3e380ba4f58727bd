//! Loading AWS configuration. The SDK itself honours `AWS_ENDPOINT_URL` (the local emulator),
//! `AWS_REGION` and the credential variables, so nothing here special-cases local runs.

pub use aws_config::SdkConfig;

pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
