//! The `establishments` function: establishments, their telephony policy, and their people
//! (members, invitations, roles), its do-not-call list, its audit log and its usage. Each handler extracts, calls one `callplane::service`
//! function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Document, ListParams, Path, Query, finish};
use callplane::ids::{EstablishmentId, UserId};
use callplane::openapi::{ReadErrors, WriteErrors};
use callplane::service::audit::{self, AuditView};
use callplane::service::do_not_call::{self as dnc, AddDoNotCall, DoNotCallView};
use callplane::service::establishments::{self as est, EstablishmentSummary, TelephonyView};
use callplane::service::members::PersonRow;
use callplane::service::reports::{self, Usage, UsageParams};
use callplane::service::{EstablishmentView, members};
use callplane::store::Page;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.1 users, §7.2).
callplane::described_routes!(
    list,
    create,
    show,
    update,
    telephony,
    update_telephony,
    people,
    invite,
    remove_member,
    change_role,
    audit_log,
    do_not_call,
    add_do_not_call,
    remove_do_not_call,
    usage,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("establishments", routes(), api, Document::OwnPart, state)
}

/// The establishments the caller is a member of, with the caller's role.
#[utoipa::path(
    get, path = "/establishments",
    params(ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "The establishments the caller belongs to", body = Page<EstablishmentSummary>), ReadErrors)
)]
async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<EstablishmentSummary>>> {
    est::list(&app, &caller, params).await.map(Json)
}

/// Create an establishment (an admin of another establishment).
#[utoipa::path(
    post, path = "/establishments",
    request_body = est::CreateEstablishment,
    security(("user_token" = [])),
    responses((status = 201, description = "The establishment; the caller is its admin", body = EstablishmentView), WriteErrors)
)]
async fn create(
    State(app): State<AppState>,
    caller: Principal,
    ApiJson(req): ApiJson<est::CreateEstablishment>,
) -> Result<(StatusCode, Json<EstablishmentView>)> {
    est::create(&app, &caller, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// One establishment (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    security(("user_token" = [])),
    responses((status = 200, body = EstablishmentView), ReadErrors)
)]
async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
) -> Result<Json<EstablishmentView>> {
    est::get(&app, &caller, &id).await.map(Json)
}

/// Rename, or change locale and time zone (admin).
#[utoipa::path(
    patch, path = "/establishments/{id}",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = est::UpdateEstablishment,
    security(("user_token" = [])),
    responses((status = 200, body = EstablishmentView), WriteErrors)
)]
async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    ApiJson(req): ApiJson<est::UpdateEstablishment>,
) -> Result<Json<EstablishmentView>> {
    est::update(&app, &caller, &id, req).await.map(Json)
}

/// The telephony policy and inbound numbers (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}/telephony",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    security(("user_token" = [])),
    responses((status = 200, body = TelephonyView), ReadErrors)
)]
async fn telephony(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
) -> Result<Json<TelephonyView>> {
    est::telephony(&app, &caller, &id).await.map(Json)
}

/// Change the telephony policy: business hours, handoff number, recording (admin).
#[utoipa::path(
    patch, path = "/establishments/{id}/telephony",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = est::UpdateTelephony,
    security(("user_token" = [])),
    responses((status = 200, body = TelephonyView), WriteErrors)
)]
async fn update_telephony(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    ApiJson(req): ApiJson<est::UpdateTelephony>,
) -> Result<Json<TelephonyView>> {
    est::update_telephony(&app, &caller, &id, req)
        .await
        .map(Json)
}

