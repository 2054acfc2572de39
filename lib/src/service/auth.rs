//! Login, logout, password reset, accepting invitations, and `GET /me`.

use crate::app::App;
use crate::auth::{Password, Principal, password, secret_token};
use crate::domain::{DisplayName, Email, Role};
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, UserId};
use crate::mail::Mail;
use crate::store::members::{AcceptError, NewAccount};
use crate::store::records::{LoginRecord, MemberRecord, ResetTokenRecord, UserRecord};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Password-reset links live this long.
pub const RESET_TTL_SECS: i64 = 3600;

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Email,
    pub password: String,
}

/// `POST /auth/login` (and accept-invitation) response (Appendix A.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub user: LoginUser,
}

/// The user part of a login response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginUser {
    pub id: UserId,
    pub email: Email,
    pub display_name: String,
    /// The establishment joined first; `null` for an account with none yet.
    pub default_establishment_id: Option<EstablishmentId>,
}

/// `GET /me` response (Appendix A.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub user: MeUser,
    pub memberships: Vec<Membership>,
}

/// The user part of `GET /me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeUser {
    pub id: UserId,
    pub email: Email,
    pub display_name: String,
}

/// One membership in `GET /me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub establishment_id: EstablishmentId,
    pub role: Role,
}

/// `POST /auth/forgot-password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: Email,
}

/// `POST /auth/reset-password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    pub password: Password,
}

/// `POST /auth/accept-invitation` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub token: String,
    pub password: Password,
    pub display_name: DisplayName,
}

/// Checks email and password (one DynamoDB read before the password check) and issues a token.
#[tracing::instrument(skip_all)]
pub async fn login(app: &App, req: LoginRequest) -> Result<LoginResponse> {
    let login = app.store.login(&req.email).await?;
    let ok = password::verify(
        &Password::for_login(&req.password),
        login.as_ref().map(|l| l.password_hash.as_str()),
    )
    .await;
    let login = match login {
        Some(login) if ok => login,
        _ => return Err(Error::Unauthorized("email or password is incorrect".into())),
    };
    let (user, memberships) = app
        .store
        .account(&login.user_id)
        .await?
        .ok_or_else(|| Error::Unauthorized("email or password is incorrect".into()))?;
    issue_session(app, &user, &memberships)
}

fn issue_session(
    app: &App,
    user: &UserRecord,
    memberships: &[MemberRecord],
) -> Result<LoginResponse> {
    let default_establishment_id = memberships
        .iter()
        .min_by_key(|m| m.joined_at)
        .map(|m| m.establishment_id.clone());
    let issued = app.jwt.issue(&user.id, user.token_generation)?;
    Ok(LoginResponse {
        access_token: issued.token,
        token_type: "bearer",
        expires_in: issued.expires_in,
        user: LoginUser {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.to_string(),
            default_establishment_id,
        },
    })
}

/// Revokes the caller's token.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn logout(app: &App, principal: &Principal) -> Result<()> {
    app.store
        .revoke_token(&principal.jti, principal.expires_at)
        .await
}

/// The caller and their memberships (two DynamoDB round trips).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn me(app: &App, principal: &Principal) -> Result<MeResponse> {
    let session = app.store.session(principal, None).await?;
    let memberships = app.store.memberships(&principal.user_id).await?;
    Ok(MeResponse {
        user: MeUser {
            id: session.user.id,
            email: session.user.email,
            display_name: session.user.display_name.to_string(),
        },
        memberships: memberships
            .into_iter()
            .map(|m| Membership {
                establishment_id: m.establishment_id,
                role: m.role,
            })
            .collect(),
    })
}

