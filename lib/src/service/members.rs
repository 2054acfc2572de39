//! People of an establishment: listing, invitations, role changes, removal.

use crate::app::App;
use crate::auth::{Principal, secret_token};
use crate::domain::{Email, Role};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{EstablishmentId, InvitationId, UserId};
use crate::mail::Mail;
use crate::store::Page;
use crate::store::members::Person;
use crate::store::records::{InviteRecord, InviteTokenRecord};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Invitations are valid this long.
pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;

/// `POST /establishments/{id}/users` body (Appendix A.1).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: Email,
    pub role: Role,
}

/// `POST /establishments/{id}/users` response (Appendix A.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteResponse {
    pub invitation_id: InvitationId,
    pub status: &'static str,
}

/// `PATCH /users/{userId}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    pub establishment_id: EstablishmentId,
    pub role: Role,
}

/// A member as `PATCH /users/{userId}` returns it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: UserId,
    pub establishment_id: EstablishmentId,
    pub email: Email,
    pub display_name: String,
    pub role: Role,
}

/// Members and pending invitations (any member).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: ListParams,
) -> Result<Page<PersonRow>> {
    let limit = params.limit()?;
    app.store
        .session(principal, Some(est))
        .await?
        .require(Role::Viewer)?;
    let now = Timestamp::now();
    Ok(app
        .store
        .people(est, limit, params.cursor.as_deref())
        .await?
        .map(|p| PersonRow::of(p, now)))
}

/// One row of an establishment's people list as the API shows it: a member or a pending
/// invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PersonRow {
    /// A member.
    Member {
        user_id: UserId,
        email: Email,
        display_name: String,
        role: Role,
    },
    /// An invitation not yet accepted (`status` is `pending`, or `expired` once past its date).
    Invitation {
        invitation_id: crate::ids::InvitationId,
        email: Email,
        role: Role,
        status: &'static str,
        expires_at: Timestamp,
    },
}

impl PersonRow {
    fn of(person: Person, now: Timestamp) -> Self {
        match person {
            Person::Member(m) => PersonRow::Member {
                user_id: m.user_id,
                email: m.email,
                display_name: m.display_name.to_string(),
                role: m.role,
            },
            Person::Invitation(i) => PersonRow::Invitation {
                invitation_id: i.invitation_id,
                email: i.email,
                role: i.role,
                status: if i.expires_at > now.unix() {
                    "pending"
                } else {
                    "expired"
                },
                expires_at: Timestamp::from_unix(i.expires_at).unwrap_or(now),
            },
        }
    }
}

/// Invites an email with a role (admins) and mails the single-use link.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn invite(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: InviteRequest,
) -> Result<InviteResponse> {
    let session = app.store.session(principal, Some(est)).await?;
    session.require(Role::Admin)?;
    if let Some(login) = app.store.login(&req.email).await?
        && app.store.member(est, &login.user_id).await?.is_some()
    {
        return Err(Error::Conflict(format!(
            "{} is already a member of this establishment",
            req.email
        )));
    }
    let establishment = app.store.establishment_required(est).await?;
    let (token, token_hash) = secret_token::generate()?;
    let now = Timestamp::now();
    let expires_at = now.unix() + INVITATION_TTL_SECS;
    let invite = InviteRecord {
        invitation_id: InvitationId::new(),
        establishment_id: est.clone(),
        email: req.email.clone(),
        role: req.role,
        invited_by: principal.user_id.clone(),
        created_at: now,
        token_hash: token_hash.clone(),
        expires_at,
    };
    let token_record = InviteTokenRecord {
        invitation_id: invite.invitation_id.clone(),
        establishment_id: est.clone(),
        email: req.email.clone(),
        role: req.role,
        expires_at,
    };
    app.store.create_invitation(&invite, &token_record).await?;
    let link = format!("{}/accept-invitation?token={token}", app.config.app_url);
    let mail = Mail {
        to: req.email,
        subject: format!("You are invited to {} on Callplane", establishment.name),
        html: None,
        reply_to: None,
        from_name: None,
        text: format!(
            "{} invited you to join {} on Callplane as {}.\n\nTo accept, open:\n{link}\n\nThe link works once and expires in 7 days.\n\nToken: {token}\n",
            session.user.display_name,
            establishment.name,
            req.role.as_str()
        ),
    };
    if let Err(err) = app.mailer.send(&mail).await {
        // Without the mail nobody can accept; withdraw it so the admin can simply invite again.
        app.store.withdraw_invitation(&invite).await?;
        return Err(err);
    }
    Ok(InviteResponse {
        invitation_id: invite.invitation_id,
        status: "sent",
    })
}

/// Changes a member's role (admins of that establishment); the last admin stays admin.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, target_user_id = %user, establishment_id = %req.establishment_id))]
pub async fn change_role(
    app: &App,
    principal: &Principal,
    user: &UserId,
    req: ChangeRoleRequest,
) -> Result<MemberView> {
    let session = app
        .store
        .session(principal, Some(&req.establishment_id))
        .await?;
    session.require(Role::Admin)?;
    let m = app
        .store
        .change_role(&req.establishment_id, user, req.role, &session.user)
        .await?;
    Ok(MemberView {
        user_id: m.user_id,
        establishment_id: m.establishment_id,
        email: m.email,
        display_name: m.display_name.to_string(),
        role: m.role,
    })
}

/// Removes a member (admins); the last admin cannot be removed.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, target_user_id = %user, establishment_id = %est))]
pub async fn remove(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    user: &UserId,
) -> Result<()> {
    let session = app.store.session(principal, Some(est)).await?;
    session.require(Role::Admin)?;
    app.store.remove_member(est, user, &session.user).await
}
