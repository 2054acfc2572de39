//! Runtime events into the store. An ingest reads once — one BatchGetItem for the runtime, the
//! agents and versions the envelopes name, and the calls by provider id — and writes once per
//! event: one TransactWriteItems whose first item, the event keyed by its idempotency key and
//! created only if absent, is the idempotency guard. A replay fails that condition and changes
//! nothing; everything the event does to the call, its transcript or its runtime is in the same
//! transaction, so an event applies entirely or not at all.

use super::calls::indexed;
use super::records::{
    AgentRecord, CallRecord, CallSidRecord, EventRecord, RecordingFile, RuntimeErrorRecord,
    RuntimeRecord, SegmentRecord,
};
use super::{Item, Store, Tx, TxError, keys, n, s};
use crate::domain::event::Party;
use crate::domain::{CallStatus, NumberProvider};
use crate::error::{Error, Result};
use crate::ids::{AgentId, AgentVersionId, CallId, RuntimeId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::TransactWriteItem;
use keys::Key;
use std::collections::{HashMap, HashSet};

/// What checking a batch of events needs, read in one round trip.
#[derive(Debug, Default)]
pub struct IngestContext {
    pub runtime: Option<RuntimeRecord>,
    agents: HashMap<AgentId, AgentRecord>,
    versions: HashSet<Key>,
    calls: HashMap<Key, CallSidRecord>,
}

impl IngestContext {
    /// The agent, if it exists.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentRecord> {
        self.agents.get(id)
    }

    /// Whether `version` is a version of `agent`.
    pub fn has_version(&self, agent: &AgentId, version: &AgentVersionId) -> bool {
        self.versions.contains(&keys::agent_version(agent, version))
    }

    /// The call a provider call id belongs to, as read (or as created since).
    pub fn call(&self, provider: NumberProvider, sid: &str) -> Option<&CallSidRecord> {
        self.calls.get(&keys::call_sid(provider, sid))
    }

    /// Remembers a call created (or found) after the read, for the batch's later events.
    pub fn remember_call(&mut self, provider: NumberProvider, sid: &str, guard: CallSidRecord) {
        self.calls.insert(keys::call_sid(provider, sid), guard);
    }
}

/// What an event does to its call besides landing on the timeline.
#[derive(Clone, Debug)]
pub enum CallEffect {
    /// `call_ended`: the first final status wins (a provider callback may have been first),
    /// the runtime's end time, length and who hung up are kept, and the call leaves the
    /// active set.
    Ended {
        final_status: CallStatus,
        ended_at: Timestamp,
        duration_seconds: Option<u32>,
        hangup_by: Option<Party>,
    },
    /// `recording_available`: the latest report is the recording.
    Recording(RecordingFile),
    /// `tool_result`: one more tool call (and error) on the call, for its report counters.
    ToolResult { failed: bool },
    /// `runtime_error`: one more runtime error during the call.
    RuntimeError,
}

impl CallEffect {
    /// The effect on a call being created by this very event.
    pub fn apply_to(&self, call: &mut CallRecord) {
        match self.clone() {
            CallEffect::Ended {
                final_status,
                ended_at,
                duration_seconds,
                hangup_by,
            } => {
                call.status = final_status;
                call.status_rank = final_status.rank();
                call.final_status = Some(final_status);
                call.ended_at = Some(ended_at);
                call.duration_seconds = duration_seconds;
                call.hangup_by = hangup_by;
            }
            CallEffect::Recording(file) => call.recording_file = Some(file),
            CallEffect::ToolResult { failed } => {
                call.tool_calls += 1;
                call.tool_errors += u32::from(failed);
            }
            CallEffect::RuntimeError => call.runtime_errors += 1,
        }
    }

    pub(crate) fn update(
        &self,
        store: &Store,
        call: &CallId,
        now: Timestamp,
    ) -> Result<TransactWriteItem> {
        let mut values: Item = HashMap::from([(":now".to_owned(), s(now.to_string()))]);
        let expression = match self {
            CallEffect::Ended {
                final_status,
                ended_at,
                duration_seconds,
                hangup_by,
            } => {
                values.insert(":fs".to_owned(), s(final_status.as_str()));
                values.insert(":rank".to_owned(), n(final_status.rank()));
                values.insert(":ended".to_owned(), s(ended_at.to_string()));
                let mut sets = vec![
                    // Expressions read the item as it was: a status set by an earlier final
                    // report is kept, ours applies only if none came before.
                    "final_status = if_not_exists(final_status, :fs)",
                    "#status = if_not_exists(final_status, :fs)",
                    "status_rank = :rank",
                    "ended_at = :ended",
                    "updated_at = :now",
                ];
                if let Some(d) = duration_seconds {
                    values.insert(":d".to_owned(), n(d));
                    sets.push("duration_seconds = :d");
                }
                if let Some(by) = hangup_by {
                    values.insert(":by".to_owned(), serde_dynamo::to_attribute_value(by)?);
                    sets.push("hangup_by = :by");
                }
                format!("SET {}{}", sets.join(", "), keys::REMOVE_LIVE)
            }
            CallEffect::Recording(file) => {
                values.insert(":f".to_owned(), serde_dynamo::to_attribute_value(file)?);
                "SET recording_file = :f, updated_at = :now".to_owned()
            }
            CallEffect::ToolResult { failed } => {
                values.insert(":one".to_owned(), n(1));
                values.insert(":err".to_owned(), n(u8::from(*failed)));
                "SET updated_at = :now ADD tool_calls :one, tool_errors :err".to_owned()
            }
            CallEffect::RuntimeError => {
                values.insert(":one".to_owned(), n(1));
                "SET updated_at = :now ADD runtime_errors :one".to_owned()
            }
        };
        let (names, condition) = match self {
            // A call the sweeper ended keeps that end (`store::live`).
            CallEffect::Ended { .. } => (
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                Some("attribute_not_exists(swept_at)"),
            ),
            _ => (HashMap::new(), None),
        };
        store.update(&keys::call(call), &expression, condition, names, values)
    }
}

