//! Lambda entry point: state and the configured analyzer built once at cold start, then every
//! SQS batch from the summary and live-sentiment queues goes to `post_call::handle`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let config = callplane::config::Config::from_env()?;
    let sdk = callplane::aws::load().await;
    let app = Arc::new(callplane::App::new(config, &sdk));
    let analyzer = Arc::new(callplane::analysis::Analyzer::new(
        &app.config.analyzer,
        &sdk,
    ));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<post_call::SqsEvent>| {
            let (app, analyzer) = (app.clone(), analyzer.clone());
            async move {
                Ok::<_, std::convert::Infallible>(
                    post_call::handle(&app, &analyzer, event.payload).await,
                )
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
