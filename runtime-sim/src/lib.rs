//! runtime-sim: a stand-in for the voice-agent runtime that honours the runtime contract
//! (DESIGN.md "Runtime contract"): `GET /readyz`, `GET /info`, `POST /control/drain`,
//! `POST /control/resume`. Tests and operators can make it report not ready with issues, at
//! start (`SIM_NOT_READY="issue a;issue b"`) or live (`POST /control/sim/readiness`).
//!
//! `/media-stream` accepts Twilio's bidirectional media-stream WebSocket (`connected`, `start`
//! with `customParameters`, `media`, `stop`) and counts the calls; `GET /sim/calls` lists what
//! each call's `start` carried, so a test can see a call arrive at the right runtime.
//!
//! [`simulate`] drives whole calls against the control plane's ingest endpoint
//! (`runtime-sim simulate-call`), once or as a load generator.

pub mod simulate;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};

/// What the simulated runtime is doing.
#[derive(Debug, Default)]
pub struct Sim {
    pub ready: bool,
    pub issues: Vec<String>,
    pub draining: bool,
    pub active_calls: u64,
    pub total_calls_handled: u64,
    pub version: String,
    /// Every media stream that started, in order.
    pub calls: Vec<SimCall>,
}

/// One media stream as the runtime saw it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SimCall {
    pub call_sid: String,
    pub stream_sid: String,
    /// The `<Parameter>`s of the TwiML `<Stream>` (call_id, agent_id, …).
    pub custom_parameters: serde_json::Map<String, Value>,
    pub media_frames: u64,
    /// A `stop` message arrived (or the socket closed).
    pub ended: bool,
}

/// Shared state of the server.
pub type Shared = Arc<Mutex<Sim>>;

impl Sim {
    /// A ready runtime, unless `not_ready` lists issues (`;`-separated).
    pub fn new(version: &str, not_ready: Option<&str>) -> Self {
        let issues: Vec<String> = not_ready
            .map(|s| {
                s.split(';')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            ready: issues.is_empty(),
            issues,
            version: version.to_owned(),
            ..Self::default()
        }
    }

    fn info(&self) -> Value {
        json!({
            "active_calls": self.active_calls,
            "total_calls_handled": self.total_calls_handled,
            "draining": self.draining,
            "version": self.version,
        })
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Sim> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The contract's routes plus the simulator's own control.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/control/drain", post(drain))
        .route("/control/resume", post(resume))
        .route("/control/sim/readiness", post(set_readiness))
        .route("/media-stream", get(media_stream))
        .route("/sim/calls", get(calls))
        .with_state(state)
}

async fn readyz(State(state): State<Shared>) -> (StatusCode, Json<Value>) {
    let sim = lock(&state);
    let code = if sim.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "ready": sim.ready, "issues": sim.issues })),
    )
}

async fn info(State(state): State<Shared>) -> Json<Value> {
    Json(lock(&state).info())
}

async fn drain(State(state): State<Shared>) -> Json<Value> {
    let mut sim = lock(&state);
    sim.draining = true;
    Json(sim.info())
}

async fn resume(State(state): State<Shared>) -> Json<Value> {
    let mut sim = lock(&state);
    sim.draining = false;
    Json(sim.info())
}

/// `POST /control/sim/readiness` body.
#[derive(Debug, Deserialize)]
struct Readiness {
    ready: bool,
    #[serde(default)]
    issues: Vec<String>,
}

async fn set_readiness(State(state): State<Shared>, Json(r): Json<Readiness>) -> Json<Value> {
    let mut sim = lock(&state);
    sim.ready = r.ready;
    sim.issues = r.issues;
    Json(json!({ "ready": sim.ready, "issues": sim.issues }))
}

async fn calls(State(state): State<Shared>) -> Json<Value> {
    Json(json!({ "items": lock(&state).calls }))
}

async fn media_stream(ws: WebSocketUpgrade, State(state): State<Shared>) -> Response {
    ws.on_upgrade(move |socket| stream(socket, state))
}

/// Reads one media stream until `stop` or close, counting the call while it lasts.
async fn stream(mut socket: WebSocket, state: Shared) {
    let mut call: Option<usize> = None;
    while let Some(Ok(message)) = socket.recv().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let mut sim = lock(&state);
        match event["event"].as_str() {
            Some("start") if call.is_none() => {
                let start = &event["start"];
                sim.calls.push(SimCall {
                    call_sid: start["callSid"].as_str().unwrap_or_default().to_owned(),
                    stream_sid: start["streamSid"].as_str().unwrap_or_default().to_owned(),
                    custom_parameters: start["customParameters"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    ..SimCall::default()
                });
                call = Some(sim.calls.len() - 1);
                sim.active_calls += 1;
                sim.total_calls_handled += 1;
            }
            Some("media") => {
                if let Some(i) = call {
                    sim.calls[i].media_frames += 1;
                }
            }
            Some("stop") => break,
            _ => {}
        }
    }
    if let Some(i) = call {
        let mut sim = lock(&state);
        sim.calls[i].ended = true;
        sim.active_calls = sim.active_calls.saturating_sub(1);
    }
}
