//! The `agents` function: agents, their versions (drafts, publish, rollback), their deployment
//! history, and the phone numbers that route inbound calls to them. Each handler extracts,
//! calls one `callplane::service` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Document, ListParams, OptionalJson, Path, Query, finish};
use callplane::ids::{AgentId, AgentVersionId, EstablishmentId, PhoneNumberId};
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::agents::{
    self, ActivateRequest, ActivationView, AgentView, DeploymentView, VersionView,
};
use callplane::service::phone_numbers::{self as numbers, PhoneNumberView};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.3, §8 phone_numbers).
callplane::described_routes!(
    list,
    create,
    show,
    update,
    archive,
    list_versions,
    create_version,
    show_version,
    update_version,
    publish,
    rollback,
    deployments,
    list_numbers,
    create_number,
    show_number,
    update_number,
    delete_number,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("agents", routes(), api, Document::OwnPart, state)
}

/// List the establishment's agents (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}/agents",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "The establishment's agents, newest first", body = Page<AgentView>), ReadErrors)
)]
async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<AgentView>>> {
    agents::list(&app, &caller, &est, params).await.map(Json)
}

/// Create an agent (admin).
#[utoipa::path(
    post, path = "/establishments/{id}/agents",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = agents::CreateAgent,
    security(("user_token" = [])),
    responses((status = 201, description = "The agent, with an empty first draft", body = AgentView), WriteErrors)
)]
async fn create(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    ApiJson(req): ApiJson<agents::CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>)> {
    agents::create(&app, &caller, &est, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// One agent.
#[utoipa::path(
    get, path = "/agents/{agent_id}",
    params(("agent_id" = AgentId, Path, description = "The agent")),
    security(("user_token" = [])),
    responses((status = 200, body = AgentView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
) -> Result<Json<AgentView>> {
    agents::get(&app, &caller, &id).await.map(Json)
}

/// Rename or describe an agent (admin).
#[utoipa::path(
    patch, path = "/agents/{agent_id}",
    params(("agent_id" = AgentId, Path, description = "The agent")),
    request_body = agents::UpdateAgent,
    security(("user_token" = [])),
    responses((status = 200, body = AgentView), WriteErrors)
)]
async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
    ApiJson(req): ApiJson<agents::UpdateAgent>,
) -> Result<Json<AgentView>> {
    agents::update(&app, &caller, &id, req).await.map(Json)
}

/// Archive an agent (admin).
#[utoipa::path(
    delete, path = "/agents/{agent_id}",
    params(("agent_id" = AgentId, Path, description = "The agent")),
    security(("user_token" = [])),
    responses((status = 204, description = "Archived; its numbers stop routing to it"), WriteErrors)
)]
async fn archive(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
) -> Result<StatusCode> {
    agents::archive(&app, &caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// The agent's versions, newest first.
#[utoipa::path(
    get, path = "/agents/{agent_id}/versions",
    params(("agent_id" = AgentId, Path, description = "The agent"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<VersionView>), ReadErrors)
)]
async fn list_versions(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<VersionView>>> {
    agents::list_versions(&app, &caller, &id, params)
        .await
        .map(Json)
}

/// Create a draft version (admin).
#[utoipa::path(
    post, path = "/agents/{agent_id}/versions",
    params(("agent_id" = AgentId, Path, description = "The agent")),
    request_body = agents::CreateVersion,
    security(("user_token" = [])),
    responses((status = 201, description = "A new draft", body = VersionView), WriteErrors)
)]
async fn create_version(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
    ApiJson(req): ApiJson<agents::CreateVersion>,
) -> Result<(StatusCode, Json<VersionView>)> {
    agents::create_version(&app, &caller, &id, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// One version with its brain.
#[utoipa::path(
    get, path = "/agents/{agent_id}/versions/{version_id}",
    params(("agent_id" = AgentId, Path, description = "The agent"), ("version_id" = AgentVersionId, Path, description = "The version")),
    security(("user_token" = [])),
    responses((status = 200, body = VersionView), ReadErrors)
)]
async fn show_version(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, version)): Path<(AgentId, AgentVersionId)>,
) -> Result<Json<VersionView>> {
    agents::get_version(&app, &caller, &id, &version)
        .await
        .map(Json)
}

/// Edit a draft (admin); published versions are immutable (409).
#[utoipa::path(
    patch, path = "/agents/{agent_id}/versions/{version_id}",
    params(("agent_id" = AgentId, Path, description = "The agent"), ("version_id" = AgentVersionId, Path, description = "The version")),
    request_body = agents::UpdateVersion,
    security(("user_token" = [])),
    responses((status = 200, body = VersionView), WriteErrors)
)]
async fn update_version(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, version)): Path<(AgentId, AgentVersionId)>,
    ApiJson(req): ApiJson<agents::UpdateVersion>,
) -> Result<Json<VersionView>> {
    agents::update_version(&app, &caller, &id, &version, req)
        .await
        .map(Json)
}

