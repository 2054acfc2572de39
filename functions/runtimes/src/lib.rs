//! The `runtimes` function: an establishment's runtime (provision, lifecycle, status, commands)
//! for admins and members, and the endpoints runtime host agents call with their host token
//! (specs to converge to, command outcomes, health). Each handler extracts, calls one
//! `callplane::service` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::domain::{HostId, RuntimeAction};
use callplane::hostapi::{CommandResult, HealthReportIn, HealthResults, RuntimeSpec, RuntimeSpecs};
use callplane::http::{ApiJson, BearerToken, Document, ListParams, Path, Query, finish};
use callplane::ids::{CommandId, EstablishmentId, RuntimeId};
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::hosts;
use callplane::service::runtimes::{
    self as rt, CommandAccepted, CommandView, ProvisionView, RuntimeView, StatusView,
};
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.4, and the host-agent side of DESIGN "Runtime contract").
callplane::described_routes!(
    show,
    provision,
    deprovision,
    start,
    stop,
    restart,
    drain,
    resume,
    status,
    command,
    host_specs,
    host_spec,
    host_result,
    host_health,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("runtimes", routes(), api, Document::OwnPart, state)
}

/// The establishment's runtime (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}/runtime",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    security(("user_token" = [])),
    responses((status = 200, body = RuntimeView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(est): Path<EstablishmentId>,
) -> Result<Json<RuntimeView>> {
    rt::get(&app, &caller, &est).await.map(Json)
}

/// Provision the establishment's runtime (admin).
#[utoipa::path(
    post, path = "/establishments/{id}/runtime",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = rt::ProvisionRequest,
    security(("user_token" = [])),
    responses((status = 201, description = "The runtime, placed on a host, and its create command", body = ProvisionView), WriteErrors)
)]
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

/// Remove the runtime (admin).
#[utoipa::path(
    delete, path = "/runtimes/{runtime_id}",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn deprovision(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Remove).await
}

/// Start the runtime (admin).
#[utoipa::path(
    post, path = "/runtimes/{runtime_id}/start",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn start(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Start).await
}

/// Stop the runtime (admin).
#[utoipa::path(
    post, path = "/runtimes/{runtime_id}/stop",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn stop(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Stop).await
}

/// Restart the runtime (admin).
#[utoipa::path(
    post, path = "/runtimes/{runtime_id}/restart",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn restart(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Restart).await
}

/// Stop routing new calls to the runtime; calls in progress finish (admin).
#[utoipa::path(
    post, path = "/runtimes/{runtime_id}/drain",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn drain(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Drain).await
}

/// Route new calls to a drained runtime again (admin).
#[utoipa::path(
    post, path = "/runtimes/{runtime_id}/resume",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 202, description = "The command is queued for the runtime's host; poll its status", body = CommandAccepted), WriteErrors)
)]
async fn resume(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<(StatusCode, Json<CommandAccepted>)> {
    accepted(&app, &caller, &id, RuntimeAction::Resume).await
}

/// Desired and observed state, health and recent errors (viewer and up).
#[utoipa::path(
    get, path = "/runtimes/{runtime_id}/status",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("user_token" = [])),
    responses((status = 200, body = StatusView), ReadErrors)
)]
async fn status(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<RuntimeId>,
) -> Result<Json<StatusView>> {
    rt::status(&app, &caller, &id).await.map(Json)
}

/// One lifecycle command and its outcome (viewer and up).
#[utoipa::path(
    get, path = "/runtimes/{runtime_id}/commands/{command_id}",
    params(("runtime_id" = RuntimeId, Path, description = "The runtime"), ("command_id" = CommandId, Path, description = "The command")),
    security(("user_token" = [])),
    responses((status = 200, body = CommandView), ReadErrors)
)]
async fn command(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, cmd)): Path<(RuntimeId, CommandId)>,
) -> Result<Json<CommandView>> {
    rt::command_status(&app, &caller, &id, &cmd).await.map(Json)
}

/// Host agent: the runtimes placed on this host, for reconciliation.
#[utoipa::path(
    get, path = "/hosts/{host_id}/runtimes",
    params(("host_id" = HostId, Path, description = "The host"), ListParams),
    security(("host_token" = [])),
    responses((status = 200, description = "What should run on the host", body = RuntimeSpecs), ReadErrors)
)]
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

/// Host agent: one runtime's spec (image, env, limits).
#[utoipa::path(
    get, path = "/hosts/{host_id}/runtimes/{runtime_id}",
    params(("host_id" = HostId, Path, description = "The host"), ("runtime_id" = RuntimeId, Path, description = "The runtime")),
    security(("host_token" = [])),
    responses((status = 200, body = RuntimeSpec), ReadErrors)
)]
async fn host_spec(
    State(app): State<AppState>,
    BearerToken(token): BearerToken,
    Path((host, id)): Path<(HostId, RuntimeId)>,
) -> Result<Json<RuntimeSpec>> {
    hosts::host_spec(&app, host.as_str(), &token, &id)
        .await
        .map(Json)
}

/// Host agent: the outcome of a lifecycle command.
#[utoipa::path(
    post, path = "/hosts/{host_id}/commands/{command_id}/result",
    params(("host_id" = HostId, Path, description = "The host"), ("command_id" = CommandId, Path, description = "The command")),
    request_body = CommandResult,
    security(("host_token" = [])),
    responses((status = 204, description = "Recorded (a repeated result changes nothing)"), WriteErrors)
)]
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

/// Host agent: health of the runtimes on this host.
#[utoipa::path(
    post, path = "/hosts/{host_id}/health",
    params(("host_id" = HostId, Path, description = "The host")),
    request_body = HealthReportIn,
    security(("host_token" = [])),
    responses((status = 200, description = "One result per runtime reported", body = HealthResults), WriteErrors)
)]
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
