//! Integrations and tool-proxy records: an establishment's connections (one per type, found
//! by type in the tool proxy's batch read and by id through a pointer), OAuth consents in
//! flight (single-use: the callback deletes the state it uses), and each proxied tool call's
//! idempotency record and per-minute rate counter.

use super::records::{
    AuditRecord, CallRecord, EventRecord, IntegrationIdRecord, IntegrationRecord, OAuthStateRecord,
    RuntimeRecord, ToolKeyRecord, ToolKeyState, UserRecord, VersionRecord,
};
use super::{CallEffect, Item, Store, Tx, TxError, keys, n, s};
use crate::domain::integration::IntegrationType;
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, IntegrationId};
use crate::time::Timestamp;
use serde_json::json;
use std::collections::HashMap;

/// Everything a tool-proxy call needs besides the call, read in one round trip.
#[derive(Debug, Default)]
pub struct ToolContext {
    pub runtime: Option<RuntimeRecord>,
    pub version: Option<VersionRecord>,
    pub integration: Option<IntegrationRecord>,
    pub key: Option<ToolKeyRecord>,
}

/// How claiming a tool call ended.
#[derive(Debug)]
pub enum Claim {
    /// Ours: call the provider.
    Claimed,
    /// The key was claimed meanwhile by another request.
    Taken,
    /// Over the minute's limit.
    RateLimited,
}

/// One tool call as the tool log shows it: the call event and, once answered, its result.
#[derive(Debug)]
pub struct ToolCallWrite<'a> {
    pub call: &'a CallRecord,
    pub called: EventRecord,
    pub result: Option<EventRecord>,
}

