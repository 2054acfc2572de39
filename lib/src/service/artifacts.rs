//! What a call produced, for the UI (PRD §7.5, Appendix A.5, D.2): the transcript with its
//! polling protocol, the timeline of runtime events, the tool log, and the recording behind a
//! short-lived presigned URL. Viewers and up; foreign calls are 404.
//!
//! Transcript polls follow the order segments *arrived* in (`lsi2`), not the order they were
//! spoken in, so a segment a runtime retried late is still delivered: the cursor holds an
//! arrival watermark a few seconds behind the server's clock (writes in flight when a poll ran
//! land behind it) and the arrival keys already delivered past it, which are skipped. Each
//! response is ordered by `started_at`, then segment id; clients insert by that order.

use super::access::require_member;
use super::calls::member_call;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::event::Party;
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{CallId, EstablishmentId};
use crate::store::records::{AuditRecord, CallRecord, EventRecord, SegmentRecord};
use crate::store::{Item, Page, keys};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// How far behind the clock a poll's watermark stays: longer than any write takes from being
/// stamped to being stored (SDK retries included) plus clock skew between function instances.
pub const SETTLE_MS: u64 = 5_000;
/// Default and largest transcript page.
const DEFAULT_SEGMENTS: u32 = 200;
const MAX_SEGMENTS: u32 = 500;
/// Lifetime of a recording URL.
pub const RECORDING_URL_TTL_SECS: u64 = 300;

/// `GET /calls/{id}/transcript` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TranscriptParams {
    /// The previous answer's `cursor`: what arrived since.
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
    /// What arrived after this segment.
    pub since_segment_id: Option<String>,
    /// Page size, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A transcript segment as the API shows it (Appendix A.5).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    pub segment_id: String,
    pub speaker: Party,
    pub text: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub confidence: Option<f64>,
}

impl From<SegmentRecord> for SegmentView {
    fn from(s: SegmentRecord) -> Self {
        Self {
            segment_id: s.segment_id,
            speaker: s.speaker,
            text: s.text,
            started_at: s.started_at,
            ended_at: s.ended_at,
            confidence: s.confidence,
        }
    }
}

/// `GET /calls/{id}/transcript` (Appendix A.5 + D.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranscriptView {
    pub call_id: CallId,
    /// Segments not returned before, by `started_at` then segment id.
    pub items: Vec<SegmentView>,
    /// Pass back to get what comes next (always present: a live transcript keeps growing).
    pub cursor: String,
    /// The call is over, nothing more is stored, and no write can still be in flight.
    pub is_complete: bool,
}

/// Where a transcript reader is.
#[derive(Debug)]
enum Position {
    /// Reading the stored transcript in time order, from this key (`None`: the start).
    Catchup(Option<Item>),
    /// Following arrivals from this watermark.
    Follow,
}

/// The cursor's content: signed and bound to the call by the cursor codec.
#[derive(Debug)]
struct TranscriptCursor {
    establishment_id: EstablishmentId,
    position: Position,
    /// Arrival keys at or after it were not all delivered yet.
    watermark: ulid::Ulid,
    /// Arrival keys at or after `watermark` that were delivered.
    delivered: BTreeSet<String>,
}

fn cursor_query(call: &CallId) -> String {
    format!("transcript:{call}")
}

/// Most delivered arrival keys a cursor carries (26 characters each). More arrive within the
/// settle window only in bulk (a buffered runtime flushing); the watermark then moves up to the
/// oldest key kept, which gives up the in-flight guarantee for that burst only.
const MAX_DELIVERED: usize = 100;

impl TranscriptCursor {
    fn encode(mut self, app: &App, call: &CallId) -> Result<String> {
        if self.delivered.len() > MAX_DELIVERED {
            let keep = self.delivered.split_off(
                &self
                    .delivered
                    .iter()
                    .rev()
                    .nth(MAX_DELIVERED - 1)
                    .cloned()
                    .unwrap_or_default(),
            );
            if let Some(oldest) = keep.first().and_then(|k| ulid::Ulid::from_string(k).ok()) {
                self.watermark = self.watermark.max(oldest);
            }
            self.delivered = keep;
        }
        let mut map: HashMap<String, AttributeValue> = HashMap::from([
            (
                "e".into(),
                AttributeValue::S(self.establishment_id.to_string()),
            ),
            ("w".into(), AttributeValue::S(self.watermark.to_string())),
            (
                "d".into(),
                AttributeValue::S(self.delivered.iter().cloned().collect::<Vec<_>>().join(",")),
            ),
        ]);
        if let Position::Catchup(Some(key)) = &self.position {
            map.insert("m".into(), AttributeValue::S("catchup".into()));
            map.extend(key.clone());
        } else {
            map.insert("m".into(), AttributeValue::S("follow".into()));
        }
        app.store.cursors().encode(&cursor_query(call), &map)
    }

