//! Runtime event ingestion (PRD §9.1, Appendix B): `POST /ingest/call-events` and its batch
//! form. A runtime authenticates with its ingest token, which must be the token of the
//! envelope's `runtime_id`, a runtime of the envelope's `establishment_id` that still exists
//! (403 otherwise). Each event is checked, then applied with one write that includes its
//! idempotency guard; a request reads once, whatever its size. An event for a provider call id
//! nobody reported yet creates the call, so the webhook's call and the runtime's events for
//! the same CallSid are one call.

use crate::app::App;
use crate::auth::secret_token;
use crate::domain::event::{Envelope, EventKind, Party, RuntimeEvent};
use crate::domain::{CallStatus, Disposition, RuntimeStatus};
use crate::error::{Error, Result};
use crate::ids::{CallId, EstablishmentId, RuntimeId};
use crate::store::records::{
    CallRecord, CallSidRecord, EventRecord, NewCall, RecordingFile, RuntimeErrorRecord,
    SegmentRecord,
};
use crate::store::{CallEffect, EventWrite, IngestContext, Written, keys};
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// Most events in one batch.
pub const MAX_BATCH: usize = 25;
/// Object keys of recordings in our bucket start with this, then the establishment id.
pub const RECORDINGS_PREFIX: &str = "recordings/";

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Stored and applied.
    Stored,
    /// Its idempotency key was seen before: nothing changed.
    Duplicate,
    /// A segment with its id was stored before: the first one stays, this event is on the
    /// timeline with a note.
    SegmentExists,
}

/// `202` body of `POST /ingest/call-events` (Appendix B.1, plus the outcome).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always `accepted` (the frozen contract).
    pub status: &'static str,
    pub outcome: Outcome,
}

impl From<Outcome> for Accepted {
    fn from(outcome: Outcome) -> Self {
        Self {
            status: "accepted",
            outcome,
        }
    }
}

/// One event's result in a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResult {
    pub index: usize,
    /// `accepted` or `rejected`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The error envelope's `error` object of a rejected event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorBody>,
}

/// `POST /ingest/call-events/batch` answer: one result per event, in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchResult>,
}

/// `POST /ingest/call-events`: one event.
#[tracing::instrument(skip_all, fields(runtime_id = %envelope.runtime_id, call_sid = %envelope.call.provider_call_sid, event = %envelope.event.kind))]
pub async fn one(app: &App, token: &str, envelope: Envelope) -> Result<Accepted> {
    let event = RuntimeEvent::parse(envelope, Timestamp::now())?;
    let mut context =
        authenticate(app, token, &event.runtime_id, std::slice::from_ref(&event)).await?;
    check_runtime(&context, &event)?;
    let mut live = Vec::new();
    let outcome = apply(app, &mut context, &event, &mut live).await?;
    crate::service::analysis::nudge_live(app, &live).await;
    Ok(Accepted::from(outcome))
}

/// `POST /ingest/call-events/batch`: up to [`MAX_BATCH`] events, each accepted or rejected on
/// its own, applied in order (a call created by an earlier event is found by later ones).
#[tracing::instrument(skip_all, fields(events = raw.len()))]
pub async fn batch(app: &App, token: &str, raw: Vec<Value>) -> Result<BatchResults> {
    if raw.is_empty() || raw.len() > MAX_BATCH {
        return Err(Error::invalid(
            "events",
            format!("must hold 1 to {MAX_BATCH} events (got {})", raw.len()),
        ));
    }
    let now = Timestamp::now();
    let parsed: Vec<Result<RuntimeEvent>> = raw
        .into_iter()
        .map(|v| RuntimeEvent::parse(crate::http::from_value::<Envelope>(v)?, now))
        .collect();
    let valid: Vec<RuntimeEvent> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    // A batch comes from one runtime: the first valid envelope names it, and the token must
    // be that runtime's (a token that fits no envelope fails the whole request).
    let Some(first) = valid.first() else {
        // Every event is invalid: nothing to authenticate against, nothing stored.
        return Ok(BatchResults {
            results: parsed
                .into_iter()
                .enumerate()
                .filter_map(|(index, p)| p.err().map(|e| rejected(index, e)))
                .collect(),
        });
    };
    let runtime_id = first.runtime_id.clone();
    let mut context = authenticate(app, token, &runtime_id, &valid).await?;
    let mut results = Vec::with_capacity(parsed.len());
    let mut live = Vec::new();
    for (index, event) in parsed.into_iter().enumerate() {
        let result = match event {
            Err(e) => Err(e),
            Ok(event) if event.runtime_id != runtime_id => Err(Error::Forbidden(
                "every event of a batch must come from the runtime the token belongs to".into(),
            )),
            Ok(event) => match check_runtime(&context, &event) {
                Err(e) => Err(e),
                Ok(()) => apply(app, &mut context, &event, &mut live).await,
            },
        };
        results.push(match result {
            Ok(outcome) => BatchResult {
                index,
                status: "accepted",
                outcome: Some(outcome),
                error: None,
            },
            // Our own failures fail the request (the runtime retries the batch; what was
            // stored is recognised by its keys), not one event.
            Err(e @ (Error::Internal(_) | Error::Unavailable(_))) => return Err(e),
            Err(e) => rejected(index, e),
        });
    }
    crate::service::analysis::nudge_live(app, &live).await;
    Ok(BatchResults { results })
}

