//! Lambda entry point: state built once at cold start (integration credentials are sealed:
//! the KMS key must be configured), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.kms_key()?;
    lambda_http::run(tool_proxy::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
