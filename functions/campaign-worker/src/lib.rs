//! The `campaign-worker` function: ticks from the campaign queue, each stepping one campaign
//! through `service::dialer::tick` (which queues the next tick itself). A tick whose chain
//! number is stale, or whose campaign's lease is held, does nothing and is deleted: that is
//! what makes a redelivered or duplicated tick harmless. A tick that failed for now (a read
//! or write that gave up) is answered as a partial batch failure and delivered again.

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use callplane::service::dialer::{self, Tick};
use callplane::{AppState, Error};

/// Handles one batch; the answer lists the ticks to deliver again. The ticks of a batch are
/// of different campaigns (or duplicates) and run concurrently.
pub async fn handle(app: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let runs = event.records.into_iter().map(|message| async move {
        let id = message.message_id.unwrap_or_default();
        let outcome = match message.body.as_deref().map(serde_json::from_str::<Tick>) {
            Some(Ok(tick)) => dialer::tick(app, &tick).await.map(|_| ()),
            Some(Err(e)) => {
                // A message that is not a tick can never succeed: drop it, loudly.
                tracing::error!(message_id = %id, error = %e, "not a campaign tick; dropped");
                Ok(())
            }
            None => Err(Error::invalid("body", "the message has no body")),
        };
        (id, outcome)
    });
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in futures::future::join_all(runs).await {
        if let Err(e) = outcome {
            tracing::error!(message_id = %id, error = %e, "tick to be delivered again");
            response.add_failure(id);
        }
    }
    response
}
