//! The `post-call` function: batches of post-call jobs from the summary queue (PRD D.4 job 1).
//! Each message is one `service::analysis::run_message` (an analysis, or a calls export); the messages of a batch run concurrently, and
//! the ones to deliver again (an analyzer failure with attempts left, a run another worker
//! holds, a malformed or unknown job) are answered as partial batch failures, so SQS retries
//! only those, after the visibility timeout, and moves them to the dead-letter queue after
//! the queue's receive count instead of looping.

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use callplane::analysis::Analyzer;
use callplane::service::analysis::{self, Outcome};
use callplane::{App, Error};

/// Handles one batch; the answer lists the messages to deliver again.
pub async fn handle(app: &App, analyzer: &Analyzer, event: SqsEvent) -> SqsBatchResponse {
    let runs = event.records.into_iter().map(|message| async move {
        let id = message.message_id.unwrap_or_default();
        let outcome = match message.body.as_deref() {
            Some(body) => analysis::run_message(app, analyzer, body).await,
            None => Err(Error::invalid("body", "the message has no body")),
        };
        match outcome {
            Ok(Outcome::Done) => None,
            Ok(Outcome::Later(why)) => {
                tracing::warn!(message_id = %id, why, "post-call job to be delivered again");
                Some(id)
            }
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "post-call job failed");
                Some(id)
            }
        }
    });
    let mut response = SqsBatchResponse::default();
    for id in futures::future::join_all(runs).await.into_iter().flatten() {
        response.add_failure(id);
    }
    response
}
