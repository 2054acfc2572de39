//! The `ingest` function, behind a function URL: runtimes post call events here (PRD §9.1,
//! Appendix B), one at a time or in batches of up to 25. Each handler extracts, calls one
//! `callplane::service::ingest` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use callplane::domain::event::Envelope;
use callplane::http::{ApiJson, BearerToken, finish};
use callplane::service::ingest::{self, Accepted, BatchResults};
use callplane::{AppState, Result};
use serde::Deserialize;

/// The function's routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/ingest/call-events", post(one))
        .route("/ingest/call-events/batch", post(batch));
    finish(routes, state)
}

/// `202 {"status":"accepted","outcome":…}` (a replay is accepted too, and changes nothing).
async fn one(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    ApiJson(envelope): ApiJson<Envelope>,
) -> Result<(StatusCode, Json<Accepted>)> {
    let accepted = ingest::one(&app, &token, envelope).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// `POST /ingest/call-events/batch` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<serde_json::Value>,
}

/// `200` with one result per event.
async fn batch(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    ApiJson(body): ApiJson<Batch>,
) -> Result<Json<BatchResults>> {
    ingest::batch(&app, &token, body.events).await.map(Json)
}
