//! `make bench` part: the post-call path end to end, as `make dev` runs it — runtime events
//! into the ingest router, the summary and live-sentiment queues in the emulator, delivered by
//! the same local event source (`callplane::local_events::run`) through a Lambda Invoke API to
//! the post-call handler — and what the API shows:
//!
//! - time from `call_ended` accepted to the summary visible on `GET /calls/{id}` (20 calls);
//! - live sentiment lag: from a customer's turn accepted to its sentiment on `/calls/active`;
//! - the worker's peak memory analysing a two-hour transcript (2,000 segments).

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use callplane::time::Timestamp;
use callplane_tests::Stack;
use callplane_tests::world::{incoming, parameter, routed, running_runtime, runtime_sim};
use http::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NUMBER: &str = "+14155550199";
const CALLER: &str = "+14155550142";
/// Calls whose summary latency is measured.
const CALLS: usize = 20;
/// Live calls whose sentiment lag is measured.
const LIVE: usize = 5;
/// Segments of the long call (a two-hour call's transcript).
const LONG_SEGMENTS: i64 = 2_000;

struct Runtime {
    admin: String,
    /// The host, its token: health is reported again before each call (reports go stale).
    host: (String, String),
    ids: [String; 4],
    token: String,
}

impl Runtime {
    fn event(&self, sid: &str, kind: &str, key: &str, payload: Value) -> Value {
        let [runtime, est, agent, version] = &self.ids;
        json!({
            "runtime_id": runtime, "establishment_id": est, "agent_id": agent,
            "agent_version_id": version,
            "call": { "provider": "twilio", "provider_call_sid": sid, "direction": "inbound",
                      "from_e164": CALLER, "to_e164": NUMBER },
            "event": { "id": format!("evt_{key}"), "type": kind, "occurred_at": Timestamp::now(),
                       "idempotency_key": key, "payload": payload }
        })
    }

    /// A call from `sid` streamed to the runtime (its health reported fresh first); its id.
    async fn call(&self, stack: &Stack, sid: &str) -> String {
        let [runtime, est, ..] = &self.ids;
        callplane_tests::world::health(
            stack,
            &self.host.0,
            &self.host.1,
            runtime,
            est,
            true,
            false,
        )
        .await;
        let twiml = incoming(stack, sid, CALLER, NUMBER).await;
        parameter(&twiml, "call_id").unwrap_or_else(|| panic!("not streamed: {twiml}"))
    }

    async fn post(&self, stack: &Stack, body: Value) {
        let path = if body.get("events").is_some() {
            "/ingest/call-events/batch"
        } else {
            "/ingest/call-events"
        };
        stack
            .send(Method::POST, path, Some(&self.token), Some(body))
            .await
            .expect(if path.ends_with("batch") { 200 } else { 202 });
    }
}

fn segment(sid: &str, i: i64, speaker: &str, text: &str) -> Value {
    let at = Timestamp::now().plus_secs(i * 3 - 7200);
    json!({ "segment_id": format!("{sid}-{i:05}"), "speaker": speaker, "text": text,
            "started_at": at, "ended_at": at.plus_secs(2), "confidence": 0.9 })
}

/// The post-call function behind a Lambda Invoke API, and the local event source delivering
/// `queues` to it.
async fn serve_function(stack: &Stack, queues: &[&str]) {
    let invoke = callplane_tests::world::post_call_invoke_api(stack).await;
    for queue in queues {
        tokio::spawn(callplane::local_events::run(
            aws_sdk_sqs::Client::new(&stack.sdk),
            stack.provisioned.queue_urls[*queue].clone(),
            invoke.clone(),
        ));
    }
}

/// Polls `GET {path}` every 50 ms until `done` holds; the time it took.
async fn until(stack: &Stack, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let reply = stack.get(path, token).await;
        if done(reply.expect(200)) || started.elapsed() > Duration::from_secs(120) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64()
}

