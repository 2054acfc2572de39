//! The `auth` function: login, logout, password reset, accepting invitations and `GET /me`.
//! Each handler extracts, calls one `callplane::service::auth` function, and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use callplane::auth::Principal;
use callplane::http::{ApiJson, Document, finish};
use callplane::openapi::{PublicErrors, ReadErrors, WriteErrors};
use callplane::service::auth as svc;
use callplane::{AppState, Result};

// The function's routes and their descriptions (PRD §7.1).
callplane::described_routes!(
    login,
    logout,
    forgot_password,
    reset_password,
    accept_invitation,
    me,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish(
        "auth",
        routes(),
        api,
        Document::Whole(include_str!("../../../docs/openapi.json")),
        state,
    )
}

/// Sign in with email and password.
#[utoipa::path(
    post, path = "/auth/login",
    request_body = svc::LoginRequest,
    responses((status = 200, description = "A session token and who it belongs to", body = svc::LoginResponse), PublicErrors)
)]
async fn login(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::LoginRequest>,
) -> Result<Json<svc::LoginResponse>> {
    svc::login(&app, req).await.map(Json)
}

/// Revoke the caller's session.
#[utoipa::path(
    post, path = "/auth/logout",
    security(("user_token" = [])),
    responses((status = 204, description = "The session is revoked"), WriteErrors)
)]
async fn logout(State(app): State<AppState>, caller: Principal) -> Result<StatusCode> {
    svc::logout(&app, &caller)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Ask for a password reset email.
#[utoipa::path(
    post, path = "/auth/forgot-password",
    request_body = svc::ForgotPasswordRequest,
    responses((status = 202, description = "A reset link is emailed if the account exists (the answer is the same either way)"), PublicErrors)
)]
async fn forgot_password(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::ForgotPasswordRequest>,
) -> Result<StatusCode> {
    svc::forgot_password(&app, req)
        .await
        .map(|()| StatusCode::ACCEPTED)
}

/// Set a new password with a reset token.
#[utoipa::path(
    post, path = "/auth/reset-password",
    request_body = svc::ResetPasswordRequest,
    responses((status = 204, description = "The password is changed; every session of the account is revoked"), PublicErrors)
)]
async fn reset_password(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::ResetPasswordRequest>,
) -> Result<StatusCode> {
    svc::reset_password(&app, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Accept an invitation (setting a password for a new account).
#[utoipa::path(
    post, path = "/auth/accept-invitation",
    request_body = svc::AcceptInvitationRequest,
    responses((status = 200, description = "Signed in as the invited user", body = svc::LoginResponse), PublicErrors)
)]
async fn accept_invitation(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<svc::AcceptInvitationRequest>,
) -> Result<Json<svc::LoginResponse>> {
    svc::accept_invitation(&app, req).await.map(Json)
}

/// The caller and their memberships.
#[utoipa::path(
    get, path = "/me",
    security(("user_token" = [])),
    responses((status = 200, body = svc::MeResponse), ReadErrors)
)]
async fn me(State(app): State<AppState>, caller: Principal) -> Result<Json<svc::MeResponse>> {
    svc::me(&app, &caller).await.map(Json)
}
