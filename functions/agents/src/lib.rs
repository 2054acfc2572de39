//! The `agents` function: agents, their versions (drafts, publish, rollback), their deployment
//! history, and the phone numbers that route inbound calls to them. Each handler extracts,
//! calls one `callplane::service` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, ListParams, OptionalJson, Path, Query, finish};
use callplane::ids::{AgentId, AgentVersionId, EstablishmentId, PhoneNumberId};
use callplane::service::agents::{
    self, ActivateRequest, ActivationView, AgentView, DeploymentView, VersionView,
};
use callplane::service::phone_numbers::{self as numbers, PhoneNumberView};
use callplane::store::Page;
use callplane::{AppState, Result};

/// The function's routes (PRD §7.3, §8 phone_numbers).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/establishments/{id}/agents", get(list).post(create))
        .route(
            "/agents/{agent_id}",
            get(show).patch(update).delete(archive),
        )
        .route(
            "/agents/{agent_id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/agents/{agent_id}/versions/{version_id}",
            get(show_version).patch(update_version),
        )
        .route(
            "/agents/{agent_id}/versions/{version_id}/publish",
            post(publish),
        )
        .route(
            "/agents/{agent_id}/versions/{version_id}/rollback",
            post(rollback),
        )
        .route("/agents/{agent_id}/deployments", get(deployments))
        .route(
            "/establishments/{id}/phone-numbers",
            get(list_numbers).post(create_number),
        )
        .route(
            "/phone-numbers/{phone_number_id}",
            get(show_number).patch(update_number).delete(delete_number),
        );
    finish(routes, state)
}

async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<AgentView>>> {
    agents::list(&app, &caller, &est, params).await.map(Json)
}

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

async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
) -> Result<Json<AgentView>> {
    agents::get(&app, &caller, &id).await.map(Json)
}

async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
    ApiJson(req): ApiJson<agents::UpdateAgent>,
) -> Result<Json<AgentView>> {
    agents::update(&app, &caller, &id, req).await.map(Json)
}

async fn archive(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<AgentId>,
) -> Result<StatusCode> {
    agents::archive(&app, &caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

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

async fn show_version(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, version)): Path<(AgentId, AgentVersionId)>,
) -> Result<Json<VersionView>> {
    agents::get_version(&app, &caller, &id, &version)
        .await
        .map(Json)
}

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

async fn list_numbers(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<PhoneNumberView>>> {
    numbers::list(&app, &caller, &est, params).await.map(Json)
}

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

async fn show_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
) -> Result<Json<PhoneNumberView>> {
    numbers::get(&app, &caller, &id).await.map(Json)
}

async fn update_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
    ApiJson(req): ApiJson<numbers::UpdatePhoneNumber>,
) -> Result<Json<PhoneNumberView>> {
    numbers::update(&app, &caller, &id, req).await.map(Json)
}

async fn delete_number(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<PhoneNumberId>,
) -> Result<StatusCode> {
    numbers::delete(&app, &caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
