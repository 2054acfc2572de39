//! SQS: background work (post-call summaries, campaign dialing, runtime commands) is queued
//! here; each queue has a dead-letter queue (see `resources`).

use crate::error::{Error, Result};
use serde::Serialize;

/// A queue by URL.
#[derive(Clone, Debug)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// Sends one JSON message; returns its message id.
    pub async fn send(&self, message: &impl Serialize) -> Result<String> {
        let body = serde_json::to_string(message).map_err(Error::internal)?;
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out.message_id.unwrap_or_default())
    }

    /// Receives up to `max` messages (long-polling `wait_secs`), as `(receipt handle, body)`.
    pub async fn receive(&self, max: i32, wait_secs: i32) -> Result<Vec<(String, String)>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some((m.receipt_handle?, m.body?)))
            .collect())
    }

    /// Deletes a received message.
    pub async fn delete(&self, receipt_handle: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }
}
