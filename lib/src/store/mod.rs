//! The DynamoDB store: one table, keys from [`keys`], every create a conditional put, every
//! uniqueness rule a guard item written in the same `TransactWriteItems`. Operations are
//! grouped by aggregate in the submodules; this module owns the generic plumbing.

mod access;
mod agents;
mod analysis;
mod artifacts;
pub mod audit;
mod calls;
mod campaigns;
pub mod cursor;
mod do_not_call;
mod establishments;
mod ingest;
mod integrations;
pub mod keys;
mod leads;
mod live;
pub mod members;
mod outbound;
mod phones;
pub mod records;
mod reports;
mod retry;
mod runtimes;
mod users;

pub use access::Session;
pub use agents::{Activation, ActivationError, AgentPatch, MAX_NUMBERS_PER_AGENT};
pub use artifacts::{Arrivals, CallFilter};
pub use calls::{CreateCallError, InboundContext, StatusChange};
pub use campaigns::{DialerConflict, DialerError, Transition, remember};
pub use cursor::CursorCodec;
pub use establishments::EstablishmentPatch;
pub use ingest::{CallEffect, EventWrite, IngestContext, Written};
pub use integrations::{Claim, ToolCallWrite, ToolContext};
pub use leads::{BatchConflict, ImportBatch, ImportCounts, LeadQuery, LeadSearch, LeadWrite};
pub use live::UNREPORTED_END;
pub use outbound::OutboundContext;
pub use phones::{Route, RoutingError};
pub use reports::{Aggregate, CacheRecord};
pub use retry::on_conflict;
pub use runtimes::ProvisionError;

use crate::error::{Error, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use keys::Key;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// An item as DynamoDB returns it.
pub type Item = HashMap<String, AttributeValue>;

/// A page of a list: the items and where the next page starts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass back as `?cursor=` for the next page; `null` on the last page.
    pub cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item converted (records to API views).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            cursor: self.cursor,
        }
    }
}

/// Most keys one BatchGetItem takes.
const BATCH_GET_MAX: usize = 100;

/// Handle on the table; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    cursors: CursorCodec,
}

/// The items of one `TransactWriteItems`, each with a name the caller decodes failures by
/// (`"guard"`, `"member"`, …): inserting an item never changes what a failed condition means.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    names: Vec<&'static str>,
    items: Vec<TransactWriteItem>,
}

impl Tx {
    /// An empty transaction.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The same transaction with `item`, named `name`, appended.
    pub(crate) fn with(mut self, name: &'static str, item: TransactWriteItem) -> Self {
        self.add(name, item);
        self
    }

    /// Appends `item`, named `name`.
    pub(crate) fn add(&mut self, name: &'static str, item: TransactWriteItem) {
        self.names.push(name);
        self.items.push(item);
    }
}

/// The names of the items whose condition failed.
#[derive(Debug)]
pub(crate) struct Failed(Vec<&'static str>);

impl Failed {
    /// Whether the item named `name` failed its condition.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.contains(&name)
    }

    /// Whether the item named `name` is the only one that failed its condition.
    pub(crate) fn only(&self, name: &str) -> bool {
        self.0 == [name]
    }

    /// Whether any of the items named in `names` failed its condition.
    pub(crate) fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.has(n))
    }
}

/// Why a transaction did not apply.
#[derive(Debug)]
pub(crate) enum TxError {
    /// The condition of these items failed.
    Conditions(Failed),
    /// Anything else.
    Other(Error),
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Other(e)
    }
}

impl Store {
    /// A store over `table`; `cursor_secret` keys cursor signatures.
    pub fn new(client: Client, table: impl Into<String>, cursor_secret: &[u8]) -> Self {
        Self {
            client,
            table: table.into(),
            cursors: CursorCodec::new(cursor_secret),
        }
    }