impl Store {
    /// A new connection, its id pointer and, for OAuth, its consent state, with the audit
    /// entry; `Ok(false)` when the establishment has a connection of that type already.
    pub async fn create_integration(
        &self,
        record: &IntegrationRecord,
        state: Option<(&str, &OAuthStateRecord)>,
        actor: &UserRecord,
    ) -> Result<bool> {
        let mut items = Tx::new()
            .with(
                "integration",
                self.create(
                    &keys::integration(&record.establishment_id, record.kind),
                    record,
                )?,
            )
            .with(
                "pointer",
                self.create(
                    &keys::integration_id(&record.id),
                    &IntegrationIdRecord {
                        id: record.id.clone(),
                        establishment_id: record.establishment_id.clone(),
                        kind: record.kind,
                    },
                )?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &record.establishment_id,
                    actor,
                    "integration.connected",
                    ("integration", record.id.as_str()),
                    serde_json::Value::Null,
                    json!({"type": record.kind, "mode": record.mode, "status": record.status}),
                ))?,
            );
        if let Some((hash, st)) = state {
            items.add("state", self.create(&keys::oauth_state(hash), st)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(failed)) if failed.has("integration") => Ok(false),
            Err(TxError::Conditions(failed)) => Err(Error::internal(format!(
                "integration create failed on {failed:?}"
            ))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// The establishment's connection of `kind`.
    pub async fn integration(
        &self,
        est: &EstablishmentId,
        kind: IntegrationType,
    ) -> Result<Option<IntegrationRecord>> {
        self.get(&keys::integration(est, kind)).await
    }

    /// A connection by id (two reads: the pointer, then the record).
    pub async fn integration_by_id(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>> {
        let Some(pointer) = self
            .get::<IntegrationIdRecord>(&keys::integration_id(id))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .integration(&pointer.establishment_id, pointer.kind)
            .await?
            .filter(|r| &r.id == id))
    }

    /// Every connection of an establishment, by type.
    pub async fn integrations(&self, est: &EstablishmentId) -> Result<Vec<IntegrationRecord>> {
        self.query_prefix_all(
            &keys::establishment_partition(est),
            keys::INTEGRATION_PREFIX,
        )
        .await?
        .into_iter()
        .map(Self::record)
        .collect()
    }

    /// Writes `record` (its `seq` already bumped) if the stored one is still at `seq - 1`,
    /// with an audit entry when `audit` says what changed; `Ok(false)` when it changed
    /// meanwhile.
    pub async fn save_integration(
        &self,
        record: &IntegrationRecord,
        audit: Option<(&UserRecord, &str, serde_json::Value, serde_json::Value)>,
    ) -> Result<bool> {
        let mut items = Tx::new().with(
            "integration",
            self.put_where(
                &keys::integration(&record.establishment_id, record.kind),
                record,
                "seq = :prev AND id = :id",
                HashMap::from([
                    (":prev".to_owned(), n(record.seq.saturating_sub(1))),
                    (":id".to_owned(), s(record.id.as_str())),
                ]),
            )?,
        );
        if let Some((actor, action, before, after)) = audit {
            items.add(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &record.establishment_id,
                    actor,
                    action,
                    ("integration", record.id.as_str()),
                    before,
                    after,
                ))?,
            );
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Deletes a connection and its pointer, with the audit entry.
    pub async fn delete_integration(
        &self,
        record: &IntegrationRecord,
        actor: &UserRecord,
    ) -> Result<()> {
        let items = Tx::new()
            .with(
                "integration",
                self.delete(
                    &keys::integration(&record.establishment_id, record.kind),
                    "attribute_not_exists(pk) OR id = :id",
                    HashMap::new(),
                    HashMap::from([(":id".to_owned(), s(record.id.as_str()))]),
                )?,
            )
            .with(
                "pointer",
                self.delete(
                    &keys::integration_id(&record.id),
                    "attribute_not_exists(pk) OR id = :id",
                    HashMap::new(),
                    HashMap::from([(":id".to_owned(), s(record.id.as_str()))]),
                )?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &record.establishment_id,
                    actor,
                    "integration.disconnected",
                    ("integration", record.id.as_str()),
                    json!({"type": record.kind, "status": record.status}),
                    serde_json::Value::Null,
                ))?,
            );
        match self.transact(items).await {
            Ok(()) | Err(TxError::Conditions(_)) => Ok(()),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Takes (deletes and answers) a consent state: a second use finds nothing.
    pub async fn take_oauth_state(&self, hash: &str) -> Result<Option<OAuthStateRecord>> {
        let out = super::retry::on_conflict(|| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(keys::oauth_state(hash).attrs()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
        })
        .await?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(Self::record)
            .transpose()
    }

    /// The runtime, the version, the establishment's connection of `kind` and the key's
    /// record, in one BatchGetItem.
    pub async fn tool_context(
        &self,
        call: &CallRecord,
        kind: Option<IntegrationType>,
        key: Option<&keys::Key>,
    ) -> Result<ToolContext> {
        let runtime_key = call.runtime_id.as_ref().map(keys::runtime);
        let version_key = call
            .agent_version_id
            .as_ref()
            .map(|v| keys::agent_version(&call.agent_id, v));
        let integration_key = kind.map(|k| keys::integration(&call.establishment_id, k));
        let wanted: Vec<keys::Key> = [
            runtime_key.clone(),
            version_key.clone(),
            integration_key.clone(),
            key.cloned(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut context = ToolContext::default();
        for (found, item) in self.batch_get(&wanted).await? {
            if Some(&found) == runtime_key.as_ref() {
                context.runtime = Some(Self::record(item)?);
            } else if Some(&found) == version_key.as_ref() {
                context.version = Some(Self::record(item)?);
            } else if Some(&found) == integration_key.as_ref() {
                context.integration = Some(Self::record(item)?);
            } else if Some(&found) == key {
                context.key = Some(Self::record(item)?);
            }
        }
        Ok(context)
    }

    /// Claims a tool call before the provider is called, in one transaction: the key's record
    /// (new, or one whose last attempt may be retried), this minute's counter of the tool's
    /// group (under `limit`), and the call event in the tool log.
    pub async fn claim_tool_call(
        &self,
        key: Option<(&keys::Key, u32)>,
        rate: (&keys::Key, u32, i64),
        write: &ToolCallWrite<'_>,
    ) -> Result<Claim> {
        let now = write.called.received_at;
        let (rate_key, limit, expires) = rate;
        let mut items = Tx::new();
        if let Some((key, attempt)) = key {
            let record = ToolKeyRecord {
                state: ToolKeyState::Pending,
                attempt,
                claimed_at: now,
                http_status: None,
                answer: None,
            };
            let condition = if attempt == 1 {
                "attribute_not_exists(pk)".to_owned()
            } else {
                "#state = :retry AND attempt = :prev".to_owned()
            };
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::item(key, &record)?))
                .condition_expression(condition)
                .set_expression_attribute_names(
                    (attempt > 1)
                        .then(|| HashMap::from([("#state".to_owned(), "state".to_owned())])),
                )
                .set_expression_attribute_values((attempt > 1).then(|| {
                    HashMap::from([
                        (":retry".to_owned(), s("retry")),
                        (":prev".to_owned(), n(attempt - 1)),
                    ])
                }))
                .build()
                .map_err(Error::internal)?;
            items.add(
                "key",
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build(),
            );
        }
        let rate_update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(rate_key.attrs()))
            .update_expression("ADD calls :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(calls) OR calls < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires))
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(Error::internal)?;
        items.add(
            "rate",
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(rate_update)
                .build(),
        );
        items.add(
            "called",
            self.create(
                &keys::call_event(&write.call.id, &write.called.idempotency_key),
                &write.called,
            )?,
        );
        match self.transact(items).await {
            Ok(()) => Ok(Claim::Claimed),
            Err(TxError::Conditions(failed)) if failed.has("key") => Ok(Claim::Taken),
            Err(TxError::Conditions(failed)) if failed.has("rate") => Ok(Claim::RateLimited),
            Err(TxError::Conditions(failed)) => Err(Error::internal(format!(
                "tool call claim failed on {failed:?}"
            ))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Records a tool call's outcome: its result event, the call's tool counters and, with an
    /// idempotency key, the answer later retries get (`done`) or leave to try again (`retry`).
    /// With `write.result` only (the call event already claimed) or both events (a refusal
    /// logged in one go).
    pub async fn finish_tool_call(
        &self,
        write: &ToolCallWrite<'_>,
        claimed: bool,
        key: Option<(&keys::Key, &ToolKeyRecord)>,
    ) -> Result<()> {
        let result = write
            .result
            .as_ref()
            .ok_or_else(|| Error::internal("a finished tool call has a result"))?;
        let mut items = Tx::new();
        if !claimed {
            items.add(
                "called",
                self.create(
                    &keys::call_event(&write.call.id, &write.called.idempotency_key),
                    &write.called,
                )?,
            );
        }
        items.add(
            "result",
            self.create(
                &keys::call_event(&write.call.id, &result.idempotency_key),
                result,
            )?,
        );
        items.add(
            "effect",
            CallEffect::ToolResult {
                failed: result.tool_error.is_some(),
            }
            .update(self, &write.call.id, result.received_at)?,
        );
        if let Some((key, record)) = key {
            items.add("key", self.put(key, record, None)?);
        }
        match self.transact(items).await {
            // A duplicate result (a lost answer resent) changes nothing.
            Ok(()) | Err(TxError::Conditions(_)) => Ok(()),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Marks an integration as failing (`error` with what the provider said), unless it was
    /// disconnected meanwhile (a reconnect has another id).
    pub async fn integration_failed(&self, record: &IntegrationRecord, why: &str) -> Result<()> {
        let values: Item = HashMap::from([
            (":error".to_owned(), s("error")),
            (":why".to_owned(), s(why)),
            (":now".to_owned(), s(Timestamp::now().to_string())),
            (":id".to_owned(), s(record.id.as_str())),
            (":one".to_owned(), n(1)),
        ]);
        self.update_if(
            &keys::integration(&record.establishment_id, record.kind),
            "SET #status = :error, last_error = :why, updated_at = :now ADD seq :one",
            "id = :id",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            values,
        )
        .await
        .map(|_| ())
    }
}
