//! The live calls of every establishment (the sparse, keys-only `gsi3`, sharded by call id)
//! and what the sweeper does with them: finding the ones old enough to be suspect, telling
//! when a call last showed a sign of life, and ending one whose end never came. An end the
//! sweeper wrote is marked (`swept_at`), so a late end report lands on the timeline only
//! (see `store::ingest`).

use super::records::{CallRecord, EstablishmentRecord, EventRecord};
use super::{Index, Item, ListQuery, Store, keys, n, s};
use crate::domain::CallStatus;
use crate::error::Result;
use crate::ids::{CallId, EstablishmentId};
use crate::time::Timestamp;
use std::collections::HashMap;

/// The `end_reason` of a call the sweeper ended.
pub const UNREPORTED_END: &str = "no_end_reported";

impl Store {
    /// The live calls of shard `shard` created before `before`, oldest first: one Query of
    /// the keys-only index (per page), then the calls themselves, 100 per BatchGetItem.
    pub async fn live_calls_before(
        &self,
        shard: u8,
        before: &Timestamp,
    ) -> Result<Vec<CallRecord>> {
        let pk = keys::live_calls_index(shard);
        // Index sort keys are `{created_at}#{call}`; timestamps start with a digit.
        let (from, to) = ("0".to_owned(), before.to_string());
        let q = ListQuery::index(Index::Gsi3, &pk).between(&from, &to);
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(&q, 1000, start).await?;
            ids.extend(items.iter().filter_map(|item| match item.get(keys::PK) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => keys::call_of_partition(pk),
                _ => None,
            }));
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        let wanted: Vec<_> = ids.iter().map(keys::call).collect();
        let mut calls = Vec::with_capacity(ids.len());
        for (_, item) in self.batch_get(&wanted).await? {
            let call: CallRecord = Self::record(item)?;
            // The index is eventually consistent: a call may have ended since.
            if call.final_status.is_none() {
                calls.push(call);
            }
        }
        calls.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(calls)
    }

    /// The establishments `ids`, in one BatchGetItem per 100.
    pub async fn establishments(
        &self,
        ids: &[EstablishmentId],
    ) -> Result<HashMap<EstablishmentId, EstablishmentRecord>> {
        let wanted: Vec<_> = ids.iter().map(keys::establishment).collect();
        self.batch_get(&wanted)
            .await?
            .into_iter()
            .map(|(_, item)| Self::record::<EstablishmentRecord>(item).map(|e| (e.id.clone(), e)))
            .collect()
    }

    /// When the runtime's latest event about `call` (by when it happened) reached us: one
    /// Query of the timeline, newest first, one item.
    pub async fn last_event_received(&self, call: &CallId) -> Result<Option<Timestamp>> {
        let pk = keys::call_partition(call);
        let to = format!("{}\u{10FFFF}", keys::EVENT_PREFIX);
        let q = ListQuery::index(Index::Lsi1, &pk)
            .between(keys::EVENT_PREFIX, &to)
            .newest_first();
        let (items, _) = self.query_page(&q, 1, None).await?;
        Ok(items
            .into_iter()
            .next()
            .map(Self::record::<EventRecord>)
            .transpose()?
            .map(|e| e.received_at))
    }

    /// Ends `call` as `failed` / [`UNREPORTED_END`] at `now`, out of the live indexes, if
    /// nothing has changed it since it was read (`updated_at`) and no end came meanwhile.
    /// `Ok(false)` when something did: the sweeper leaves it for its next round.
    pub async fn end_unreported(&self, call: &CallRecord, now: &Timestamp) -> Result<bool> {
        let status = CallStatus::Failed;
        let values: Item = HashMap::from([
            (":status".to_owned(), s(status.as_str())),
            (":rank".to_owned(), n(status.rank())),
            (":reason".to_owned(), s(UNREPORTED_END)),
            (":now".to_owned(), s(now.to_string())),
            (":seen".to_owned(), s(call.updated_at.to_string())),
        ]);
        self.update_if(
            &keys::call(&call.id),
            &format!(
                "SET #status = :status, status_rank = :rank, final_status = :status, \
                 end_reason = :reason, ended_at = :now, swept_at = :now, updated_at = :now{}",
                keys::REMOVE_LIVE
            ),
            "attribute_exists(pk) AND attribute_not_exists(final_status) \
             AND status_rank < :rank AND updated_at = :seen",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            values,
        )
        .await
    }
}