    /// The underlying client (for resource set-up and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn cursors(&self) -> &CursorCodec {
        &self.cursors
    }

    /// Serialises `record` and adds the key attributes.
    pub(crate) fn item(key: &Key, record: &impl Serialize) -> Result<Item> {
        let mut item: Item = serde_dynamo::to_item(record)?;
        item.extend(key.attrs());
        Ok(item)
    }

    /// Deserialises an item (key attributes are ignored by the record types).
    pub(crate) fn record<T: DeserializeOwned>(item: Item) -> Result<T> {
        Ok(serde_dynamo::from_item(item)?)
    }

    /// One consistent GetItem.
    pub(crate) async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.attrs()))
            .consistent_read(true)
            .send()
            .await?;
        out.item.map(Self::record).transpose()
    }

    /// One cheap call that tells whether the table answers (readiness checks): a GetItem of a
    /// key nothing uses, no retries, a short timeout.
    pub async fn probe(&self) -> Result<()> {
        let key = keys::health_probe();
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.attrs()))
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .timeout_config(crate::aws::probe_timeouts()),
            )
            .send()
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// The items found of `wanted`, by key: one BatchGetItem round trip per 100 keys
    /// (DynamoDB's limit per request), plus retries of unprocessed keys (throttling, or an
    /// answer over 16 MB).
    pub(crate) async fn batch_get(&self, wanted: &[Key]) -> Result<Vec<(Key, Item)>> {
        let mut found = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(BATCH_GET_MAX) {
            found.append(&mut self.batch_get_once(chunk).await?);
        }
        Ok(found)
    }

    /// [`Store::batch_get`] of at most [`BATCH_GET_MAX`] keys.
    async fn batch_get_once(&self, wanted: &[Key]) -> Result<Vec<(Key, Item)>> {
        let mut pending: Vec<Item> = wanted.iter().map(Key::attrs).collect();
        let mut found = Vec::new();
        for attempt in 0..5 {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(Error::internal)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                let key = Key {
                    pk: string_attr(&item, keys::PK)?,
                    sk: string_attr(&item, keys::SK)?,
                };
                found.push((key, item));
            }
            pending = out
                .unprocessed_keys
                .unwrap_or_default()
                .remove(&self.table)
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(Error::internal(
                "BatchGetItem left keys unprocessed after retries",
            ));
        }
        Ok(found)
    }

    /// A conditional put for a transaction.
    pub(crate) fn put(
        &self,
        key: &Key,
        record: &impl Serialize,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(key, record)?))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put for a transaction whose condition uses `values`.
    pub(crate) fn put_where(
        &self,
        key: &Key,
        record: &impl Serialize,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(key, record)?))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put that creates `key` only if it does not exist yet.
    pub(crate) fn create(&self, key: &Key, record: &impl Serialize) -> Result<TransactWriteItem> {
        self.put(key, record, Some("attribute_not_exists(pk)"))
    }

    /// A delete for a transaction, with its condition, attribute names and values.
    pub(crate) fn delete(
        &self,
        key: &Key,
        condition: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key.attrs()))
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// An update for a transaction. The item must exist (the condition is ANDed with that).
    pub(crate) fn update(
        &self,
        key: &Key,
        set: &str,
        condition: Option<&str>,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem> {
        let condition = match condition {
            Some(c) => format!("attribute_exists(pk) AND ({c})"),
            None => "attribute_exists(pk)".to_owned(),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.attrs()))
            .update_expression(set)
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Applies all items atomically, in one round trip when nothing contends. Throttling and
    /// 5xx are retried by the SDK (`aws::retry_config`) under the one `ClientRequestToken` it
    /// gives each call, so a retry after a lost answer cannot apply twice. A cancellation that
    /// is not a failed condition (`TransactionConflict` with another writer, throttling of an
    /// item) applied nothing and is sent again, as a new request, after a jittered back-off.
    pub(crate) async fn transact(&self, tx: Tx) -> Result<(), TxError> {
        let mut backoff = retry::Backoff::new();
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(tx.items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                // Still throttled or failing after the SDK's retries: a 503, else ours.
                return Err(TxError::Other(err.into()));
            };
            let reasons = cancel.cancellation_reasons();
            let failed: Vec<&'static str> = reasons
                .iter()
                .zip(&tx.names)
                .filter(|(r, _)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(_, name)| *name)
                .collect();
            if !failed.is_empty() {
                return Err(TxError::Conditions(Failed(failed)));
            }
            let transient = reasons.iter().any(|r| {
                matches!(
                    r.code(),
                    Some(
                        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                    )
                )
            });
            if !transient {
                return Err(TxError::Other(Error::internal(err)));
            }
            backoff
                .wait_or(|| {
                    Error::Unavailable(
                        "the records are being changed by other requests; retry shortly".into(),
                    )
                })
                .await?;
        }
    }

    /// One Query page over `pk` with `sk` between `from` and `to` (inclusive), in sort order.
    pub(crate) async fn query_range(
        &self,
        pk: &str,
        from: &str,
        to: &str,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>)> {
        let q = ListQuery::table(pk).between(from, to);
        self.query_page(&q, limit, start).await
    }

    /// One Query page as `q` describes it.
    pub(crate) async fn query_page(
        &self,
        q: &ListQuery<'_>,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>)> {
        let (pk_name, sk_name) = q.index.map_or((keys::PK, keys::SK), Index::attributes);
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(|i| i.name().to_owned()))
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", AttributeValue::S(q.pk.to_owned()))
            .limit(limit)
            .scan_index_forward(q.forward)
            .set_exclusive_start_key(start)
            // Global secondary indexes cannot be read consistently; the table and its local
            // indexes can.
            .consistent_read(q.index.is_none_or(Index::is_local));
        if let Some(filter) = &q.filter {
            req = req.filter_expression(&filter.expression);
            for (name, attribute) in &filter.names {
                req = req.expression_attribute_names(name, attribute);
            }
            for (name, value) in &filter.values {
                req = req.expression_attribute_values(name, value.clone());
            }
        }
        req = match q.range {
            Some((from, to)) => req
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
                .expression_attribute_values(":to", AttributeValue::S(to.to_owned())),
            None => req.key_condition_expression("#pk = :pk"),
        };
        let out = req.send().await?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// A page of records for the API: decodes the client's cursor (bound to `q.name`), reads
    /// one Query page, and encodes the next cursor.
    pub(crate) async fn list_page<T: DeserializeOwned>(
        &self,
        q: &ListQuery<'_>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<T>> {
        let start = cursor
            .map(|c| self.cursors.decode(&q.name, c))
            .transpose()?;
        let (items, next) = self.query_page(q, limit, start).await?;
        Ok(Page {
            items: items.into_iter().map(Self::record).collect::<Result<_>>()?,
            cursor: next.map(|k| self.cursors.encode(&q.name, &k)).transpose()?,
        })
    }

    /// One page merged from several partitions that are read newest first and sort alike (an
    /// establishment's calls, for each establishment of a user): each partition is read once,
    /// concurrently, and the newest `limit` items of them all are the page. The cursor holds,
    /// per partition, where its next read starts (the last item taken from it) or that it is
    /// done; it is bound to exactly these partitions.
    pub(crate) async fn merged_page<T: DeserializeOwned>(
        &self,
        parts: &[ListQuery<'_>],
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<T>> {
        const DONE: &str = "done";
        let name = format!(
            "merge:{}",
            parts
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join("|")
        );
        let state = cursor
            .map(|c| self.cursors.decode(&name, c))
            .transpose()?
            .unwrap_or_default();
        let part_state = |i: usize| -> (bool, Option<Item>) {
            let prefix = format!("{i}|");
            let done = state.contains_key(&prefix);
            let start: Item = state
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v.clone())))
                .filter(|(k, _)| !k.is_empty())
                .collect();
            (done, (!start.is_empty()).then_some(start))
        };
        let reads = parts.iter().enumerate().map(|(i, q)| {
            let (done, start) = part_state(i);
            async move {
                if done {
                    return Ok((i, Vec::new(), None, true, start));
                }
                let (items, next) = self.query_page(q, limit, start.clone()).await?;
                Ok::<_, Error>((i, items, next, false, start))
            }
        });
        let results = futures::future::try_join_all(reads).await?;
        let sort_attr = |q: &ListQuery<'_>| q.index.map_or(keys::SK, |i| i.attributes().1);
        let mut candidates: Vec<(String, usize, Item)> = Vec::new();
        for (i, items, ..) in &results {
            for item in items {
                let at = item
                    .get(sort_attr(&parts[*i]))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                candidates.push((at, *i, item.clone()));
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0));
        candidates.truncate(usize::try_from(limit).unwrap_or(0));
        let mut next = Item::new();
        for (i, items, lek, done, start) in &results {
            let q = &parts[*i];
            let taken: Vec<&Item> = candidates
                .iter()
                .filter(|c| c.1 == *i)
                .map(|c| &c.2)
                .collect();
            let part_done = *done || (taken.len() == items.len() && lek.is_none());
            let resume = match taken.last() {
                _ if part_done => None,
                Some(last) => Some(key_of(last, q)),
                None if items.is_empty() => lek.clone(),
                None => start.clone(),
            };
            match resume {
                None if part_done => {
                    next.insert(format!("{i}|"), AttributeValue::S(DONE.into()));
                }
                None => {}
                Some(key) => {
                    for (k, v) in key {
                        next.insert(format!("{i}|{k}"), v);
                    }
                }
            }
        }
        let all_done = (0..parts.len()).all(|i| next.contains_key(&format!("{i}|")));
        Ok(Page {
            items: candidates
                .into_iter()
                .map(|(_, _, item)| Self::record(item))
                .collect::<Result<_>>()?,
            cursor: if all_done {
                None
            } else {
                Some(self.cursors.encode(&name, &next)?)
            },
        })
    }

    /// Every record of a `gsi1` partition (follows pages).
    pub(crate) async fn gsi1_all<T: DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>> {
        self.query_all(&ListQuery::gsi1(pk)).await
    }

    /// Every record `q` finds (follows pages).
    pub(crate) async fn query_all<T: DeserializeOwned>(&self, q: &ListQuery<'_>) -> Result<Vec<T>> {
        let (mut out, mut start) = (Vec::new(), None);
        loop {
            let (items, next) = self.query_page(q, 1000, start).await?;
            for item in items {
                out.push(Self::record(item)?);
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// One conditional UpdateItem outside a transaction; `Ok(false)` when the condition failed.
    pub(crate) async fn update_if(
        &self,
        key: &Key,
        expression: &str,
        condition: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<bool> {
        Ok(self
            .update_returning_old(key, expression, condition, names, values)
            .await?
            .0)
    }

    /// One conditional UpdateItem outside a transaction that also answers the item as it was
    /// before, whether the condition held or not (in the same round trip): `(applied, item)`.
    pub(crate) async fn update_returning_old(
        &self,
        key: &Key,
        expression: &str,
        condition: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<(bool, Option<Item>)> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.attrs()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        match retry::on_conflict(|| request.clone().send()).await {
            Ok(out) => Ok((true, out.attributes.filter(|a| !a.is_empty()))),
            Err(e) => match e.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                        failed,
                    ),
                ) => Ok((false, failed.item.clone().filter(|a| !a.is_empty()))),
                _ => Err(e.into()),
            },
        }
    }

    /// One conditional PutItem outside a transaction; `Ok(false)` when the condition failed.
    pub(crate) async fn put_if(
        &self,
        key: &Key,
        record: &impl Serialize,
        condition: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<bool> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(key, record)?))
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values));
        match retry::on_conflict(|| request.clone().send()).await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every item of `pk` whose sort key starts with `prefix` (follows pages).
    pub(crate) async fn query_prefix_all(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_between_all(pk, prefix, &format!("{prefix}\u{10FFFF}"))
            .await
    }

    /// Every item of `pk` with `from <= sk <= to`, in sort order (follows pages).
    pub(crate) async fn query_between_all(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (mut page, next) = self.query_range(pk, from, to, 1000, start).await?;
            items.append(&mut page);
            match next {
                Some(next) => start = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// What a paged list reads: a partition of the table or of `gsi1`, optionally a sort-key
/// range, in either direction. `name` binds cursors to this exact query.
#[derive(Debug)]
pub(crate) struct ListQuery<'a> {
    name: String,
    index: Option<Index>,
    pk: &'a str,
    range: Option<(&'a str, &'a str)>,
    forward: bool,
    filter: Option<Filter>,
}

/// The table's secondary indexes (see `resources` and docs/data-model.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Index {
    /// Global: listings by owner (`EST#{est}#AGENTS`, `…#CALLS`, `HOSTS`, …).
    Gsi1,
    /// Global, sparse: an establishment's active calls.
    Gsi2,
    /// Global, sparse, keys only: every live call, sharded (the sweeper's); leads by number.
    Gsi3,
    /// Global, sparse, keys only: leads by name.
    Gsi4,
    /// Local: a partition's items in time order (timeline, transcript).
    Lsi1,
    /// Local: a partition's items in arrival order (transcript polls), and tool events.
    Lsi2,
}

