//! Lambda entry point: state built once at cold start (the post-call queue must be
//! configured: exports are jobs on it), then every invocation goes to the
//! router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    // Exports are made by a job on the post-call queue.
    state.config.summary_queue()?;
    lambda_http::run(reports::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
