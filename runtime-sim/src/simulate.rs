//! `runtime-sim simulate-call`: drives whole calls against the control plane's ingest endpoint
//! as a runtime would (PRD Appendix B): `call_started`, `call_connected`, N transcript segments
//! with alternating speakers, a tool call and its result, a recording, `call_ended`. Every
//! event carries a deterministic idempotency key (`{runtime}:{sid}:{seq}`); a failure that may
//! be transient (connection error, 429, 5xx) is retried with the same body and key, so the
//! control plane sees each event once however often it is sent. With `calls > 1` it is a load
//! generator: calls run `concurrency` at a time and the report gives events per second and the
//! p50 / p99 latency of one event post.
//!
//! With a tool step (`--tool dnc/add --tool-args '{…}'`), the call's tool call goes through
//! the control plane's tool proxy (`CALLPLANE_TOOL_PROXY_URL`) instead of being reported as a
//! `tool_called`/`tool_result` pair: the proxy carries it out and logs it on the call. Its
//! `Idempotency-Key` is `tc_{sid}`, so a retry is answered with the first result.
//!
//! Plain HTTP/1.1 over TCP (the local stack's URLs); put a TLS terminator in front for https.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Who the simulated runtime is and where it posts.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// `…/ingest/call-events` (the batch URL is this plus `/batch`).
    pub ingest_url: String,
    pub token: String,
    pub runtime_id: String,
    pub establishment_id: String,
    pub agent_id: String,
    pub agent_version_id: String,
}

/// The shape of each simulated call.
#[derive(Clone, Debug)]
pub struct CallShape {
    /// Transcript segments per call.
    pub segments: u32,
    /// Pause between events (speech takes time; 0 for load runs).
    pub pace: Duration,
    /// Where the recording is reported to be (`None`: an S3 URL under the establishment's
    /// prefix of a bucket named `recordings`).
    pub recording_url: Option<String>,
    pub from_e164: String,
    pub to_e164: String,
    /// The tool call made through the tool proxy mid-call (`None`: reported to ingest).
    pub tool: Option<ToolStep>,
}

/// A tool call made through the tool proxy.
#[derive(Clone, Debug)]
pub struct ToolStep {
    /// The tool's URL, e.g. `http://127.0.0.1:9000/tool-proxy/dnc/add`.
    pub url: String,
    /// The tool's arguments (the call is named by its `provider_call_sid`).
    pub arguments: Value,
}

impl Default for CallShape {
    fn default() -> Self {
        Self {
            segments: 10,
            pace: Duration::from_millis(400),
            recording_url: None,
            from_e164: "+15550102244".into(),
            to_e164: "+15553012211".into(),
            tool: None,
        }
    }
}

/// Why a call could not be driven to its end.
#[derive(Debug)]
pub struct SimError(pub String);

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

/// What one call took.
#[derive(Debug, Default)]
pub struct CallReport {
    pub events: usize,
    /// Posts repeated after a transient failure.
    pub retries: usize,
    /// Latency of each event's successful post.
    pub latencies: Vec<Duration>,
    /// Tool-proxy calls made, and the answer of each (`ok`, or the error code).
    pub tool_outcomes: Vec<String>,
}

/// What a load run measured.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub calls: usize,
    pub failed_calls: usize,
    pub events: usize,
    pub retries: usize,
    pub seconds: f64,
    pub events_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Tool-proxy calls made, and how many were not `ok` (with the first answer that was not).
    pub tool_calls: usize,
    pub tool_failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_tool_error: Option<String>,
    /// The first failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Posts events; one connection pool for every call.
#[derive(Clone, Debug)]
pub struct Poster {
    client: Client<HttpConnector, Full<Bytes>>,
    /// How many times a transiently failing post is tried.
    pub attempts: u32,
}

impl Default for Poster {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            attempts: 6,
        }
    }
}

impl Poster {
    /// Posts `body` to `url` with the runtime's token until it is accepted (2xx), refused (a
    /// 4xx other than 429), or `attempts` tries failed; returns the latency of the accepted
    /// post and how many retries it took.
    pub async fn post(
        &self,
        url: &str,
        token: &str,
        body: &Value,
    ) -> Result<(Duration, usize, Value), SimError> {
        self.post_keyed(url, token, body, None).await
    }

