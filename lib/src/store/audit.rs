//! The audit log: who changed what, when, with the state before and after. Entries are
//! written inside the same transaction as the change they record, so the log can neither miss a
//! change nor record one that did not happen.

use super::records::{AuditRecord, UserRecord};
use super::{ListQuery, Page, Store, keys};
use crate::error::Result;
use crate::ids::{AuditId, EstablishmentId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde_json::Value;

/// Who made an audited change: a member, or a runtime acting through the tool proxy.
#[derive(Clone, Copy, Debug)]
pub enum AuditActor<'a> {
    User(&'a UserRecord),
    Runtime(&'a crate::ids::RuntimeId),
}

impl<'a> From<&'a UserRecord> for AuditActor<'a> {
    fn from(user: &'a UserRecord) -> Self {
        AuditActor::User(user)
    }
}

impl AuditRecord {
    /// An entry for `action` on `target_type`/`target_id` in `est`, by `actor`, now.
    pub fn new<'a>(
        est: &EstablishmentId,
        actor: impl Into<AuditActor<'a>>,
        action: &str,
        (target_type, target_id): (&str, &str),
        before: Value,
        after: Value,
    ) -> Self {
        let (user, runtime) = match actor.into() {
            AuditActor::User(u) => (Some(u), None),
            AuditActor::Runtime(r) => (None, Some(r.clone())),
        };
        Self {
            id: AuditId::new(),
            establishment_id: est.clone(),
            actor_user_id: user.map(|u| u.id.clone()),
            actor_email: user.map(|u| u.email.clone()),
            actor_runtime_id: runtime,
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            before,
            after,
            at: Timestamp::now(),
        }
    }
}

impl Store {
    /// The entry as one item of the transaction that makes the change.
    pub(crate) fn audit_item(&self, entry: &AuditRecord) -> Result<TransactWriteItem> {
        self.create(&keys::audit(&entry.establishment_id, &entry.id), entry)
    }

    /// Records an access that changes nothing else (reading a recording): the entry alone.
    pub async fn record_access(&self, entry: &AuditRecord) -> Result<()> {
        let written = self
            .put_if(
                &keys::audit(&entry.establishment_id, &entry.id),
                entry,
                "attribute_not_exists(pk)",
                Default::default(),
                Default::default(),
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(crate::error::Error::internal("audit id collision"))
        }
    }

    /// An establishment's audit log, newest first.
    pub async fn audit_log(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditRecord>> {
        let pk = keys::audit_partition(est);
        self.list_page(&ListQuery::table(&pk).newest_first(), limit, cursor)
            .await
    }
}
