//! Calls: created once per provider call (the `CALLSID#…` guard makes a provider's retry land
//! on the same call), moved forward only (every status write is conditional on
//! `status_rank < :rank`, so duplicated and out-of-order callbacks cannot move a call back),
//! and indexed for history (`gsi1`) and, until they end, for the active list (`gsi2`).
//! The do-not-call list is `store::do_not_call`; outbound requests, `store::outbound`.

use super::records::{
    AuditRecord, CallRecord, CallSidRecord, EstablishmentRecord, EstablishmentRuntimeRecord,
    HandoffRecord, OutboundRequestRecord, RecordingFile, RecordingRef,
};
use super::{Item, Store, Tx, TxError, keys, n, s};
use crate::domain::{AnsweredBy, CallStatus, E164, NumberProvider};
use crate::error::{Error, Result};
use crate::ids::{CallId, EstablishmentId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::collections::HashMap;

/// `call` with its index attributes: history (`gsi1`), active until final (`gsi2`, and `gsi3`
/// for the sweeper), and the end of its transcript's arrival order (`lsi2`).
pub(crate) fn indexed(call: &CallRecord) -> CallRecord {
    let mut record = call.clone();
    let sort = keys::call_sort(&call.created_at, &call.id);
    record.gsi1pk = Some(keys::calls_index(&call.establishment_id));
    record.gsi1sk = Some(sort.clone());
    if !call.status.is_final() {
        record.gsi2pk = Some(keys::active_calls_index(&call.establishment_id));
        record.gsi2sk = Some(sort.clone());
        record.gsi3pk = Some(keys::live_calls_index(keys::live_shard(&call.id)));
        record.gsi3sk = Some(sort);
    }
    record.lsi2sk = Some(keys::CALL_ARRIVAL_SORT.to_owned());
    record
}

/// What routing an inbound call needs beyond its number, read in one BatchGetItem.
#[derive(Debug)]
pub struct InboundContext {
    pub establishment: Option<EstablishmentRecord>,
    pub runtime: Option<EstablishmentRuntimeRecord>,
    /// The caller is on the establishment's do-not-call list.
    pub do_not_call: bool,
    /// A call already made for this provider call id (a provider retry).
    pub existing: Option<CallSidRecord>,
}

/// A status change reported by the provider.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub status: CallStatus,
    pub at: Timestamp,
    /// On final statuses: the call's length.
    pub duration_seconds: Option<u32>,
    /// On final statuses: why it ended.
    pub end_reason: Option<String>,
}

/// Why a call could not be created.
#[derive(Debug)]
pub enum CreateCallError {
    /// The provider call id (or the outbound request's idempotency key) is taken already.
    Taken,
    Other(Error),
}

impl From<Error> for CreateCallError {
    fn from(e: Error) -> Self {
        CreateCallError::Other(e)
    }
}

/// A call without a provider id yet (the attribute is absent or stored as a null); needs the
/// value `:null` = "NULL".
const NO_SID: &str =
    "attribute_not_exists(provider_call_sid) OR attribute_type(provider_call_sid, :null)";

impl Store {
    /// Everything the inbound webhook reads after resolving the number, in one round trip.
    pub async fn inbound_context(
        &self,
        est: &EstablishmentId,
        caller: Option<&E164>,
        provider: NumberProvider,
        call_sid: &str,
    ) -> Result<InboundContext> {
        let est_key = keys::establishment(est);
        let runtime_key = keys::establishment_runtime(est);
        let sid_key = keys::call_sid(provider, call_sid);
        let mut wanted = vec![est_key.clone(), runtime_key.clone(), sid_key.clone()];
        if let Some(caller) = caller {
            wanted.push(keys::do_not_call(est, caller));
        }
        let mut context = InboundContext {
            establishment: None,
            runtime: None,
            do_not_call: false,
            existing: None,
        };
        for (key, item) in self.batch_get(&wanted).await? {
            if key == est_key {
                context.establishment = Some(Self::record(item)?);
            } else if key == runtime_key {
                context.runtime = Some(Self::record(item)?);
            } else if key == sid_key {
                context.existing = Some(Self::record(item)?);
            } else {
                context.do_not_call = true;
            }
        }
        Ok(context)
    }

    /// The call a provider call id belongs to.
    pub async fn call_by_sid(
        &self,
        provider: NumberProvider,
        sid: &str,
    ) -> Result<Option<CallSidRecord>> {
        self.get(&keys::call_sid(provider, sid)).await
    }

    /// A call by id.
    pub async fn call(&self, id: &CallId) -> Result<Option<CallRecord>> {
        self.get(&keys::call(id)).await
    }

