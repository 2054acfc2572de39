//! Lambda entry point: state built once at cold start (the summary and live-sentiment queues
//! are required), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.summary_queue()?;
    state.config.live_sentiment_queue()?;
    lambda_http::run(ingest::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
