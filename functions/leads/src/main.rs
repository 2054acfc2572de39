//! Lambda entry point: state built once at cold start (the import queue must be configured),
//! then every invocation goes to the router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    state.config.lead_import_queue()?;
    lambda_http::run(leads::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