impl Index {
    fn name(self) -> &'static str {
        match self {
            Index::Gsi1 => keys::GSI1,
            Index::Gsi2 => "gsi2",
            Index::Gsi3 => keys::GSI3,
            Index::Gsi4 => keys::GSI4,
            Index::Lsi1 => keys::LSI1,
            Index::Lsi2 => keys::LSI2,
        }
    }

    /// Partition and sort attributes.
    fn attributes(self) -> (&'static str, &'static str) {
        match self {
            Index::Gsi1 => (keys::GSI1PK, keys::GSI1SK),
            Index::Gsi2 => (keys::GSI2PK, keys::GSI2SK),
            Index::Gsi3 => (keys::GSI3PK, keys::GSI3SK),
            Index::Gsi4 => (keys::GSI4PK, keys::GSI4SK),
            Index::Lsi1 => (keys::PK, keys::LSI1SK),
            Index::Lsi2 => (keys::PK, keys::LSI2SK),
        }
    }

    fn is_local(self) -> bool {
        matches!(self, Index::Lsi1 | Index::Lsi2)
    }
}

/// A filter applied after the key condition (DynamoDB reads, then drops what fails it).
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: Item,
}

impl<'a> ListQuery<'a> {
    /// A partition of the table, oldest (lowest sort key) first.
    pub(crate) fn table(pk: &'a str) -> Self {
        Self {
            name: format!("t:{pk}"),
            index: None,
            pk,
            range: None,
            forward: true,
            filter: None,
        }
    }

