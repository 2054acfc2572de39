//! Recordings brought in (issue 12, item 6): Twilio's recording (with the account's
//! credentials) and a runtime's external URL are copied into the bucket by the post-call
//! function, streamed in parts; refused addresses and redirects, and missing files, are
//! failures visible on `GET /calls/{id}/recording`; a copy is made once.

use super::ingest::{CALLER, NUMBER, envelope, post, world};
use callplane::analysis::Analyzer;
use callplane_tests::Stack;
use callplane_tests::twilio::{ACCOUNT_SID, FakeTwilio};
use callplane_tests::world::{incoming, parameter, summary_batch};
use serde_json::{Value, json};

/// Delivers what is on the summary queue to the post-call function; the messages it asked to
/// have again.
async fn deliver(stack: &Stack) -> usize {
    let event = serde_json::from_value(summary_batch(stack).await).unwrap();
    let analyzer = Analyzer::new(&callplane::config::AnalyzerKind::Builtin, &stack.sdk);
    post_call::handle(&stack.app, &analyzer, event)
        .await
        .batch_item_failures
        .len()
}

async fn recording(stack: &Stack, token: &str, call: &str) -> Value {
    stack
        .get(&format!("/calls/{call}/recording"), token)
        .await
        .expect(200)
        .clone()
}

/// Twilio's completed-recording callback for `sid`'s call, with recording `recording_sid`.
async fn twilio_recording(stack: &Stack, sid: &str, recording_sid: &str) {
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}",
        stack.twilio.base_url
    );
    stack
        .twilio_hook(
            "/webhooks/twilio/recording-status",
            &[
                ("CallSid", sid),
                ("RecordingSid", recording_sid),
                ("RecordingStatus", "completed"),
                ("RecordingUrl", &url),
                ("RecordingDuration", "64"),
                ("RecordingChannels", "2"),
            ],
            None,
        )
        .await
        .expect(204);
}

#[tokio::test]
async fn a_twilio_recording_is_copied_into_the_bucket_in_parts_once() {
    // GIVEN a call whose Twilio recording (9 MiB: two multipart parts) is complete
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let twiml = incoming(&stack, "CA_rec_big", CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").unwrap();
    twilio_recording(&stack, "CA_rec_big", "RE_big1").await;
    assert_eq!(
        recording(&stack, &rt.admin, &call).await["status"],
        "pending"
    );

    // WHEN the post-call function gets the copy job
    assert_eq!(deliver(&stack).await, 0);

    // THEN the recording is available from our bucket, byte for byte
    let access = recording(&stack, &rt.admin, &call).await;
    assert_eq!(access["status"], "available", "{access}");
    assert_eq!(access["content_type"], "audio/x-wav");
    assert!(
        access["url"]
            .as_str()
            .unwrap()
            .contains(&format!("recordings/{}/{call}.wav", rt.est))
    );
    let stored = stack
        .app
        .blobs
        .get(&format!("recordings/{}/{call}.wav", rt.est))
        .await
        .unwrap()
        .expect("the object");
    assert_eq!(stored.len(), FakeTwilio::recording_body("RE_big1").len());
    assert!(stored == FakeTwilio::recording_body("RE_big1"));
    assert_eq!(stack.twilio.recording_fetches(), 1);

    // WHEN Twilio sends the callback again and its job comes twice
    twilio_recording(&stack, "CA_rec_big", "RE_big1").await;
    assert_eq!(deliver(&stack).await, 0);

    // THEN nothing is fetched again
    let access = recording(&stack, &rt.admin, &call).await;
    assert_eq!(access["status"], "available");
    assert_eq!(stack.twilio.recording_fetches(), 1);
}

#[tokio::test]
async fn refused_addresses_redirects_and_missing_files_fail_visibly_and_are_not_retried() {
    // GIVEN three calls: a runtime reports an https recording on a private address, Twilio's
    // recording redirects to the cloud metadata address, and one Twilio recording is gone
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let mut calls = Vec::new();
    for sid in ["CA_rec_private", "CA_rec_redirect", "CA_rec_missing"] {
        let twiml = incoming(&stack, sid, CALLER, NUMBER).await;
        calls.push(parameter(&twiml, "call_id").unwrap());
    }
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_rec_private",
            "recording_available",
            "rec-private",
            json!({ "recording_url": "https://10.0.0.7/recordings/a.wav",
                    "storage_provider": "runtime", "content_type": "audio/wav" }),
        ),
    )
    .await
    .expect(202);
    twilio_recording(&stack, "CA_rec_redirect", "RE_redirect_private1").await;
    twilio_recording(&stack, "CA_rec_missing", "RE_missing1").await;

    // WHEN the post-call function gets the three copy jobs
    assert_eq!(
        deliver(&stack).await,
        0,
        "permanent failures are not retried"
    );

    // THEN each recording says it failed, and why
    let expected = ["private address", "private address", "404"];
    for (call, why) in calls.iter().zip(expected) {
        let access = recording(&stack, &rt.admin, call).await;
        assert_eq!(access["status"], "failed", "{access}");
        assert!(access["error"].as_str().unwrap().contains(why), "{access}");
        assert!(access["url"].is_null());
    }
    // AND the redirect was not followed: Twilio was asked once, the metadata address never
    assert_eq!(stack.twilio.recording_fetches(), 2);
}

