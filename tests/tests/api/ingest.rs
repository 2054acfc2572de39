//! Runtime event ingestion and call artifacts (PRD M3): the ingest endpoint (tokens, the
//! envelope, idempotency, batches), what events do to calls, transcripts with their polling
//! protocol, timelines, tool logs, recordings, the active list and history, and
//! `runtime-sim simulate-call` driving whole calls over real HTTP.

use callplane::time::Timestamp;
use callplane_tests::world::{incoming, parameter, routed, running_runtime, runtime_sim};
use callplane_tests::{Reply, Stack};
use http::Method;
use serde_json::{Value, json};

pub(crate) const NUMBER: &str = "+14155552671";
pub(crate) const CALLER: &str = "+14155552672";

/// A runtime as the ingest endpoint sees it.
#[derive(Clone, Debug)]
pub(crate) struct Rt {
    pub(crate) admin: String,
    pub(crate) est: String,
    pub(crate) agent: String,
    pub(crate) version: String,
    pub(crate) runtime: String,
    pub(crate) token: String,
}

/// An establishment with a routed, published agent and a running runtime.
pub(crate) async fn world(stack: &Stack, number: &str) -> Rt {
    let (admin, est, agent) = routed(stack, number).await;
    let version = stack
        .get(&format!("/agents/{agent}"), &admin)
        .await
        .expect(200)["active_version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (port, _sim) = runtime_sim().await;
    let (runtime, _, token) = running_runtime(stack, &admin, &est, port).await;
    Rt {
        admin,
        est,
        agent,
        version,
        runtime,
        token,
    }
}

/// `secs` seconds after a fixed point an hour ago, RFC 3339.
pub(crate) fn at(secs: i64) -> String {
    Timestamp::now().plus_secs(secs - 3600).to_string()
}

pub(crate) fn envelope(rt: &Rt, sid: &str, kind: &str, key: &str, payload: Value) -> Value {
    json!({
        "runtime_id": rt.runtime,
        "establishment_id": rt.est,
        "agent_id": rt.agent,
        "agent_version_id": rt.version,
        "call": { "provider": "twilio", "provider_call_sid": sid, "direction": "inbound",
                  "from_e164": CALLER, "to_e164": NUMBER },
        "event": { "id": format!("evt_{key}"), "type": kind, "occurred_at": at(0),
                   "idempotency_key": key, "payload": payload }
    })
}

pub(crate) fn segment(i: i64, text: &str) -> Value {
    json!({ "segment_id": format!("seg_{i:05}"), "speaker": if i % 2 == 0 { "customer" } else { "agent" },
            "text": text, "started_at": at(i), "ended_at": at(i + 1), "confidence": 0.9 })
}

pub(crate) async fn post(stack: &Stack, token: &str, body: Value) -> Reply {
    stack
        .send(Method::POST, "/ingest/call-events", Some(token), Some(body))
        .await
}

async fn batch(stack: &Stack, token: &str, events: Vec<Value>) -> Reply {
    stack
        .send(
            Method::POST,
            "/ingest/call-events/batch",
            Some(token),
            Some(json!({ "events": events })),
        )
        .await
}

/// The id of the call a CallSid belongs to.
pub(crate) async fn call_id(stack: &Stack, sid: &str) -> String {
    stack
        .app
        .store
        .call_by_sid(callplane::domain::NumberProvider::Twilio, sid)
        .await
        .unwrap()
        .expect("a call for this CallSid")
        .call_id
        .to_string()
}

/// Every segment of a call's transcript, following cursors until a page adds nothing.
async fn full_transcript(stack: &Stack, token: &str, call: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = format!("/calls/{call}/transcript?limit=500");
    loop {
        let reply = stack.get(&path, token).await;
        let body = reply.expect(200);
        let page = body["items"].as_array().unwrap().clone();
        if page.is_empty() {
            return items;
        }
        items.extend(page);
        path = format!(
            "/calls/{call}/transcript?limit=500&cursor={}",
            body["cursor"].as_str().unwrap()
        );
    }
}

fn texts(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn m3_segments_show_in_the_next_poll_and_an_ended_call_is_complete_with_a_job_queued() {
    // GIVEN a call Twilio routed to the runtime, and an operator watching it
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let twiml = incoming(&stack, "CA_m3", CALLER, NUMBER).await;
    let call = parameter(&twiml, "call_id").expect("streamed to the runtime");
    let viewer = stack
        .member(&rt.admin, &rt.est, "viewer@helios.test", "viewer")
        .await;

    // WHEN the runtime reports the call started for the same CallSid
    let started = post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_m3",
            "call_started",
            "k-start",
            json!({ "started_at": at(0) }),
        ),
    )
    .await;
    // THEN it is accepted onto the webhook's call: one call, still active
    assert_eq!(started.expect(202)["status"], "accepted");
    assert_eq!(call_id(&stack, "CA_m3").await, call);
    let history = stack
        .get(&format!("/calls?establishment_id={}", rt.est), &viewer)
        .await;
    assert_eq!(history.expect(200)["items"].as_array().unwrap().len(), 1);
    let active = stack
        .get(
            &format!("/calls/active?establishment_id={}", rt.est),
            &viewer,
        )
        .await;
    let active = active.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["call_id"], call.as_str());
    assert_eq!(active[0]["provider_call_sid"], "CA_m3");
    assert!(active[0]["sentiment"].is_null() && active[0]["started_at"].is_string());

    // WHEN the operator polls, then two segments arrive, then the operator polls again
    let first = stack
        .get(&format!("/calls/{call}/transcript"), &viewer)
        .await;
    let first = first.expect(200).clone();
    assert_eq!(first["items"], json!([]));
    assert_eq!(first["is_complete"], false);
    for (i, text) in [
        (2, "I need to update my plan."),
        (1, "Hello, how can I help?"),
    ] {
        let reply = post(
            &stack,
            &rt.token,
            envelope(
                &rt,
                "CA_m3",
                "transcript_segment",
                &format!("k-seg-{i}"),
                segment(i, text),
            ),
        )
        .await;
        assert_eq!(reply.expect(202)["outcome"], "stored");
    }
    let cursor = first["cursor"].as_str().unwrap();
    let (second, poll_trips) = stack
        .round_trips
        .during(stack.get(
            &format!("/calls/{call}/transcript?cursor={cursor}"),
            &viewer,
        ))
        .await;
    // THEN the next poll returns both, in spoken order, in one Query (plus the session read)
    let second = second.expect(200).clone();
    assert_eq!(
        texts(second["items"].as_array().unwrap()),
        ["Hello, how can I help?", "I need to update my plan."]
    );
    assert_eq!(poll_trips, 2, "a poll is one session read and one Query");
    assert_eq!(second["items"][0]["speaker"], "agent");
    assert_eq!(second["items"][0]["segment_id"], "seg_00001");

    // WHEN a third segment arrives THEN the next poll returns only it, and again nothing
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_m3",
            "transcript_segment",
            "k-seg-3",
            segment(3, "Sure, one moment."),
        ),
    )
    .await
    .expect(202);
    let cursor = second["cursor"].as_str().unwrap();
    let third = stack
        .get(
            &format!("/calls/{call}/transcript?cursor={cursor}"),
            &viewer,
        )
        .await;
    let third = third.expect(200).clone();
    assert_eq!(
        texts(third["items"].as_array().unwrap()),
        ["Sure, one moment."]
    );
    let cursor = third["cursor"].as_str().unwrap();
    let fourth = stack
        .get(
            &format!("/calls/{call}/transcript?cursor={cursor}"),
            &viewer,
        )
        .await;
    assert_eq!(fourth.expect(200)["items"], json!([]));
    // AND since_segment_id gives what arrived after that segment
    let since = stack
        .get(
            &format!("/calls/{call}/transcript?since_segment_id=seg_00001"),
            &viewer,
        )
        .await;
    assert_eq!(
        texts(since.expect(200)["items"].as_array().unwrap()),
        ["Sure, one moment."]
    );

    // WHEN the runtime reports the recording (in our bucket) and the end of the call
    let key = format!("recordings/{}/CA_m3.wav", rt.est);
    stack
        .app
        .blobs
        .put(&key, b"RIFF-fake-wav".to_vec(), "audio/wav")
        .await
        .unwrap();
    let url = format!("s3://{}/{key}", stack.names.bucket);
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_m3",
            "recording_available",
            "k-rec",
            json!({ "recording_url": url, "storage_provider": "s3", "content_type": "audio/wav" }),
        ),
    )
    .await
    .expect(202);
    let (ended, end_trips) = stack
        .round_trips
        .during(post(
            &stack,
            &rt.token,
            envelope(
                &rt,
                "CA_m3",
                "call_ended",
                "k-end",
                json!({ "ended_at": at(30), "duration_seconds": 30, "final_status": "completed",
                             "hangup_by": "customer" }),
            ),
        ))
        .await;
    ended.expect(202);
    assert_eq!(end_trips, 2, "an event is one read and one write");

    // THEN the call is over, out of the active list, with who hung up
    let shown = stack.get(&format!("/calls/{call}"), &viewer).await;
    let shown = shown.expect(200);
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["duration_seconds"], 30);
    assert_eq!(shown["hangup_by"], "customer");
    assert_eq!(shown["recording_link"], format!("/calls/{call}/recording"));
    assert!(shown["summary"].is_null() && shown["sentiment"].is_null());
    let active = stack
        .get(
            &format!("/calls/active?establishment_id={}", rt.est),
            &viewer,
        )
        .await;
    assert_eq!(active.expect(200)["items"], json!([]));
    // AND a post-call job for it is on the summary queue
    let jobs = callplane::queues::Queue::new(
        aws_sdk_sqs::Client::new(&stack.sdk),
        stack.provisioned.queue_urls["summary-jobs"].clone(),
    )
    .receive(10, 1)
    .await
    .unwrap();
    let job: Value = serde_json::from_str(&jobs[0].1).unwrap();
    assert_eq!(
        (job["job"].as_str(), job["call_id"].as_str()),
        (Some("post_call"), Some(call.as_str()))
    );
    // AND the recording is served through a presigned URL that works, audited
    let recording = stack
        .get(&format!("/calls/{call}/recording"), &viewer)
        .await;
    let recording = recording.expect(200).clone();
    assert_eq!(recording["status"], "available");
    let (status, body) = callplane_tests::http_get(recording["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("RIFF-fake-wav"));
    assert!(
        stack
            .audit_actions(&rt.admin, &rt.est)
            .await
            .contains(&"recording.accessed".to_owned())
    );
    // AND once the settle window has passed, the transcript says it is complete
    tokio::time::sleep(std::time::Duration::from_millis(
        callplane::service::artifacts::SETTLE_MS + 2100,
    ))
    .await;
    let cursor = third["cursor"].as_str().unwrap();
    let last = stack
        .get(
            &format!("/calls/{call}/transcript?cursor={cursor}"),
            &viewer,
        )
        .await;
    assert_eq!(last.expect(200)["is_complete"], true);
    assert_eq!(full_transcript(&stack, &viewer, &call).await.len(), 3);
}

/// A deterministic shuffle (xorshift), so a failure replays the same order.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[tokio::test]
async fn a_thousand_events_with_thirty_percent_replays_in_any_order_store_each_once_in_order() {
    // GIVEN 700 distinct events of one call (started, 696 segments, a tool pair, ended) and 300
    // replays of some of them, shuffled
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let mut events = vec![envelope(
        &rt,
        "CA_bulk",
        "call_started",
        "start",
        json!({ "started_at": at(0) }),
    )];
    for i in 0..696 {
        events.push(envelope(
            &rt,
            "CA_bulk",
            "transcript_segment",
            &format!("seg-{i}"),
            segment(i, &format!("line {i:04}")),
        ));
    }
    events.push(envelope(
        &rt,
        "CA_bulk",
        "tool_called",
        "tool-1",
        json!({ "tool_name": "send_email", "arguments": { "to": "a@b.c" } }),
    ));
    events.push(envelope(
        &rt,
        "CA_bulk",
        "tool_result",
        "tool-2",
        json!({ "tool_name": "send_email", "result": { "ok": true }, "error": null }),
    ));
    events.push(envelope(
        &rt,
        "CA_bulk",
        "call_ended",
        "end",
        json!({ "ended_at": at(700), "final_status": "completed" }),
    ));
    let replays: Vec<Value> = (0..300)
        .map(|i| events[(i * 7) % events.len()].clone())
        .collect();
    events.extend(replays);
    shuffle(&mut events, 0x9E37_79B9_7F4A_7C15);

    // WHEN they are sent in batches of 25, four batches at a time
    let mut outcomes = std::collections::HashMap::<String, usize>::new();
    for group in events.chunks(100) {
        let replies = futures::future::join_all(
            group
                .chunks(25)
                .map(|c| batch(&stack, &rt.token, c.to_vec())),
        )
        .await;
        for reply in replies {
            for result in reply.expect(200)["results"].as_array().unwrap() {
                assert_eq!(result["status"], "accepted", "{result}");
                *outcomes
                    .entry(result["outcome"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }

    // THEN exactly 700 were stored and 300 recognised as replays
    assert_eq!(outcomes.get("stored"), Some(&700), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&300), "{outcomes:?}");
    // AND there is one call, ended, with every segment once, in spoken order
    let call = call_id(&stack, "CA_bulk").await;
    let token = rt.admin.clone();
    let transcript = full_transcript(&stack, &token, &call).await;
    let expected: Vec<String> = (0..696).map(|i| format!("line {i:04}")).collect();
    assert_eq!(texts(&transcript), expected);
    assert_eq!(
        stack
            .get(&format!("/calls/{call}"), &token)
            .await
            .expect(200)["status"],
        "completed"
    );
    // AND the timeline holds the 700 events once each
    let mut timeline = 0;
    let mut path = format!("/calls/{call}/events?limit=100");
    loop {
        let reply = stack.get(&path, &token).await;
        let body = reply.expect(200);
        timeline += body["items"].as_array().unwrap().len();
        match body["cursor"].as_str() {
            Some(c) => path = format!("/calls/{call}/events?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(timeline, 700);
    // AND the tool log pairs the tool call with its result
    let log = stack.get(&format!("/calls/{call}/tool-log"), &token).await;
    let log = log.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "ok");
}

#[tokio::test]
async fn eight_concurrent_writers_on_one_call_lose_nothing_and_make_one_call() {
    // GIVEN a call nobody reported yet, and 8 writers each with 12 segments, each also
    // replaying its neighbour's first segment
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let writer = |w: i64| {
        let rt = rt.clone();
        let stack = &stack;
        async move {
            let mut outcomes = Vec::new();
            for j in 0..12 {
                let i = w * 100 + j;
                let reply = post(
                    stack,
                    &rt.token,
                    envelope(
                        &rt,
                        "CA_race",
                        "transcript_segment",
                        &format!("seg-{i}"),
                        segment(i, &format!("w{w} s{j:02}")),
                    ),
                )
                .await;
                outcomes.push(reply.expect(202)["outcome"].as_str().unwrap().to_owned());
            }
            let n = ((w + 1) % 8) * 100;
            let reply = post(
                stack,
                &rt.token,
                envelope(
                    &rt,
                    "CA_race",
                    "transcript_segment",
                    &format!("seg-{n}"),
                    segment(n, &format!("w{} s00", (w + 1) % 8)),
                ),
            )
            .await;
            outcomes.push(reply.expect(202)["outcome"].as_str().unwrap().to_owned());
            outcomes
        }
    };
    // WHEN they all post at once
    let all: Vec<String> = futures::future::join_all((0..8).map(writer)).await.concat();

    // THEN 96 segments were stored once, the 8 replays changed nothing, and it is one call
    assert_eq!(all.iter().filter(|o| *o == "stored").count(), 96);
    assert_eq!(all.iter().filter(|o| *o == "duplicate").count(), 8);
    let call = call_id(&stack, "CA_race").await;
    let transcript = full_transcript(&stack, &rt.admin, &call).await;
    assert_eq!(transcript.len(), 96);
    let history = stack
        .get(&format!("/calls?establishment_id={}", rt.est), &rt.admin)
        .await;
    assert_eq!(history.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_must_be_the_runtimes_own_and_tenants_never_see_each_others_calls() {
    // GIVEN two establishments, each with a runtime, and a call of A with a segment
    let stack = Stack::new().await;
    let a = world(&stack, NUMBER).await;
    let b = world(&stack, "+14155552679").await;
    post(
        &stack,
        &a.token,
        envelope(
            &a,
            "CA_a",
            "transcript_segment",
            "k1",
            segment(1, "secret of A"),
        ),
    )
    .await
    .expect(202);
    let call_a = call_id(&stack, "CA_a").await;

    // WHEN runtime B's token is used for runtime A's envelope THEN 403, nothing stored
    post(
        &stack,
        &b.token,
        envelope(&a, "CA_a", "transcript_segment", "k2", segment(2, "x")),
    )
    .await
    .expect_error(403, "forbidden");
    // AND A's token claiming B's establishment, or runtime B, is 403 too
    let mut claims_b = envelope(&a, "CA_a", "transcript_segment", "k3", segment(3, "x"));
    claims_b["establishment_id"] = json!(b.est);
    post(&stack, &a.token, claims_b)
        .await
        .expect_error(403, "forbidden");
    let mut as_b = envelope(&a, "CA_a", "transcript_segment", "k4", segment(4, "x"));
    as_b["runtime_id"] = json!(b.runtime);
    post(&stack, &a.token, as_b)
        .await
        .expect_error(403, "forbidden");
    // AND no token is 401, a made-up one 403
    stack
        .send(
            Method::POST,
            "/ingest/call-events",
            None,
            Some(envelope(&a, "CA_a", "call_connected", "k5", json!({}))),
        )
        .await
        .expect_error(401, "unauthorized");
    post(
        &stack,
        "made-up",
        envelope(&a, "CA_a", "call_connected", "k6", json!({})),
    )
    .await
    .expect_error(403, "forbidden");
    // AND runtime B cannot write onto A's call by its CallSid, nor name A's agent
    post(
        &stack,
        &b.token,
        envelope(&b, "CA_a", "transcript_segment", "k7", segment(7, "x")),
    )
    .await
    .expect_error(409, "conflict");
    let mut foreign_agent = envelope(&b, "CA_b", "call_connected", "k8", json!({}));
    foreign_agent["agent_id"] = json!(a.agent);
    post(&stack, &b.token, foreign_agent)
        .await
        .expect_error(404, "not_found");
    // AND only A's one segment is stored
    assert_eq!(full_transcript(&stack, &a.admin, &call_a).await.len(), 1);

    // WHEN a member of B only asks for A's call and its artifacts THEN 404 everywhere
    let outsider = stack
        .member(&b.admin, &b.est, "b-viewer@other.test", "viewer")
        .await;
    for path in ["", "/transcript", "/events", "/tool-log", "/recording"] {
        stack
            .get(&format!("/calls/{call_a}{path}"), &outsider)
            .await
            .expect_error(404, "not_found");
    }
    for list in ["/calls/active", "/calls"] {
        stack
            .get(&format!("{list}?establishment_id={}", a.est), &outsider)
            .await
            .expect_error(404, "not_found");
    }
    // AND a cursor of A's transcript is refused for another call, and when tampered with
    let mine = stack
        .get(&format!("/calls/{call_a}/transcript"), &a.admin)
        .await;
    let cursor = mine.expect(200)["cursor"].as_str().unwrap().to_owned();
    post(
        &stack,
        &b.token,
        envelope(&b, "CA_b", "call_connected", "k9", json!({})),
    )
    .await
    .expect(202);
    let call_b = call_id(&stack, "CA_b").await;
    stack
        .get(
            &format!("/calls/{call_b}/transcript?cursor={cursor}"),
            &b.admin,
        )
        .await
        .expect_error(400, "validation_failed");
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    stack
        .get(
            &format!("/calls/{call_a}/transcript?cursor={tampered}"),
            &a.admin,
        )
        .await
        .expect_error(400, "validation_failed");
    // AND A's genuine cursor in the hands of B's member is 404
    stack
        .get(
            &format!("/calls/{call_a}/transcript?cursor={cursor}"),
            &outsider,
        )
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn bad_events_are_refused_naming_the_problem_and_store_nothing() {
    // GIVEN a runtime with a call of one segment
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_bad",
            "transcript_segment",
            "k1",
            segment(1, "first words"),
        ),
    )
    .await
    .expect(202);
    let call = call_id(&stack, "CA_bad").await;
    let mut missing = envelope(&rt, "CA_bad", "call_connected", "k2", json!({}));
    missing["event"]
        .as_object_mut()
        .unwrap()
        .remove("idempotency_key");
    let mut wrong_type = envelope(&rt, "CA_bad", "call_connected", "k3", json!({}));
    wrong_type["call"]["direction"] = json!(7);
    let mut future = envelope(&rt, "CA_bad", "call_connected", "k4", json!({}));
    future["event"]["occurred_at"] = json!(Timestamp::now().plus_secs(86_400).to_string());
    let cases = [
        (missing, "event.idempotency_key"),
        (wrong_type, "call.direction"),
        (
            envelope(&rt, "CA_bad", "call_teleported", "k5", json!({})),
            "event.type",
        ),
        (future, "event.occurred_at"),
        (
            envelope(
                &rt,
                "CA_bad",
                "transcript_segment",
                "k6",
                segment(6, &"x".repeat(8 * 1024 + 1)),
            ),
            "event.payload.text",
        ),
        (
            envelope(
                &rt,
                "CA_bad",
                "call_ended",
                "k7",
                json!({ "ended_at": at(9), "final_status": "ringing" }),
            ),
            "event.payload.final_status",
        ),
    ];
    for (body, field) in cases {
        // WHEN it is posted THEN 400 names the field
        let reply = post(&stack, &rt.token, body).await;
        reply.expect_error(400, "validation_failed");
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{}",
            reply.body
        );
    }
    // AND a batch over 25 is refused whole
    let many: Vec<Value> = (0..26)
        .map(|i| envelope(&rt, "CA_bad", "call_connected", &format!("b{i}"), json!({})))
        .collect();
    let reply = batch(&stack, &rt.token, many).await;
    reply.expect_error(400, "validation_failed");
    assert_eq!(reply.body["error"]["details"]["field"], "events");
    // AND a batch reports each bad event on its own and keeps the good ones
    let mixed = vec![
        envelope(&rt, "CA_bad", "call_connected", "m1", json!({})),
        envelope(&rt, "CA_bad", "call_exploded", "m2", json!({})),
    ];
    let reply = batch(&stack, &rt.token, mixed).await;
    let results = reply.expect(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["outcome"], "stored");
    assert_eq!(results[1]["status"], "rejected");
    assert_eq!(results[1]["error"]["details"]["field"], "event.type");

    // WHEN a segment id comes again with other text under a new key
    let reply = post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_bad",
            "transcript_segment",
            "k8",
            segment(1, "rewritten"),
        ),
    )
    .await;
    // THEN the first text wins, and the timeline notes it
    assert_eq!(reply.expect(202)["outcome"], "segment_exists");
    assert_eq!(
        texts(&full_transcript(&stack, &rt.admin, &call).await),
        ["first words"]
    );
    let timeline = stack.get(&format!("/calls/{call}/events"), &rt.admin).await;
    let timeline = timeline.expect(200)["items"].as_array().unwrap().clone();
    // only the valid events are on the timeline: segment, connected, rewritten segment
    assert_eq!(timeline.len(), 3, "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|e| e["note"].as_str().is_some_and(|n| n.contains("seg_00001")))
    );
}

#[tokio::test]
async fn tool_calls_pair_with_results_and_runtime_errors_reach_the_runtime_status() {
    // GIVEN a call with two tool calls (one failing) and a runtime error
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let t0 = Timestamp::now().plus_secs(-60);
    let mut events = Vec::new();
    for (key, kind, ms, payload) in [
        (
            "t1",
            "tool_called",
            0,
            json!({ "tool_name": "send_email", "arguments": { "to": "x@y.z" } }),
        ),
        (
            "t2",
            "tool_called",
            100,
            json!({ "tool_name": "book_slot", "tool_call_id": "tc-9", "arguments": {} }),
        ),
        (
            "t3",
            "tool_result",
            450,
            json!({ "tool_name": "book_slot", "tool_call_id": "tc-9", "result": null, "error": "calendar down" }),
        ),
        (
            "t4",
            "tool_result",
            1250,
            json!({ "tool_name": "send_email", "result": { "ok": true } }),
        ),
    ] {
        let mut e = envelope(&rt, "CA_tools", kind, key, payload);
        let when = chrono::DateTime::<chrono::Utc>::from(t0) + chrono::Duration::milliseconds(ms);
        e["event"]["occurred_at"] =
            json!(when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        events.push(e);
    }
    let mut error = envelope(
        &rt,
        "CA_tools",
        "runtime_error",
        "e1",
        json!({ "component": "llm", "message": "upstream timeout", "fatal": false }),
    );
    error["event"]["occurred_at"] = json!(Timestamp::now());
    events.push(error);
    // WHEN they are ingested in one batch
    batch(&stack, &rt.token, events).await.expect(200);
    let call = call_id(&stack, "CA_tools").await;

    // THEN the tool log pairs them with durations and the error
    let log = stack
        .get(&format!("/calls/{call}/tool-log"), &rt.admin)
        .await;
    let log = log.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0]["tool_name"].as_str(), log[0]["status"].as_str()),
        (Some("send_email"), Some("ok"))
    );
    assert_eq!(log[0]["duration_ms"], 1250);
    assert_eq!(log[0]["arguments"]["to"], "x@y.z");
    assert_eq!(
        (log[1]["tool_name"].as_str(), log[1]["status"].as_str()),
        (Some("book_slot"), Some("error"))
    );
    assert_eq!(log[1]["duration_ms"], 350);
    assert_eq!(log[1]["error"], "calendar down");
    // AND the runtime error is on the timeline and among the runtime's issues
    let timeline = stack.get(&format!("/calls/{call}/events"), &rt.admin).await;
    assert!(
        timeline.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "runtime_error")
    );
    let status = stack
        .get(&format!("/runtimes/{}/status", rt.runtime), &rt.admin)
        .await;
    let status = status.expect(200);
    assert_eq!(status["recent_errors"][0]["component"], "llm");
    assert!(
        status["ready_issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().contains("upstream timeout")),
        "{status}"
    );
}

#[tokio::test]
async fn history_filters_by_status_direction_agent_and_time() {
    // GIVEN an ended inbound call and a live one, by the same agent
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    post(
        &stack,
        &rt.token,
        envelope(&rt, "CA_live", "call_connected", "l1", json!({})),
    )
    .await
    .expect(202);
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_done",
            "call_ended",
            "d1",
            json!({ "ended_at": at(5), "final_status": "completed" }),
        ),
    )
    .await
    .expect(202);
    let list = |query: String| {
        let stack = &stack;
        let (token, est) = (rt.admin.clone(), rt.est.clone());
        async move {
            let reply = stack
                .get(&format!("/calls?establishment_id={est}{query}"), &token)
                .await;
            reply.expect(200)["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["provider_call_sid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // WHEN filtered THEN each filter keeps what matches, newest first
    assert_eq!(list(String::new()).await, ["CA_done", "CA_live"]);
    assert_eq!(list("&status=completed".into()).await, ["CA_done"]);
    assert_eq!(list("&status=in_progress".into()).await, ["CA_live"]);
    assert_eq!(
        list("&direction=outbound".into()).await,
        Vec::<String>::new()
    );
    assert_eq!(list(format!("&agent_id={}", rt.agent)).await.len(), 2);
    let tomorrow = Timestamp::now().plus_secs(86_400).to_string();
    assert_eq!(
        list(format!("&from={tomorrow}")).await,
        Vec::<String>::new()
    );
    assert_eq!(list("&status=completed&limit=1".into()).await, ["CA_done"]);
    // AND bad filters are 400 naming them
    stack
        .get(
            &format!("/calls?establishment_id={}&status=exploded", rt.est),
            &rt.admin,
        )
        .await
        .expect_error(400, "validation_failed");
    // AND without establishment_id the caller's establishments are listed (here, one)
    let all = stack.get("/calls", &rt.admin).await;
    assert_eq!(all.expect(200)["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn simulate_call_drives_whole_calls_over_http_and_retries_without_duplicating() {
    // GIVEN the ingest function served over HTTP, behind a proxy that fails every third
    // request with 503 (a flaky network), and a runtime
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let ingest = stack.serve_ingest().await;
    let flaky = flaky_proxy(ingest).await;
    let runtime = runtime_sim::simulate::Runtime {
        ingest_url: flaky,
        token: rt.token.clone(),
        runtime_id: rt.runtime.clone(),
        establishment_id: rt.est.clone(),
        agent_id: rt.agent.clone(),
        agent_version_id: rt.version.clone(),
    };
    let shape = runtime_sim::simulate::CallShape {
        segments: 6,
        pace: std::time::Duration::ZERO,
        ..Default::default()
    };
    // WHEN 4 calls run 2 at a time
    let report = runtime_sim::simulate::load(&runtime, &shape, 4, 2, "CA_sim").await;
    // THEN every event got through, some after retries
    assert_eq!(report.failed_calls, 0, "{report:?}");
    assert_eq!(report.events, 4 * 12);
    assert!(report.retries > 0, "{report:?}");
    // AND each call is complete with its 6 segments once, and one tool log entry
    let history = stack
        .get(&format!("/calls?establishment_id={}", rt.est), &rt.admin)
        .await;
    let calls = history.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 4);
    for call in calls {
        assert_eq!(call["status"], "completed");
        let id = call["call_id"].as_str().unwrap();
        assert_eq!(full_transcript(&stack, &rt.admin, id).await.len(), 6);
        let log = stack.get(&format!("/calls/{id}/tool-log"), &rt.admin).await;
        assert_eq!(log.expect(200)["items"].as_array().unwrap().len(), 1);
    }
}

/// An HTTP proxy to `upstream` (`…/ingest/call-events`) that answers every third request
/// with 503 *after* forwarding it, so the runtime retries events that were in fact stored.
async fn flaky_proxy(upstream: String) -> String {
    use axum::body::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let mut poster = runtime_sim::simulate::Poster::default();
    poster.attempts = 1;
    let handler = move |headers: http::HeaderMap, body: Bytes| {
        let (count, poster, upstream) = (count.clone(), poster.clone(), upstream.clone());
        async move {
            let token = headers["authorization"]
                .to_str()
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_owned();
            let body: Value = serde_json::from_slice(&body).unwrap();
            let forwarded = poster.post(&upstream, &token, &body).await;
            if count.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                return (http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
            }
            match forwarded {
                Ok((_, _, json)) => (http::StatusCode::ACCEPTED, axum::Json(json)),
                Err(e) => (
                    http::StatusCode::BAD_GATEWAY,
                    axum::Json(json!({ "error": e.0 })),
                ),
            }
        }
    };
    let router = axum::Router::new().route("/ingest/call-events", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/ingest/call-events")
}

#[tokio::test]
async fn a_call_the_runtime_reported_first_stays_one_call_when_twilio_asks_for_it() {
    // GIVEN a runtime that reported a CallSid before Twilio's webhook came for it
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    post(
        &stack,
        &rt.token,
        envelope(
            &rt,
            "CA_first",
            "call_started",
            "s1",
            json!({ "started_at": at(0) }),
        ),
    )
    .await
    .expect(202);
    let call = call_id(&stack, "CA_first").await;
    // WHEN the webhook arrives for the same CallSid
    let twiml = incoming(&stack, "CA_first", CALLER, NUMBER).await;
    // THEN the caller is routed as usual (not rejected), as that call, and it is still one call
    assert!(twiml.contains("<Connect><Stream"), "{twiml}");
    assert_eq!(parameter(&twiml, "call_id").as_deref(), Some(call.as_str()));
    let history = stack
        .get(&format!("/calls?establishment_id={}", rt.est), &rt.admin)
        .await;
    let items = history.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["call_id"], call.as_str());
}

#[tokio::test]
async fn rotating_the_user_token_key_keeps_runtimes_and_live_sessions_working() {
    // GIVEN a deployment with its own ingest-token secret, a running runtime and a signed-in admin
    const OLD: &str = "test-secret-test-secret-test-secret!";
    const NEW: &str = "rotated-key-rotated-key-rotated-key!";
    const INGEST: &str = "ingest-secret-ingest-secret-ingest-0";
    let stack = Stack::new()
        .await
        .redeployed(&[("INGEST_TOKEN_SECRET", INGEST)]);
    let rt = world(&stack, NUMBER).await;
    let start = |key: &str| {
        envelope(
            &rt,
            "CA_rotation",
            "call_started",
            key,
            json!({ "started_at": at(0) }),
        )
    };

    // WHEN JWT_SECRET is rotated with the old key kept as JWT_SECRET_PREVIOUS
    let rotated = stack.redeployed(&[
        ("INGEST_TOKEN_SECRET", INGEST),
        ("JWT_SECRET", NEW),
        ("JWT_SECRET_PREVIOUS", OLD),
    ]);
    // THEN the runtime's token still ingests, and the admin's existing token still works
    post(&rotated, &rt.token, start("k1")).await.expect(202);
    rotated.get("/me", &rt.admin).await.expect(200);
    // AND new logins are signed with the new key
    let fresh = rotated.admin().await;
    stack
        .get("/me", &fresh)
        .await
        .expect_error(401, "unauthorized");

    // WHEN the previous key is dropped after a token lifetime
    let settled = stack.redeployed(&[("INGEST_TOKEN_SECRET", INGEST), ("JWT_SECRET", NEW)]);
    // THEN old tokens are refused, new ones and the runtime keep working
    settled
        .get("/me", &rt.admin)
        .await
        .expect_error(401, "unauthorized");
    settled.get("/me", &fresh).await.expect(200);
    let reply = post(&settled, &rt.token, start("k2")).await;
    assert_eq!(reply.expect(202)["status"], "accepted");
}

#[tokio::test]
async fn the_tool_log_pages_and_shows_each_call_once_with_its_result() {
    // GIVEN a call with 5 tool calls whose results arrive interleaved, and an orphan result
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let t0 = Timestamp::now().plus_secs(-60);
    let mut plan = Vec::new();
    for i in 0..5 {
        plan.push((format!("c{i}"), "tool_called", i * 100, json!({ "tool_name": "lookup", "tool_call_id": format!("id{i}"), "arguments": { "n": i } })));
    }
    // results in another order, after every call: id3, id0, id4, id1, id2, then an orphan
    for (j, i) in [3, 0, 4, 1, 2].into_iter().enumerate() {
        plan.push((format!("r{i}"), "tool_result", 1000 + j as i64 * 100, json!({ "tool_name": "lookup", "tool_call_id": format!("id{i}"), "result": { "n": i } })));
    }
    plan.push((
        "orphan".into(),
        "tool_result",
        5000,
        json!({ "tool_name": "ghost", "result": 1 }),
    ));
    let events: Vec<Value> = plan
        .into_iter()
        .map(|(key, kind, ms, payload)| {
            let mut e = envelope(&rt, "CA_pages", kind, &key, payload);
            let when =
                chrono::DateTime::<chrono::Utc>::from(t0) + chrono::Duration::milliseconds(ms);
            e["event"]["occurred_at"] =
                json!(when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            e
        })
        .collect();
    batch(&stack, &rt.token, events).await.expect(200);
    let call = call_id(&stack, "CA_pages").await;

    // WHEN the log is read two entries at a time
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/calls/{call}/tool-log?limit=2&cursor={c}"),
            None => format!("/calls/{call}/tool-log?limit=2"),
        };
        let page = stack.get(&path, &rt.admin).await.expect(200).clone();
        entries.extend(page["items"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    // THEN every call comes once, in call order, each with its own result, then the orphan
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["tool_call_id"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(ids, ["id0", "id1", "id2", "id3", "id4", "-"], "{entries:?}");
    for (i, e) in entries.iter().take(5).enumerate() {
        assert_eq!(e["status"], "ok");
        assert_eq!(e["result"]["n"], i, "{e}");
        assert_eq!(e["arguments"]["n"], i);
    }
    assert_eq!(entries[5]["tool_name"], "ghost");
    assert_eq!(entries[5]["called_at"], Value::Null);
    // AND a tampered cursor is refused
    stack
        .get(&format!("/calls/{call}/tool-log?cursor=AAAA"), &rt.admin)
        .await
        .expect_error(400, "validation_failed");
}
