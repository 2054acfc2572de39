//! Every DynamoDB key string is built here and nowhere else. The table is one table with
//! `pk`/`sk`; see docs/data-model.md for the access pattern behind each key.

use crate::domain::Email;
use crate::ids::{EstablishmentId, UserId};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Partition-key attribute name.
pub const PK: &str = "pk";
/// Sort-key attribute name.
pub const SK: &str = "sk";
/// TTL attribute name (epoch seconds).
pub const TTL: &str = "expires_at";

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Self { pk, sk: sk.into() }
    }

    /// The key as DynamoDB attributes.
    pub fn attrs(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// Establishment by id: `EST#{est}` / `EST`.
pub fn establishment(est: &EstablishmentId) -> Key {
    Key::new(format!("EST#{est}"), "EST")
}

/// Partition holding an establishment, its members and its pending invitations.
pub fn establishment_partition(est: &EstablishmentId) -> String {
    format!("EST#{est}")
}

/// Member of an establishment: `EST#{est}` / `MEMBER#{usr}`.
pub fn member(est: &EstablishmentId, usr: &UserId) -> Key {
    Key::new(format!("EST#{est}"), format!("MEMBER#{usr}"))
}

/// Mirror of a membership under its user: `USER#{usr}` / `MEMBER#{est}`.
pub fn membership(usr: &UserId, est: &EstablishmentId) -> Key {
    Key::new(format!("USER#{usr}"), format!("MEMBER#{est}"))
}

/// Partition of a user: profile and membership mirrors.
pub fn user_partition(usr: &UserId) -> String {
    format!("USER#{usr}")
}

/// Sort-key prefix of membership items (in both partitions).
pub const MEMBER_PREFIX: &str = "MEMBER#";
/// Sort-key prefix of pending-invitation items.
pub const INVITE_PREFIX: &str = "INVITE#";

/// Sort key of a user's profile. In the `USER#{usr}` partition the membership mirrors
/// (`MEMBER#…`) sort before it, so one Query from `MEMBER#` to `PROFILE` reads the whole account.
pub const PROFILE: &str = "PROFILE";

/// User profile: `USER#{usr}` / `PROFILE`.
pub fn user(usr: &UserId) -> Key {
    Key::new(format!("USER#{usr}"), PROFILE)
}

/// Login by email, unique: `EMAIL#{lowercased}` / `EMAIL` → user id and password hash.
pub fn email(email: &Email) -> Key {
    Key::new(format!("EMAIL#{email}"), "EMAIL")
}

/// Pending invitation of an email to an establishment, unique per pair:
/// `EST#{est}` / `INVITE#{email}`.
pub fn invite(est: &EstablishmentId, email: &Email) -> Key {
    Key::new(format!("EST#{est}"), format!("{INVITE_PREFIX}{email}"))
}

/// Invitation token (by SHA-256 of the token): `INVTOKEN#{hash}` / `INVTOKEN`.
pub fn invite_token(hash: &str) -> Key {
    Key::new(format!("INVTOKEN#{hash}"), "INVTOKEN")
}

/// Password-reset token (by SHA-256 of the token): `RESET#{hash}` / `RESET`.
pub fn reset_token(hash: &str) -> Key {
    Key::new(format!("RESET#{hash}"), "RESET")
}

/// A revoked access token: `JTI#{jti}` / `REVOKED`, kept until the token would expire.
pub fn revoked_token(jti: &str) -> Key {
    Key::new(format!("JTI#{jti}"), "REVOKED")
}
