//! The call sweeper (issue 12, item 7): calls whose end never came are ended as `failed` /
//! `no_end_reported` by the scheduled function, leave `/calls/active`, get their post-call
//! job; a late end afterwards lands on the timeline only. Also: a call only the provider
//! reported the end of gets its post-call job too.

use super::ingest::{CALLER, NUMBER, Rt, envelope, post, segment, world};
use aws_sdk_dynamodb::types::AttributeValue;
use callplane::ids::CallId;
use callplane::store::keys;
use callplane::time::Timestamp;
use callplane_tests::Stack;
use callplane_tests::world::{incoming, parameter};
use serde_json::{Value, json};

/// A call streamed to `rt`'s runtime on `sid`; its id.
async fn live_call(stack: &Stack, sid: &str) -> String {
    let twiml = incoming(stack, sid, CALLER, NUMBER).await;
    parameter(&twiml, "call_id").expect("streamed to the runtime")
}

/// Moves call `id` back in time: created (and, if `answered`, answered) `secs_ago`, last
/// changed then too — what a call looks like that long after nothing more was heard of it.
async fn age(stack: &Stack, id: &str, secs_ago: i64, answered: bool) {
    let id = CallId::parse(id).unwrap();
    let then = Timestamp::now().plus_secs(-secs_ago);
    let mut set = vec![
        ("created_at", AttributeValue::S(then.to_string())),
        ("updated_at", AttributeValue::S(then.to_string())),
        ("gsi3sk", AttributeValue::S(keys::call_sort(&then, &id))),
    ];
    if answered {
        set.push(("started_at", AttributeValue::S(then.to_string())));
    }
    stack.tamper(&keys::call(&id), &set).await;
}

/// One round of the sweeper, as its schedule invokes it.
async fn sweep(stack: &Stack) -> Value {
    let event = callplane::local_events::scheduled_event(&Timestamp::now(), "call-sweeper");
    call_sweeper::handle(&stack.app, event)
        .await
        .expect("a sweep round")
}

