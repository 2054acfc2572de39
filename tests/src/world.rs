//! Fixtures beyond the bare stack: an establishment whose number routes to a published
//! agent, a runtime-sim served in-process, a runtime provisioned, started and reported ready
//! the way a host agent would, leads imported through the API and the import worker, and
//! Twilio's incoming-call webhook (used by the call tests and
//! by `api-standin`, so the fuzzer reaches real calls and runtimes).

use crate::Stack;
use http::Method;
use serde_json::json;

/// The host id (suffixed with the runtime's port) that [`running_runtime`] registers.
pub const HOST: &str = "host-a";

/// An establishment with a published agent routed from `number`; returns (admin, est, agent).
pub async fn routed(stack: &Stack, number: &str) -> (String, String, String) {
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Concierge").await;
    stack.published(&admin, &agent, "You are helpful.").await;
    stack.number(&admin, &est, number, &agent).await.expect(201);
    (admin, est, agent)
}

/// Provisions and starts `est`'s runtime on `HOST` port `port` and reports it ready (as the
/// host agent would); returns (runtime id, host token, ingest token).
pub async fn running_runtime(
    stack: &Stack,
    admin: &str,
    est: &str,
    port: u16,
) -> (String, String, String) {
    let host = format!("{HOST}-{port}");
    let token = stack.host(&host, (port, port)).await;
    let provisioned = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            admin,
            json!({ "image": "callplane/runtime-sim:dev" }),
        )
        .await;
    let body = provisioned.expect(201);
    let runtime = body["id"]
        .as_str()
        .expect("an answer of the documented shape")
        .to_owned();
    let ingest_token = body["ingest_token"]
        .as_str()
        .expect("an answer of the documented shape")
        .to_owned();
    host_result(
        stack,
        &host,
        &token,
        &runtime,
        body["command_id"]
            .as_str()
            .expect("an answer of the documented shape"),
    )
    .await;
    let started = stack
        .post_empty(&format!("/runtimes/{runtime}/start"), admin)
        .await;
    let command = started.expect(202)["command_id"]
        .as_str()
        .expect("an answer of the documented shape")
        .to_owned();
    host_result(stack, &host, &token, &runtime, &command).await;
    health(stack, &host, &token, &runtime, est, true, false).await;
    (runtime, token, ingest_token)
}

pub async fn host_result(stack: &Stack, host: &str, token: &str, runtime: &str, command: &str) {
    stack
        .send(
            Method::POST,
            &format!("/hosts/{host}/commands/{command}/result"),
            Some(token),
            Some(json!({ "runtime_id": runtime, "outcome": "succeeded", "attempt": 1 })),
        )
        .await
        .expect(204);
}

/// Reports the runtime's health as its host agent does.
pub async fn health(
    stack: &Stack,
    host: &str,
    token: &str,
    runtime: &str,
    est: &str,
    ready: bool,
    draining: bool,
) {
    let issues: Vec<&str> = if ready {
        vec![]
    } else {
        vec!["llm: unreachable"]
    };
    stack
        .send(
            Method::POST,
            &format!("/hosts/{host}/health"),
            Some(token),
            Some(json!({ "reports": [{
                "runtime_id": runtime, "establishment_id": est, "container_state": "running",
                "reachable": true, "ready": ready, "issues": issues,
                "agent_info": { "active_calls": 0, "total_calls_handled": 0, "draining": draining },
                "checked_at": callplane::time::Timestamp::now()
            }]})),
        )
        .await
        .expect(200);
}

/// Twilio's incoming-call webhook for `sid` from `from` to `to`.
pub async fn incoming(stack: &Stack, sid: &str, from: &str, to: &str) -> String {
    let reply = stack
        .twilio_hook(
            "/webhooks/twilio/incoming-call",
            &[
                ("CallSid", sid),
                ("AccountSid", crate::twilio::ACCOUNT_SID),
                ("From", from),
                ("To", to),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("ApiVersion", "2010-04-01"),
            ],
            None,
        )
        .await;
    reply.expect(200);
    reply.body["raw"].as_str().expect("TwiML").to_owned()
}

/// The value of `<Parameter name="{name}" value="…"/>` in a TwiML document.
pub fn parameter(twiml: &str, name: &str) -> Option<String> {
    let marker = format!("<Parameter name=\"{name}\" value=\"");
    let start = twiml.find(&marker)? + marker.len();
    let end = twiml[start..].find('"')? + start;
    Some(twiml[start..end].to_owned())
}

