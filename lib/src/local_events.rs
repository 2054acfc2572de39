//! A local stand-in for Lambda's SQS event source mapping, for `make dev`: long-polls a queue,
//! hands the messages to the function in the event shape Lambda uses, deletes the ones the
//! function did not report as batch item failures, and leaves the rest to reappear after the
//! queue's visibility timeout (and to reach the dead-letter queue after its receive count,
//! which SQS itself enforces). A function error or an unreachable function deletes nothing,
//! as with Lambda. Also a stand-in for an EventBridge schedule: the scheduled event, sent to a
//! function every so many seconds (`tick`).

use serde_json::{Value, json};

/// What one delivery did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub received: usize,
    pub deleted: usize,
    /// Left for redelivery (reported failures, or all of them when the invocation failed).
    pub kept: usize,
}

/// The event Lambda hands an SQS-triggered function for `messages` of queue `queue_arn`.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                "body": m.body(), "md5OfBody": m.md5_of_body(),
                "attributes": attributes, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Receives one batch (up to 10, waiting up to `wait_secs`) and delivers it through `invoke`,
/// which answers the function's response (`{"batchItemFailures":[{"itemIdentifier"}]}`) or an
/// error.
pub async fn deliver_once<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait_secs: i32,
    invoke: F,
) -> Result<Delivery, String>
where
    F: FnOnce(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receiving from {queue_url}: {e:?}"))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(Delivery::default());
    }
    let queue = queue_url.rsplit('/').next().unwrap_or_default();
    let arn = format!("arn:aws:sqs:us-east-1:000000000000:{queue}");
    let failed: Vec<String> = match invoke(sqs_event(messages, &arn, "us-east-1")).await {
        Ok(response) => response["batchItemFailures"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, queue, "the function failed; the batch will be redelivered");
            messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_owned))
                .collect()
        }
    };
    let mut delivery = Delivery {
        received: messages.len(),
        ..Delivery::default()
    };
    for m in messages {
        if m.message_id()
            .is_some_and(|id| failed.iter().any(|f| f == id))
        {
            delivery.kept += 1;
            continue;
        }
        if let Some(handle) = m.receipt_handle() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| format!("deleting from {queue_url}: {e:?}"))?;
            delivery.deleted += 1;
        }
    }
    Ok(delivery)
}

/// The event an EventBridge schedule hands a function at `time` (the shape of
/// `aws.scheduler` events; the sweeper reads none of it).
pub fn scheduled_event(time: &crate::time::Timestamp, schedule: &str) -> Value {
    json!({
        "version": "0", "id": crate::ids::next_ulid().to_string(),
        "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": "000000000000", "time": time.to_string(), "region": "us-east-1",
        "resources": [format!("arn:aws:scheduler:us-east-1:000000000000:schedule/default/{schedule}")],
        "detail": {}
    })
}

/// Sends the scheduled event to the function at `invoke_url` every `every_secs` until
/// stopped, as a `rate(…)` schedule does; a failed invocation is logged, not retried (the
/// next tick comes anyway).
pub async fn tick(invoke_url: String, schedule: String, every_secs: u64) {
    let http = crate::web::client_builder().build().unwrap_or_default();
    // The first tick comes one period after start, as a new schedule's does (and once the
    // functions it invokes are being served).
    let period = std::time::Duration::from_secs(every_secs.max(1));
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let event = scheduled_event(&crate::time::Timestamp::now(), &schedule);
        match http.post(&invoke_url).json(&event).send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                tracing::info!(%status, answer = %body, schedule, "tick");
            }
            Err(e) => tracing::warn!(error = %e, schedule, "tick not delivered"),
        }
    }
}

/// Delivers `queue_url` to the function at `invoke_url` (the Lambda Invoke API that `cargo
/// lambda watch` serves: `…/2015-03-31/functions/{name}/invocations`) until stopped.
pub async fn run(sqs: aws_sdk_sqs::Client, queue_url: String, invoke_url: String) {
    let http = crate::web::client_builder().build().unwrap_or_default();
    loop {
        let invoke = |event: Value| {
            let request = http.post(&invoke_url).json(&event);
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.map_err(|e| e.to_string())?;
                // A function error comes back as 200 with an errorMessage, or as a 5xx.
                if !status.is_success() || body.get("errorMessage").is_some() {
                    return Err(format!("{status}: {body}"));
                }
                Ok(body)
            }
        };
        match deliver_once(&sqs, &queue_url, 10, invoke).await {
            Ok(d) if d.received > 0 => {
                tracing::info!(
                    received = d.received,
                    deleted = d.deleted,
                    kept = d.kept,
                    "delivered"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "delivery failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}
