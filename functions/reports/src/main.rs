//! Lambda entry point: state built once at cold start, then every invocation goes to the
//! router.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let state = callplane::App::from_env().await?;
    lambda_http::run(reports::router(state))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