/// Everything one event writes.
#[derive(Clone, Debug)]
pub struct EventWrite {
    pub call_id: CallId,
    pub event: EventRecord,
    /// The call this event creates (its provider id was unknown), with its guard.
    pub create: Option<(CallRecord, CallSidRecord)>,
    pub segment: Option<SegmentRecord>,
    pub effect: Option<CallEffect>,
    pub runtime_error: Option<(RuntimeId, RuntimeErrorRecord)>,
}

/// How an event write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// The idempotency key was seen before on this call: nothing changed.
    Duplicate,
    /// The call did not exist when read but does now (a concurrent first event or webhook).
    CallTaken,
    /// The segment id is taken on this call: nothing changed.
    SegmentTaken,
}

impl Store {
    /// The runtime, the agents and versions, and the calls by provider id, in one round trip.
    pub async fn ingest_context(
        &self,
        runtime: &RuntimeId,
        agents: &[(AgentId, AgentVersionId)],
        calls: &[(NumberProvider, &str)],
    ) -> Result<IngestContext> {
        let runtime_key = keys::runtime(runtime);
        let mut wanted = vec![runtime_key.clone()];
        let agent_keys: HashMap<Key, AgentId> = agents
            .iter()
            .map(|(a, _)| (keys::agent(a), a.clone()))
            .collect();
        let version_keys: HashSet<Key> = agents
            .iter()
            .map(|(a, v)| keys::agent_version(a, v))
            .collect();
        let call_keys: HashSet<Key> = calls
            .iter()
            .map(|(provider, sid)| keys::call_sid(*provider, sid))
            .collect();
        wanted.extend(agent_keys.keys().cloned());
        wanted.extend(version_keys.iter().cloned());
        wanted.extend(call_keys.iter().cloned());
        let mut context = IngestContext::default();
        for (key, item) in self.batch_get(&wanted).await? {
            if key == runtime_key {
                context.runtime = Some(Self::record(item)?);
            } else if let Some(agent) = agent_keys.get(&key) {
                context.agents.insert(agent.clone(), Self::record(item)?);
            } else if version_keys.contains(&key) {
                context.versions.insert(key);
            } else if call_keys.contains(&key) {
                context.calls.insert(key, Self::record(item)?);
            }
        }
        Ok(context)
    }

    /// Writes one event and its effects in one transaction. An end reported for a call the
    /// sweeper ended already is written again without its effect, with a note: it lands on
    /// the timeline and changes nothing else.
    pub async fn write_event(&self, w: &EventWrite) -> Result<Written> {
        if let Some(written) = self.write_event_once(w).await? {
            return Ok(written);
        }
        let mut late = w.clone();
        late.effect = None;
        late.event.note = Some(format!(
            "the call had been ended already ({}); this end changes nothing",
            super::UNREPORTED_END
        ));
        self.write_event_once(&late)
            .await?
            .ok_or_else(|| Error::internal("an event without effect failed its effect"))
    }

    /// One transaction; `None` when only the effect failed (an end after the sweeper's).
    async fn write_event_once(&self, w: &EventWrite) -> Result<Option<Written>> {
        let now = w.event.received_at;
        let mut items = Tx::new().with(
            "event",
            self.create(
                &keys::call_event(&w.call_id, &w.event.idempotency_key),
                &w.event,
            )?,
        );
        if let Some((call, guard)) = &w.create {
            let sid = call
                .provider_call_sid
                .as_deref()
                .ok_or_else(|| Error::internal("a call created by an event has a provider id"))?;
            items.add("call", self.create(&keys::call(&call.id), &indexed(call))?);
            items.add(
                "call_sid",
                self.create(&keys::call_sid(call.provider, sid), guard)?,
            );
        } else if let Some(effect) = &w.effect {
            items.add("effect", effect.update(self, &w.call_id, now)?);
        }
        if let Some(segment) = &w.segment {
            items.add(
                "segment",
                self.create(
                    &keys::transcript_segment(&w.call_id, &segment.segment_id),
                    segment,
                )?,
            );
        }
        if let Some((runtime, error)) = &w.runtime_error {
            items.add(
                "runtime_error",
                self.put(
                    &keys::runtime_error(runtime, error.component.as_str()),
                    error,
                    None,
                )?,
            );
        }
        match self.transact(items).await {
            Ok(()) => Ok(Some(Written::Stored)),
            Err(TxError::Conditions(failed)) if failed.has("event") => Ok(Some(Written::Duplicate)),
            Err(TxError::Conditions(failed)) if failed.any(&["call", "call_sid"]) => {
                Ok(Some(Written::CallTaken))
            }
            Err(TxError::Conditions(failed)) if failed.has("segment") => {
                Ok(Some(Written::SegmentTaken))
            }
            Err(TxError::Conditions(failed)) if failed.only("effect") => Ok(None),
            Err(TxError::Conditions(failed)) => Err(Error::internal(format!(
                "event write failed on items {failed:?}"
            ))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A segment of a call.
    pub async fn segment(&self, call: &CallId, segment_id: &str) -> Result<Option<SegmentRecord>> {
        self.get(&keys::transcript_segment(call, segment_id)).await
    }
}
