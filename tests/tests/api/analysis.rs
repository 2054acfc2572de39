//! Post-call analysis (issue 12, PRD §10): the job an ended call queues, handed to the
//! post-call function as Lambda hands it an SQS batch; the built-in analyzer's summary and
//! VADER sentiment (reference scores from Python's vaderSentiment 3.3.2); idempotency per run;
//! re-runs pinned to the version that took the call; skips; bad jobs as partial failures.

use super::ingest::{CALLER, NUMBER, Rt, envelope, post, segment, world};
use callplane::analysis::Analyzer;
use callplane::config::AnalyzerKind;
use callplane_tests::Stack;
use callplane_tests::world::{incoming, parameter, summary_batch};
use serde_json::{Value, json};

/// The analysis section of the version calls are pinned to in these tests.
fn section(field: &str) -> Value {
    json!({
        "summary_prompt": "Two sentences.",
        "success_criteria": "An appointment was booked.",
        "fields": [{ "name": field, "type": "enum", "description": "Why they called",
                     "choices": ["booking", "billing", "other"], "required": true }]
    })
}

/// Publishes a version of `rt`'s agent with `analysis`; later calls are pinned to it.
async fn publish_with(stack: &Stack, rt: &mut Rt, analysis: Value) -> String {
    let mut body = callplane_tests::brain("You book appointments.");
    body["analysis"] = analysis;
    let created = stack
        .post(&format!("/agents/{}/versions", rt.agent), &rt.admin, body)
        .await;
    let version = created.expect(201)["id"].as_str().unwrap().to_owned();
    stack
        .activate(&rt.admin, &rt.agent, &version, "publish")
        .await
        .expect(200);
    rt.version = version.clone();
    version
}

/// A call on `sid` with `turns` (second, speaker, text), ended after `seconds`; its id.
async fn ended_call(
    stack: &Stack,
    rt: &Rt,
    sid: &str,
    turns: &[(i64, &str, &str)],
    seconds: i64,
) -> String {
    let twiml = incoming(stack, sid, CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").expect("streamed to the runtime");
    let mut events = vec![envelope(
        rt,
        sid,
        "call_started",
        &format!("{sid}-start"),
        json!({ "started_at": super::ingest::at(0) }),
    )];
    for (i, (at, speaker, text)) in turns.iter().enumerate() {
        let mut seg = segment(*at, text);
        seg["speaker"] = json!(speaker);
        events.push(envelope(
            rt,
            sid,
            "transcript_segment",
            &format!("{sid}-seg-{i}"),
            seg,
        ));
    }
    events.push(envelope(
        rt,
        sid,
        "call_ended",
        &format!("{sid}-end"),
        json!({ "ended_at": super::ingest::at(seconds), "duration_seconds": seconds,
                "final_status": "completed", "hangup_by": "customer" }),
    ));
    for event in events {
        post(stack, &rt.token, event).await.expect(202);
    }
    call
}

/// A routed runtime whose agent's published version has the `intent` section.
async fn pinned_world(stack: &Stack) -> Rt {
    let mut rt = world(stack, NUMBER).await;
    publish_with(stack, &mut rt, section("intent")).await;
    rt
}

fn builtin() -> Analyzer {
    Analyzer::new(AnalyzerKind::Builtin)
}

#[tokio::test]
async fn an_ended_call_gets_its_summary_sentiment_and_analysis_once_however_often_its_job_comes() {
    // GIVEN a call of a version with an analysis section: two customer turns 70 s apart
    let stack = Stack::new().await;
    let rt = pinned_world(&stack).await;
    let call = ended_call(
        &stack,
        &rt,
        "CA_an1",
        &[
            (
                0,
                "customer",
                "Hi, I would like to book an appointment for Monday.",
            ),
            (5, "agent", "Sure, Monday at ten works."),
            (70, "customer", "That is great, thank you so much!"),
        ],
        80,
    )
    .await;
    let before = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert!(before.expect(200)["analysis"].is_null() && before.body["summary"].is_null());

    // WHEN the post-call function gets the queued job as Lambda delivers an SQS batch
    let batch = summary_batch(&stack).await;
    assert_eq!(batch["Records"].as_array().unwrap().len(), 1);
    let event: post_call::SqsEvent = serde_json::from_value(batch.clone()).unwrap();
    let analyzer = builtin();
    let (response, trips) = stack
        .round_trips
        .during(post_call::handle(&stack.app, &analyzer, event))
        .await;

    // THEN no message is handed back, and the call shows its analysis
    assert!(response.batch_item_failures.is_empty());
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    let shown = shown.expect(200).clone();
    let summary = shown["summary"].as_str().unwrap();
    assert!(summary.starts_with("Inbound call from +14155552672 lasting 1m20s."));
    assert!(summary.contains("\"Hi, I would like to book an appointment for Monday.\""));
    assert!(summary.contains("It ended as completed, hung up by the caller."));
    // AND the sentiment is the mean of the customer's turns, per call and per minute,
    // with Python vaderSentiment 3.3.2's scores (0.3612 and 0.784)
    assert_eq!(shown["sentiment"]["label"], "positive");
    assert_eq!(shown["sentiment"]["score"], json!(0.5726));
    let windows = shown["sentiment"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0]["score"], json!(0.3612));
    assert_eq!(windows[1]["score"], json!(0.784));
    assert_eq!(windows[1]["label"], "positive");
    // AND the analysis says how it was made, with one key per field of the pinned section
    let analysis = &shown["analysis"];
    assert_eq!(analysis["status"], "succeeded");
    assert_eq!(analysis["analyzer"], "builtin");
    assert_eq!(analysis["model"], "extractive+vader-3.3.2");
    assert_eq!(analysis["attempts"], 1);
    assert_eq!(analysis["data"], json!({ "intent": null }));
    assert!(
        analysis["success"].is_null(),
        "the built-in analyzer judges no criteria"
    );
    assert!(analysis["completed_at"].is_string());
    println!("one analysis: {trips} DynamoDB round trips");

    // WHEN the same job is delivered five more times
    for _ in 0..5 {
        let event: post_call::SqsEvent = serde_json::from_value(batch.clone()).unwrap();
        let again = post_call::handle(&stack.app, &analyzer, event).await;
        assert!(again.batch_item_failures.is_empty());
    }
    // THEN nothing changed: one run, the same outcome
    let after = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(after.expect(200)["analysis"], shown["analysis"]);
    assert_eq!(after.body["summary"], shown["summary"]);
}

