//! Lambda entry point: state built once at cold start (the campaign queue, where the next
//! ticks go, and the telephony settings, which place the calls, are required), then every SQS
//! batch of ticks goes to `campaign_worker::handle`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    callplane::telemetry::init();
    let app = callplane::App::from_env().await?;
    app.config.campaign_queue()?;
    app.config.telephony()?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<campaign_worker::SqsEvent>| {
            let app = app.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    campaign_worker::handle(&app, event.payload).await,
                )
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