    fn decode(app: &App, call: &CallId, raw: &str) -> Result<Self> {
        let mut map = app.store.cursors().decode(&cursor_query(call), raw)?;
        let bad = || Error::invalid("cursor", "is not a cursor this transcript returned");
        let mut take = |k: &str| match map.remove(k) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(bad()),
        };
        let establishment_id = EstablishmentId::parse(&take("e")?).map_err(|_| bad())?;
        let watermark = ulid::Ulid::from_string(&take("w")?).map_err(|_| bad())?;
        let delivered = take("d")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let position = match take("m")?.as_str() {
            "follow" => Position::Follow,
            "catchup" => Position::Catchup(Some(map)),
            _ => return Err(bad()),
        };
        Ok(Self {
            establishment_id,
            position,
            watermark,
            delivered,
        })
    }
}

/// The arrival key of a segment (its `lsi2` sort key without the prefix).
fn arrival(s: &SegmentRecord) -> &str {
    s.lsi2sk
        .strip_prefix(keys::SEGMENT_PREFIX)
        .unwrap_or(&s.lsi2sk)
}

/// The lowest ULID of a millisecond: every ULID made at or after it sorts at or after it.
fn floor(ms: u64) -> ulid::Ulid {
    ulid::Ulid::from_parts(ms, 0)
}

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now_millis()).unwrap_or(0)
}

/// `GET /calls/{id}/transcript`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn transcript(
    app: &App,
    principal: &Principal,
    id: &CallId,
    params: TranscriptParams,
) -> Result<TranscriptView> {
    let limit = match params.limit.unwrap_or(DEFAULT_SEGMENTS) {
        l @ 1..=MAX_SEGMENTS => l as i32,
        _ => {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_SEGMENTS}"),
            ));
        }
    };
    let settled = floor(now_ms().saturating_sub(SETTLE_MS));
    let (cursor, call) = match (params.cursor, params.since_segment_id) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "since_segment_id",
                "give either cursor or since_segment_id, not both",
            ));
        }
        (Some(raw), None) => {
            let cursor = TranscriptCursor::decode(app, id, &raw)?;
            // Access is checked again on every poll (a removed member stops seeing it).
            require_member(
                app,
                principal,
                &cursor.establishment_id,
                Role::Viewer,
                "call",
            )
            .await?;
            (cursor, None)
        }
        (None, since) => {
            let call = member_call(app, principal, id, Role::Viewer).await?.1;
            let cursor = match since {
                None => TranscriptCursor {
                    establishment_id: call.establishment_id.clone(),
                    position: Position::Catchup(None),
                    watermark: settled,
                    delivered: BTreeSet::new(),
                },
                Some(since) => {
                    // Segment ids are checked as ingest checks them before they go in a key.
                    crate::domain::ident("since_segment_id", &since, 128)?;
                    let segment = app.store.segment(id, &since).await?.ok_or_else(|| {
                        Error::NotFoundField {
                            field: "since_segment_id",
                            message: "no such segment in this call".into(),
                        }
                    })?;
                    let at = ulid::Ulid::from_string(arrival(&segment))
                        .map_err(|_| Error::internal("segment without an arrival key"))?;
                    TranscriptCursor {
                        establishment_id: call.establishment_id.clone(),
                        position: Position::Follow,
                        watermark: at,
                        delivered: BTreeSet::from([at.to_string()]),
                    }
                }
            };
            (cursor, Some(call))
        }
    };
    let (segments, next, is_complete) = match cursor.position {
        Position::Catchup(start) => {
            let (segments, next) = app.store.transcript_page(id, limit, start).await?;
            let call = match call {
                Some(call) => call,
                None => app.store.call(id).await?.ok_or(Error::NotFound("call"))?,
            };
            let mut delivered = cursor.delivered;
            delivered.extend(
                segments
                    .iter()
                    .map(|s| arrival(s).to_owned())
                    .filter(|a| a.as_str() >= cursor.watermark.to_string().as_str()),
            );
            let done = next.is_none();
            let next = TranscriptCursor {
                establishment_id: cursor.establishment_id,
                position: match next {
                    Some(key) => Position::Catchup(Some(key)),
                    None => Position::Follow,
                },
                watermark: cursor.watermark,
                delivered,
            };
            (segments, next, done && complete(&call, settled))
        }
        Position::Follow => {
            let from = keys::arrival_sort(&cursor.watermark);
            let read = limit + cursor.delivered.len() as i32;
            let arrivals = app.store.transcript_arrivals(id, &from, read).await?;
            if arrivals
                .call
                .as_ref()
                .is_some_and(|c| c.establishment_id != cursor.establishment_id)
            {
                return Err(Error::NotFound("call"));
            }
            let mut fresh: Vec<SegmentRecord> = arrivals
                .segments
                .into_iter()
                .filter(|s| !cursor.delivered.contains(arrival(s)))
                .collect();
            let reached_end = arrivals.call.is_some() && fresh.len() <= limit as usize;
            fresh.truncate(limit as usize);
            // All read: move the watermark up to the settled point. Cut short: up to the last
            // segment returned (everything before it in arrival order was delivered).
            let watermark = match fresh.last() {
                _ if reached_end => cursor.watermark.max(settled),
                Some(last) => ulid::Ulid::from_string(arrival(last))
                    .map_err(|_| Error::internal("segment without an arrival key"))?,
                None => cursor.watermark,
            };
            let watermark_key = watermark.to_string();
            let delivered = cursor
                .delivered
                .into_iter()
                .chain(fresh.iter().map(|s| arrival(s).to_owned()))
                .filter(|a| *a >= watermark_key)
                .collect();
            let is_complete =
                reached_end && arrivals.call.as_ref().is_some_and(|c| complete(c, settled));
            let next = TranscriptCursor {
                establishment_id: cursor.establishment_id,
                position: Position::Follow,
                watermark,
                delivered,
            };
            (fresh, next, is_complete)
        }
    };
    let mut items: Vec<SegmentView> = segments.into_iter().map(SegmentView::from).collect();
    items.sort_by(|a, b| (a.started_at, &a.segment_id).cmp(&(b.started_at, &b.segment_id)));
    Ok(TranscriptView {
        call_id: id.clone(),
        items,
        cursor: next.encode(app, id)?,
        is_complete,
    })
}

