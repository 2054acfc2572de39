//! `make bench` part: the tool proxy against the emulator and the provider stand-ins.
//!
//! A live call on a running runtime, Google Calendar connected through the consent round
//! trip; then 200 `calendar/create_event` calls, each with its own `Idempotency-Key`, through
//! the router in process: DynamoDB requests per call, KMS calls on the warm instance, and
//! the time per call next to the time of the provider call alone (the same insert sent
//! straight to the stand-in), so the proxy's own overhead is the difference. Then the cost
//! of a retry (a key already answered) and of a refusal (a tool the version does not enable).

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use callplane_tests::providers::FakeProviders;
use callplane_tests::world::{incoming, routed, running_runtime, runtime_sim};
use callplane_tests::{Reply, Stack};
use http::{Method, Request};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NUMBER: &str = "+14155552671";
const CALLER: &str = "+14155552672";
const CALLS: usize = 200;

async fn tool(stack: &Stack, path: &str, token: &str, key: &str, body: &Value) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/tool-proxy/{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    stack.send_raw(req).await
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = Stack::new().await;
    let fake = FakeProviders::start().await;
    let env = fake.env();
    let mut changes: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    changes.push(("TOOL_RATE_LIMITS", "calendar=100000"));
    let stack = base.redeployed(&changes);
    let (admin, est, _agent) = routed(&stack, NUMBER).await;
    let (port, _sim) = runtime_sim().await;
    let (_runtime, _, token) = running_runtime(&stack, &admin, &est, port).await;
    let sid = "CAbench0000000000000000000000tool1";
    let twiml = incoming(&stack, sid, CALLER, NUMBER).await;
    let call_id = callplane_tests::world::parameter(&twiml, "call_id").unwrap();
    // Google Calendar, connected through the stand-in's consent page.
    let connected = stack
        .post(
            &format!("/establishments/{est}/integrations"),
            &admin,
            json!({"type": "google_calendar", "display_name": "Bench calendar",
                   "auth": {"mode": "oauth", "redirect_url": "http://app.test/settings"}}),
        )
        .await
        .expect(201)
        .clone();
    let http = callplane::web::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let consent = http
        .get(connected["auth_url"].as_str().unwrap())
        .send()
        .await?;
    let location = consent.headers()["location"].to_str()?.to_owned();
    let query = location
        .strip_prefix("https://api.test/integrations/oauth/callback?")
        .unwrap();
    let back = stack
        .send(
            Method::GET,
            &format!("/integrations/oauth/callback?{query}"),
            None,
            None,
        )
        .await;
    assert_eq!(back.status, 302);
    let body = json!({"call_id": call_id, "summary": "Table for 2",
        "start": "2026-12-04T19:00:00-05:00", "end": "2026-12-04T21:00:00-05:00",
        "attendees": ["guest@example.com"]});
    // One call to warm the instance (data key opened, connections made).
    tool(&stack, "calendar/create_event", &token, "warm", &body)
        .await
        .expect(200);
    let kms_before = stack.app.envelope()?.kms_calls();
    let mut took = Vec::with_capacity(CALLS);
    let mut requests = Vec::with_capacity(CALLS);
    let mut waiting = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let before = stack.round_trips.get();
        let busy = stack.round_trips.busy();
        let started = Instant::now();
        let reply = tool(
            &stack,
            "calendar/create_event",
            &token,
            &format!("k{i}"),
            &body,
        )
        .await;
        took.push(started.elapsed());
        waiting.push(stack.round_trips.busy() - busy);
        requests.push(stack.round_trips.get() - before);
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let kms_calls = stack.app.envelope()?.kms_calls() - kms_before;
    // The provider call alone: the same insert straight to the stand-in.
    let access = {
        let seen = fake.seen("/calendar/calendars/primary/events");
        seen.last()
            .unwrap()
            .authorization
            .clone()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_owned()
    };
    let event = json!({"summary": "Table for 2", "start": {"dateTime": "2026-12-04T19:00:00-05:00"},
        "end": {"dateTime": "2026-12-04T21:00:00-05:00"}, "attendees": [{"email": "guest@example.com"}]});
    let mut provider = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        stack
            .app
            .providers()
            .google_insert_event(&access, &event)
            .await
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        provider.push(started.elapsed());
    }
    // The proxy's own work: the time of a call less its DynamoDB waits and its provider call.
    let median_provider = {
        let mut p = provider.clone();
        p.sort();
        p[CALLS / 2]
    };
    let mut own: Vec<Duration> = took
        .iter()
        .zip(&waiting)
        .map(|(t, w)| t.saturating_sub(*w).saturating_sub(median_provider))
        .collect();
    own.sort();
    waiting.sort();
    took.sort();
    provider.sort();
    requests.sort_unstable();
    // A retry of an answered key, and a refusal.
    let before = stack.round_trips.get();
    tool(&stack, "calendar/create_event", &token, "k0", &body)
        .await
        .expect(200);
    let retry_requests = stack.round_trips.get() - before;
    let before = stack.round_trips.get();
    let refused = tool(
        &stack,
        "whatsapp/send_message",
        &token,
        "refused",
        &json!({"call_id": call_id, "to": CALLER, "text": "hi"}),
    )
    .await;
    assert_eq!(refused.status, 403);
    let refusal_requests = stack.round_trips.get() - before;
    println!(
        "| tool-proxy call ({CALLS}, calendar/create_event) | p50 (ms) | p95 (ms) |\n|---|---|---|"
    );
    println!(
        "| through the proxy | {:.2} | {:.2} |",
        pct(&took, 0.50),
        pct(&took, 0.95)
    );
    println!(
        "| the provider call alone | {:.2} | {:.2} |",
        pct(&provider, 0.50),
        pct(&provider, 0.95)
    );
    println!(
        "| waiting for DynamoDB (the emulator) | {:.2} | {:.2} |",
        pct(&waiting, 0.50),
        pct(&waiting, 0.95)
    );
    println!(
        "| **the proxy's own work** (a call less its DynamoDB waits and the provider's median) | **{:.2}** | **{:.2}** |",
        pct(&own, 0.50),
        pct(&own, 0.95)
    );
    println!();
    println!(
        "DynamoDB requests per call: min {}, median {}, max {} (2 reads + 2 transactions expected); \
         a retry of an answered key: {retry_requests}; a refusal (tool not enabled): {refusal_requests}; \
         KMS calls over the {CALLS} warm calls: {kms_calls}",
        requests[0],
        requests[CALLS / 2],
        requests[CALLS - 1]
    );
    Ok(())
}