    /// Creates `call` (indexed for history and, unless it is over, as active) with its
    /// provider-id guard and, for an outbound request with an idempotency key, that request's
    /// record: one transaction, so a retry can never make a second call.
    pub async fn create_call(
        &self,
        call: &CallRecord,
        guard: Option<&CallSidRecord>,
        request: Option<(&str, &OutboundRequestRecord)>,
    ) -> Result<(), CreateCallError> {
        let mut items = Tx::new().with("call", self.create(&keys::call(&call.id), &indexed(call))?);
        if let (Some(guard), Some(sid)) = (guard, &call.provider_call_sid) {
            items.add(
                "call_sid",
                self.create(&keys::call_sid(call.provider, sid), guard)?,
            );
        }
        if let Some((key, request)) = request {
            items.add(
                "request",
                self.create(
                    &keys::outbound_request(&call.establishment_id, key),
                    request,
                )?,
            );
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(failed)) if failed.any(&["call_sid", "request"]) => {
                Err(CreateCallError::Taken)
            }
            Err(TxError::Conditions(_)) => Err(CreateCallError::Other(Error::Conflict(
                "call id collision; retry".into(),
            ))),
            Err(TxError::Other(e)) => Err(CreateCallError::Other(e)),
        }
    }

    /// Records the provider's id of an outbound call once the provider accepted it, with its
    /// guard (so callbacks that only carry the provider id find the call).
    pub async fn set_provider_sid(&self, call: &CallRecord, sid: &str) -> Result<()> {
        let items = Tx::new()
            .with(
                "call",
                self.update(
                    &keys::call(&call.id),
                    "SET provider_call_sid = :sid, updated_at = :now REMOVE unconfirmed_since",
                    Some(&format!("{NO_SID} OR provider_call_sid = :sid")),
                    HashMap::new(),
                    HashMap::from([
                        (":sid".to_owned(), s(sid)),
                        (":now".to_owned(), s(Timestamp::now().to_string())),
                        (":null".to_owned(), s("NULL")),
                    ]),
                )?,
            )
            .with(
                "call_sid",
                self.create(
                    &keys::call_sid(call.provider, sid),
                    &CallSidRecord {
                        call_id: call.id.clone(),
                        establishment_id: call.establishment_id.clone(),
                        twiml: None,
                    },
                )?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // Learnt twice (a status callback and a reconciling retry at once): the same
            // answer both times is no change.
            Err(TxError::Conditions(failed)) if failed.only("call_sid") => {
                match self.call_by_sid(call.provider, sid).await? {
                    Some(guard) if guard.call_id == call.id => Ok(()),
                    _ => Err(Error::internal(format!(
                        "provider call id {sid} is already recorded for another call"
                    ))),
                }
            }
            Err(TxError::Conditions(_)) => Err(Error::internal(format!(
                "call {} already has another provider call id than {sid}",
                call.id
            ))),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Marks an outbound call whose create request the provider may or may not have acted on
    /// (its answer was lost).
    pub async fn mark_unconfirmed(&self, call: &CallRecord) -> Result<bool> {
        self.update_if(
            &keys::call(&call.id),
            "SET unconfirmed_since = :now, updated_at = :now",
            &format!("attribute_exists(pk) AND ({NO_SID})"),
            HashMap::new(),
            HashMap::from([
                (":now".to_owned(), s(Timestamp::now().to_string())),
                (":null".to_owned(), s("NULL")),
            ]),
        )
        .await
    }

    /// Moves call `id` to `change.status` if that is forward of where it is (`false` when it
    /// is already there or further: a duplicate or late callback), answering the call as it
    /// was before (`None` when it does not exist).
    pub async fn advance_call(
        &self,
        id: &CallId,
        change: &StatusChange,
    ) -> Result<(bool, Option<CallRecord>)> {
        let mut sets = vec![
            "#status = :status",
            "status_rank = :rank",
            "updated_at = :now",
        ];
        let mut values: Item = HashMap::from([
            (":status".to_owned(), s(change.status.as_str())),
            (":rank".to_owned(), n(change.status.rank())),
            (":now".to_owned(), s(change.at.to_string())),
        ]);
        let mut remove = "";
        if change.status == CallStatus::InProgress {
            sets.push("started_at = :now");
        }
        if change.status.is_final() {
            sets.push("final_status = :status");
            sets.push("ended_at = :now");
            sets.push("duration_seconds = :duration");
            sets.push("end_reason = :reason");
            values.insert(
                ":duration".to_owned(),
                change
                    .duration_seconds
                    .map_or(AttributeValue::Null(true), n),
            );
            values.insert(
                ":reason".to_owned(),
                change
                    .end_reason
                    .as_deref()
                    .map_or(AttributeValue::Null(true), s),
            );
            remove = keys::REMOVE_LIVE;
        }
        let expression = format!("SET {}{remove}", sets.join(", "));
        let (applied, before) = self
            .update_returning_old(
                &keys::call(id),
                &expression,
                "attribute_exists(pk) AND status_rank < :rank",
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                values,
            )
            .await?;
        Ok((applied, before.map(Self::record).transpose()?))
    }

    /// Stores who answered (answering-machine detection) on call `id`.
    pub async fn record_answered_by(
        &self,
        id: &CallId,
        answered_by: AnsweredBy,
        detection_ms: Option<u32>,
    ) -> Result<bool> {
        self.update_if(
            &keys::call(id),
            "SET answered_by = :by, machine_detection_ms = :ms, updated_at = :now",
            "attribute_exists(pk)",
            HashMap::new(),
            HashMap::from([
                (
                    ":by".to_owned(),
                    serde_dynamo::to_attribute_value(answered_by)?,
                ),
                (
                    ":ms".to_owned(),
                    detection_ms.map_or(AttributeValue::Null(true), n),
                ),
                (":now".to_owned(), s(Timestamp::now().to_string())),
            ]),
        )
        .await
    }

    /// Stores the recording reference on call `id`; answers the call as it was before (in the
    /// same round trip), `None` when there is no such call.
    pub async fn record_recording(
        &self,
        id: &CallId,
        recording: &RecordingRef,
    ) -> Result<Option<CallRecord>> {
        let (_, before) = self
            .update_returning_old(
                &keys::call(id),
                "SET recording = :r, updated_at = :now",
                "attribute_exists(pk)",
                HashMap::new(),
                HashMap::from([
                    (
                        ":r".to_owned(),
                        serde_dynamo::to_attribute_value(recording)?,
                    ),
                    (":now".to_owned(), s(Timestamp::now().to_string())),
                ]),
            )
            .await?;
        before.map(Self::record).transpose()
    }

    /// Marks call `id` as handed off, if it is in progress; `Ok(false)` otherwise. The audit
    /// entry is written with it.
    pub async fn begin_handoff(
        &self,
        call: &CallRecord,
        handoff: &HandoffRecord,
        actor: crate::store::audit::AuditActor<'_>,
    ) -> Result<bool> {
        let status = CallStatus::HandoffInitiated;
        let items = Tx::new()
            .with("call", self.update(
                &keys::call(&call.id),
                "SET #status = :status, status_rank = :rank, handoff = :h, updated_at = :now",
                Some("#status = :in_progress"),
                HashMap::from([("#status".to_owned(), "status".to_owned())]),
                HashMap::from([
                    (":status".to_owned(), s(status.as_str())),
                    (":rank".to_owned(), n(status.rank())),
                    (":h".to_owned(), serde_dynamo::to_attribute_value(handoff)?),
                    (":now".to_owned(), s(handoff.at.to_string())),
                    (":in_progress".to_owned(), s(CallStatus::InProgress.as_str())),
                ]),
            )?)
            .with("audit", self.audit_item(&AuditRecord::new(
                &call.establishment_id,
                actor,
                "call.handoff",
                ("call", call.id.as_str()),
                json!({ "status": call.status }),
                json!({ "status": status, "handoff_e164": handoff.e164, "reason": handoff.reason }),
            ))?);
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Puts a call whose transfer the provider refused back in progress (unless a callback
    /// moved it on meanwhile).
    pub async fn undo_handoff(&self, id: &CallId) -> Result<()> {
        let status = CallStatus::InProgress;
        self.update_if(
            &keys::call(id),
            "SET #status = :status, status_rank = :rank, handoff = :null, updated_at = :now",
            "#status = :handoff",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            HashMap::from([
                (":status".to_owned(), s(status.as_str())),
                (":rank".to_owned(), n(status.rank())),
                (":null".to_owned(), AttributeValue::Null(true)),
                (":now".to_owned(), s(Timestamp::now().to_string())),
                (
                    ":handoff".to_owned(),
                    s(CallStatus::HandoffInitiated.as_str()),
                ),
            ]),
        )
        .await
        .map(drop)
    }
}

impl Store {
    /// Stores what became of copying call `id`'s recording (`service::recordings`), unless
    /// another recording was reported meanwhile (a different URL); `Ok(false)` then.
    pub async fn put_recording_copy(&self, id: &CallId, file: &RecordingFile) -> Result<bool> {
        self.update_if(
            &keys::call(id),
            "SET recording_file = :f",
            "attribute_exists(pk) AND (attribute_not_exists(recording_file) \
             OR recording_file.#url = :url)",
            HashMap::from([("#url".to_owned(), "url".to_owned())]),
            HashMap::from([
                (":f".to_owned(), serde_dynamo::to_attribute_value(file)?),
                (":url".to_owned(), s(file.url.as_str())),
            ]),
        )
        .await
    }
}