/// A call's transcript is complete once the call is over and its last change is older than
/// the settle window (nothing stamped before it can still be in flight). `updated_at` is kept
/// to the second, so the change may be up to a second later than it says.
fn complete(call: &CallRecord, settled: ulid::Ulid) -> bool {
    let changed_ms = u64::try_from(call.updated_at.unix_millis()).unwrap_or(u64::MAX);
    call.status.is_final() && floor(changed_ms.saturating_add(1000)) < settled
}

/// A timeline event as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    pub payload: Value,
    /// Why the event did not apply in full, if it did not.
    pub note: Option<String>,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        Self {
            event_id: e.event_id,
            kind: e.kind,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            payload: e.payload,
            note: e.note,
        }
    }
}

/// `GET /calls/{id}/events`: the call's runtime events, by when they happened.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn events(
    app: &App,
    principal: &Principal,
    id: &CallId,
    params: crate::http::ListParams,
) -> Result<Page<EventView>> {
    let limit = params.limit()?;
    member_call(app, principal, id, Role::Viewer).await?;
    Ok(app
        .store
        .timeline_page(id, limit, params.cursor.as_deref())
        .await?
        .map(EventView::from))
}

/// One tool invocation: the call and its result paired.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolLogEntry {
    pub tool_name: String,
    pub tool_call_id: Option<String>,
    /// `ok`, `error`, or `pending` (no result yet).
    pub status: &'static str,
    pub called_at: Option<Timestamp>,
    pub arguments: Option<Value>,
    pub completed_at: Option<Timestamp>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
}

/// `GET /calls/{id}/tool-log` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolLog {
    pub items: Vec<ToolLogEntry>,
    pub cursor: Option<String>,
}

