//! The `lead-import` function: messages from the lead import queue, each naming an import
//! job that `service::lead_import::run` works to its end. The queue's batch size is 1 (a
//! file is big); a run that fails for now (a read or write that gave up) is answered as a
//! partial batch failure, so SQS delivers it again after the visibility timeout and the job
//! resumes after its last committed batch, until the queue's receive count moves it to the
//! dead-letter queue.

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use callplane::service::lead_import::{self, ImportMessage};
use callplane::{App, Error};

/// Handles one batch; the answer lists the messages to deliver again.
pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let outcome = match message
            .body
            .as_deref()
            .map(serde_json::from_str::<ImportMessage>)
        {
            Some(Ok(m)) => lead_import::run(app, &m.job_id).await,
            Some(Err(e)) => Err(Error::invalid(
                "body",
                format!("not an import message: {e}"),
            )),
            None => Err(Error::invalid("body", "the message has no body")),
        };
        if let Err(e) = outcome {
            tracing::error!(message_id = %id, error = %e, "import to be delivered again");
            response.add_failure(id);
        }
    }
    response
}