/// Mails a reset link if the email has an account. The answer is the same either way, so the
/// endpoint does not reveal which emails exist.
#[tracing::instrument(skip_all)]
pub async fn forgot_password(app: &App, req: ForgotPasswordRequest) -> Result<()> {
    let Some(login) = app.store.login(&req.email).await? else {
        tracing::info!("password reset asked for an unknown email");
        return Ok(());
    };
    let (token, hash) = secret_token::generate()?;
    let expires_at = Timestamp::now().unix() + RESET_TTL_SECS;
    app.store
        .create_reset_token(
            &hash,
            &ResetTokenRecord {
                user_id: login.user_id,
                email: req.email.clone(),
                expires_at,
            },
        )
        .await?;
    let link = format!("{}/reset-password?token={token}", app.config.app_url);
    app.mailer
        .send(&Mail {
            to: req.email,
            subject: "Reset your Callplane password".into(),
            html: None,
            reply_to: None,
            from_name: None,
            text: format!("Someone asked to reset the password of this Callplane account.\n\nTo choose a new password, open:\n{link}\n\nThe link works once, for one hour. If it was not you, ignore this message.\n\nToken: {token}\n"),
        })
        .await
}

/// Sets a new password with a reset token (single use); older access tokens stop working.
#[tracing::instrument(skip_all)]
pub async fn reset_password(app: &App, req: ResetPasswordRequest) -> Result<()> {
    let hash = password::hash(&req.password).await?;
    app.store
        .reset_password(&secret_token::hash(&req.token), &hash)
        .await
}

/// Accepts an invitation: creates the account if the email has none (an existing account must
/// give its own password), adds the membership, consumes the token, and logs the user in.
#[tracing::instrument(skip_all)]
pub async fn accept_invitation(app: &App, req: AcceptInvitationRequest) -> Result<LoginResponse> {
    let token_hash = secret_token::hash(&req.token);
    let token = app.store.invitation_by_token(&token_hash).await?;
    // Two rounds at most: if a concurrent acceptance creates the account between our read and
    // our write, the second round joins that account instead of creating another.
    for _ in 0..2 {
        let (user, account) = match app.store.login(&token.email).await? {
            Some(login) => {
                if !password::verify(&req.password, Some(&login.password_hash)).await {
                    return Err(Error::Unauthorized(
                        "this email already has an account: accept with that account's password"
                            .into(),
                    ));
                }
                let user = app
                    .store
                    .user(&login.user_id)
                    .await?
                    .ok_or_else(|| Error::internal("login without user"))?;
                (user, None)
            }
            None => {
                let user = UserRecord {
                    id: UserId::new(),
                    email: token.email.clone(),
                    display_name: req.display_name.clone(),
                    created_at: Timestamp::now(),
                    platform_admin: false,
                    token_generation: 0,
                };
                let login = LoginRecord {
                    user_id: user.id.clone(),
                    password_hash: password::hash(&req.password).await?,
                };
                (user.clone(), Some(NewAccount { user, login }))
            }
        };
        let member = MemberRecord {
            establishment_id: token.establishment_id.clone(),
            user_id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            role: token.role,
            joined_at: Timestamp::now(),
        };
        match app
            .store
            .accept_invitation(&token_hash, &token, &member, account.as_ref())
            .await
        {
            Ok(()) => {
                let memberships = app.store.memberships(&user.id).await?;
                return issue_session(app, &user, &memberships);
            }
            Err(AcceptError::EmailTaken) => continue,
            Err(AcceptError::Other(e)) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "the account was changed concurrently; retry".into(),
    ))
}

/// Whether bootstrapping created the admin or found it.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    Created(UserId),
    AlreadyExists(UserId),
}

/// Creates the first platform admin (may create establishments) unless the email already has
/// an account. Safe to run on every start of the local stack.
pub async fn bootstrap_admin(app: &App, email: Email, password: Password) -> Result<Bootstrap> {
    if let Some(login) = app.store.login(&email).await? {
        return Ok(Bootstrap::AlreadyExists(login.user_id));
    }
    let user = UserRecord {
        id: UserId::new(),
        email,
        display_name: DisplayName::parse("Admin").map_err(Error::internal)?,
        created_at: Timestamp::now(),
        platform_admin: true,
        token_generation: 0,
    };
    let login = LoginRecord {
        user_id: user.id.clone(),
        password_hash: password::hash(&password).await?,
    };
    app.store.create_user(&user, &login).await?;
    Ok(Bootstrap::Created(user.id))
}