/// Pairs tool events in time order, in linear time: a result goes with the call of the same
/// `tool_call_id` when the runtime sends one, else with the oldest unanswered call of the same
/// tool. A result with no call to pair with is listed alone.
#[derive(Debug, Default)]
struct Pairing {
    entries: Vec<(ToolLogEntry, Option<i64>)>,
    /// Unanswered calls by tool, oldest first (answered ones are skipped lazily).
    by_tool: HashMap<String, VecDeque<usize>>,
    /// Unanswered calls by tool and `tool_call_id`, oldest first.
    by_id: HashMap<(String, String), VecDeque<usize>>,
    pending: usize,
}

impl Pairing {
    fn call(&mut self, e: EventRecord) {
        let name = e.tool_name.clone().unwrap_or_default();
        let at = self.entries.len();
        self.by_tool.entry(name.clone()).or_default().push_back(at);
        if let Some(id) = &e.tool_call_id {
            self.by_id
                .entry((name.clone(), id.clone()))
                .or_default()
                .push_back(at);
        }
        self.pending += 1;
        self.entries.push((
            ToolLogEntry {
                tool_name: name,
                tool_call_id: e.tool_call_id,
                status: "pending",
                called_at: Some(e.occurred_at),
                arguments: e.payload.get("arguments").cloned(),
                completed_at: None,
                result: None,
                error: None,
                duration_ms: None,
            },
            Some(e.occurred_ms),
        ));
    }

    /// Pairs a result with its call; `false` (nothing changed) when no call is waiting for it.
    fn answer(&mut self, e: &EventRecord) -> bool {
        let name = e.tool_name.clone().unwrap_or_default();
        let entries = &self.entries;
        let open = |queue: Option<&mut VecDeque<usize>>| {
            let queue = queue?;
            while let Some(&i) = queue.front() {
                if entries[i].0.status == "pending" {
                    return Some(i);
                }
                queue.pop_front();
            }
            None
        };
        let found = match &e.tool_call_id {
            Some(id) => open(self.by_id.get_mut(&(name.clone(), id.clone()))),
            None => open(self.by_tool.get_mut(&name)),
        };
        let Some(i) = found else {
            return false;
        };
        let (entry, called_ms) = &mut self.entries[i];
        entry.status = if e.tool_error.is_some() {
            "error"
        } else {
            "ok"
        };
        entry.completed_at = Some(e.occurred_at);
        entry.result = e.payload.get("result").cloned();
        entry.error = e.tool_error.clone();
        entry.duration_ms = called_ms.map(|c| (e.occurred_ms - c).max(0));
        self.pending -= 1;
        true
    }

    fn orphan(&mut self, e: EventRecord) {
        self.entries.push((
            ToolLogEntry {
                tool_name: e.tool_name.unwrap_or_default(),
                tool_call_id: e.tool_call_id,
                status: if e.tool_error.is_some() {
                    "error"
                } else {
                    "ok"
                },
                called_at: None,
                arguments: None,
                completed_at: Some(e.occurred_at),
                result: e.payload.get("result").cloned(),
                error: e.tool_error,
                duration_ms: None,
            },
            None,
        ));
    }
}

/// Events read per Query while a tool-log page is built.
const TOOL_READ: i32 = 200;
/// Most events a page reads past its last entry to find the results of its calls; a call
/// answered later than that shows as pending, and its result alone on a later page.
const TOOL_LOOKAHEAD: usize = 1000;
/// Most results a cursor remembers as already shown with their call.
const TOOL_CONSUMED_MAX: usize = 400;

