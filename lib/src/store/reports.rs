//! Report aggregates (issue 15): per establishment, agent, agent version and local day
//! (`RPT#{est}` / `D#…`) and UTC hour (`H#…`), each a set of counters that only ever move by
//! ADD; the needs-attention list (`ATTN#{est}`); and the cached dashboard answers. A call's
//! contribution is replaced in one transaction with the call's own `report` (conditioned on
//! `report_seq`), so it is counted exactly once however often it is recounted.

use super::records::{AttentionRecord, CallRecord, EstablishmentRecord, ExportRecord, ReportMark};
use super::{Item, Page, Store, Tx, TxError, keys, n, s};
use crate::domain::report::Counters;
use crate::error::{Error, Result};
use crate::ids::{AgentId, AgentVersionId, CallId, EstablishmentId};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Select, TransactWriteItem, Update};
use keys::Key;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The attributes of an aggregate that are not counters.
const AGGREGATE_FIELDS: &[&str] = &["pk", "sk", "period", "agent_id", "agent_version_id"];

/// One aggregate as read: a day or an hour of one agent version.
#[derive(Clone, Debug)]
pub struct Aggregate {
    /// `YYYY-MM-DD` (a local day) or `YYYY-MM-DDTHH` (a UTC hour).
    pub period: String,
    pub agent_id: AgentId,
    pub agent_version_id: Option<AgentVersionId>,
    pub counters: Counters,
}

/// A cached answer (`RPT#{est}` / `CACHE#{name}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The answer, as JSON.
    pub body: String,
    /// Until when it may be served (Unix milliseconds).
    pub fresh_until_ms: i64,
    /// TTL (Unix seconds): DynamoDB removes it some time after.
    pub expires_at: i64,
}

/// One aggregate's change in a recount.
struct Change<'a> {
    period: &'a str,
    mark: &'a ReportMark,
    delta: Counters,
}

impl Store {
    /// A call and its establishment, in one round trip (consistent).
    pub async fn call_and_establishment(
        &self,
        call: &CallId,
        est: &EstablishmentId,
    ) -> Result<(Option<CallRecord>, Option<EstablishmentRecord>)> {
        let (call_key, est_key) = (keys::call(call), keys::establishment(est));
        let (mut c, mut e) = (None, None);
        for (key, item) in self.batch_get(&[call_key.clone(), est_key]).await? {
            if key == call_key {
                c = Some(Self::record(item)?);
            } else {
                e = Some(Self::record(item)?);
            }
        }
        Ok((c, e))
    }