fn rejected(index: usize, e: Error) -> BatchResult {
    BatchResult {
        index,
        status: "rejected",
        outcome: None,
        error: Some(e.envelope()),
    }
}

/// Checks the token against `runtime` (no I/O), then reads everything the events need in
/// one round trip and checks the runtime exists and still runs.
async fn authenticate(
    app: &App,
    token: &str,
    runtime: &RuntimeId,
    events: &[RuntimeEvent],
) -> Result<IngestContext> {
    let forbidden = || Error::Forbidden("this ingest token is not the token of runtime_id".into());
    let expected = crate::auth::secret_token::ingest_token(&app.config, runtime)?;
    if !secret_token::matches(token, &secret_token::hash(&expected)) {
        return Err(forbidden());
    }
    let agents: Vec<_> = events
        .iter()
        .map(|e| (e.agent_id.clone(), e.agent_version_id.clone()))
        .collect();
    let calls: Vec<_> = events
        .iter()
        .map(|e| (e.call.provider, e.call.provider_call_sid.as_str()))
        .collect();
    let context = app.store.ingest_context(runtime, &agents, &calls).await?;
    match &context.runtime {
        Some(r)
            if r.status != RuntimeStatus::Removed
                && secret_token::matches(token, &r.ingest_token_hash) =>
        {
            Ok(context)
        }
        _ => Err(forbidden()),
    }
}

/// The envelope's establishment, agent and version must be the runtime's.
fn check_runtime(context: &IngestContext, event: &RuntimeEvent) -> Result<()> {
    let runtime = context
        .runtime
        .as_ref()
        .ok_or_else(|| Error::internal("authenticated without a runtime"))?;
    if runtime.establishment_id != event.establishment_id {
        return Err(Error::Forbidden(
            "establishment_id is not the establishment of this runtime".into(),
        ));
    }
    match context.agent(&event.agent_id) {
        Some(a) if a.establishment_id == event.establishment_id => {}
        _ => {
            return Err(Error::NotFoundField {
                field: "agent_id",
                message: "no such agent in this establishment".into(),
            });
        }
    }
    if !context.has_version(&event.agent_id, &event.agent_version_id) {
        return Err(Error::NotFoundField {
            field: "agent_version_id",
            message: "no such version of agent_id".into(),
        });
    }
    Ok(())
}

/// Applies one checked event: at most a few writes in rare races, one otherwise.
/// Stores `event`; a customer's turn stored adds its call to `live` (its live sentiment is
/// due).
async fn apply(
    app: &App,
    context: &mut IngestContext,
    event: &RuntimeEvent,
    live: &mut Vec<(CallId, EstablishmentId)>,
) -> Result<Outcome> {
    let provider = event.call.provider;
    let sid = event.call.provider_call_sid.as_str();
    let mut note = None;
    let mut with_segment = true;
    for _attempt in 0..3 {
        let write = plan(app, context, event, note.clone(), with_segment)?;
        match app.store.write_event(&write).await? {
            Written::Stored => {
                if let Some((_, guard)) = &write.create {
                    tracing::info!(call_id = %write.call_id, "call created by its first runtime event");
                    context.remember_call(provider, sid, guard.clone());
                }
                after(app, &write.call_id, event).await?;
                if matches!(&event.kind, EventKind::TranscriptSegment(s) if s.speaker == Party::Customer)
                    && write.segment.is_some()
                {
                    live.push((write.call_id.clone(), event.establishment_id.clone()));
                }
                return Ok(if note.is_some() {
                    Outcome::SegmentExists
                } else {
                    Outcome::Stored
                });
            }
            Written::Duplicate => {
                // The first delivery may have stored the event and failed to queue the job.
                after(app, &write.call_id, event).await?;
                return Ok(Outcome::Duplicate);
            }
            Written::CallTaken => {
                let guard =
                    app.store.call_by_sid(provider, sid).await?.ok_or_else(|| {
                        Error::Conflict("the call is being created; retry".into())
                    })?;
                context.remember_call(provider, sid, guard);
            }
            Written::SegmentTaken => {
                let EventKind::TranscriptSegment(segment) = &event.kind else {
                    return Err(Error::internal("segment conflict without a segment"));
                };
                let first = app
                    .store
                    .segment(&write.call_id, &segment.segment_id)
                    .await?;
                if first.as_ref().is_some_and(|f| f.text != segment.text) {
                    tracing::warn!(call_id = %write.call_id, segment_id = %segment.segment_id, "segment id reused with different text; the first is kept");
                }
                note = Some(format!(
                    "segment {} was stored before; the first one is kept",
                    segment.segment_id
                ));
                with_segment = false;
            }
        }
    }
    Err(Error::Conflict(
        "the call changed while the event was stored; retry".into(),
    ))
}

