//! Reading calls and what they produced: a call's transcript in time order (`lsi1`) and in
//! arrival order (`lsi2`, which transcript polls follow), its timeline and tool events, an
//! establishment's active calls (sparse `gsi2`) and history (`gsi1`, filtered), and a runtime's
//! latest errors.

use super::records::{CallRecord, EventRecord, RuntimeErrorRecord, RuntimeRecord, SegmentRecord};
use super::{Filter, Index, Item, ListQuery, Page, Store, keys, s};
use crate::domain::{CallStatus, Direction};
use crate::error::Result;
use crate::ids::{AgentId, CallId, EstablishmentId, RuntimeId};
use crate::time::Timestamp;
use std::collections::HashMap;

/// Segments in arrival order from some point, and the call when the read reached it.
#[derive(Debug)]
pub struct Arrivals {
    pub segments: Vec<SegmentRecord>,
    /// The call item, which sorts after every segment: present when nothing is left to read.
    pub call: Option<CallRecord>,
}

/// `GET /calls` filters (all optional; `from`/`to` bound the creation time, inclusive).
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    pub direction: Option<Direction>,
    pub agent_id: Option<AgentId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl CallFilter {
    /// The sort-key range of `from`..`to` on the calls index (`{created_at}#{id}`). Key
    /// conditions take no empty strings; every creation time sorts after "0".
    fn range(&self) -> (String, String) {
        let from = self.from.map_or_else(|| "0".to_owned(), |t| t.to_string());
        let to = self
            .to
            .map_or_else(|| "\u{10FFFF}".to_owned(), |t| format!("{t}#\u{10FFFF}"));
        (from, to)
    }
}

/// How many Query pages one history page may read to fill itself when a filter drops items.
const MAX_FILTERED_READS: usize = 5;

impl Store {
    /// One page of a call's transcript in time order (`started_at`, then segment id).
    pub async fn transcript_page(
        &self,
        call: &CallId,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<SegmentRecord>, Option<Item>)> {
        let pk = keys::call_partition(call);
        let to = format!("{}\u{10FFFF}", keys::SEGMENT_PREFIX);
        let q = ListQuery::index(Index::Lsi1, &pk).between(keys::SEGMENT_PREFIX, &to);
        let (items, next) = self.query_page(&q, limit, start).await?;
        let segments = items.into_iter().map(Self::record).collect::<Result<_>>()?;
        Ok((segments, next))
    }

    /// Up to `limit` segments that arrived at or after arrival key `from`, oldest first, in one
    /// Query; the call too when no more segments remain.
    pub async fn transcript_arrivals(
        &self,
        call: &CallId,
        from: &str,
        limit: i32,
    ) -> Result<Arrivals> {
        let pk = keys::call_partition(call);
        let q = ListQuery::index(Index::Lsi2, &pk).between(from, keys::CALL_ARRIVAL_SORT);
        let (items, _) = self.query_page(&q, limit + 1, None).await?;
        let mut arrivals = Arrivals {
            segments: Vec::with_capacity(items.len()),
            call: None,
        };
        for item in items {
            let is_call = matches!(
                item.get(keys::LSI2SK),
                Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk == keys::CALL_ARRIVAL_SORT
            );
            if is_call {
                arrivals.call = Some(Self::record(item)?);
            } else if arrivals.segments.len() < limit as usize {
                arrivals.segments.push(Self::record(item)?);
            }
        }
        Ok(arrivals)
    }

