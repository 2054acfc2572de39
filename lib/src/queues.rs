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
        self.send_delayed(message, 0).await
    }

    /// Sends one JSON message that becomes visible after `delay_secs` (0..=900); returns its
    /// message id.
    pub async fn send_delayed(&self, message: &impl Serialize, delay_secs: i32) -> Result<String> {
        let body = serde_json::to_string(message).map_err(Error::internal)?;
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_delay_seconds((delay_secs > 0).then_some(delay_secs.min(900)))
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out.message_id.unwrap_or_default())
    }

    /// Sends up to 10 JSON messages to a FIFO queue in one request, each `(group,
    /// deduplication id, message)`: SQS keeps one message per deduplication id for five
    /// minutes. Answers the ids of the entries it refused.
    pub async fn send_fifo_batch(
        &self,
        entries: &[(String, String, serde_json::Value)],
    ) -> Result<Vec<String>> {
        let mut batch = Vec::with_capacity(entries.len());
        for (i, (group, dedup, message)) in entries.iter().enumerate() {
            batch.push(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(message.to_string())
                    .message_group_id(group)
                    .message_deduplication_id(dedup)
                    .build()
                    .map_err(Error::internal)?,
            );
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(batch))
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out.failed.into_iter().map(|f| f.id).collect())
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

    /// Receives up to `max` messages (long-polling `wait_secs`), hidden from other consumers
    /// for `visibility_secs`, with how many times each was received (1 = first delivery).
    pub async fn receive_counted(
        &self,
        max: i32,
        wait_secs: i32,
        visibility_secs: i32,
    ) -> Result<Vec<Received>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    receipt_handle: m.receipt_handle?,
                    body: m.body?,
                    receive_count,
                })
            })
            .collect())
    }

    /// The queue's `maxReceiveCount` (its redrive policy): how many deliveries a message gets
    /// before SQS moves it to the dead-letter queue; `None` without a redrive policy.
    pub async fn max_receive_count(&self) -> Result<Option<u32>> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(Error::internal)?;
        let Some(policy) = out
            .attributes
            .as_ref()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        else {
            return Ok(None);
        };
        let policy: serde_json::Value = serde_json::from_str(policy).map_err(Error::internal)?;
        // SQS writes the number as a string or as a number, depending on who set it.
        let count = match &policy["maxReceiveCount"] {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        count
            .map(Some)
            .ok_or_else(|| Error::internal("redrive policy without a maxReceiveCount"))
    }

    /// One cheap call that tells whether the queue answers (readiness checks): no retries, a
    /// short timeout.
    pub async fn probe(&self) -> Result<()> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .timeout_config(crate::aws::probe_timeouts()),
            )
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// Makes a received message visible again after `secs` (a retry with back-off).
    pub async fn retry_in(&self, receipt_handle: &str, secs: i32) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }
}

/// A received message.
#[derive(Clone, Debug)]
pub struct Received {
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has delivered it, this time included.
    pub receive_count: u32,
}
