//! Lambda entry point: state built once at cold start (the campaign queue must be
//! configured), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.campaign_queue()?;
    lambda_http::run(campaigns::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
