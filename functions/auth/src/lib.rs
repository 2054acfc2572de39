//! The `auth` function: login, logout, password reset, accepting invitations and `GET /me`.
//! Each handler extracts, calls one `callplane::service::auth` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, finish};
use callplane::service::auth as svc;
use callplane::{AppState, Result};

/// The function's routes (PRD §7.1).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/forgot-password", post(forgot_password))
        .route("/auth/reset-password", post(reset_password))
        .route("/auth/accept-invitation", post(accept_invitation))
        .route("/me", get(me));
    finish(routes, state)
}

async fn login(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::LoginRequest>,
) -> Result<Json<svc::LoginResponse>> {
    svc::login(&app, req).await.map(Json)
}

async fn logout(State(app): State<AppState>, caller: Principal) -> Result<StatusCode> {
    svc::logout(&app, &caller)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn forgot_password(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::ForgotPasswordRequest>,
) -> Result<StatusCode> {
    svc::forgot_password(&app, req)
        .await
        .map(|()| StatusCode::ACCEPTED)
}

async fn reset_password(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::ResetPasswordRequest>,
) -> Result<StatusCode> {
    svc::reset_password(&app, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn accept_invitation(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::AcceptInvitationRequest>,
) -> Result<Json<svc::LoginResponse>> {
    svc::accept_invitation(&app, req).await.map(Json)
}

async fn me(State(app): State<AppState>, caller: Principal) -> Result<Json<svc::MeResponse>> {
    svc::me(&app, &caller).await.map(Json)
}
