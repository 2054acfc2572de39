//! Lambda entry point (behind a function URL): state built once at cold start (telephony
//! settings and the post-call queue required), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.telephony()?;
    state.config.summary_queue()?;
    lambda_http::run(twilio_webhooks::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
