//! The `runtimes` function: an establishment's runtime (provision, lifecycle, status, commands)
//! for admins and members, and the endpoints runtime host agents call with their host token
//! (specs to converge to, command outcomes, health). Each handler extracts, calls one
//! `callplane::service` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::domain::{HostId, RuntimeAction};
use callplane::hostapi::{CommandResult, HealthReportIn, HealthResults, RuntimeSpec, RuntimeSpecs};
use callplane::http::{ApiJson, BearerToken, ListParams, Path, Query, finish};
use callplane::ids::{CommandId, EstablishmentId, RuntimeId};
use callplane::service::hosts;
use callplane::service::runtimes::{
    self as rt, CommandAccepted, CommandView, ProvisionView, RuntimeView, StatusView,
};
use callplane::{AppState, Result};

/// The function's routes (PRD §7.4, and the host-agent side of DESIGN "Runtime contract").
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/establishments/{id}/runtime", get(show).post(provision))
        .route("/runtimes/{runtime_id}", delete(deprovision))
        .route("/runtimes/{runtime_id}/start", post(start))
        .route("/runtimes/{runtime_id}/stop", post(stop))
        .route("/runtimes/{runtime_id}/restart", post(restart))
        .route("/runtimes/{runtime_id}/drain", post(drain))
        .route("/runtimes/{runtime_id}/resume", post(resume))
        .route("/runtimes/{runtime_id}/status", get(status))
        .route("/runtimes/{runtime_id}/commands/{command_id}", get(command))
        .route("/hosts/{host_id}/runtimes", get(host_specs))
        .route("/hosts/{host_id}/runtimes/{runtime_id}", get(host_spec))
        .route(
            "/hosts/{host_id}/commands/{command_id}/result",
            post(host_result),
        )
        .route("/hosts/{host_id}/health", post(host_health));
    finish(routes, state)
}

async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
) -> Result<Json<RuntimeView>> {
    rt::get(&app, &caller, &est).await.map(Json)
}

async fn provision(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
    ApiJson(req): ApiJson<rt::ProvisionRequest>,
) -> Result<(StatusCode, Json<ProvisionView>)> {
    rt::provision(&app, &caller, &est, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

async fn accepted(
    app: &AppState,
    caller: &Principal,
    id: &RuntimeId,
    action: RuntimeAction,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    rt::act(app, caller, id, action)
        .await
        .map(|v| (StatusCode::ACCEPTED, Json(v)))
}

async fn deprovision(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Remove).await
}

async fn start(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Start).await
}

async fn stop(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Stop).await
}

async fn restart(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Restart).await
}

async fn drain(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Drain).await
}

async fn resume(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Resume).await
}

async fn status(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<Json<StatusView>> {
    rt::status(&app, &caller, &id).await.map(Json)
}

async fn command(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, cmd)): Path<(RuntimeId, CommandId)>,
) -> Result<Json<CommandView>> {
    rt::command_status(&app, &caller, &id, &cmd).await.map(Json)
}

async fn host_specs(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    Path(host): Path<HostId>,
    Query(params): Query<ListParams>,
) -> Result<Json<RuntimeSpecs>> {
    hosts::host_specs(&app, host.as_str(), &token, params)
        .await
        .map(Json)
}

async fn host_spec(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    Path((host, id)): Path<(HostId, RuntimeId)>,
) -> Result<Json<RuntimeSpec>> {
    hosts::host_spec(&app, host.as_str(), &token, &id)
        .await
        .map(Json)
}

async fn host_result(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    Path((host, cmd)): Path<(HostId, CommandId)>,
    ApiJson(result): ApiJson<CommandResult>,
) -> Result<StatusCode> {
    hosts::host_command_result(&app, host.as_str(), &token, &cmd, result)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn host_health(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    Path(host): Path<HostId>,
    ApiJson(report): ApiJson<HealthReportIn>,
) -> Result<Json<HealthResults>> {
    hosts::host_health(&app, host.as_str(), &token, report)
        .await
        .map(Json)
}