/// Members and pending invitations (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}/users",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Members and pending invitations", body = Page<PersonRow>), ReadErrors)
)]
async fn people(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<PersonRow>>> {
    members::list(&app, &caller, &id, params).await.map(Json)
}

/// Invite a user by email with a role (admin).
#[utoipa::path(
    post, path = "/establishments/{id}/users",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = members::InviteRequest,
    security(("user_token" = [])),
    responses((status = 201, description = "The invitation (emailed), or the membership of an existing user", body = members::InviteResponse), WriteErrors)
)]
async fn invite(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    ApiJson(req): ApiJson<members::InviteRequest>,
) -> Result<(StatusCode, Json<members::InviteResponse>)> {
    members::invite(&app, &caller, &id, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

/// Remove a member (admin); the last admin cannot be removed (409).
#[utoipa::path(
    delete, path = "/establishments/{id}/users/{user_id}",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ("user_id" = UserId, Path, description = "The user")),
    security(("user_token" = [])),
    responses((status = 204, description = "The member is removed; their sessions lose access at once"), WriteErrors)
)]
async fn remove_member(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, user)): Path<(EstablishmentId, UserId)>,
) -> Result<StatusCode> {
    members::remove(&app, &caller, &id, &user)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Change a member's role in one establishment (admin of it).
#[utoipa::path(
    patch, path = "/users/{user_id}",
    params(("user_id" = UserId, Path, description = "The user")),
    request_body = members::ChangeRoleRequest,
    security(("user_token" = [])),
    responses((status = 200, body = members::MemberView), WriteErrors)
)]
async fn change_role(
    State(app): State<AppState>,
    caller: Principal,
    Path(user): Path<UserId>,
    ApiJson(req): ApiJson<members::ChangeRoleRequest>,
) -> Result<Json<members::MemberView>> {
    members::change_role(&app, &caller, &user, req)
        .await
        .map(Json)
}

/// The establishment's audit log (admin).
#[utoipa::path(
    get, path = "/establishments/{id}/audit-log",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, description = "Audit entries, newest first", body = Page<AuditView>), ReadErrors)
)]
async fn audit_log(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<AuditView>>> {
    audit::list(&app, &caller, &id, params).await.map(Json)
}

/// The do-not-call list (viewer and up).
#[utoipa::path(
    get, path = "/establishments/{id}/do-not-call",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ListParams),
    security(("user_token" = [])),
    responses((status = 200, body = Page<DoNotCallView>), ReadErrors)
)]
async fn do_not_call(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<DoNotCallView>>> {
    dnc::list(&app, &caller, &id, params).await.map(Json)
}

/// Put a number on the do-not-call list (operator and up).
#[utoipa::path(
    post, path = "/establishments/{id}/do-not-call",
    params(("id" = EstablishmentId, Path, description = "The establishment")),
    request_body = AddDoNotCall,
    security(("user_token" = [])),
    responses((status = 201, description = "Added", body = DoNotCallView), (status = 200, description = "Already on the list", body = DoNotCallView), WriteErrors)
)]
async fn add_do_not_call(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    ApiJson(req): ApiJson<AddDoNotCall>,
) -> Result<(StatusCode, Json<DoNotCallView>)> {
    let (view, created) = dnc::add(&app, &caller, &id, req).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Take a number off the do-not-call list (admin).
#[utoipa::path(
    delete, path = "/establishments/{id}/do-not-call/{e164}",
    params(("id" = EstablishmentId, Path, description = "The establishment"), ("e164" = callplane::domain::E164, Path, description = "The number, E.164 (`+` may be sent as `%2B`)")),
    security(("user_token" = [])),
    responses((status = 204, description = "Removed"), WriteErrors)
)]
async fn remove_do_not_call(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, e164)): Path<(EstablishmentId, String)>,
) -> Result<StatusCode> {
    dnc::remove(&app, &caller, &id, &e164)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// The month's calls and billed minutes, inbound and outbound, by local day (admin): the
/// billing stub (`plan: stub`), read from the report aggregates.
#[utoipa::path(
    get, path = "/establishments/{id}/usage",
    params(("id" = EstablishmentId, Path, description = "The establishment"), UsageParams),
    security(("user_token" = [])),
    responses((status = 200, body = Usage), ReadErrors)
)]
async fn usage(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<UsageParams>,
) -> Result<Json<Usage>> {
    reports::usage(&app, &caller, &id, params).await.map(Json)
}