/// `GET /calls/{id}/tool-log?limit=&cursor=` (viewers and up): tool calls paired with their
/// results, in call order, a page at a time. A page holds `limit` entries and reads on (at
/// most 1000 events) to pair its calls; the cursor says where the next page
/// starts and which results past that point were already shown, so none is shown twice.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn tool_log(
    app: &App,
    principal: &Principal,
    id: &CallId,
    params: ListParams,
) -> Result<ToolLog> {
    let limit = usize::try_from(params.limit()?).unwrap_or(1);
    member_call(app, principal, id, Role::Viewer).await?;
    let binding = format!("toollog:{id}");
    let (position, consumed) = match &params.cursor {
        None => (None, BTreeSet::new()),
        Some(raw) => {
            let state = app.store.cursors().decode(&binding, raw)?;
            let text = |k: &str| state.get(k).and_then(|v| v.as_s().ok()).cloned();
            let consumed: BTreeSet<String> = state
                .iter()
                .filter(|(k, _)| k.starts_with('c'))
                .filter_map(|(_, v)| v.as_s().ok().cloned())
                .collect();
            (text("p"), consumed)
        }
    };
    let mut pairing = Pairing::default();
    let mut next_position: Option<String> = None;
    let mut consumed_next: BTreeSet<String> = BTreeSet::new();
    let mut after_cut = 0;
    let mut start = None;
    'read: loop {
        let (events, more) = app
            .store
            .tool_events(id, position.as_deref(), TOOL_READ, start)
            .await?;
        for e in events {
            let key = e.lsi2sk.clone().unwrap_or_default();
            if consumed.contains(&key) {
                continue;
            }
            if next_position.is_some() {
                // Past this page's entries: only results of its calls still matter.
                after_cut += 1;
                if e.kind != "tool_called" && pairing.answer(&e) {
                    consumed_next.insert(key);
                }
                if pairing.pending == 0 || after_cut >= TOOL_LOOKAHEAD {
                    break 'read;
                }
                continue;
            }
            let paired = e.kind != "tool_called" && pairing.answer(&e);
            if paired {
                continue;
            }
            if pairing.entries.len() == limit {
                next_position = Some(key);
                if pairing.pending == 0 {
                    break 'read;
                }
                continue;
            }
            if e.kind == "tool_called" {
                pairing.call(e);
            } else {
                pairing.orphan(e);
            }
        }
        match more {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    let cursor = match next_position {
        None => None,
        Some(position) => {
            consumed_next.extend(consumed.into_iter().filter(|c| *c >= position));
            let mut state = Item::from([("p".to_owned(), AttributeValue::S(position))]);
            for (i, key) in consumed_next
                .into_iter()
                .take(TOOL_CONSUMED_MAX)
                .enumerate()
            {
                state.insert(format!("c{i}"), AttributeValue::S(key));
            }
            Some(app.store.cursors().encode(&binding, &state)?)
        }
    };
    Ok(ToolLog {
        items: pairing
            .entries
            .into_iter()
            .map(|(entry, _)| entry)
            .collect(),
        cursor,
    })
}

/// `GET /calls/{id}/recording`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingAccess {
    pub call_id: CallId,
    /// `available` (`url` works until `expires_at`), `pending` (the recording is kept
    /// elsewhere until the post-call worker copies it into storage; `error` says why the last
    /// try failed, if one did) or `failed` (it cannot be copied: `error` says why).
    pub status: &'static str,
    /// Why bringing the recording in failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub url: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub content_type: Option<String>,
    pub duration_seconds: Option<u32>,
    pub storage_provider: Option<String>,
}

/// `GET /calls/{id}/recording` (viewers and up): a presigned URL for a recording in our
/// bucket; every access is audited.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn recording(app: &App, principal: &Principal, id: &CallId) -> Result<RecordingAccess> {
    let (user, call) = member_call(app, principal, id, Role::Viewer).await?;
    let access = match (&call.recording_file, &call.recording) {
        (Some(file), _) => {
            let url = match &file.bucket_key {
                Some(key) => Some(
                    app.blobs
                        .presigned_get(key, std::time::Duration::from_secs(RECORDING_URL_TTL_SECS))
                        .await?,
                ),
                None => None,
            };
            RecordingAccess {
                call_id: call.id.clone(),
                status: match (&url, file.copy_status.as_deref()) {
                    (Some(_), _) => "available",
                    (None, Some("failed")) => "failed",
                    (None, _) => "pending",
                },
                error: file.copy_error.clone().filter(|_| url.is_none()),
                expires_at: url
                    .as_ref()
                    .map(|_| Timestamp::now().plus_secs(RECORDING_URL_TTL_SECS as i64)),
                url,
                content_type: Some(file.content_type.clone()),
                duration_seconds: file.duration_seconds,
                storage_provider: Some(file.storage_provider.clone()),
            }
        }
        (None, Some(provider)) => RecordingAccess {
            call_id: call.id.clone(),
            status: "pending",
            error: None,
            url: None,
            expires_at: None,
            content_type: None,
            duration_seconds: provider.duration_seconds,
            storage_provider: Some(call.provider.as_str().to_owned()),
        },
        (None, None) => return Err(Error::NotFound("recording")),
    };
    app.store
        .record_access(&AuditRecord::new(
            &call.establishment_id,
            &user,
            "recording.accessed",
            ("call", call.id.as_str()),
            Value::Null,
            serde_json::json!({ "status": access.status, "expires_at": access.expires_at }),
        ))
        .await?;
    Ok(access)
}
