//! Lambda entry point: state built once at cold start (the KMS key must be configured: secret
//! env values are sealed at rest), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.kms_key()?;
    lambda_http::run(runtimes::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
