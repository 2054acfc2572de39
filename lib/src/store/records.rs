//! The shapes of stored items (without their keys, which `keys` builds).

use crate::domain::{DisplayName, Email, Locale, Name, Role, TelephonyPolicy, TimeZone};
use crate::ids::{EstablishmentId, InvitationId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `EST#{est}` / `EST`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstablishmentRecord {
    pub id: EstablishmentId,
    pub name: Name,
    pub timezone: TimeZone,
    pub locale: Locale,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many members are admins; kept in the same transactions that change roles, so the
    /// last admin can never be demoted or removed.
    pub admin_count: u32,
    pub telephony: TelephonyPolicy,
}

/// `USER#{usr}` / `PROFILE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub created_at: Timestamp,
    /// May create establishments without being an admin of one (the bootstrap admin).
    #[serde(default)]
    pub platform_admin: bool,
    /// Access tokens carry the generation they were issued in; a password reset moves it on,
    /// which ends every older session at once.
    #[serde(default)]
    pub token_generation: u32,
}

/// `EMAIL#{email}` / `EMAIL`: the unique login identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRecord {
    pub user_id: UserId,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// `EST#{est}` / `MEMBER#{usr}` and its mirror `USER#{usr}` / `MEMBER#{est}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberRecord {
    pub establishment_id: EstablishmentId,
    pub user_id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// `EST#{est}` / `INVITE#{email}`: at most one pending invitation per email and establishment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    pub invitation_id: InvitationId,
    pub establishment_id: EstablishmentId,
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: Timestamp,
    /// SHA-256 of the token, so the token item can be deleted with the invitation.
    pub token_hash: String,
    /// Epoch seconds (TTL attribute).
    pub expires_at: i64,
}

/// `INVTOKEN#{hash}` / `INVTOKEN`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteTokenRecord {
    pub invitation_id: InvitationId,
    pub establishment_id: EstablishmentId,
    pub email: Email,
    pub role: Role,
    pub expires_at: i64,
}

/// `RESET#{hash}` / `RESET`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResetTokenRecord {
    pub user_id: UserId,
    pub email: Email,
    pub expires_at: i64,
}

/// `JTI#{jti}` / `REVOKED`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokedRecord {
    pub expires_at: i64,
}
