//! An establishment's do-not-call list (`EST#{est}` / `DNC#{e164}`): entries added and
//! removed with their audit entries, listed a page at a time.

use super::records::{AuditRecord, DoNotCallRecord, UserRecord};
use super::{ListQuery, Page, Store, Tx, TxError, keys};
use crate::domain::E164;
use crate::error::Result;
use crate::ids::EstablishmentId;
use serde_json::json;
use std::collections::HashMap;

impl Store {
    /// Adds `entry` to its establishment's do-not-call list; `Ok(false)` when it is there
    /// already (nothing changes).
    pub async fn add_do_not_call(
        &self,
        est: &EstablishmentId,
        entry: &DoNotCallRecord,
        actor: crate::store::audit::AuditActor<'_>,
    ) -> Result<bool> {
        let items = Tx::new()
            .with(
                "entry",
                self.create(&keys::do_not_call(est, &entry.e164), entry)?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    est,
                    actor,
                    "do_not_call.added",
                    ("phone_number", entry.e164.as_str()),
                    serde_json::Value::Null,
                    json!({ "e164": entry.e164, "reason": entry.reason }),
                ))?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Takes a number off the list; `Ok(false)` when it was not on it.
    pub async fn remove_do_not_call(
        &self,
        est: &EstablishmentId,
        e164: &E164,
        actor: &UserRecord,
    ) -> Result<bool> {
        let items = Tx::new()
            .with(
                "entry",
                self.delete(
                    &keys::do_not_call(est, e164),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    HashMap::new(),
                )?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    est,
                    actor,
                    "do_not_call.removed",
                    ("phone_number", e164.as_str()),
                    json!({ "e164": e164 }),
                    serde_json::Value::Null,
                ))?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A page of the establishment's do-not-call list, by number.
    pub async fn do_not_call_page(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<DoNotCallRecord>> {
        let pk = keys::establishment_partition(est);
        let to = format!("{}\u{10FFFF}", keys::DNC_PREFIX);
        self.list_page(
            &ListQuery::table(&pk).between(keys::DNC_PREFIX, &to),
            limit,
            cursor,
        )
        .await
    }
}
