//! Accounts: creation (unique email), login lookup, memberships of a user, token revocation
//! and password resets.

use super::records::{LoginRecord, MemberRecord, ResetTokenRecord, RevokedRecord, UserRecord};
use super::{Item, Store, Tx, TxError, keys, n, retry, s};
use crate::domain::Email;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

impl Store {
    /// Creates an account; `409` if the email is taken.
    pub async fn create_user(&self, user: &UserRecord, login: &LoginRecord) -> Result<()> {
        let items = Tx::new()
            .with("email", self.create(&keys::email(&user.email), login)?)
            .with("user", self.create(&keys::user(&user.id), user)?);
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => {
                Error::Conflict(format!("an account for {} already exists", user.email))
            }
            TxError::Other(e) => e,
        })
    }

    /// The login record for an email: one GetItem.
    pub async fn login(&self, email: &Email) -> Result<Option<LoginRecord>> {
        self.get(&keys::email(email)).await
    }

    /// A user's profile.
    pub async fn user(&self, id: &UserId) -> Result<Option<UserRecord>> {
        self.get(&keys::user(id)).await
    }

    /// A user's profile and memberships in one Query over the user's partition; `None` if the
    /// profile does not exist.
    pub async fn account(&self, id: &UserId) -> Result<Option<(UserRecord, Vec<MemberRecord>)>> {
        let items = self
            .query_between_all(
                &keys::user_partition(id),
                keys::MEMBER_PREFIX,
                keys::PROFILE,
            )
            .await?;
        let mut profile = None;
        let mut memberships = Vec::new();
        for item in items {
            if matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk == keys::PROFILE) {
                profile = Some(Self::record(item)?);
            } else {
                memberships.push(Self::record(item)?);
            }
        }
        Ok(profile.map(|p| (p, memberships)))
    }

    /// All memberships of a user (one Query over the user's partition).
    pub async fn memberships(&self, id: &UserId) -> Result<Vec<MemberRecord>> {
        self.query_prefix_all(&keys::user_partition(id), keys::MEMBER_PREFIX)
            .await?
            .into_iter()
            .map(Self::record)
            .collect()
    }

    /// Revokes an access token until it would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(
                &keys::revoked_token(jti),
                &RevokedRecord { expires_at },
            )?));
        retry::on_conflict(|| request.clone().send()).await?;
        Ok(())
    }

    /// Stores a password-reset token.
    pub async fn create_reset_token(
        &self,
        token_hash: &str,
        record: &ResetTokenRecord,
    ) -> Result<()> {
        let items = Tx::new().with(
            "token",
            self.create(&keys::reset_token(token_hash), record)?,
        );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::internal("reset token collision"),
            TxError::Other(e) => e,
        })
    }

    /// Consumes a reset token and sets the new password hash in one transaction; every token
    /// issued before now stops working.
    pub async fn reset_password(&self, token_hash: &str, password_hash: &str) -> Result<()> {
        let invalid = || Error::invalid("token", "is invalid, expired or already used");
        let token: ResetTokenRecord = self
            .get(&keys::reset_token(token_hash))
            .await?
            .ok_or_else(invalid)?;
        let now = Timestamp::now().unix();
        if token.expires_at <= now {
            return Err(invalid());
        }
        let items = Tx::new()
            .with(
                "token",
                self.delete(
                    &keys::reset_token(token_hash),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            )
            .with(
                "email",
                self.update(
                    &keys::email(&token.email),
                    "SET password_hash = :h",
                    Some("user_id = :u"),
                    HashMap::new(),
                    HashMap::from([
                        (":h".to_owned(), s(password_hash)),
                        (":u".to_owned(), s(token.user_id.as_str())),
                    ]),
                )?,
            )
            .with(
                "user",
                self.update(
                    &keys::user(&token.user_id),
                    "ADD token_generation :one",
                    None,
                    HashMap::new(),
                    HashMap::from([(":one".to_owned(), n(1))]),
                )?,
            );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => invalid(),
            TxError::Other(e) => e,
        })
    }
}
