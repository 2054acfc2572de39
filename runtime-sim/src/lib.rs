//! runtime-sim: a stand-in for the voice-agent runtime that honours the runtime contract
//! (DESIGN.md "Runtime contract"): `GET /readyz`, `GET /info`, `POST /control/drain`,
//! `POST /control/resume`. Tests and operators can make it report not ready with issues, at
//! start (`SIM_NOT_READY="issue a;issue b"`) or live (`POST /control/sim/readiness`).

use axum::extract::State;
use axum::http::StatusCode;
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