fn ended_ids(report: &Value) -> Vec<(String, String)> {
    let mut ended: Vec<(String, String)> = report["ended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["call_id"].as_str().unwrap().to_owned(),
                e["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ended.sort();
    ended
}

async fn active_ids(stack: &Stack, rt: &Rt) -> Vec<String> {
    stack
        .get(
            &format!("/calls/active?establishment_id={}", rt.est),
            &rt.admin,
        )
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The call ids of the jobs on the summary queue now (received, so hidden for a while).
async fn queued_jobs(stack: &Stack) -> Vec<String> {
    let batch = callplane_tests::world::summary_batch(stack).await;
    let mut ids: Vec<String> = batch["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            body["call_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn calls_whose_end_never_came_are_ended_by_the_sweeper_and_a_late_end_changes_nothing() {
    // GIVEN three live calls: one answered 18 minutes ago that is still talking (past the
    // establishment's 15-minute limit plus the 2-minute grace), one ringing for 11 minutes
    // with nothing heard of it since (past the 10-minute idle limit), one that just began
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let long = live_call(&stack, "CA_sw_long").await;
    for (i, key) in ["CA_sw_long-seg-0", "CA_sw_long-seg-1"].iter().enumerate() {
        post(
            &stack,
            &rt.token,
            envelope(
                &rt,
                "CA_sw_long",
                "transcript_segment",
                key,
                segment(i as i64, "Still here."),
            ),
        )
        .await
        .expect(202);
    }
    age(&stack, &long, 18 * 60, true).await;
    let silent = live_call(&stack, "CA_sw_silent").await;
    age(&stack, &silent, 11 * 60, false).await;
    let fresh = live_call(&stack, "CA_sw_fresh").await;
    let mut expected = vec![long.clone(), silent.clone(), fresh.clone()];
    expected.sort();
    let mut before = active_ids(&stack, &rt).await;
    before.sort();
    assert_eq!(before, expected);

    // WHEN the schedule fires the sweeper
    let report = sweep(&stack).await;

    // THEN the two are ended, each for its reason, and the fresh one is not
    let mut want = vec![
        (long.clone(), "over_max_duration".to_owned()),
        (silent.clone(), "no_sign_of_life".to_owned()),
    ];
    want.sort();
    assert_eq!(ended_ids(&report), want);
    assert_eq!(
        report["examined"], 2,
        "the fresh call is too young to be read"
    );
    for id in [&long, &silent] {
        let call = stack.get(&format!("/calls/{id}"), &rt.admin).await;
        let call = call.expect(200);
        assert_eq!(call["status"], "failed");
        assert_eq!(call["end_reason"], "no_end_reported");
        assert!(call["ended_at"].is_string());
    }
    // AND only the fresh call is active
    assert_eq!(active_ids(&stack, &rt).await, vec![fresh.clone()]);
    // AND each ended call's post-call job is queued
    let mut jobs = vec![long.clone(), silent.clone()];
    jobs.sort();
    assert_eq!(queued_jobs(&stack).await, jobs);
    // AND a second round finds nothing to do
    let again = sweep(&stack).await;
    assert_eq!(ended_ids(&again), vec![]);

    // WHEN the runtime's end of the long call arrives late, and Twilio's end of the silent one
    let ended_at = stack
        .get(&format!("/calls/{long}"), &rt.admin)
        .await
        .expect(200)["ended_at"]
        .clone();
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_sw_long",
            "call_ended",
            "CA_sw_long-end",
            json!({ "ended_at": super::ingest::at(1100), "duration_seconds": 1100,
                    "final_status": "completed", "hangup_by": "customer" }),
        ),
    )
    .await
    .expect(202);
    stack
        .twilio_hook(
            "/webhooks/twilio/call-status",
            &[
                ("CallSid", "CA_sw_silent"),
                ("CallStatus", "completed"),
                ("CallDuration", "5"),
            ],
            None,
        )
        .await
        .expect(204);

    // THEN both calls are as the sweeper left them
    let call = stack.get(&format!("/calls/{long}"), &rt.admin).await;
    let call = call.expect(200);
    assert_eq!(call["status"], "failed");
    assert_eq!(call["end_reason"], "no_end_reported");
    assert_eq!(call["ended_at"], ended_at);
    assert!(call["duration_seconds"].is_null());
    let silent_call = stack.get(&format!("/calls/{silent}"), &rt.admin).await;
    assert_eq!(silent_call.expect(200)["status"], "failed");
    // AND the late end is on the timeline, saying it changed nothing
    let events = stack
        .get(&format!("/calls/{long}/events?limit=100"), &rt.admin)
        .await;
    let late = events.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "call_ended")
        .cloned()
        .expect("the late end on the timeline");
    assert!(
        late["note"].as_str().unwrap().contains("no_end_reported"),
        "{late}"
    );
}

#[tokio::test]
async fn a_call_only_the_provider_reported_the_end_of_is_analysed_too() {
    // GIVEN a live call whose runtime never reports its end
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let call = live_call(&stack, "CA_sw_provider").await;

    // WHEN Twilio reports it completed
    stack
        .twilio_hook(
            "/webhooks/twilio/call-status",
            &[
                ("CallSid", "CA_sw_provider"),
                ("CallStatus", "completed"),
                ("CallDuration", "42"),
            ],
            None,
        )
        .await
        .expect(204);

    // THEN its post-call job is queued, delayed so that the runtime's own end and last
    // segments come first
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = &stack.provisioned.queue_urls["summary-jobs"];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = attributes
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(delayed.as_deref(), Some("1"));
    assert_eq!(
        queued_jobs(&stack).await,
        Vec::<String>::new(),
        "not before its delay"
    );
    // AND the call is over
    let ended = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(ended.expect(200)["status"], "completed");
}