/// `VmRSS` / `VmHWM` of this process in MiB (Linux).
fn memory(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let stack = Stack::new().await;
    let (admin, est, agent) = routed(&stack, NUMBER).await;
    let version = callplane_tests::world::active_version(&stack, &admin, &agent).await;
    let (port, _sim) = runtime_sim().await;
    let (runtime, host_token, token) = running_runtime(&stack, &admin, &est, port).await;
    let rt = Runtime {
        admin,
        host: (
            format!("{}-{port}", callplane_tests::world::HOST),
            host_token,
        ),
        ids: [runtime, est.clone(), agent, version],
        token,
    };

    // The long call first, before the event source runs, so its analysis is measured alone.
    let long = rt.call(&stack, "CA_long").await;
    for chunk in (0..LONG_SEGMENTS).collect::<Vec<_>>().chunks(25) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let (speaker, text) = if i % 2 == 0 {
                    (
                        "customer",
                        "I would like to move my appointment to Thursday, if that works.",
                    )
                } else {
                    (
                        "agent",
                        "Of course, Thursday at three is free; shall I book it for you?",
                    )
                };
                rt.event(
                    "CA_long",
                    "transcript_segment",
                    &format!("long-{i}"),
                    segment("long", i, speaker, text),
                )
            })
            .collect();
        rt.post(&stack, json!({ "events": events })).await;
    }
    rt.post(
        &stack,
        rt.event(
            "CA_long",
            "call_ended",
            "long-end",
            json!({ "ended_at": Timestamp::now(),
            "duration_seconds": 7200, "final_status": "completed", "hangup_by": "customer" }),
        ),
    )
    .await;
    let batch = callplane_tests::world::summary_batch(&stack).await;
    let analyzer =
        callplane::analysis::Analyzer::new(&callplane::config::AnalyzerKind::Builtin, &stack.sdk);
    let before = memory("VmRSS:");
    // Peak RSS from here on (Linux: writing 5 to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let response = post_call::handle(
        &stack.app,
        &analyzer,
        serde_json::from_value(batch).unwrap(),
    )
    .await;
    let took = started.elapsed();
    let peak = memory("VmHWM:");
    assert!(response.batch_item_failures.is_empty());
    let shown = stack.get(&format!("/calls/{long}"), &rt.admin).await;
    assert_eq!(shown.expect(200)["analysis"]["status"], "succeeded");

    serve_function(&stack, &["summary-jobs", "live-sentiment"]).await;

    // Summary latency, one call at a time.
    let mut latencies = Vec::new();
    for n in 0..CALLS {
        let sid = format!("CA_bench_{n}");
        let call = rt.call(&stack, &sid).await;
        let turns = [
            (
                "customer",
                "Hi, I would like to book an appointment for Monday.",
            ),
            ("agent", "Sure, Monday at ten works."),
            ("customer", "That is great, thank you so much!"),
            ("agent", "You are booked. Goodbye."),
        ];
        let events: Vec<Value> = turns
            .iter()
            .enumerate()
            .map(|(i, (who, text))| {
                rt.event(
                    &sid,
                    "transcript_segment",
                    &format!("{sid}-{i}"),
                    segment(&sid, i as i64 * 10, who, text),
                )
            })
            .collect();
        rt.post(&stack, json!({ "events": events })).await;
        rt.post(
            &stack,
            rt.event(
                &sid,
                "call_ended",
                &format!("{sid}-end"),
                json!({ "ended_at": Timestamp::now(),
                "duration_seconds": 45, "final_status": "completed", "hangup_by": "customer" }),
            ),
        )
        .await;
        latencies.push(
            until(&stack, &rt.admin, &format!("/calls/{call}"), |c| {
                c["summary"].is_string()
            })
            .await,
        );
    }
    latencies.sort();

    // Live sentiment lag, several live calls at once.
    let mut lags = Vec::new();
    let mut waits = Vec::new();
    for n in 0..LIVE {
        let sid = format!("CA_live_{n}");
        let call = rt.call(&stack, &sid).await;
        rt.post(
            &stack,
            rt.event(
                &sid,
                "transcript_segment",
                &format!("{sid}-0"),
                segment(&sid, 0, "customer", "No, I am not interested."),
            ),
        )
        .await;
        let (stack, admin, est) = (&stack, rt.admin.clone(), est.clone());
        waits.push(async move {
            until(
                stack,
                &admin,
                &format!("/calls/active?establishment_id={est}"),
                |page| {
                    page["items"].as_array().is_some_and(|items| {
                        items.iter().any(|c| {
                            c["call_id"] == call.as_str() && c["sentiment"]["label"] == "negative"
                        })
                    })
                },
            )
            .await
        });
    }
    for lag in futures::future::join_all(waits).await {
        lags.push(lag);
    }
    lags.sort();

    println!("| post-call measure | value |");
    println!("|---|---|");
    println!(
        "| call_ended → summary on GET /calls/{{id}}, {CALLS} calls | p50 {:.2} s, p95 {:.2} s, max {:.2} s |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().unwrap().as_secs_f64()
    );
    println!(
        "| live sentiment lag (customer turn accepted → on /calls/active), {LIVE} calls | min {:.1} s, max {:.1} s |",
        lags.first().unwrap().as_secs_f64(),
        lags.last().unwrap().as_secs_f64()
    );
    println!(
        "| analysis of a {LONG_SEGMENTS}-segment call (built-in analyzer) | {:.0} ms; process RSS {before:.1} MiB before, peak {peak:.1} MiB during (+{:.1} MiB) |",
        took.as_secs_f64() * 1000.0,
        peak - before
    );
}
