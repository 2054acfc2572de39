//! The `calls` function: placing outbound calls, the active list and history, a call and what
//! it produced (transcript, timeline, tool log, recording), and handing a live call off (PRD
//! §7.5, Appendix A.5). Each handler extracts, calls one `callplane::service` function, and
//! answers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::domain::analysis::Analysis;
use callplane::http::{ApiJson, Document, ListParams, Path, Query, finish};
use callplane::ids::CallId;
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::analysis;
use callplane::service::artifacts::{
    self, EventView, RecordingAccess, ToolLog, TranscriptParams, TranscriptView,
};
use callplane::service::calls::{
    self, ActiveParams, CallView, HandoffRequest, HandoffView, HistoryParams, OutboundRequest,
};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.5, Appendix A.5).
callplane::described_routes!(
    outbound, active, history, show, handoff, transcript, events, tool_log, recording, reanalyse,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("calls", routes(), api, Document::OwnPart, state)
}

/// Place an outbound call through the establishment's runtime (operator and up).
#[utoipa::path(
    post, path = "/calls/outbound",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body answer the first call (with `Idempotent-Replayed: true`) and never place a second one; 1 to 255 printable ASCII characters")),
    request_body = OutboundRequest,
    security(("user_token" = [])),
    responses((status = 201, description = "The call is placed", body = CallView, headers(("Idempotent-Replayed" = String, description = "`true` when the answer is a replay of the first request with this key"))), WriteErrors)
)]
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

/// One call (viewer and up).
#[utoipa::path(
    get, path = "/calls/{call_id}",
    params(("call_id" = CallId, Path, description = "The call")),
    security(("user_token" = [])),
    responses((status = 200, body = CallView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
) -> Result<Json<CallView>> {
    calls::get(&app, &caller, &id).await.map(Json)
}

/// Transfer a live call to a human (operator and up).
#[utoipa::path(
    post, path = "/calls/{call_id}/handoff",
    params(("call_id" = CallId, Path, description = "The call")),
    request_body = HandoffRequest,
    security(("user_token" = [])),
    responses((status = 200, description = "The call is being transferred", body = HandoffView), WriteErrors)
)]
async fn handoff(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
    ApiJson(req): ApiJson<HandoffRequest>,
) -> Result<Json<HandoffView>> {
    calls::handoff(&app, &caller, &id, req).await.map(Json)
}

/// Live calls (viewer and up).
#[utoipa::path(
    get, path = "/calls/active",
    params(ActiveParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Calls not yet ended, newest first", body = Page<CallView>), ReadErrors)
)]
async fn active(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<ActiveParams>,
) -> Result<Json<Page<CallView>>> {
    calls::active(&app, &caller, params).await.map(Json)
}

/// Call history, filtered (viewer and up).
#[utoipa::path(
    get, path = "/calls",
    params(HistoryParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Calls, newest first", body = Page<CallView>), ReadErrors)
)]
async fn history(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Page<CallView>>> {
    calls::history(&app, &caller, params).await.map(Json)
}

/// The transcript; poll with the returned cursor while the call is live (viewer and up).
#[utoipa::path(
    get, path = "/calls/{call_id}/transcript",
    params(("call_id" = CallId, Path, description = "The call"), TranscriptParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Segments in spoken order, and a cursor to poll for what arrives next", body = TranscriptView), ReadErrors)
)]
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

/// The call's event timeline (viewer and up).
#[utoipa::path(
    get, path = "/calls/{call_id}/events",
    params(("call_id" = CallId, Path, description = "The call"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "The call's timeline, oldest first", body = Page<EventView>), ReadErrors)
)]
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

/// The tools the agent called during the call (viewer and up).
#[utoipa::path(
    get, path = "/calls/{call_id}/tool-log",
    params(("call_id" = CallId, Path, description = "The call"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Tool calls paired with their results", body = ToolLog), ReadErrors)
)]
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

/// Access to the call's recording (viewer and up).
#[utoipa::path(
    get, path = "/calls/{call_id}/recording",
    params(("call_id" = CallId, Path, description = "The call")),
    security(("user_token" = [])),
    responses((status = 200, description = "A short-lived URL to the recording", body = RecordingAccess), ReadErrors)
)]
async fn recording(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
) -> Result<Json<RecordingAccess>> {
    artifacts::recording(&app, &caller, &id).await.map(Json)
}

/// Analyse an ended call again (operator and up).
#[utoipa::path(
    post, path = "/calls/{call_id}/analysis",
    params(("call_id" = CallId, Path, description = "The call")),
    security(("user_token" = [])),
    responses((status = 202, description = "A new run is queued, with the analysis section of the version that took the call; poll the call for its outcome", body = Analysis), WriteErrors)
)]
async fn reanalyse(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<CallId>,
) -> Result<(StatusCode, Json<Analysis>)> {
    analysis::rerun(&app, &caller, &id)
        .await
        .map(|a| (StatusCode::ACCEPTED, Json(a)))
}
