//! The `calls` function: placing outbound calls, reading a call, handing a live call off
//! (PRD §7.5, Appendix A.5). Each handler extracts, calls one `callplane::service` function,
//! and answers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Path, finish};
use callplane::ids::CallId;
use callplane::service::calls::{self, CallView, HandoffRequest, HandoffView, OutboundRequest};
use callplane::{AppState, Result};

/// The function's routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/calls/outbound", post(outbound))
        .route("/calls/{call_id}", get(show))
        .route("/calls/{call_id}/handoff", post(handoff));
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