    /// Replaces what `call` (as read) contributes to the aggregates by `new`: takes its stored
    /// `report` away, adds `new`, moves its needs-attention entry, and stores `new` on the
    /// call, in one transaction conditioned on the call's `report_seq` being as read.
    /// `Ok(false)` when another recount came first (read the call again).
    pub async fn recount_call(&self, call: &CallRecord, new: Option<&ReportMark>) -> Result<bool> {
        let est = &call.establishment_id;
        let old = call.report.as_ref();
        let mut changes: HashMap<Key, Change<'_>> = HashMap::new();
        for (mark, sign) in [(old, -1), (new, 1)] {
            let Some(mark) = mark else { continue };
            let version = mark.agent_version_id.as_ref();
            for (key, period) in [
                (
                    keys::report_day(est, &mark.day, &mark.agent_id, version),
                    &mark.day,
                ),
                (
                    keys::report_hour(est, &mark.hour, &mark.agent_id, version),
                    &mark.hour,
                ),
            ] {
                changes
                    .entry(key)
                    .or_insert_with(|| Change {
                        period,
                        mark,
                        delta: Counters::default(),
                    })
                    .delta
                    .merge(&mark.counters, sign);
            }
        }
        let seq = call.report_seq.unwrap_or(0);
        let mut values: Item = HashMap::from([(":next".to_owned(), n(seq + 1))]);
        let mut expression = "SET report_seq = :next".to_owned();
        match new {
            Some(mark) => {
                values.insert(":r".to_owned(), serde_dynamo::to_attribute_value(mark)?);
                expression.push_str(", report = :r");
            }
            None => expression.push_str(" REMOVE report"),
        }
        let condition = match call.report_seq {
            Some(_) => {
                values.insert(":seq".to_owned(), n(seq));
                "report_seq = :seq"
            }
            None => "attribute_not_exists(report_seq)",
        };
        let mut tx = Tx::new().with(
            "call",
            self.update(
                &keys::call(&call.id),
                &expression,
                Some(condition),
                HashMap::new(),
                values,
            )?,
        );
        for (key, change) in &changes {
            if !change.delta.is_empty() {
                tx.add("aggregate", self.add_counters(key, change)?);
            }
        }
        let old_entry = old.and_then(|m| m.attention.as_ref());
        let new_entry = new.and_then(|m| m.attention.as_ref());
        if old_entry != new_entry {
            let key_of = |a: &AttentionRecord| keys::attention(est, &a.ended_at, &a.call_id);
            if let Some(a) = old_entry
                && new_entry.is_none_or(|b| key_of(b) != key_of(a))
            {
                tx.add("attention", self.remove(&key_of(a))?);
            }
            if let Some(b) = new_entry {
                tx.add("attention", self.put(&key_of(b), b, None)?);
            }
        }
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(failed)) if failed.only("call") => Ok(false),
            Err(TxError::Conditions(failed)) => Err(Error::internal(format!(
                "recount of call {} failed on {failed:?}",
                call.id
            ))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// An unconditional delete for a transaction.
    fn remove(&self, key: &Key) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key.attrs()))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// An update that adds `change.delta` to the aggregate at `key`, creating it if needed.
    fn add_counters(&self, key: &Key, change: &Change<'_>) -> Result<TransactWriteItem> {
        let mut names = HashMap::new();
        let mut values: Item = HashMap::from([
            (":period".to_owned(), s(change.period)),
            (":agent".to_owned(), s(change.mark.agent_id.as_str())),
        ]);
        let mut sets = vec!["period = :period", "agent_id = :agent"];
        if let Some(v) = &change.mark.agent_version_id {
            values.insert(":version".to_owned(), s(v.as_str()));
            sets.push("agent_version_id = :version");
        }
        let mut adds = Vec::new();
        for (i, (name, by)) in change.delta.iter().enumerate() {
            names.insert(format!("#c{i}"), name.to_owned());
            values.insert(format!(":c{i}"), n(by));
            adds.push(format!("#c{i} :c{i}"));
        }
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key.attrs()))
            .update_expression(format!("SET {} ADD {}", sets.join(", "), adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The aggregates of an establishment whose periods (days or hours, as `prefix` says) lie
    /// in `first..=last`, optionally of one agent: one Query per MB read.
    pub async fn aggregates(
        &self,
        est: &EstablishmentId,
        prefix: &str,
        first: &str,
        last: &str,
        agent: Option<&AgentId>,
    ) -> Result<Vec<Aggregate>> {
        let (from, to) = keys::report_range(prefix, first, last);
        let items = self
            .query_between_all(&keys::reports_partition(est), &from, &to)
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            };
            let (Some(period), Some(agent_id)) = (text("period"), text("agent_id")) else {
                return Err(Error::internal("an aggregate without its period or agent"));
            };
            let agent_id = AgentId::parse(&agent_id).map_err(Error::internal)?;
            if agent.is_some_and(|a| *a != agent_id) {
                continue;
            }
            let agent_version_id = text("agent_version_id")
                .map(|v| AgentVersionId::parse(&v))
                .transpose()
                .map_err(Error::internal)?;
            let counters = item
                .iter()
                .filter(|(name, _)| !AGGREGATE_FIELDS.contains(&name.as_str()))
                .filter_map(|(name, value)| match value {
                    AttributeValue::N(v) => Some((name.clone(), v.parse().ok()?)),
                    _ => None,
                })
                .collect();
            out.push(Aggregate {
                period,
                agent_id,
                agent_version_id,
                counters,
            });
        }
        Ok(out)
    }

    /// A page of the needs-attention list, newest first.
    pub async fn attention_page(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<AttentionRecord>> {
        let pk = keys::attention_partition(est);
        self.list_page(&super::ListQuery::table(&pk).newest_first(), limit, cursor)
            .await
    }

    /// The cached answer `name` of an establishment, with the establishment itself (one
    /// round trip).
    pub async fn cached(
        &self,
        est: &EstablishmentId,
        name: &str,
    ) -> Result<(Option<EstablishmentRecord>, Option<CacheRecord>)> {
        let (est_key, cache_key) = (keys::establishment(est), keys::report_cache(est, name));
        let (mut e, mut c) = (None, None);
        for (key, item) in self.batch_get(&[est_key.clone(), cache_key]).await? {
            if key == est_key {
                e = Some(Self::record(item)?);
            } else {
                c = Some(Self::record(item)?);
            }
        }
        Ok((e, c))
    }

    /// Stores answer `name` of an establishment in the cache.
    pub async fn cache(
        &self,
        est: &EstablishmentId,
        name: &str,
        record: &CacheRecord,
    ) -> Result<()> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(Self::item(&keys::report_cache(est, name), record)?))
            .send()
            .await?;
        Ok(())
    }

    /// How many calls of the establishment are live now (a count of the active-calls index:
    /// as many items read as calls are live, bounded by the concurrency limits).
    pub async fn live_call_count(&self, est: &EstablishmentId) -> Result<u64> {
        let pk = keys::active_calls_index(est);
        let (mut count, mut start) = (0u64, None);
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi2")
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::GSI2PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            count += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(count),
            }
        }
    }
}

impl Store {
    /// A calls export.
    pub async fn export(&self, est: &EstablishmentId, id: &str) -> Result<Option<ExportRecord>> {
        self.get(&keys::report_export(est, id)).await
    }

    /// Creates `export` unless one with its id exists (`Ok(false)`).
    pub async fn create_export(&self, export: &ExportRecord) -> Result<bool> {
        self.put_if(
            &keys::report_export(&export.establishment_id, &export.export_id),
            export,
            "attribute_not_exists(pk)",
            HashMap::new(),
            HashMap::new(),
        )
        .await
    }

    /// Stores how `export` ended, if it is still pending (`Ok(false)` otherwise).
    pub async fn finish_export(&self, export: &ExportRecord) -> Result<bool> {
        self.put_if(
            &keys::report_export(&export.establishment_id, &export.export_id),
            export,
            "#status = :pending",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            HashMap::from([(
                ":pending".to_owned(),
                serde_dynamo::to_attribute_value(super::records::ExportStatus::Pending)?,
            )]),
        )
        .await
    }
}
