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

impl AuditRecord {
    /// An entry for `action` on `target_type`/`target_id` in `est`, by `actor`, now.
    pub fn new(
        est: &EstablishmentId,
        actor: &UserRecord,
        action: &str,
        (target_type, target_id): (&str, &str),
        before: Value,
        after: Value,
    ) -> Self {
        Self {
            id: AuditId::new(),
            establishment_id: est.clone(),
            actor_user_id: actor.id.clone(),
            actor_email: actor.email.clone(),
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
