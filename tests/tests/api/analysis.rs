//! Post-call analysis (issue 12, PRD §10): the job an ended call queues, handed to the
//! post-call function as Lambda hands it an SQS batch; the built-in analyzer's summary and
//! VADER sentiment (reference scores from Python's vaderSentiment 3.3.2); idempotency per run;
//! re-runs pinned to the version that took the call; skips; bad jobs as partial failures.

use super::ingest::{CALLER, NUMBER, Rt, envelope, post, segment, world};
use axum::response::IntoResponse as _;
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

/// A 30-second call on `sid`: the customer asks to book for Monday, the agent offers ten.
async fn booking_call(stack: &Stack, rt: &Rt, sid: &str) -> String {
    ended_call(
        stack,
        rt,
        sid,
        &[
            (
                0,
                "customer",
                "Hi, I would like to book an appointment for Monday.",
            ),
            (5, "agent", "Sure, Monday at ten works."),
        ],
        30,
    )
    .await
}

/// A routed runtime whose agent's published version has the `intent` section.
async fn pinned_world(stack: &Stack) -> Rt {
    let mut rt = world(stack, NUMBER).await;
    publish_with(stack, &mut rt, section("intent")).await;
    rt
}

fn builtin() -> Analyzer {
    Analyzer::new(
        &AnalyzerKind::Builtin,
        &aws_config::SdkConfig::builder().build(),
    )
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

/// A canned answer of [`LlmStandIn`]: status, headers beyond the JSON content type, body.
struct Canned {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

impl Canned {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A request [`LlmStandIn`] got: its path as sent, its `Authorization` header, its JSON body.
#[derive(Clone, Debug)]
struct Sent {
    path: String,
    auth: Option<String>,
    body: Value,
}

/// An LLM endpoint (OpenAI-compatible, Bedrock Runtime): answers every POST with the next
/// canned answer (a 500 once they run out) and keeps every request it was sent.
#[derive(Clone, Default)]
struct LlmStandIn {
    answers: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Canned>>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Sent>>>,
}

impl LlmStandIn {
    /// Serves on a free port; the stand-in and its base URL (`http://127.0.0.1:port`).
    async fn start(answers: Vec<Canned>) -> (Self, String) {
        let this = Self::default();
        this.answers.lock().unwrap().extend(answers);
        let state = this.clone();
        let app = axum::Router::new().fallback(axum::routing::post(
            move |uri: http::Uri, headers: http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.requests.lock().unwrap().push(Sent {
                        path: uri.path().to_owned(),
                        auth: headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned()),
                        body: serde_json::from_slice(&body).unwrap(),
                    });
                    let canned = state
                        .answers
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or_else(|| Canned::new(500, r#"{"message":"no answer left"}"#));
                    let mut response = (
                        http::StatusCode::from_u16(canned.status).unwrap(),
                        [("content-type", "application/json")],
                        canned.body,
                    )
                        .into_response();
                    for (name, value) in canned.headers {
                        response
                            .headers_mut()
                            .insert(name, http::HeaderValue::from_static(value));
                    }
                    response
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (this, base)
    }
}

/// A chat completion whose message content is `content` (a JSON string, as OpenAI sends it).
fn completion(content: &Value) -> String {
    json!({ "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
            "choices": [{ "index": 0, "finish_reason": "stop",
                          "message": { "role": "assistant", "content": content.to_string(), "refusal": null } }] })
    .to_string()
}

fn openai(base_url: &str) -> Analyzer {
    Analyzer::new(
        &AnalyzerKind::OpenAi(callplane::config::OpenAiConfig {
            base_url: base_url.to_owned(),
            api_key: callplane::config::Secret::new("sk-test"),
            model: "gpt-test".to_owned(),
            timeout: std::time::Duration::from_secs(5),
        }),
        &aws_config::SdkConfig::builder().build(),
    )
}

#[tokio::test]
async fn the_openai_analyzer_sends_transcript_and_schema_retries_a_5xx_and_stores_what_the_model_found()
 {
    // GIVEN an ended call of a version with an analysis section, and an endpoint that fails
    // once with a 500, then answers
    let stack = Stack::new().await;
    let rt = pinned_world(&stack).await;
    let call = booking_call(&stack, &rt, "CA_llm").await;
    let answer = json!({ "summary": "The caller booked Monday at ten.",
                         "sentiment": { "label": "positive", "score": 0.8 },
                         "success": true, "data": { "intent": "booking" } });
    let (llm, base) = LlmStandIn::start(vec![
        Canned::new(500, r#"{"error":{"message":"overloaded"}}"#),
        Canned::new(200, completion(&answer)),
    ])
    .await;
    let analyzer = openai(&format!("{base}/v1"));
    let batch = summary_batch(&stack).await;

    // WHEN the job is delivered
    let first = post_call::handle(
        &stack.app,
        &analyzer,
        serde_json::from_value(batch.clone()).unwrap(),
    )
    .await;
    // THEN the 500 sends it back for a later delivery, pending with the reason, and nothing
    // is written in place of a summary
    assert_eq!(first.batch_item_failures.len(), 1);
    let pending = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(pending.expect(200)["analysis"]["status"], "pending");
    assert!(
        pending.body["analysis"]["reason"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert!(pending.body["summary"].is_null());

    // WHEN SQS delivers it again
    let second = post_call::handle(
        &stack.app,
        &analyzer,
        serde_json::from_value(batch).unwrap(),
    )
    .await;
    // THEN the call shows what the model found, with VADER's windows
    assert!(second.batch_item_failures.is_empty());
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    let shown = shown.expect(200).clone();
    assert_eq!(shown["summary"], "The caller booked Monday at ten.");
    assert_eq!(shown["sentiment"]["label"], "positive");
    assert_eq!(shown["sentiment"]["score"], json!(0.8));
    assert_eq!(shown["sentiment"]["windows"][0]["score"], json!(0.3612));
    let analysis = &shown["analysis"];
    assert_eq!(analysis["status"], "succeeded");
    assert_eq!(analysis["analyzer"], "openai");
    assert_eq!(analysis["model"], "gpt-test");
    assert_eq!(analysis["attempts"], 2);
    assert_eq!(analysis["success"], true);
    assert_eq!(analysis["data"], json!({ "intent": "booking" }));

    // AND what was sent is the OpenAI wire format: the key, the model, the transcript, a
    // strict schema with the version's field and its choices
    let requests = llm.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let Sent { path, auth, body } = &requests[1];
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "gpt-test");
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("An appointment was booked.") && system.contains("Two sentences."));
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("[00:00] Customer: Hi, I would like to book an appointment for Monday."));
    assert!(user.contains("[00:05] Agent: Sure, Monday at ten works."));
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    let data = &format["json_schema"]["schema"]["properties"]["data"];
    assert_eq!(data["required"], json!(["intent"]));
    assert_eq!(data["additionalProperties"], false);
    assert_eq!(
        data["properties"]["intent"]["enum"],
        json!(["booking", "billing", "other", null])
    );
}

#[tokio::test]
async fn an_analyzer_that_keeps_answering_nonsense_fails_the_run_with_the_reason_after_three_attempts()
 {
    // GIVEN an ended call and an endpoint whose content is never the analysis asked for
    let stack = Stack::new().await;
    let rt = pinned_world(&stack).await;
    let call = ended_call(
        &stack,
        &rt,
        "CA_bad_llm",
        &[(0, "customer", "Hello there.")],
        30,
    )
    .await;
    let nonsense = completion(&json!({ "summary": 42 }));
    let (_llm, base) =
        LlmStandIn::start((0..3).map(|_| Canned::new(200, nonsense.clone())).collect()).await;
    let analyzer = openai(&format!("{base}/v1"));
    let batch = summary_batch(&stack).await;
    // WHEN it is delivered three times
    let mut failures = Vec::new();
    for _ in 0..3 {
        let response = post_call::handle(
            &stack.app,
            &analyzer,
            serde_json::from_value(batch.clone()).unwrap(),
        )
        .await;
        failures.push(response.batch_item_failures.len());
    }
    // THEN the first two come back, the third records the failure and is acknowledged
    assert_eq!(failures, [1, 1, 0]);
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    let analysis = &shown.expect(200)["analysis"];
    assert_eq!(analysis["status"], "failed");
    assert_eq!(analysis["attempts"], 3);
    let reason = analysis["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("gave up after 3 attempts: the analyzer's answer is not an analysis"),
        "{reason}"
    );
    assert!(shown.body["summary"].is_null() && shown.body["sentiment"].is_null());
}

#[tokio::test]
async fn the_local_event_source_deletes_what_the_function_handled_and_leaves_its_failures() {
    // GIVEN an ended call's job and a malformed message on the summary queue
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let call = ended_call(&stack, &rt, "CA_dev", &[(0, "customer", "Hello.")], 10).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = stack.provisioned.queue_urls["summary-jobs"].clone();
    sqs.send_message()
        .queue_url(&url)
        .message_body("{not json")
        .send()
        .await
        .unwrap();
    // WHEN `make dev`'s event source delivers a batch to the post-call function
    let analyzer = builtin();
    let delivery = callplane::local_events::deliver_once(&sqs, &url, 1, |event| async {
        let event = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let response = post_call::handle(&stack.app, &analyzer, event).await;
        serde_json::to_value(response).map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    // THEN the job's message is deleted and the malformed one kept for redelivery
    assert_eq!(
        delivery,
        callplane::local_events::Delivery {
            received: 2,
            deleted: 1,
            kept: 1
        }
    );
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    let in_flight = attributes.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .clone();
    assert_eq!(in_flight, "1");
    // AND the call is analysed
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(shown.expect(200)["analysis"]["status"], "succeeded");
}

#[tokio::test]
async fn the_local_event_source_invokes_the_function_through_the_lambda_invoke_api() {
    // GIVEN an ended call's job, and the post-call function behind the Lambda Invoke API that
    // `cargo lambda watch` serves in `make dev`
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let call = ended_call(&stack, &rt, "CA_invoke", &[(0, "customer", "Hello.")], 10).await;
    let invoke = callplane_tests::world::post_call_invoke_api(&stack).await;
    let url = stack.provisioned.queue_urls["summary-jobs"].clone();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);

    // WHEN the event source runs (as `callplane-admin deliver` does) until the call is analysed
    let source = tokio::spawn(callplane::local_events::run(
        sqs.clone(),
        url.clone(),
        invoke,
    ));
    let mut status = Value::Null;
    for _ in 0..100 {
        let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
        status = shown.expect(200)["analysis"]["status"].clone();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded");

    // THEN the job went through the Invoke API to the function, and its message is deleted
    // once the function answered (after the analysis, it counts the call in the reports)
    let mut left = (String::new(), String::new());
    for _ in 0..100 {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attributes.attributes().unwrap()[&name].clone()
        };
        left = (
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        );
        if left == ("0".into(), "0".into()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    source.abort();
    assert_eq!(left, ("0".into(), "0".into()));
}

#[tokio::test]
async fn a_live_calls_sentiment_follows_the_customer_with_one_computation_per_five_seconds() {
    // GIVEN a live call
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let twiml = incoming(&stack, "CA_live", CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").unwrap();

    // WHEN the runtime floods its customer's turns at 20 a second for six seconds
    let started = callplane::time::Timestamp::now().unix();
    let mut every = tokio::time::interval(std::time::Duration::from_millis(50));
    for i in 0..120 {
        every.tick().await;
        let mut seg = segment(i, "That is great, thank you so much!");
        seg["speaker"] = json!("customer");
        post(
            &stack,
            &rt.token,
            envelope(
                &rt,
                "CA_live",
                "transcript_segment",
                &format!("live-{i}"),
                seg,
            ),
        )
        .await
        .expect(202);
    }
    let finished = callplane::time::Timestamp::now().unix();
    let slots = usize::try_from(finished / 5 - started / 5 + 1).unwrap();

    // THEN once the slots are over, the live queue holds one nudge per five-second slot
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let mut records = Vec::new();
    loop {
        let batch = callplane_tests::world::queue_batch(&stack, "live-sentiment").await;
        let got = batch["Records"].as_array().unwrap().clone();
        if got.is_empty() {
            break;
        }
        records.extend(got);
    }
    assert!(
        (1..=slots).contains(&records.len()),
        "{} computations for 120 turns over {slots} slots",
        records.len()
    );
    // WHEN the post-call function gets them as Lambda delivers the FIFO queue
    let event: post_call::SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
    let response = post_call::handle(&stack.app, &builtin(), event).await;
    assert!(response.batch_item_failures.is_empty());

    // THEN the active list shows the customer's sentiment so far (VADER: 0.784 per turn)
    let active = stack
        .get(
            &format!("/calls/active?establishment_id={}", rt.est),
            &rt.admin,
        )
        .await;
    let live = active.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == call.as_str())
        .cloned()
        .expect("the live call");
    assert_eq!(live["sentiment"]["label"], "positive");
    assert!(
        (live["sentiment"]["score"].as_f64().unwrap() - 0.784).abs() < 1e-3,
        "{live}"
    );
    assert!(live["analysis"].is_null());

    // WHEN the call ends and a nudge of its last slot comes after that
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_live",
            "call_ended",
            "live-end",
            json!({ "ended_at": super::ingest::at(30), "duration_seconds": 30,
                    "final_status": "completed", "hangup_by": "customer" }),
        ),
    )
    .await
    .expect(202);
    let before = stack
        .get(&format!("/calls/{call}"), &rt.admin)
        .await
        .expect(200)["sentiment"]
        .clone();
    let late = json!({ "Records": [{
        "messageId": "late", "receiptHandle": "late", "eventSource": "aws:sqs",
        "body": json!({ "job": "live_sentiment", "call_id": call, "establishment_id": rt.est }).to_string()
    }]});
    let response = post_call::handle(
        &stack.app,
        &builtin(),
        serde_json::from_value(late).unwrap(),
    )
    .await;

    // THEN it is done with and writes nothing: the analysis owns the ended call's sentiment
    assert!(response.batch_item_failures.is_empty());
    let after = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert_eq!(after.expect(200)["sentiment"], before);
}

#[tokio::test]
async fn the_bedrock_analyzer_sends_a_signed_converse_request_with_the_schema_and_stores_the_answer()
 {
    // GIVEN an ended call of a version with an analysis section, and a Converse endpoint that
    // refuses the first request as invalid, then answers
    let stack = Stack::new().await;
    let rt = pinned_world(&stack).await;
    let call = booking_call(&stack, &rt, "CA_bedrock").await;
    let answer = json!({ "summary": "Booked for Monday at ten.",
                         "sentiment": { "label": "positive", "score": 0.7 },
                         "success": true, "data": { "intent": "billing-and-more" } });
    let converse = json!({
        "output": { "message": { "role": "assistant", "content": [{ "text": answer.to_string() }] } },
        "stopReason": "end_turn",
        "usage": { "inputTokens": 120, "outputTokens": 40, "totalTokens": 160 },
        "metrics": { "latencyMs": 420 }
    });
    let (bedrock, base) = LlmStandIn::start(vec![
        Canned::new(400, r#"{"message":"The model is warming up"}"#)
            .with_header("x-amzn-errortype", "ValidationException"),
        Canned::new(200, converse.to_string()),
    ])
    .await;
    // The function's SDK configuration, pointed at the stand-in as AWS_ENDPOINT_URL_BEDROCK_RUNTIME would
    let sdk = stack.sdk.to_builder().endpoint_url(&base).build();
    let analyzer = Analyzer::new(
        &AnalyzerKind::Bedrock(callplane::config::BedrockConfig {
            model_id: "amazon.nova-lite-v1:0".to_owned(),
            timeout: std::time::Duration::from_secs(5),
        }),
        &sdk,
    );
    let batch = summary_batch(&stack).await;

    // WHEN the job is delivered, and again after the refusal
    let first = post_call::handle(
        &stack.app,
        &analyzer,
        serde_json::from_value(batch.clone()).unwrap(),
    )
    .await;
    assert_eq!(first.batch_item_failures.len(), 1);
    let pending = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    assert!(
        pending.expect(200)["analysis"]["reason"]
            .as_str()
            .unwrap()
            .contains("ValidationException")
    );
    let second = post_call::handle(
        &stack.app,
        &analyzer,
        serde_json::from_value(batch).unwrap(),
    )
    .await;
    assert!(second.batch_item_failures.is_empty());

    // THEN the call shows the model's analysis; a field value outside its choices is null
    let shown = stack.get(&format!("/calls/{call}"), &rt.admin).await;
    let shown = shown.expect(200).clone();
    assert_eq!(shown["summary"], "Booked for Monday at ten.");
    assert_eq!(shown["sentiment"]["label"], "positive");
    assert_eq!(shown["sentiment"]["windows"][0]["score"], json!(0.3612));
    assert_eq!(shown["analysis"]["analyzer"], "bedrock");
    assert_eq!(shown["analysis"]["model"], "amazon.nova-lite-v1:0");
    assert_eq!(shown["analysis"]["success"], true);
    assert_eq!(shown["analysis"]["data"], json!({ "intent": null }));

    // AND what was sent is Converse: SigV4 for bedrock, the model in the path, system and
    // user text, temperature 0, and the schema as structured output
    let requests = bedrock.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let Sent { path, auth, body } = &requests[1];
    assert_eq!(path, "/model/amazon.nova-lite-v1%3A0/converse");
    let auth = auth.as_deref().unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=") && auth.contains("/bedrock/aws4_request"),
        "{auth}"
    );
    assert!(
        body["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("An appointment was booked.")
    );
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(
        body["messages"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("[00:05] Agent: Sure, Monday at ten works.")
    );
    assert_eq!(body["inferenceConfig"]["temperature"], json!(0.0));
    let format = &body["outputConfig"]["textFormat"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["structure"]["jsonSchema"]["name"], "call_analysis");
    let schema: Value = serde_json::from_str(
        format["structure"]["jsonSchema"]["schema"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(schema["properties"]["data"]["required"], json!(["intent"]));
}