    /// [`Poster::post`] with an `Idempotency-Key` header (tool-proxy calls).
    pub async fn post_keyed(
        &self,
        url: &str,
        token: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<(Duration, usize, Value), SimError> {
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| SimError(e.to_string()))?);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
            }
            let mut request = hyper::Request::post(url)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"));
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let request = request
                .body(Full::new(bytes.clone()))
                .map_err(|e| SimError(e.to_string()))?;
            let started = Instant::now();
            let response = match self.client.request(request).await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("POST {url}: {e}");
                    continue;
                }
            };
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let elapsed = started.elapsed();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok((elapsed, attempt as usize, json));
            }
            last = format!("POST {url}: {status} {json}");
            if status.is_client_error() && status.as_u16() != 429 {
                return Err(SimError(last));
            }
        }
        Err(SimError(format!(
            "gave up after {} attempts: {last}",
            self.attempts
        )))
    }
}

/// Now plus `offset_ms`, RFC 3339 UTC to the millisecond.
fn now_rfc3339(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The events of one call, in the order a runtime sends them.
pub fn call_events(runtime: &Runtime, shape: &CallShape, call_sid: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut seq = 0u32;
    let mut push = |kind: &str, payload: Value| {
        seq += 1;
        events.push(json!({
            "runtime_id": runtime.runtime_id,
            "establishment_id": runtime.establishment_id,
            "agent_id": runtime.agent_id,
            "agent_version_id": runtime.agent_version_id,
            "call": {
                "provider": "twilio",
                "provider_call_sid": call_sid,
                "direction": "inbound",
                "from_e164": shape.from_e164,
                "to_e164": shape.to_e164,
            },
            "event": {
                "id": format!("evt_{call_sid}_{seq:06}"),
                "type": kind,
                "occurred_at": now_rfc3339(0),
                "idempotency_key": format!("{}:{call_sid}:{seq:06}", runtime.runtime_id),
                "payload": payload,
            }
        }));
    };
    push("call_started", json!({ "started_at": now_rfc3339(0) }));
    push("call_connected", json!({}));
    for i in 0..shape.segments {
        let (speaker, text) = if i % 2 == 0 {
            (
                "customer",
                format!("Customer line {i}: I need to update my service plan."),
            )
        } else {
            (
                "agent",
                format!("Agent line {i}: Of course, let me look that up."),
            )
        };
        push(
            "transcript_segment",
            json!({
                "segment_id": format!("seg_{i:06}"),
                "speaker": speaker,
                "text": text,
                "started_at": now_rfc3339(i64::from(i) * 2000),
                "ended_at": now_rfc3339(i64::from(i) * 2000 + 1500),
                "confidence": 0.91,
            }),
        );
        if i == shape.segments / 2 {
            push(
                "tool_called",
                json!({ "tool_name": "send_email", "tool_call_id": format!("tc_{call_sid}"),
                        "arguments": { "to": "customer@example.com" } }),
            );
            push(
                "tool_result",
                json!({ "tool_name": "send_email", "tool_call_id": format!("tc_{call_sid}"),
                        "result": { "ok": true }, "error": null }),
            );
        }
    }
    let recording = shape.recording_url.clone().unwrap_or_else(|| {
        format!(
            "s3://recordings/recordings/{}/{call_sid}.wav",
            runtime.establishment_id
        )
    });
    push(
        "recording_available",
        json!({ "recording_url": recording, "storage_provider": "s3", "content_type": "audio/wav" }),
    );
    push(
        "call_ended",
        json!({ "ended_at": now_rfc3339(i64::from(shape.segments) * 2000),
                "duration_seconds": shape.segments * 2, "final_status": "completed",
                "hangup_by": "customer" }),
    );
    events
}

/// Drives one call to its end.
pub async fn simulate_call(
    poster: &Poster,
    runtime: &Runtime,
    shape: &CallShape,
    call_sid: &str,
) -> Result<CallReport, SimError> {
    let mut report = CallReport::default();
    for (i, event) in call_events(runtime, shape, call_sid)
        .into_iter()
        .enumerate()
    {
        if i > 0 && !shape.pace.is_zero() {
            tokio::time::sleep(shape.pace).await;
        }
        if let Some(tool) = &shape.tool {
            match event["event"]["type"].as_str() {
                Some("tool_called") => {
                    report
                        .tool_outcomes
                        .push(call_tool(poster, runtime, tool, call_sid).await);
                    continue;
                }
                Some("tool_result") => continue,
                _ => {}
            }
        }
        let (latency, retries, _) = poster
            .post(&runtime.ingest_url, &runtime.token, &event)
            .await?;
        report.events += 1;
        report.retries += retries;
        report.latencies.push(latency);
    }
    Ok(report)
}

/// One tool-proxy call for `call_sid`: `ok`, or the error code the proxy answered (a refusal
/// is part of the call, not a failure of the simulation).
async fn call_tool(poster: &Poster, runtime: &Runtime, tool: &ToolStep, call_sid: &str) -> String {
    let mut body = match &tool.arguments {
        Value::Object(map) => Value::Object(map.clone()),
        _ => json!({}),
    };
    body["provider_call_sid"] = json!(call_sid);
    let key = format!("tc_{call_sid}");
    match poster
        .post_keyed(&tool.url, &runtime.token, &body, Some(&key))
        .await
    {
        Ok((_, _, answer)) if answer["ok"] == true => "ok".to_owned(),
        Ok((_, _, answer)) => answer["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        Err(e) => e.0,
    }
}

/// Runs `calls` calls, `concurrency` at a time, with CallSids `{prefix}{n:08}`.
pub async fn load(
    runtime: &Runtime,
    shape: &CallShape,
    calls: usize,
    concurrency: usize,
    sid_prefix: &str,
) -> LoadReport {
    let poster = Poster::default();
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (poster, runtime, shape, next) =
            (poster.clone(), runtime.clone(), shape.clone(), next.clone());
        let prefix = sid_prefix.to_owned();
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= calls {
                    return done;
                }
                let sid = format!("{prefix}{n:08}");
                done.push(simulate_call(&poster, &runtime, &shape, &sid).await);
            }
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = workers.join_next().await {
        reports.extend(joined.unwrap_or_default());
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = Vec::new();
    let (mut events, mut retries, mut failed, mut first_error) = (0, 0, 0, None);
    let (mut tool_calls, mut tool_failures, mut first_tool_error) = (0, 0, None);
    for r in reports {
        match r {
            Ok(r) => {
                events += r.events;
                retries += r.retries;
                latencies.extend(r.latencies);
                for outcome in r.tool_outcomes {
                    tool_calls += 1;
                    if outcome != "ok" {
                        tool_failures += 1;
                        first_tool_error.get_or_insert(outcome);
                    }
                }
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.0);
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    LoadReport {
        calls,
        failed_calls: failed,
        events,
        retries,
        seconds,
        events_per_second: events as f64 / seconds.max(f64::EPSILON),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        tool_calls,
        tool_failures,
        first_tool_error,
        first_error,
    }
}

/// `runtime-sim simulate-call` usage.
pub const USAGE: &str = "usage: runtime-sim simulate-call [--ingest-url URL] [--token T] \
--runtime-id RT --establishment-id EST --agent-id AGT --agent-version-id AGV \
[--segments N=10] [--pace-ms MS=400] [--calls N=1] [--concurrency C=1] [--sid-prefix CA] \
[--recording-url URL] [--tool PATH --tool-args JSON] [--tool-proxy-url URL]
--ingest-url and --token default to CALLPLANE_INGEST_URL and CALLPLANE_INGEST_TOKEN, which the \
host agent sets in every runtime container. --tool (e.g. dnc/add, email/send) makes the call's \
tool call through the tool proxy at --tool-proxy-url (default CALLPLANE_TOOL_PROXY_URL, also \
set by the host agent) with --tool-args (a JSON object, default {}).";

/// A parsed `simulate-call` command line.
#[derive(Debug)]
pub struct Command {
    pub runtime: Runtime,
    pub shape: CallShape,
    pub calls: usize,
    pub concurrency: usize,
    pub sid_prefix: String,
}

impl Command {
    /// Parses `args` (after `simulate-call`), falling back to `env` for the URL and token.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Self, SimError> {
        let mut flags = std::collections::HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| SimError(format!("unexpected argument `{flag}`\n{USAGE}")))?;
            let value = it
                .next()
                .ok_or_else(|| SimError(format!("--{name} needs a value\n{USAGE}")))?;
            flags.insert(name.to_owned(), value.clone());
        }
        let mut take = |name: &str, env_var: Option<&str>| {
            flags
                .remove(name)
                .or_else(|| env_var.and_then(&env))
                .ok_or_else(|| SimError(format!("--{name} is required\n{USAGE}")))
        };
        let runtime = Runtime {
            ingest_url: take("ingest-url", Some("CALLPLANE_INGEST_URL"))?,
            token: take("token", Some("CALLPLANE_INGEST_TOKEN"))?,
            runtime_id: take("runtime-id", None)?,
            establishment_id: take("establishment-id", None)?,
            agent_id: take("agent-id", None)?,
            agent_version_id: take("agent-version-id", None)?,
        };
        let number = |flags: &mut std::collections::HashMap<String, String>,
                      name: &str,
                      default: u64| {
            flags.remove(name).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .map_err(|_| SimError(format!("--{name} must be a whole number, not `{v}`")))
            })
        };
        let tool = match flags.remove("tool") {
            None => None,
            Some(path) => {
                let base = flags
                    .remove("tool-proxy-url")
                    .or_else(|| env("CALLPLANE_TOOL_PROXY_URL"))
                    .ok_or_else(|| {
                        SimError(format!(
                            "--tool needs --tool-proxy-url or CALLPLANE_TOOL_PROXY_URL\n{USAGE}"
                        ))
                    })?;
                let arguments: Value = match flags.remove("tool-args") {
                    None => json!({}),
                    Some(raw) => serde_json::from_str(&raw)
                        .ok()
                        .filter(Value::is_object)
                        .ok_or_else(|| SimError("--tool-args must be a JSON object".into()))?,
                };
                Some(ToolStep {
                    url: format!(
                        "{}/{}",
                        base.trim_end_matches('/'),
                        path.trim_start_matches('/')
                    ),
                    arguments,
                })
            }
        };
        let shape = CallShape {
            segments: u32::try_from(number(&mut flags, "segments", 10)?)
                .map_err(|_| SimError("--segments is too large".into()))?,
            pace: Duration::from_millis(number(&mut flags, "pace-ms", 400)?),
            recording_url: flags.remove("recording-url"),
            tool,
            ..CallShape::default()
        };
        let calls = number(&mut flags, "calls", 1)? as usize;
        let concurrency = number(&mut flags, "concurrency", 1)? as usize;
        let sid_prefix = flags
            .remove("sid-prefix")
            .unwrap_or_else(|| format!("CA{}", chrono::Utc::now().timestamp_millis()));
        if let Some(unknown) = flags.keys().next() {
            return Err(SimError(format!("unknown option --{unknown}\n{USAGE}")));
        }
        Ok(Self {
            runtime,
            shape,
            calls,
            concurrency,
            sid_prefix,
        })
    }

    /// Runs it.
    pub async fn run(&self) -> LoadReport {
        load(
            &self.runtime,
            &self.shape,
            self.calls,
            self.concurrency,
            &self.sid_prefix,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_every_event_type_with_unique_keys() {
        // GIVEN a call of 4 segments
        let runtime = Runtime {
            ingest_url: "http://127.0.0.1:1/ingest/call-events".into(),
            token: "t".into(),
            runtime_id: "rt_1".into(),
            establishment_id: "est_1".into(),
            agent_id: "agt_1".into(),
            agent_version_id: "agv_1".into(),
        };
        let shape = CallShape {
            segments: 4,
            ..CallShape::default()
        };
        // WHEN its events are built
        let events = call_events(&runtime, &shape, "CA1");
        // THEN they run from call_started to call_ended with a tool pair in between
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds.first(), Some(&"call_started"));
        assert_eq!(kinds.last(), Some(&"call_ended"));
        assert_eq!(
            kinds.iter().filter(|k| **k == "transcript_segment").count(),
            4
        );
        assert!(kinds.contains(&"tool_called") && kinds.contains(&"tool_result"));
        // AND every idempotency key is different
        let keys: std::collections::HashSet<&str> = events
            .iter()
            .map(|e| e["event"]["idempotency_key"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(keys.len(), events.len());
    }
}
