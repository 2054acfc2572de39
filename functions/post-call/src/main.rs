//! Lambda entry point: state and the configured analyzer built once at cold start, then every
//! SQS batch from the summary queue goes to `post_call::handle`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let app = callplane::App::from_env().await?;
    let analyzer = Arc::new(callplane::analysis::Analyzer::new(&app.config.analyzer));
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
