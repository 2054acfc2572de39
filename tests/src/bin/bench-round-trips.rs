//! `make bench` part: DynamoDB round trips per API operation, counted by an SDK interceptor on
//! every HTTP attempt (retries included) while the real routers serve against the emulator.

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use callplane_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack, brain};
use std::time::{Duration, Instant};

/// Events the throughput run sends (single, then again in batches of 25).
const EVENTS: usize = 300;

/// A runtime event (Appendix B.1) from runtime `ids` = [runtime, establishment, agent, version].
fn runtime_event(
    ids: [&str; 4],
    sid: &str,
    kind: &str,
    key: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    let [runtime, est, agent, version] = ids;
    json!({
        "runtime_id": runtime, "establishment_id": est, "agent_id": agent,
        "agent_version_id": version,
        "call": { "provider": "twilio", "provider_call_sid": sid, "direction": "inbound",
                  "from_e164": "+14155552672", "to_e164": "+14155552671" },
        "event": { "id": format!("evt_{key}"), "type": kind,
                   "occurred_at": callplane::time::Timestamp::now(),
                   "idempotency_key": key, "payload": payload }
    })
}

/// The payload of transcript segment `i`.
fn segment(i: usize) -> serde_json::Value {
    let now = callplane::time::Timestamp::now();
    json!({ "segment_id": format!("seg_{i:06}"), "speaker": "customer",
            "text": format!("Segment {i}: I need to update my service plan."),
            "started_at": now, "ended_at": now, "confidence": 0.9 })
}

/// A runtime on `stack` able to ingest: (runtime, establishment, agent, version, token).
async fn ingesting_runtime(stack: &Stack, admin: &str) -> [String; 5] {
    let est = stack.establishment(admin, "Throughput").await;
    let agent = stack.agent(admin, &est, "Nova").await;
    let version = stack.published(admin, &agent, "You are helpful.").await;
    stack.host("tp-host", (18600, 18610)).await;
    let reply = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            admin,
            json!({ "image": "callplane/runtime-sim:dev" }),
        )
        .await;
    let body = reply.expect(201);
    [
        body["id"].as_str().unwrap().to_owned(),
        est,
        agent,
        version,
        body["ingest_token"].as_str().unwrap().to_owned(),
    ]
}

