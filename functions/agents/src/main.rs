//! Lambda entry point: state built once at cold start (telephony settings required: numbers
//! are registered against the Twilio account), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.telephony()?;
    lambda_http::run(agents::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
