//! The `ingest` function, behind a function URL: runtimes post call events here (PRD §9.1,
//! Appendix B), one at a time or in batches of up to 25. Each handler extracts, calls one
//! `callplane::service::ingest` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::domain::event::Envelope;
use callplane::http::{ApiJson, BearerToken, Document, finish};
use callplane::openapi::WriteErrors;
use callplane::service::ingest::{self, Accepted, BatchResults};
use callplane::{AppState, Result};
use serde::Deserialize;

// The function's routes and their descriptions (PRD Appendix B: the runtimes' side).
callplane::described_routes!(one, batch,);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("ingest", routes(), api, Document::OwnPart, state)
}

/// Runtime: one call event (Appendix B). Retries with the same idempotency key change nothing.
#[utoipa::path(
    post, path = "/ingest/call-events",
    request_body = Envelope,
    security(("ingest_token" = [])),
    responses((status = 202, description = "Stored, or recognised as a duplicate of its idempotency key", body = Accepted), WriteErrors)
)]
async fn one(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    ApiJson(envelope): ApiJson<Envelope>,
) -> Result<(StatusCode, Json<Accepted>)> {
    let accepted = ingest::one(&app, &token, envelope).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// `POST /ingest/call-events/batch` body.
/// Up to 25 envelopes; each is checked on its own, so one bad event rejects only itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Batch {
    #[schema(value_type = Vec<Envelope>, min_items = 1, max_items = 25)]
    events: Vec<serde_json::Value>,
}

/// `200` with one result per event.
/// Runtime: up to 25 call events in one request.
#[utoipa::path(
    post, path = "/ingest/call-events/batch",
    request_body = Batch,
    security(("ingest_token" = [])),
    responses((status = 200, description = "One result per event, in order", body = BatchResults), WriteErrors)
)]
async fn batch(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    ApiJson(body): ApiJson<Batch>,
) -> Result<Json<BatchResults>> {
    ingest::batch(&app, &token, body.events).await.map(Json)
}
