//! Lambda entry point: state built once at cold start, then every scheduled event goes to
//! `call_sweeper::handle`.

// The runtime's service future around a sweep round nests deeper than rustc's default query
// depth (128) when it lays the future out; rustc's own suggestion.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let app = callplane::App::from_env().await?;
    app.config.summary_queue()?;
    app.config.campaign_queue()?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let app = app.clone();
            async move {
                call_sweeper::handle(&app, event.payload)
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
