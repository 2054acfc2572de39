//! The `integrations` function: an establishment's connections to outside services (PRD
//! §7.8, A.7) and Google's OAuth callback. Each handler extracts, calls one
//! `callplane::service::integrations` function, and answers.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::domain::integration::ConnectRequest;
use callplane::http::{ApiJson, Document, Path, Query, finish};
use callplane::ids::{EstablishmentId, IntegrationId};
use callplane::openapi::{PublicErrors, ReadErrors, WriteErrors};
use callplane::service::integrations::{
    self, CallbackParams, Connected, Disconnected, IntegrationPatch, IntegrationView, TestOutcome,
};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.8, A.7).
callplane::described_routes!(list, connect, show, update, disconnect, test, callback);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("integrations", routes(), api, Document::OwnPart, state)
}

/// The establishment's integrations (members). Never a token or secret.
#[utoipa::path(
    get, path = "/establishments/{id}/integrations",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    security(("user_token" = [])),
    responses((status = 200, description = "One connection per type at most", body = Page<IntegrationView>), ReadErrors)
)]
async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
) -> Result<Json<Page<IntegrationView>>> {
    integrations::list(&app, &caller, &est).await.map(Json)
}

/// Connect an integration (admin). Token credentials are checked against the provider first;
/// Google Calendar answers `pending_auth` and the consent URL to send the browser to.
#[utoipa::path(
    post, path = "/establishments/{id}/integrations",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = ConnectRequest,
    security(("user_token" = [])),
    responses((status = 201, description = "Connected, or waiting for consent (`auth_url`)", body = Connected), WriteErrors)
)]
async fn connect(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    ApiJson(req): ApiJson<ConnectRequest>,
) -> Result<(StatusCode, Json<Connected>)> {
    integrations::connect(&app, &caller, &est, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// One integration (members).
#[utoipa::path(
    get, path = "/integrations/{integration_id}",
    params(("integration_id" = IntegrationId, Path, description = "The integration")),
    security(("user_token" = [])),
    responses((status = 200, body = IntegrationView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<IntegrationId>,
) -> Result<Json<IntegrationView>> {
    integrations::get(&app, &caller, &id).await.map(Json)
}

/// Enable, disable or rename an integration (admin).
#[utoipa::path(
    patch, path = "/integrations/{integration_id}",
    params(("integration_id" = IntegrationId, Path, description = "The integration")),
    request_body = IntegrationPatch,
    security(("user_token" = [])),
    responses((status = 200, body = IntegrationView), WriteErrors)
)]
async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<IntegrationId>,
    ApiJson(patch): ApiJson<IntegrationPatch>,
) -> Result<Json<IntegrationView>> {
    integrations::patch(&app, &caller, &id, patch)
        .await
        .map(Json)
}

/// Disconnect an integration (admin): the grant is revoked at the provider where it can be
/// (Google), and the stored credentials are deleted.
#[utoipa::path(
    delete, path = "/integrations/{integration_id}",
    params(("integration_id" = IntegrationId, Path, description = "The integration")),
    security(("user_token" = [])),
    responses((status = 200, body = Disconnected), WriteErrors)
)]
async fn disconnect(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<IntegrationId>,
) -> Result<Json<Disconnected>> {
    integrations::disconnect(&app, &caller, &id).await.map(Json)
}

/// Test an integration with a harmless provider call (admin); the answer says what failed.
#[utoipa::path(
    post, path = "/integrations/{integration_id}/test",
    params(("integration_id" = IntegrationId, Path, description = "The integration")),
    security(("user_token" = [])),
    responses((status = 200, body = TestOutcome), WriteErrors)
)]
async fn test(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<IntegrationId>,
) -> Result<Json<TestOutcome>> {
    integrations::test(&app, &caller, &id).await.map(Json)
}

/// Google's OAuth redirect (no token: the signed, single-use `state` is the credential). Sends
/// the browser back to the frontend's `redirect_url` with `integration_id`, `outcome`
/// (`connected` or `error`) and `error`.
#[utoipa::path(
    get, path = "/integrations/oauth/callback",
    params(CallbackParams),
    responses((status = 302, description = "Back to the frontend's redirect_url"), PublicErrors)
)]
async fn callback(
    State(app): State<AppState>,
    Query(params): Query<CallbackParams>,
) -> Result<Response> {
    let location = integrations::oauth_callback(&app, params).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response())
}
