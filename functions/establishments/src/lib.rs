//! The `establishments` function: establishments, their telephony policy, and their people
//! (members, invitations, roles), its do-not-call list and its audit log. Each handler extracts, calls one `callplane::service`
//! function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, ListParams, Path, Query, finish};
use callplane::ids::{EstablishmentId, UserId};
use callplane::service::audit::{self, AuditView};
use callplane::service::do_not_call::{self as dnc, AddDoNotCall, DoNotCallView};
use callplane::service::establishments::{self as est, EstablishmentSummary, TelephonyView};
use callplane::service::members::PersonRow;
use callplane::service::{EstablishmentView, members};
use callplane::store::Page;
use callplane::{AppState, Result};

/// The function's routes (PRD §7.1 users, §7.2).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/establishments", get(list).post(create))
        .route("/establishments/{id}", get(show).patch(update))
        .route(
            "/establishments/{id}/telephony",
            get(telephony).patch(update_telephony),
        )
        .route("/establishments/{id}/users", get(people).post(invite))
        .route(
            "/establishments/{id}/users/{user_id}",
            delete(remove_member),
        )
        .route("/users/{user_id}", patch(change_role))
        .route("/establishments/{id}/audit-log", get(audit_log))
        .route(
            "/establishments/{id}/do-not-call",
            get(do_not_call).post(add_do_not_call),
        )
        .route(
            "/establishments/{id}/do-not-call/{e164}",
            delete(remove_do_not_call),
        );
    finish(routes, state)
}

async fn list(
    State(app): State<AppState>,
    caller: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<EstablishmentSummary>>> {
    est::list(&app, &caller, params).await.map(Json)
}

async fn create(
    State(app): State<AppState>,
    caller: Principal,
    ApiJson(req): ApiJson<est::CreateEstablishment>,
) -> Result<(StatusCode, Json<EstablishmentView>)> {
    est::create(&app, &caller, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)))
}

async fn show(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
) -> Result<Json<EstablishmentView>> {
    est::get(&app, &caller, &id).await.map(Json)
}

async fn update(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    ApiJson(req): ApiJson<est::UpdateEstablishment>,
) -> Result<Json<EstablishmentView>> {
    est::update(&app, &caller, &id, req).await.map(Json)
}

async fn telephony(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
) -> Result<Json<TelephonyView>> {
    est::telephony(&app, &caller, &id).await.map(Json)
}

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

async fn people(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<PersonRow>>> {
    members::list(&app, &caller, &id, params).await.map(Json)
}

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

async fn remove_member(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, user)): Path<(EstablishmentId, UserId)>,
) -> Result<StatusCode> {
    members::remove(&app, &caller, &id, &user)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

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

async fn audit_log(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<AuditView>>> {
    audit::list(&app, &caller, &id, params).await.map(Json)
}

async fn do_not_call(
    State(app): State<AppState>,
    caller: Principal,
    Path(id): Path<EstablishmentId>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<DoNotCallView>>> {
    dnc::list(&app, &caller, &id, params).await.map(Json)
}

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

async fn remove_do_not_call(
    State(app): State<AppState>,
    caller: Principal,
    Path((id, e164)): Path<(EstablishmentId, String)>,
) -> Result<StatusCode> {
    dnc::remove(&app, &caller, &id, &e164)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