/// Publish a version (admin): it takes the next calls. The body may be left out.
#[utoipa::path(
    post, path = "/agents/{agent_id}/versions/{version_id}/publish",
    params(("agent_id" = AgentId, Path, description = "The agent"), ("version_id" = AgentVersionId, Path, description = "The version")),
    request_body = Option<ActivateRequest>,
    security(("user_token" = [])),
    responses((status = 200, description = "The version is the agent's active one", body = ActivationView), WriteErrors)
)]
async fn publish(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, version)): Path<(AgentId, AgentVersionId)>,
    OptionalJson(req): OptionalJson<ActivateRequest>,
) -> Result<Json<ActivationView>> {
    agents::publish(&app, &caller, &id, &version, req)
        .await
        .map(Json)
}

/// Roll back to an earlier published version (admin). The body may be left out.
#[utoipa::path(
    post, path = "/agents/{agent_id}/versions/{version_id}/rollback",
    params(("agent_id" = AgentId, Path, description = "The agent"), ("version_id" = AgentVersionId, Path, description = "The version")),
    request_body = Option<ActivateRequest>,
    security(("user_token" = [])),
    responses((status = 200, description = "The earlier version is active again", body = ActivationView), WriteErrors)
)]
async fn rollback(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, version)): Path<(AgentId, AgentVersionId)>,
    OptionalJson(req): OptionalJson<ActivateRequest>,
) -> Result<Json<ActivationView>> {
    agents::rollback(&app, &caller, &id, &version, req)
        .await
        .map(Json)
}

/// The agent's deployment history.
#[utoipa::path(
    get, path = "/agents/{agent_id}/deployments",
    params(("agent_id" = AgentId, Path, description = "The agent"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Publishes and rollbacks, newest first", body = Page<DeploymentView>), ReadErrors)
)]
async fn deployments(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<DeploymentView>>> {
    agents::deployments(&app, &caller, &id, params)
        .await
        .map(Json)
}

/// The establishment's phone numbers.
#[utoipa::path(
    get, path = "/establishments/{id}/phone-numbers",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<PhoneNumberView>), ReadErrors)
)]
async fn list_numbers(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<PhoneNumberView>>> {
    numbers::list(&app, &caller, &est, params).await.map(Json)
}

/// Route a phone number of the account to an agent (admin).
#[utoipa::path(
    post, path = "/establishments/{id}/phone-numbers",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = numbers::CreatePhoneNumber,
    security(("user_token" = [])),
    responses((status = 201, description = "The number, claimed in the Twilio account and routed", body = PhoneNumberView), WriteErrors)
)]
async fn create_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    ApiJson(req): ApiJson<numbers::CreatePhoneNumber>,
) -> Result<(StatusCode, Json<PhoneNumberView>)> {
    numbers::create(&app, &caller, &est, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// One phone number.
#[utoipa::path(
    get, path = "/phone-numbers/{phone_number_id}",
    params(("phone_number_id" = PhoneNumberId, Path, description = "The phone number")),
    security(("user_token" = [])),
    responses((status = 200, body = PhoneNumberView), ReadErrors)
)]
async fn show_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
) -> Result<Json<PhoneNumberView>> {
    numbers::get(&app, &caller, &id).await.map(Json)
}

/// Re-route or label a phone number (admin).
#[utoipa::path(
    patch, path = "/phone-numbers/{phone_number_id}",
    params(("phone_number_id" = PhoneNumberId, Path, description = "The phone number")),
    request_body = numbers::UpdatePhoneNumber,
    security(("user_token" = [])),
    responses((status = 200, body = PhoneNumberView), WriteErrors)
)]
async fn update_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
    ApiJson(req): ApiJson<numbers::UpdatePhoneNumber>,
) -> Result<Json<PhoneNumberView>> {
    numbers::update(&app, &caller, &id, req).await.map(Json)
}

/// Release a phone number (admin).
#[utoipa::path(
    delete, path = "/phone-numbers/{phone_number_id}",
    params(("phone_number_id" = PhoneNumberId, Path, description = "The phone number")),
    security(("user_token" = [])),
    responses((status = 204, description = "Released: calls to it are no longer routed"), WriteErrors)
)]
async fn delete_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
) -> Result<StatusCode> {
    numbers::delete(&app, &caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