/// Serves a runtime-sim on a free port; returns the port.
pub async fn runtime_sim() -> (u16, runtime_sim::Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("an answer of the documented shape");
    let port = listener
        .local_addr()
        .expect("an answer of the documented shape")
        .port();
    let sim: runtime_sim::Shared = std::sync::Arc::new(std::sync::Mutex::new(
        runtime_sim::Sim::new("sim-test", None),
    ));
    let router = runtime_sim::router(sim.clone());
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("an answer of the documented shape")
    });
    (port, sim)
}

/// The jobs waiting on the summary queue, received as Lambda's SQS event source receives
/// them (and hidden for the queue's visibility timeout), in the event shape Lambda hands an
/// SQS-triggered function (`{"Records":[{"messageId","receiptHandle","body",…}]}`).
pub async fn summary_batch(stack: &Stack) -> serde_json::Value {
    queue_batch(stack, "summary-jobs").await
}

/// The messages waiting on queue `name` (a logical name of `resources::QUEUES`), received and
/// shaped as [`summary_batch`] does.
pub async fn queue_batch(stack: &Stack, name: &str) -> serde_json::Value {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = &stack.provisioned.queue_urls[name];
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive from the summary queue");
    callplane::local_events::sqs_event(
        received.messages(),
        &format!("arn:aws:sqs:us-east-1:000000000000:{name}"),
        "us-east-1",
    )
}

/// The post-call function (built-in analyzer) over `stack`, served behind the Lambda Invoke API
/// that `cargo lambda watch` serves in `make dev`, on a free port; its invoke URL.
pub async fn post_call_invoke_api(stack: &Stack) -> String {
    let app = stack.app.clone();
    let analyzer = std::sync::Arc::new(callplane::analysis::Analyzer::new(
        &callplane::config::AnalyzerKind::Builtin,
        &stack.sdk,
    ));
    let function = axum::Router::new().route(
        "/2015-03-31/functions/post-call/invocations",
        axum::routing::post(move |axum::Json(event): axum::Json<serde_json::Value>| {
            let (app, analyzer) = (app.clone(), analyzer.clone());
            async move {
                let event = serde_json::from_value(event).expect("an SQS event");
                axum::Json(post_call::handle(&app, &analyzer, event).await)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let invoke = format!(
        "http://{}/2015-03-31/functions/post-call/invocations",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move { axum::serve(listener, function).await.expect("serving") });
    invoke
}

/// The boundary of [`multipart`] bodies.
pub const BOUNDARY: &str = "----callplane-test-boundary";

/// A `multipart/form-data` body with `fields` and, if given, a `file` part.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, bytes)) = file {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `POST /leads/import` with a multipart body as `token`.
pub async fn post_multipart(stack: &Stack, token: &str, body: Vec<u8>) -> crate::Reply {
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/leads/import")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(axum::body::Body::from(body))
        .expect("a valid request");
    stack.send_raw(req).await
}

/// Imports `csv` inline into `est` as `token`; the job id.
pub async fn import(stack: &Stack, token: &str, est: &str, csv: &[u8]) -> String {
    let body = multipart(&[("establishment_id", est)], Some(("leads.csv", csv)));
    let reply = post_multipart(stack, token, body).await;
    let accepted = reply.expect(202);
    assert_eq!(accepted["status"], "accepted");
    accepted["job_id"]
        .as_str()
        .expect("an answer of the documented shape")
        .to_owned()
}

/// Delivers the import queue's messages to the lead-import function as Lambda's SQS event
/// source does, until none is waiting; every run must succeed.
pub async fn work(stack: &Stack) {
    loop {
        let event = queue_batch(stack, "lead-import-jobs").await;
        if event["Records"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        let response = ::lead_import::handle(
            &stack.app,
            serde_json::from_value(event).expect("an SQS event"),
        )
        .await;
        assert!(
            response.batch_item_failures.is_empty(),
            "an import run failed"
        );
    }
}

/// A zone where it is early afternoon now, so what runs on the real clock is inside the
/// calling hours (08:00-21:00) whenever it runs.
pub fn afternoon_zone() -> String {
    use chrono::Timelike;
    let offset = (13 - i64::from(chrono::Utc::now().hour()) + 36) % 24 - 12;
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// The id of `agent`'s active (published) version.
pub async fn active_version(stack: &Stack, token: &str, agent: &str) -> String {
    stack
        .get(&format!("/agents/{agent}"), token)
        .await
        .expect(200)["active_version_id"]
        .as_str()
        .expect("an agent with a published version")
        .to_owned()
}