#[tokio::test]
async fn a_recording_over_the_size_cap_is_refused_without_storing_it() {
    // GIVEN functions deployed with a 100 kB recording cap, and a 9 MiB Twilio recording
    let base = Stack::new().await;
    let stack = base.redeployed(&[("RECORDING_MAX_BYTES", "100000")]);
    let rt = world(&stack, NUMBER).await;
    let twiml = incoming(&stack, "CA_rec_cap", CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").unwrap();
    twilio_recording(&stack, "CA_rec_cap", "RE_big_cap").await;

    // WHEN the post-call function gets the copy job
    assert_eq!(deliver(&stack).await, 0);

    // THEN the recording failed for its size, and nothing is in the bucket
    let access = recording(&stack, &rt.admin, &call).await;
    assert_eq!(access["status"], "failed");
    assert!(
        access["error"]
            .as_str()
            .unwrap()
            .contains("larger than 100000 bytes"),
        "{access}"
    );
    let stored = stack
        .app
        .blobs
        .get(&format!("recordings/{}/{call}.wav", rt.est))
        .await
        .unwrap();
    assert!(stored.is_none());
}

#[tokio::test]
async fn an_unreachable_recording_is_retried_then_failed_with_the_reason() {
    // GIVEN a call whose Twilio recording answers 503 every time
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let twiml = incoming(&stack, "CA_rec_503", CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").unwrap();
    twilio_recording(&stack, "CA_rec_503", "RE_unavailable1").await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = stack.provisioned.queue_urls["summary-jobs"].clone();
    let analyzer = Analyzer::new(&callplane::config::AnalyzerKind::Builtin, &stack.sdk);

    // WHEN SQS delivers the job again after each failure (the visibility timeout cut short)
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let batch = summary_batch(&stack).await;
        if batch["Records"].as_array().unwrap().is_empty() {
            break;
        }
        let response = post_call::handle(
            &stack.app,
            &analyzer,
            serde_json::from_value(batch.clone()).unwrap(),
        )
        .await;
        rounds.push(response.batch_item_failures.len());
        let access = recording(&stack, &rt.admin, &call).await;
        rounds.push(usize::from(access["status"] == "failed"));
        // as Lambda does: a reported failure comes back, the rest is deleted
        for record in batch["Records"].as_array().unwrap() {
            let handle = record["receiptHandle"].as_str().unwrap();
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == record["messageId"].as_str().unwrap());
            if failed {
                sqs.change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    // THEN two tries come back pending with the reason, the third gives up
    assert_eq!(
        rounds,
        vec![1, 0, 1, 0, 0, 1],
        "(failures reported, failed shown) per round"
    );
    let access = recording(&stack, &rt.admin, &call).await;
    assert!(
        access["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{access}"
    );
    assert!(
        access["error"].as_str().unwrap().contains("503"),
        "{access}"
    );
    assert_eq!(stack.twilio.recording_fetches(), 3);
}
