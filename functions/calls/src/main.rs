//! Lambda entry point: state built once at cold start (telephony settings and the summary
//! queue, for analysis re-runs, required), then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.telephony()?;
    state.config.summary_queue()?;
    lambda_http::run(calls::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