    /// A partition of `gsi1`, in index sort order.
    pub(crate) fn gsi1(pk: &'a str) -> Self {
        Self::index(Index::Gsi1, pk)
    }

    /// A partition of `index`, in index sort order.
    pub(crate) fn index(index: Index, pk: &'a str) -> Self {
        Self {
            name: format!("{}:{pk}", index.name()),
            index: Some(index),
            pk,
            range: None,
            forward: true,
            filter: None,
        }
    }

    /// Only items passing `filter`; `fingerprint` (the filter's values) binds cursors to it.
    pub(crate) fn filtered(mut self, filter: Filter, fingerprint: &str) -> Self {
        self.name = format!("{}:f({fingerprint})", self.name);
        self.filter = Some(filter);
        self
    }

    /// Only sort keys between `from` and `to` (inclusive).
    pub(crate) fn between(mut self, from: &'a str, to: &'a str) -> Self {
        self.name = format!("{}:{from}..{to}", self.name);
        self.range = Some((from, to));
        self
    }

    /// Newest (highest sort key) first.
    pub(crate) fn newest_first(mut self) -> Self {
        self.name.push_str(":desc");
        self.forward = false;
        self
    }
}

/// The key an item of `q` is read from again (`ExclusiveStartKey`): the table's key and, for
/// an index, the index's.
fn key_of(item: &Item, q: &ListQuery<'_>) -> Item {
    let mut names = vec![keys::PK, keys::SK];
    if let Some(index) = q.index {
        let (pk, sk) = index.attributes();
        names.extend([pk, sk]);
    }
    names
        .into_iter()
        .filter_map(|n| Some((n.to_owned(), item.get(n)?.clone())))
        .collect()
}

fn string_attr(item: &Item, name: &str) -> Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(Error::internal(format!(
            "item without string attribute {name}"
        ))),
    }
}

/// Shorthand for a string attribute value.
/// A string attribute (for the services' extra fields of a dialer write).
pub fn s_attr(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Any serialisable value as an attribute.
pub fn to_attr(v: &impl Serialize) -> Result<AttributeValue> {
    Ok(serde_dynamo::to_attribute_value(v)?)
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Shorthand for a number attribute value.
pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
