//! Membership: invitations (one pending per email and establishment), accepting them (exactly
//! one account per email, even under concurrent acceptances), role changes and removals that
//! never leave an establishment without an admin.

use super::records::{
    AuditRecord, InviteRecord, InviteTokenRecord, LoginRecord, MemberRecord, UserRecord,
};
use super::{Item, Page, Store, Tx, TxError, keys, n, s};
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, UserId};
use crate::time::Timestamp;
use serde_json::json;
use std::collections::HashMap;

/// One row of an establishment's people list: a member or an invitation not yet accepted.
#[derive(Debug)]
pub enum Person {
    Member(MemberRecord),
    Invitation(InviteRecord),
}

/// What accepting an invitation needs to create the account, when the email has none yet.
#[derive(Debug)]
pub struct NewAccount {
    pub user: UserRecord,
    pub login: LoginRecord,
}

/// Why an acceptance did not apply.
#[derive(Debug)]
pub enum AcceptError {
    /// The email got an account in the meantime (a concurrent acceptance): retry as existing.
    EmailTaken,
    /// Anything else, ready for the client.
    Other(Error),
}

/// Maps the failure of a role-change or removal transaction: the member, its mirror, the
/// establishment's `admin_count` (which refuses to reach zero admins) and the audit entry.
fn membership_tx_error(e: TxError) -> Error {
    match e {
        TxError::Conditions(failed) if failed.has("admin_count") => {
            Error::Conflict("an establishment must keep at least one admin".into())
        }
        TxError::Conditions(_) => {
            Error::Conflict("this membership changed meanwhile; reload and retry".into())
        }
        TxError::Other(e) => e,
    }
}

fn invalid_token() -> Error {
    Error::invalid("token", "is invalid, expired or already used")
}

