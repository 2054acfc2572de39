//! The `calls` function: placing outbound calls, the active list and history, a call and what
//! it produced (transcript, timeline, tool log, recording), and handing a live call off (PRD
//! §7.5, Appendix A.5). Each handler extracts, calls one `callplane::service` function, and
//! answers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, ListParams, Path, Query, finish};
use callplane::ids::CallId;
use callplane::service::artifacts::{
    self, EventView, RecordingAccess, ToolLog, TranscriptParams, TranscriptView,
};
use callplane::service::calls::{
    self, ActiveParams, CallView, HandoffRequest, HandoffView, HistoryParams, OutboundRequest,
};
use callplane::store::Page;
use callplane::{AppState, Result};

/// The function's routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/calls/outbound", post(outbound))
        .route("/calls/active", get(active))
        .route("/calls", get(history))
        .route("/calls/{call_id}", get(show))
        .route("/calls/{call_id}/handoff", post(handoff))
        .route("/calls/{call_id}/transcript", get(transcript))
        .route("/calls/{call_id}/events", get(events))
        .route("/calls/{call_id}/tool-log", get(tool_log))
        .route("/calls/{call_id}/recording", get(recording));
    finish(routes, state)
}

/// 201 with the call; a replay of an earlier request says so in `Idempotent-Replayed: true`.
async fn outbound(
    State(app): State<AppState>,
    caller: Principal,
    headers: HeaderMap,
    ApiJson(req): ApiJson<OutboundRequest>,
) -> Result<Response> {
    let key = calls::idempotency_key(
        headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap_or("\u{0}")),
    )?;
    let placed = calls::outbound(&app, &caller, key, req).await?;
    let mut response = (StatusCode::CREATED, Json(placed.call)).into_response();
    if placed.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
) -> Result<Json<CallView>> {
    calls::get(&app, &caller, &id).await.map(Json)
}

async fn handoff(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
    ApiJson(req): ApiJson<HandoffRequest>,
) -> Result<Json<HandoffView>> {
    calls::handoff(&app, &caller, &id, req).await.map(Json)
}

async fn active(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<ActiveParams>,
) -> Result<Json<Page<CallView>>> {
    calls::active(&app, &caller, params).await.map(Json)
}

async fn history(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Page<CallView>>> {
    calls::history(&app, &caller, params).await.map(Json)
}

async fn transcript(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
    Query(params): Query<TranscriptParams>,
) -> Result<Json<TranscriptView>> {
    artifacts::transcript(&app, &caller, &id, params)
        .await
        .map(Json)
}

async fn events(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<EventView>>> {
    artifacts::events(&app, &caller, &id, params)
        .await
        .map(Json)
}

async fn tool_log(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
    Query(params): Query<ListParams>,
) -> Result<Json<ToolLog>> {
    artifacts::tool_log(&app, &caller, &id, params)
        .await
        .map(Json)
}

async fn recording(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
) -> Result<Json<RecordingAccess>> {
    artifacts::recording(&app, &caller, &id).await.map(Json)
}