/// Sequential single events, then sequential batches: (events/s, p50 ms, p99 ms, p50 ms
/// without DynamoDB waits, batched events/s).
async fn ingest_throughput(stack: &Stack, admin: &str) -> (f64, f64, f64, f64, f64) {
    let [runtime, est, agent, version, token] = ingesting_runtime(stack, admin).await;
    let ids = [
        runtime.as_str(),
        est.as_str(),
        agent.as_str(),
        version.as_str(),
    ];
    let event = |sid: &str, key: String, i: usize| {
        runtime_event(ids, sid, "transcript_segment", &key, segment(i))
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (mut total, mut own) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..EVENTS {
        let body = event("CAthroughput", format!("t-{i}"), i);
        let (t, busy) = (Instant::now(), stack.round_trips.busy());
        stack
            .send(
                Method::POST,
                "/ingest/call-events",
                Some(&token),
                Some(body),
            )
            .await
            .expect(202);
        let elapsed = t.elapsed();
        total.push(elapsed);
        own.push(elapsed.saturating_sub(stack.round_trips.busy() - busy));
    }
    let single = EVENTS as f64 / started.elapsed().as_secs_f64();
    total.sort();
    own.sort();
    let started = Instant::now();
    for b in 0..(EVENTS / 25) {
        let events: Vec<_> = (0..25)
            .map(|i| event("CAthroughput2", format!("b-{}", b * 25 + i), b * 25 + i))
            .collect();
        stack
            .send(
                Method::POST,
                "/ingest/call-events/batch",
                Some(&token),
                Some(json!({ "events": events })),
            )
            .await
            .expect(200);
    }
    let batched = EVENTS as f64 / started.elapsed().as_secs_f64();
    (
        single,
        ms(total[EVENTS / 2]),
        ms(total[EVENTS * 99 / 100]),
        ms(own[EVENTS / 2]),
        batched,
    )
}
use http::Method;
use serde_json::json;

#[tokio::main]
async fn main() {
    let stack = Stack::new().await;
    let rows: &mut Vec<(&str, usize)> = &mut Vec::new();
    let login = |password: &'static str| {
        stack.send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": ADMIN_EMAIL, "password": password })),
        )
    };

    let (_, n) = stack.round_trips.during(login("wrong-password!")).await;
    rows.push(("POST /auth/login, reads before the password check", n));
    let (reply, n) = stack.round_trips.during(login(ADMIN_PASSWORD)).await;
    let admin = reply.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    rows.push(("POST /auth/login, total", n));
    let (_, n) = stack.round_trips.during(stack.get("/me", &admin)).await;
    rows.push(("GET /me", n));
    let (reply, n) = stack
        .round_trips
        .during(stack.post(
            "/establishments",
            &admin,
            json!({ "name": "Bench", "timezone": "UTC", "locale": "en" }),
        ))
        .await;
    let est = reply.expect(201)["id"].as_str().unwrap().to_owned();
    rows.push(("POST /establishments (platform admin)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.get(&format!("/establishments/{est}"), &admin))
        .await;
    rows.push(("GET /establishments/{id}", n));
    let (_, n) = stack
        .round_trips
        .during(stack.get("/establishments", &admin))
        .await;
    rows.push(("GET /establishments", n));
    let (_, n) = stack
        .round_trips
        .during(stack.patch(
            &format!("/establishments/{est}/telephony"),
            &admin,
            json!({ "max_call_duration_seconds": 600 }),
        ))
        .await;
    rows.push(("PATCH /establishments/{id}/telephony", n));
    let (_, n) = stack
        .round_trips
        .during(stack.post(
            &format!("/establishments/{est}/users"),
            &admin,
            json!({ "email": "op@example.com", "role": "operator" }),
        ))
        .await;
    rows.push(("POST /establishments/{id}/users (invite)", n));
    let token = stack.mailed_token("op@example.com").await;
    let accept = stack.send(
        Method::POST,
        "/auth/accept-invitation",
        None,
        Some(json!({ "token": token, "password": "bench-password-1", "display_name": "Op" })),
    );
    let (_, n) = stack.round_trips.during(accept).await;
    rows.push(("POST /auth/accept-invitation (new account)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.get(&format!("/establishments/{est}/users"), &admin))
        .await;
    rows.push(("GET /establishments/{id}/users", n));

    let agent = stack.agent(&admin, &est, "Nova").await;
    let (reply, n) = stack
        .round_trips
        .during(stack.post(&format!("/agents/{agent}/versions"), &admin, brain("v1")))
        .await;
    let v1 = reply.body["id"].as_str().unwrap().to_owned();
    rows.push(("POST /agents/{id}/versions (draft)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.number(&admin, &est, "+14155552671", &agent))
        .await;
    rows.push(("POST /establishments/{id}/phone-numbers", n));
    let (_, n) = stack
        .round_trips
        .during(stack.activate(&admin, &agent, &v1, "publish"))
        .await;
    rows.push(("POST …/versions/{id}/publish (1 transaction)", n));
    let number = callplane::domain::E164::parse("+14155552671").unwrap();
    let (_, n) = stack
        .round_trips
        .during(stack.app.store.resolve_route(&number))
        .await;
    rows.push(("resolve an inbound number (routing resolver)", n));

    let host_token = stack.host("bench-host", (18500, 18510)).await;
    let (reply, n) = stack
        .round_trips
        .during(stack.post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            json!({ "image": "callplane/runtime-sim:dev" }),
        ))
        .await;
    let runtime = reply.body["id"].as_str().unwrap().to_owned();
    let ingest_token = reply.body["ingest_token"].as_str().unwrap().to_owned();
    let create = reply.body["command_id"].as_str().unwrap().to_owned();
    rows.push(("POST /establishments/{id}/runtime (provision)", n));
    let result = json!({ "runtime_id": runtime, "outcome": "succeeded", "attempt": 1 });
    let (_, n) = stack
        .round_trips
        .during(stack.send(
            Method::POST,
            &format!("/hosts/bench-host/commands/{create}/result"),
            Some(&host_token),
            Some(result),
        ))
        .await;
    rows.push(("POST /hosts/{id}/commands/{id}/result (host report)", n));
    let (started, n) = stack
        .round_trips
        .during(stack.post_empty(&format!("/runtimes/{runtime}/start"), &admin))
        .await;
    rows.push(("POST /runtimes/{id}/start", n));
    let start = started.body["command_id"].as_str().unwrap().to_owned();
    stack
        .send(
            Method::POST,
            &format!("/hosts/bench-host/commands/{start}/result"),
            Some(&host_token),
            Some(json!({ "runtime_id": runtime, "outcome": "succeeded", "attempt": 1 })),
        )
        .await
        .expect(204);
    let health = json!({ "reports": [{ "runtime_id": runtime, "establishment_id": est, "container_state": "running", "reachable": true,
        "ready": true, "issues": [], "agent_info": null, "checked_at": callplane::time::Timestamp::now() }] });
    let (_, n) = stack
        .round_trips
        .during(stack.send(
            Method::POST,
            "/hosts/bench-host/health",
            Some(&host_token),
            Some(health),
        ))
        .await;
    rows.push(("POST /hosts/{id}/health (1 runtime)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.get(&format!("/runtimes/{runtime}/status"), &admin))
        .await;
    rows.push(("GET /runtimes/{id}/status", n));

    // Calls: the incoming-call webhook (streaming to the ready runtime), a Twilio retry of it,
    // a status callback found by CallSid, an outbound call through the Twilio stand-in.
    let hook = |sid: String| {
        let stack = &stack;
        async move {
            let params = [
                ("CallSid", sid.as_str()),
                ("From", "+14155552672"),
                ("To", "+14155552671"),
                ("CallStatus", "ringing"),
            ];
            stack
                .twilio_hook("/webhooks/twilio/incoming-call", &params, None)
                .await
        }
    };
    let (reply, n) = stack.round_trips.during(hook("CAbench0".into())).await;
    assert!(
        reply.body["raw"]
            .as_str()
            .unwrap()
            .contains("<Connect><Stream"),
        "the bench call must reach the runtime branch: {}",
        reply.body
    );
    rows.push((
        "POST /webhooks/twilio/incoming-call (streams to the runtime)",
        n,
    ));
    let (_, n) = stack.round_trips.during(hook("CAbench0".into())).await;
    rows.push(("POST /webhooks/twilio/incoming-call (Twilio retry)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.twilio_hook(
            "/webhooks/twilio/call-status",
            &[
                ("CallSid", "CAbench0"),
                ("CallStatus", "completed"),
                ("CallDuration", "30"),
            ],
            None,
        ))
        .await;
    rows.push(("POST /webhooks/twilio/call-status (by CallSid)", n));
    let (_, n) = stack
        .round_trips
        .during(stack.post(
            "/calls/outbound",
            &admin,
            json!({ "establishment_id": est, "agent_id": agent, "to_e164": "+14155552673" }),
        ))
        .await;
    rows.push(("POST /calls/outbound (Twilio stand-in)", n));

    // Ingest: runtime events (Appendix B) and the transcript reads the UI polls with.
    let version = stack.get(&format!("/agents/{agent}"), &admin).await.body["active_version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = [
        runtime.as_str(),
        est.as_str(),
        agent.as_str(),
        version.as_str(),
    ];
    let event = |sid: &str, kind: &str, key: &str, payload: serde_json::Value| {
        runtime_event(ids, sid, kind, key, payload)
    };
    let ingest = |body: serde_json::Value| {
        stack.send(
            Method::POST,
            "/ingest/call-events",
            Some(&ingest_token),
            Some(body),
        )
    };
    let (reply, n) = stack
        .round_trips
        .during(ingest(event(
            "CAingest",
            "call_started",
            "start",
            json!({ "started_at": callplane::time::Timestamp::now() }),
        )))
        .await;
    reply.expect(202);
    rows.push((
        "POST /ingest/call-events, first event of a new CallSid (creates the call)",
        n,
    ));
    let (reply, n) = stack
        .round_trips
        .during(ingest(event(
            "CAingest",
            "transcript_segment",
            "seg-0",
            segment(0),
        )))
        .await;
    reply.expect(202);
    rows.push(("POST /ingest/call-events, transcript_segment", n));
    let (reply, n) = stack
        .round_trips
        .during(ingest(event(
            "CAingest",
            "transcript_segment",
            "seg-0",
            segment(0),
        )))
        .await;
    assert_eq!(reply.body["outcome"], "duplicate");
    rows.push(("POST /ingest/call-events, replay (changes nothing)", n));
    let batch: Vec<_> = (1..=25)
        .map(|i| {
            event(
                "CAingest",
                "transcript_segment",
                &format!("seg-{i}"),
                segment(i),
            )
        })
        .collect();
    let (reply, n) = stack
        .round_trips
        .during(stack.send(
            Method::POST,
            "/ingest/call-events/batch",
            Some(&ingest_token),
            Some(json!({ "events": batch })),
        ))
        .await;
    reply.expect(200);
    rows.push(("POST /ingest/call-events/batch, 25 segments", n));
    let call = stack
        .app
        .store
        .call_by_sid(callplane::domain::NumberProvider::Twilio, "CAingest")
        .await
        .unwrap()
        .unwrap()
        .call_id;
    let (reply, n) = stack
        .round_trips
        .during(stack.get(&format!("/calls/{call}/transcript"), &admin))
        .await;
    let cursor = reply.expect(200)["cursor"].as_str().unwrap().to_owned();
    rows.push((
        "GET /calls/{id}/transcript, first read (call + session + 1 Query)",
        n,
    ));
    ingest(event(
        "CAingest",
        "transcript_segment",
        "seg-26",
        segment(26),
    ))
    .await
    .expect(202);
    let (reply, n) = stack
        .round_trips
        .during(stack.get(&format!("/calls/{call}/transcript?cursor={cursor}"), &admin))
        .await;
    assert!(!reply.expect(200)["items"].as_array().unwrap().is_empty());
    rows.push((
        "GET /calls/{id}/transcript?cursor, a poll (session + 1 Query)",
        n,
    ));
    let (_, n) = stack
        .round_trips
        .during(stack.get(&format!("/calls/active?establishment_id={est}"), &admin))
        .await;
    rows.push(("GET /calls/active", n));
    let (_, n) = stack
        .round_trips
        .during(stack.get(
            &format!("/calls?establishment_id={est}&status=in_progress"),
            &admin,
        ))
        .await;
    rows.push(("GET /calls?status=in_progress", n));
    let (reply, n) = stack
        .round_trips
        .during(ingest(event(
            "CAingest",
            "call_ended",
            "end",
            json!({ "ended_at": callplane::time::Timestamp::now(), "final_status": "completed" }),
        )))
        .await;
    reply.expect(202);
    rows.push((
        "POST /ingest/call-events, call_ended (+ the SQS post-call job)",
        n,
    ));

    println!("| operation | DynamoDB round trips |\n|---|---|");
    for (op, n) in rows.iter() {
        println!("| {op} | {n} |");
    }

    // In-process latency of the incoming-call webhook against the emulator: the whole handler
    // (signature check, 3 round trips, TwiML), each call a new CallSid.
    const CALLS: usize = 300;
    let mut times = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let started = std::time::Instant::now();
        let reply = hook(format!("CAlatency{i}")).await;
        times.push(started.elapsed());
        assert_eq!(reply.status, 200);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "| incoming-call webhook, in process vs the emulator ({CALLS} calls) | ms |\n|---|---|"
    );
    println!("| p50 | {:.1} |", ms(times[CALLS / 2]));
    println!("| p90 | {:.1} |", ms(times[CALLS * 9 / 10]));
    println!("| p99 | {:.1} |", ms(times[CALLS * 99 / 100]));
    println!("| max | {:.1} |", ms(times[CALLS - 1]));

    // Ingest throughput of one function instance (Lambda gives an instance one request at a
    // time), in process, on a fresh table: the emulator's transactions copy the whole table,
    // so their cost grows with it. The time spent waiting for DynamoDB is measured apart, so
    // what the handler itself costs shows.
    let fresh = Stack::new().await;
    let (events_per_second, p50, p99, own_p50, batched) =
        ingest_throughput(&fresh, &fresh.admin().await).await;
    println!();
    println!(
        "| ingest, one instance in process vs the emulator ({EVENTS} events, fresh table) | value |\n|---|---|"
    );
    println!("| single events per second | {events_per_second:.0} |");
    println!("| single event p50 / p99 (ms) | {p50:.1} / {p99:.1} |");
    println!("| single event p50 without the time waiting for DynamoDB (ms) | {own_p50:.2} |");
    println!("| batched (25) events per second | {batched:.0} |");

    // runtime-sim simulate-call as a load generator, over real HTTP against the ingest router,
    // on a fresh table of its own.
    let loaded = Stack::new().await;
    let [runtime, est, agent, version, token] =
        ingesting_runtime(&loaded, &loaded.admin().await).await;
    let runtime = runtime_sim::simulate::Runtime {
        ingest_url: loaded.serve_ingest().await,
        token,
        runtime_id: runtime,
        establishment_id: est,
        agent_id: agent,
        agent_version_id: version,
    };
    let shape = runtime_sim::simulate::CallShape {
        segments: 10,
        pace: std::time::Duration::ZERO,
        ..Default::default()
    };
    let report = runtime_sim::simulate::load(&runtime, &shape, 20, 4, "CAload").await;
    assert_eq!(report.failed_calls, 0, "{report:?}");
    println!();
    println!(
        "| simulate-call load run: 20 calls x 16 events, 4 at a time, over HTTP | value |\n|---|---|"
    );
    println!("| events per second | {:.0} |", report.events_per_second);
    println!(
        "| event post p50 / p99 (ms) | {:.1} / {:.1} |",
        report.p50_ms, report.p99_ms
    );
    println!("| retries | {} |", report.retries);
}