#[tokio::test]
async fn a_rerun_uses_the_section_of_the_version_that_took_the_call() {
    // GIVEN an analysed call of version A, then version B published with another section
    let stack = Stack::new().await;
    let mut rt = pinned_world(&stack).await;
    let call = ended_call(
        &stack,
        &rt,
        "CA_an2",
        &[(0, "customer", "No, I am not interested.")],
        20,
    )
    .await;
    let analyzer = builtin();
    let event = serde_json::from_value(summary_batch(&stack).await).unwrap();
    post_call::handle(&stack.app, &analyzer, event).await;
    publish_with(&stack, &mut rt, section("mood")).await;
    let viewer = stack
        .member(&rt.admin, &rt.est, "viewer@helios.test", "viewer")
        .await;
    let operator = stack
        .member(&rt.admin, &rt.est, "operator@helios.test", "operator")
        .await;

    // WHEN a viewer asks for a re-run THEN it is refused
    let refused = stack
        .post_empty(&format!("/calls/{call}/analysis"), &viewer)
        .await;
    refused.expect_error(403, "forbidden");
    // WHEN an operator asks for one
    let queued = stack
        .post_empty(&format!("/calls/{call}/analysis"), &operator)
        .await;
    // THEN it is queued as a new run, and the earlier results stay meanwhile
    let queued = queued.expect(202).clone();
    assert_eq!(queued["status"], "pending");
    assert_ne!(queued["run_id"], "end");
    let pending = stack.get(&format!("/calls/{call}"), &operator).await;
    assert_eq!(pending.expect(200)["analysis"]["status"], "pending");
    assert_eq!(pending.body["sentiment"]["label"], "negative");
    // WHEN the worker runs it
    let event = serde_json::from_value(summary_batch(&stack).await).unwrap();
    let response = post_call::handle(&stack.app, &analyzer, event).await;
    assert!(response.batch_item_failures.is_empty());
    // THEN it used version A's section, not the agent's current one
    let done = stack.get(&format!("/calls/{call}"), &operator).await;
    let analysis = &done.expect(200)["analysis"];
    assert_eq!(analysis["status"], "succeeded");
    assert_eq!(analysis["run_id"], queued["run_id"]);
    assert_eq!(analysis["attempts"], 1);
    assert_eq!(analysis["data"], json!({ "intent": null }));
    assert_eq!(done.body["sentiment"]["score"], json!(-0.3089));
}

