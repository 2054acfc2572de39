//! The call sweeper's handler: one round of `service::sweeper` per scheduled event (an
//! EventBridge schedule, every minute; `make dev` fires it through `callplane-admin tick`).
//! The event's content does not matter: the round runs at the time it is handled.

/// One round; its report is the invocation's answer (and is logged).
pub async fn handle(
    app: &callplane::App,
    _event: serde_json::Value,
) -> Result<serde_json::Value, callplane::error::Error> {
    let report = callplane::service::sweeper::sweep(app, callplane::time::Timestamp::now()).await?;
    serde_json::to_value(report).map_err(callplane::error::Error::internal)
}