/// What a checked event writes, against the calls known so far.
fn plan(
    app: &App,
    context: &IngestContext,
    event: &RuntimeEvent,
    note: Option<String>,
    with_segment: bool,
) -> Result<EventWrite> {
    let now = Timestamp::now();
    let (call_id, mut create) =
        match context.call(event.call.provider, &event.call.provider_call_sid) {
            Some(guard) if guard.establishment_id != event.establishment_id => {
                return Err(Error::conflict_on(
                    "call.provider_call_sid",
                    "this provider call id belongs to another establishment's call",
                ));
            }
            Some(guard) => (guard.call_id.clone(), None),
            None => {
                let call = new_call(event, now);
                let guard = CallSidRecord {
                    call_id: call.id.clone(),
                    establishment_id: call.establishment_id.clone(),
                    twiml: None,
                };
                (call.id.clone(), Some((call, guard)))
            }
        };
    let effect = effect(app, event, now);
    if let (Some((call, _)), Some(effect)) = (&mut create, &effect) {
        effect.apply_to(call);
    }
    let (tool_name, tool_call_id, tool_error) = match &event.kind {
        EventKind::ToolCalled {
            tool_name,
            tool_call_id,
        } => (Some(tool_name.clone()), tool_call_id.clone(), None),
        EventKind::ToolResult {
            tool_name,
            tool_call_id,
            error,
        } => (Some(tool_name.clone()), tool_call_id.clone(), error.clone()),
        _ => (None, None, None),
    };
    let record = EventRecord {
        call_id: call_id.clone(),
        event_id: event.id.clone(),
        kind: event.kind.name().to_owned(),
        occurred_at: event.occurred_at,
        occurred_ms: event.occurred_at.unix_millis(),
        received_at: now,
        idempotency_key: event.idempotency_key.clone(),
        runtime_id: event.runtime_id.clone(),
        payload: event.payload.clone(),
        note,
        tool_name,
        tool_call_id,
        tool_error,
        lsi1sk: keys::timeline_sort(&event.occurred_at, &event.id),
        lsi2sk: event
            .kind
            .is_tool()
            .then(|| keys::tool_sort(&event.occurred_at, &event.id)),
    };
    let segment = match &event.kind {
        EventKind::TranscriptSegment(s) if with_segment => Some(SegmentRecord {
            segment_id: s.segment_id.clone(),
            speaker: s.speaker,
            text: s.text.clone(),
            started_at: s.started_at,
            ended_at: s.ended_at,
            confidence: s.confidence,
            event_id: event.id.clone(),
            lsi1sk: keys::transcript_sort(&s.started_at, &s.segment_id),
            lsi2sk: keys::arrival_sort(&crate::ids::next_ulid()),
        }),
        _ => None,
    };
    let runtime_error = match &event.kind {
        EventKind::RuntimeError {
            component,
            message,
            fatal,
        } => Some((
            event.runtime_id.clone(),
            RuntimeErrorRecord {
                component: *component,
                message: message.clone(),
                fatal: *fatal,
                occurred_at: event.occurred_at,
                call_id: call_id.clone(),
            },
        )),
        _ => None,
    };
    Ok(EventWrite {
        call_id,
        event: record,
        create,
        segment,
        effect,
        runtime_error,
    })
}