#[tokio::test]
async fn calls_with_nothing_to_analyse_are_skipped_with_a_reason() {
    // GIVEN a call where only the agent spoke, and a live call
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let call = ended_call(
        &stack,
        &rt,
        "CA_an3",
        &[(0, "agent", "Hello? Is anyone there?")],
        30,
    )
    .await;
    // WHEN its job runs
    let event = serde_json::from_value(summary_batch(&stack).await).unwrap();
    let response = post_call::handle(&stack.app, &builtin(), event).await;
    // THEN the analysis is skipped, says why, and no summary or sentiment is invented
    assert!(response.batch_item_failures.is_empty());
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(shown.expect(200)["analysis"]["status"], "skipped");
    assert_eq!(shown.body["analysis"]["reason"], "no_customer_turns");
    assert!(shown.body["summary"].is_null() && shown.body["sentiment"].is_null());

    // WHEN a re-run is asked for a call that has not ended
    let twiml = incoming(&stack, "CA_live", CALLER, NUMBER).await;
    let live = parameter(&twiml, "call_id").unwrap();
    let refused = stack
        .post_empty(&format!("/calls/{live}/analysis"), &rt.admin)
        .await;
    // THEN it is a conflict naming why
    assert!(
        refused
            .expect_error(409, "conflict")
            .contains("has not ended")
    );
}

#[tokio::test]
async fn malformed_and_unknown_jobs_come_back_as_batch_item_failures_for_the_dead_letter_queue() {
    // GIVEN a batch with a malformed message, a job for a call that does not exist, and a job
    // naming another establishment than its call's
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let call = ended_call(&stack, &rt, "CA_an4", &[(0, "customer", "Hello.")], 10).await;
    summary_batch(&stack).await;
    let job = |call_id: &str, est: &str| {
        json!({ "job": "post_call", "call_id": call_id, "establishment_id": est }).to_string()
    };
    let other_est = callplane::ids::EstablishmentId::new().to_string();
    let unknown = callplane::ids::CallId::new().to_string();
    let records: Vec<Value> = [
        ("m-bad", "{not json".to_owned()),
        ("m-unknown", job(&unknown, &rt.est)),
        ("m-foreign", job(&call, &other_est)),
        ("m-good", job(&call, &rt.est)),
    ]
    .into_iter()
    .map(|(id, body)| {
        json!({ "messageId": id, "receiptHandle": id, "body": body, "attributes": {},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:summary-jobs",
                "awsRegion": "us-east-1" })
    })
    .collect();
    let event = serde_json::from_value(json!({ "Records": records })).unwrap();
    // WHEN the function handles it
    let response = post_call::handle(&stack.app, &builtin(), event).await;
    // THEN exactly the three bad messages come back (SQS redelivers them, then dead-letters
    // them after the queue's receive count), and the good one is analysed
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-bad", "m-unknown", "m-foreign"]);
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(shown.expect(200)["analysis"]["status"], "succeeded");
}

#[tokio::test]
async fn bad_analysis_sections_are_refused_at_version_creation() {
    // GIVEN an agent
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Concierge").await;
    let field = |f: Value| json!({ "fields": [f] });
    let cases = [
        (
            field(json!({ "name": "x", "type": "date", "description": "d" })),
            "analysis.fields[0].type",
        ),
        (
            field(json!({ "name": "x", "type": "enum", "description": "d" })),
            "analysis.fields[0].choices",
        ),
        (
            field(json!({ "name": "x", "type": "string", "description": "d", "choices": ["a"] })),
            "analysis.fields[0].choices",
        ),
        (
            field(json!({ "name": "two words", "type": "string", "description": "d" })),
            "analysis.fields[0].name",
        ),
        (
            json!({ "fields": [{ "name": "x", "type": "string", "description": "d" },
                               { "name": "x", "type": "number", "description": "e" }] }),
            "analysis.fields[1].name",
        ),
        (json!({ "tone": "friendly" }), "analysis"),
    ];
    for (analysis, named) in cases {
        // WHEN a version is created with it
        let mut body = callplane_tests::brain("Be brief.");
        body["analysis"] = analysis.clone();
        let reply = stack
            .post(&format!("/agents/{agent}/versions"), &admin, body)
            .await;
        // THEN it is a 400 naming the field
        reply.expect_error(400, "validation_failed");
        let field = reply.body["error"]["details"]["field"].as_str().unwrap();
        assert!(field.starts_with(named), "{analysis}: {field}");
    }
    // AND no version was stored
    let versions = stack
        .get(&format!("/agents/{agent}/versions"), &admin)
        .await;
    assert_eq!(versions.expect(200)["items"], json!([]));
}