impl Store {
    /// Records a pending invitation and its token. An expired invitation for the same email
    /// is replaced; a live one makes this a conflict.
    pub async fn create_invitation(
        &self,
        invite: &InviteRecord,
        token: &InviteTokenRecord,
    ) -> Result<()> {
        let now = Timestamp::now().unix();
        let mut guard = self.put(
            &keys::invite(&invite.establishment_id, &invite.email),
            invite,
            Some("attribute_not_exists(pk) OR expires_at < :now"),
        )?;
        if let Some(put) = guard.put.as_mut() {
            put.expression_attribute_values = Some(HashMap::from([(":now".to_owned(), n(now))]));
        }
        let items = Tx::new().with("invite", guard).with(
            "token",
            self.create(&keys::invite_token(&invite.token_hash), token)?,
        );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::Conflict(format!(
                "{} already has a pending invitation to this establishment",
                invite.email
            )),
            TxError::Other(e) => e,
        })
    }

    /// The member `user` of `est`, if any.
    pub async fn member(
        &self,
        est: &EstablishmentId,
        user: &UserId,
    ) -> Result<Option<MemberRecord>> {
        self.get(&keys::member(est, user)).await
    }

    /// The invitation a token stands for, if the token exists and has not expired.
    pub async fn invitation_by_token(&self, token_hash: &str) -> Result<InviteTokenRecord> {
        let token: InviteTokenRecord = self
            .get(&keys::invite_token(token_hash))
            .await?
            .ok_or_else(invalid_token)?;
        if token.expires_at <= Timestamp::now().unix() {
            return Err(invalid_token());
        }
        Ok(token)
    }

    /// Accepts an invitation in one transaction: the token and the pending invitation are
    /// consumed (single use), the account is created if `account` is given (guarded by the
    /// unique email item), and the membership and its mirror are written.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        token: &InviteTokenRecord,
        member: &MemberRecord,
        account: Option<&NewAccount>,
    ) -> Result<(), AcceptError> {
        let est = &token.establishment_id;
        let mut items = Tx::new()
            .with(
                "token",
                self.delete(
                    &keys::invite_token(token_hash),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )
                .map_err(AcceptError::Other)?,
            )
            .with(
                "invite",
                self.delete(
                    &keys::invite(est, &token.email),
                    "invitation_id = :inv",
                    HashMap::new(),
                    HashMap::from([(":inv".to_owned(), s(token.invitation_id.as_str()))]),
                )
                .map_err(AcceptError::Other)?,
            )
            .with(
                "member",
                self.create(&keys::member(est, &member.user_id), member)
                    .map_err(AcceptError::Other)?,
            )
            .with(
                "membership",
                self.create(&keys::membership(&member.user_id, est), member)
                    .map_err(AcceptError::Other)?,
            );
        if let Some(account) = account {
            items.add(
                "email",
                self.create(&keys::email(&account.user.email), &account.login)
                    .map_err(AcceptError::Other)?,
            );
            items.add(
                "user",
                self.create(&keys::user(&account.user.id), &account.user)
                    .map_err(AcceptError::Other)?,
            );
        }
        let admin_delta = i64::from(member.role == Role::Admin);
        items.add(
            "admin_count",
            self.admin_count_change(est, admin_delta)
                .map_err(AcceptError::Other)?,
        );

        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(failed)) if failed.any(&["token", "invite"]) => {
                Err(AcceptError::Other(invalid_token()))
            }
            Err(TxError::Conditions(failed)) if failed.has("email") => Err(AcceptError::EmailTaken),
            Err(TxError::Conditions(failed)) if failed.has("member") => Err(AcceptError::Other(
                Error::Conflict("you are already a member of this establishment".into()),
            )),
            Err(TxError::Conditions(_)) => {
                Err(AcceptError::Other(Error::NotFound("establishment")))
            }
            Err(TxError::Other(e)) => Err(AcceptError::Other(e)),
        }
    }

    /// Members and pending invitations of `est`, a page at a time (invitations first).
    pub async fn people(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Person>> {
        let query = format!("people:{est}");
        let start = cursor
            .map(|c| self.cursors().decode(&query, c))
            .transpose()?;
        let pk = keys::establishment_partition(est);
        let to = format!("{}\u{10FFFF}", keys::MEMBER_PREFIX);
        let (items, next) = self
            .query_range(&pk, keys::INVITE_PREFIX, &to, limit, start)
            .await?;
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            let sk = match item.get(keys::SK) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) => sk.clone(),
                _ => continue,
            };
            if sk.starts_with(keys::MEMBER_PREFIX) {
                rows.push(Person::Member(Self::record(item)?));
            } else if sk.starts_with(keys::INVITE_PREFIX) {
                rows.push(Person::Invitation(Self::record(item)?));
            }
        }
        let cursor = next
            .map(|k| self.cursors().encode(&query, &k))
            .transpose()?;
        Ok(Page {
            items: rows,
            cursor,
        })
    }

    /// Changes a member's role; refuses to demote the last admin.
    pub async fn change_role(
        &self,
        est: &EstablishmentId,
        user: &UserId,
        role: Role,
        actor: &UserRecord,
    ) -> Result<MemberRecord> {
        let mut member = self
            .member(est, user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if member.role == role {
            return Ok(member);
        }
        let delta = i64::from(role == Role::Admin) - i64::from(member.role == Role::Admin);
        let names = HashMap::from([("#role".to_owned(), "role".to_owned())]);
        let values = HashMap::from([
            (":new".to_owned(), s(role.as_str())),
            (":old".to_owned(), s(member.role.as_str())),
        ]);
        let items = Tx::new()
            .with(
                "member",
                self.update(
                    &keys::member(est, user),
                    "SET #role = :new",
                    Some("#role = :old"),
                    names.clone(),
                    values.clone(),
                )?,
            )
            .with(
                "membership",
                self.update(
                    &keys::membership(user, est),
                    "SET #role = :new",
                    Some("#role = :old"),
                    names,
                    values,
                )?,
            )
            .with("admin_count", self.admin_count_change(est, delta)?)
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    est,
                    actor,
                    "member.role_changed",
                    ("user", user.as_str()),
                    json!({ "role": member.role }),
                    json!({ "role": role }),
                ))?,
            );
        self.transact(items).await.map_err(membership_tx_error)?;
        member.role = role;
        Ok(member)
    }

    /// Removes a member; refuses to remove the last admin.
    pub async fn remove_member(
        &self,
        est: &EstablishmentId,
        user: &UserId,
        actor: &UserRecord,
    ) -> Result<()> {
        let member = self
            .member(est, user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let names = HashMap::from([("#role".to_owned(), "role".to_owned())]);
        let values = HashMap::from([(":role".to_owned(), s(member.role.as_str()))]);
        let condition = "attribute_exists(pk) AND #role = :role";
        let items = Tx::new()
            .with(
                "member",
                self.delete(
                    &keys::member(est, user),
                    condition,
                    names.clone(),
                    values.clone(),
                )?,
            )
            .with(
                "membership",
                self.delete(&keys::membership(user, est), condition, names, values)?,
            )
            .with(
                "admin_count",
                self.admin_count_change(est, -i64::from(member.role == Role::Admin))?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    est,
                    actor,
                    "member.removed",
                    ("user", user.as_str()),
                    json!({ "email": member.email, "role": member.role }),
                    serde_json::Value::Null,
                ))?,
            );
        self.transact(items).await.map_err(membership_tx_error)
    }

    /// The establishment item's share of a membership transaction: adjusts `admin_count` by
    /// `delta`, refusing to go below one; with `delta == 0` it only checks the establishment
    /// exists.
    fn admin_count_change(
        &self,
        est: &EstablishmentId,
        delta: i64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let key = keys::establishment(est);
        match delta {
            0 => {
                let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key.attrs()))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(Error::internal)?;
                Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .condition_check(check)
                    .build())
            }
            d if d > 0 => self.update(
                &key,
                "ADD admin_count :d",
                None,
                HashMap::new(),
                HashMap::from([(":d".to_owned(), n(d))]),
            ),
            d => self.update(
                &key,
                "ADD admin_count :d",
                Some("admin_count > :one"),
                HashMap::new(),
                HashMap::from([(":d".to_owned(), n(d)), (":one".to_owned(), n(1))]),
            ),
        }
    }
}

impl Store {
    /// Removes a pending invitation and its token (used when its mail could not be sent).
    pub async fn withdraw_invitation(&self, invite: &InviteRecord) -> Result<()> {
        let items = Tx::new()
            .with(
                "invite",
                self.delete(
                    &keys::invite(&invite.establishment_id, &invite.email),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            )
            .with(
                "token",
                self.delete(
                    &keys::invite_token(&invite.token_hash),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::Conflict("the invitation changed meanwhile".into()),
            TxError::Other(e) => e,
        })
    }
}