/// A call first heard of through a runtime event: the runtime has it, so it is in progress.
fn new_call(event: &RuntimeEvent, now: Timestamp) -> CallRecord {
    let started_at = match &event.kind {
        EventKind::CallStarted { started_at } => *started_at,
        _ => event.occurred_at,
    };
    CallRecord {
        agent_version_id: Some(event.agent_version_id.clone()),
        runtime_id: Some(event.runtime_id.clone()),
        provider_call_sid: Some(event.call.provider_call_sid.clone()),
        started_at: Some(started_at),
        ..CallRecord::new(NewCall {
            id: CallId::new(),
            establishment_id: event.establishment_id.clone(),
            agent_id: event.agent_id.clone(),
            provider: event.call.provider,
            direction: event.call.direction,
            from_e164: event.call.from_e164.clone(),
            to_e164: event.call.to_e164.clone(),
            status: CallStatus::InProgress,
            disposition: Disposition::Runtime,
            at: now,
        })
    }
}

/// What the event does to the call itself.
fn effect(app: &App, event: &RuntimeEvent, now: Timestamp) -> Option<CallEffect> {
    match &event.kind {
        EventKind::CallEnded {
            ended_at,
            duration_seconds,
            final_status,
            hangup_by,
        } => Some(CallEffect::Ended {
            final_status: *final_status,
            ended_at: *ended_at,
            duration_seconds: *duration_seconds,
            hangup_by: *hangup_by,
        }),
        EventKind::RecordingAvailable {
            recording_url,
            storage_provider,
            content_type,
            duration_seconds,
        } => Some(CallEffect::Recording(RecordingFile {
            url: recording_url.clone(),
            bucket_key: bucket_key(app.blobs.bucket(), &event.establishment_id, recording_url),
            storage_provider: storage_provider.clone(),
            content_type: content_type.clone(),
            duration_seconds: *duration_seconds,
            reported_at: now,
            copy_status: None,
            copy_error: None,
            bytes: None,
            copy_attempts: 0,
        })),
        EventKind::ToolResult { error, .. } => Some(CallEffect::ToolResult {
            failed: error.is_some(),
        }),
        EventKind::RuntimeError { .. } => Some(CallEffect::RuntimeError),
        _ => None,
    }
}

/// The object key of a recording URL that points into our bucket, under the establishment's
/// prefix; `None` for anything else (kept as a reference for the post-call worker to copy).
pub fn bucket_key(bucket: &str, est: &crate::ids::EstablishmentId, url: &str) -> Option<String> {
    let key = url
        .strip_prefix("s3://")?
        .strip_prefix(bucket)?
        .strip_prefix('/')?;
    let ours = key.starts_with(&format!("{RECORDINGS_PREFIX}{est}/"))
        && !key.split('/').any(|part| part == ".." || part.is_empty());
    ours.then(|| key.to_owned())
}

/// After a `call_ended` is stored (or seen again): the post-call job; after a recording
/// outside our bucket is reported: its copy. Queued at least once; the worker keys its work
/// by call id.
async fn after(app: &App, call_id: &CallId, event: &RuntimeEvent) -> Result<()> {
    let est = &event.establishment_id;
    match &event.kind {
        EventKind::CallEnded { .. } => {
            crate::service::analysis::queue_after_end(app, call_id, est, 0).await
        }
        EventKind::RecordingAvailable { recording_url, .. }
            if bucket_key(app.blobs.bucket(), est, recording_url).is_none() =>
        {
            crate::service::recordings::queue_copy(app, call_id, est).await
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_bucket_under_the_establishments_prefix_is_served() {
        // GIVEN an establishment and our bucket
        let est = crate::ids::EstablishmentId::new();
        let ours = format!("s3://bucket/recordings/{est}/CA1.wav");
        // THEN its own prefix is ours, anything else is a reference
        assert_eq!(
            bucket_key("bucket", &est, &ours).as_deref(),
            Some(format!("recordings/{est}/CA1.wav").as_str())
        );
        let other = crate::ids::EstablishmentId::new();
        for url in [
            format!("s3://bucket/recordings/{other}/CA1.wav"),
            format!("s3://bucket-2/recordings/{est}/CA1.wav"),
            format!("s3://bucket/recordings/{est}/../{other}/CA1.wav"),
            format!("s3://bucket/recordings/{est}//CA1.wav"),
            format!("https://bucket.s3.amazonaws.com/recordings/{est}/CA1.wav"),
        ] {
            assert_eq!(bucket_key("bucket", &est, &url), None, "{url}");
        }
    }
}
