//! Lambda entry point: state built once at cold start, then every SQS batch from the lead
//! import queue goes to `lead_import::handle`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let app = Arc::new(callplane::App::from_env().await?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<lead_import::SqsEvent>| {
            let app = app.clone();
            async move {
                Ok::<_, std::convert::Infallible>(lead_import::handle(&app, event.payload).await)
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
