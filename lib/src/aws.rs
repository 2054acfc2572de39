//! Building AWS SDK clients once per process. Locally every client goes to the emulator
//! through `AWS_ENDPOINT_URL`; S3 then needs path-style addressing.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Loads region, credentials and endpoint from the environment, with [`retry_config`].
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
}

/// How every client retries what AWS answers with throttling (`ThrottlingException`,
/// `ProvisionedThroughputExceededException`), a 5xx or a dropped connection: standard mode
/// (exponential back-off with full jitter, and a token bucket that stops retrying when most
/// requests fail), 6 attempts from 25 ms up to 1 s apart. DynamoDB recovers from a throttle in
/// milliseconds, so the SDK's default 1 s first wait would only add latency; past about 3 s of
/// retries a request is better answered 503 so the client retries it later. Writes stay safe
/// to retry: the SDK gives each TransactWriteItems call one `ClientRequestToken` for all its
/// attempts.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(25))
        .with_max_backoff(Duration::from_secs(1))
}

/// Timeouts of readiness probes: a dependency that does not answer within a second is not
/// ready.
pub fn probe_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(500))
        .build()
}

/// An S3 client; path-style when an endpoint override is set (the emulator).
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