    /// A page of a call's timeline, by when each event happened.
    pub async fn timeline_page(
        &self,
        call: &CallId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<EventRecord>> {
        let pk = keys::call_partition(call);
        let to = format!("{}\u{10FFFF}", keys::EVENT_PREFIX);
        let q = ListQuery::index(Index::Lsi1, &pk).between(keys::EVENT_PREFIX, &to);
        self.list_page(&q, limit, cursor).await
    }

    /// Every tool event of a call, by when it happened (follows pages).
    pub async fn tool_events(
        &self,
        call: &CallId,
        from: Option<&str>,
        limit: i32,
        start: Option<Item>,
    ) -> Result<(Vec<EventRecord>, Option<Item>)> {
        let pk = keys::call_partition(call);
        let to = format!("{}\u{10FFFF}", keys::TOOL_PREFIX);
        let q = ListQuery::index(Index::Lsi2, &pk).between(from.unwrap_or(keys::TOOL_PREFIX), &to);
        let (items, next) = self.query_page(&q, limit, start).await?;
        Ok((
            items.into_iter().map(Self::record).collect::<Result<_>>()?,
            next,
        ))
    }

    /// A page of an establishment's calls that have not ended, newest first.
    pub async fn active_calls(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CallRecord>> {
        let pk = keys::active_calls_index(est);
        let q = ListQuery::index(Index::Gsi2, &pk).newest_first();
        self.list_page(&q, limit, cursor).await
    }

    /// A page of the live calls of several establishments (a user's), newest first: one
    /// Query per establishment per page (see `merged_page`).
    pub async fn active_calls_of(
        &self,
        ests: &[EstablishmentId],
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CallRecord>> {
        let pks: Vec<String> = ests.iter().map(keys::active_calls_index).collect();
        let parts: Vec<ListQuery<'_>> = pks
            .iter()
            .map(|pk| ListQuery::index(Index::Gsi2, pk).newest_first())
            .collect();
        self.merged_page(&parts, limit, cursor).await
    }

    /// A page of the call history of several establishments (a user's), newest first,
    /// filtered: one Query per establishment per page (see `merged_page`).
    pub async fn call_history_of(
        &self,
        ests: &[EstablishmentId],
        filter: &CallFilter,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CallRecord>> {
        let (from, to) = filter.range();
        let pks: Vec<String> = ests.iter().map(keys::calls_index).collect();
        let parts = pks
            .iter()
            .map(|pk| history_query(pk, &from, &to, filter))
            .collect::<Result<Vec<_>>>()?;
        self.merged_page(&parts, limit, cursor).await
    }

    /// A page of an establishment's call history, newest first, filtered. A filter that drops
    /// items makes DynamoDB read further: up to [`MAX_FILTERED_READS`] Queries fill a page, and
    /// a shorter page with a cursor means "keep going".
    pub async fn call_history(
        &self,
        est: &EstablishmentId,
        filter: &CallFilter,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CallRecord>> {
        let pk = keys::calls_index(est);
        let (from, to) = filter.range();
        let q = history_query(&pk, &from, &to, filter)?;
        let mut start = cursor
            .map(|c| self.cursors().decode(&q.name, c))
            .transpose()?;
        let mut calls = Vec::new();
        for _ in 0..MAX_FILTERED_READS {
            let want = limit - calls.len() as i32;
            let (items, next) = self.query_page(&q, want, start).await?;
            for item in items {
                calls.push(Self::record(item)?);
            }
            start = next;
            if start.is_none() || calls.len() as i32 >= limit {
                break;
            }
        }
        Ok(Page {
            items: calls,
            cursor: start
                .map(|k| self.cursors().encode(&q.name, &k))
                .transpose()?,
        })
    }

    /// A runtime and the latest error it reported per component, in one Query: the error
    /// items (`ERR#…`) sort just before the runtime item (`RUNTIME`), after its commands.
    pub async fn runtime_with_errors(
        &self,
        rt: &RuntimeId,
    ) -> Result<(Option<RuntimeRecord>, Vec<RuntimeErrorRecord>)> {
        let items = self
            .query_between_all(
                &keys::runtime_partition(rt),
                keys::RUNTIME_ERROR_PREFIX,
                &keys::runtime(rt).sk,
            )
            .await?;
        let (mut runtime, mut errors) = (None, Vec::new());
        for item in items {
            let is_runtime = matches!(
                item.get(keys::SK),
                Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if *sk == keys::runtime(rt).sk
            );
            if is_runtime {
                runtime = Some(Self::record(item)?);
            } else {
                errors.push(Self::record(item)?);
            }
        }
        Ok((runtime, errors))
    }
}

/// The history Query of one establishment's calls index (`pk`), creation times between `from`
/// and `to`, with the filter's conditions (and their fingerprint in the cursor binding).
fn history_query<'a>(
    pk: &'a str,
    from: &'a str,
    to: &'a str,
    filter: &CallFilter,
) -> Result<ListQuery<'a>> {
    let mut q = ListQuery::gsi1(pk).between(from, to).newest_first();
    let mut conditions = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    if let Some(status) = filter.status {
        conditions.push("#status = :status");
        names.insert("#status".to_owned(), "status".to_owned());
        values.insert(":status".to_owned(), s(status.as_str()));
    }
    if let Some(direction) = filter.direction {
        conditions.push("direction = :direction");
        values.insert(
            ":direction".to_owned(),
            serde_dynamo::to_attribute_value(direction)?,
        );
    }
    if let Some(agent) = &filter.agent_id {
        conditions.push("agent_id = :agent");
        values.insert(":agent".to_owned(), s(agent.as_str()));
    }
    if !conditions.is_empty() {
        let fingerprint = format!(
            "{:?}|{:?}|{}",
            filter.status,
            filter.direction,
            filter.agent_id.as_ref().map_or("", |a| a.as_str())
        );
        q = q.filtered(
            Filter {
                expression: conditions.join(" AND "),
                names,
                values,
            },
            &fingerprint,
        );
    }
    Ok(q)
}
