//! Runtime events (PRD Appendix B, a frozen contract): the envelope a runtime posts to
//! `/ingest/call-events`, parsed into typed values. Parsing is where every rule on what a
//! runtime may send lives (sizes, clocks, the known event types); what passes is safe to
//! store. Unknown envelope fields are ignored, so runtimes can add fields without losing events.

use super::ident;
use super::{CallStatus, Direction, NumberProvider};
use crate::error::{Error, Result};
use crate::ids::{AgentId, AgentVersionId, EstablishmentId, RuntimeId};
use crate::time::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest transcript segment text, in bytes of UTF-8.
pub const MAX_SEGMENT_TEXT_BYTES: usize = 8 * 1024;
/// Largest event payload, serialised (tool arguments and results can be big; items cannot).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// How far ahead of our clock an event may claim to be (runtime clocks drift).
pub const MAX_CLOCK_AHEAD_SECS: i64 = 300;

/// The envelope as it arrives; [`RuntimeEvent::parse`] checks it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    pub runtime_id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    pub agent_version_id: AgentVersionId,
    pub call: CallRef,
    pub event: RawEvent,
}

/// The call an event belongs to, as the runtime knows it.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CallRef {
    pub provider: NumberProvider,
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub provider_call_sid: String,
    pub direction: Direction,
    pub from_e164: String,
    pub to_e164: String,
}

/// `event` before its payload is parsed by type.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RawEvent {
    pub id: String,
    /// `call_started`, `transcript_segment`, `tool_called`, `tool_result`, `handoff_requested`,
    /// `call_ended`, `runtime_error`, `recording_available`, … (Appendix B.2).
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: Timestamp,
    pub idempotency_key: String,
    #[serde(default)]
    pub payload: Value,
}

/// A checked runtime event.
#[derive(Clone, Debug)]
pub struct RuntimeEvent {
    pub runtime_id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    pub agent_version_id: AgentVersionId,
    pub call: CallRef,
    /// The runtime's event id.
    pub id: String,
    pub occurred_at: Timestamp,
    pub idempotency_key: String,
    /// The payload as sent (after checking), kept on the timeline.
    pub payload: Value,
    pub kind: EventKind,
}

/// Who spoke, or who hung up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Customer,
    Agent,
    /// A human who took over (handoff).
    Operator,
    System,
}

/// The part of a runtime that failed (`runtime_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Stt,
    Tts,
    Llm,
    Transport,
}

impl Component {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Stt => "stt",
            Component::Tts => "tts",
            Component::Llm => "llm",
            Component::Transport => "transport",
        }
    }
}

/// A transcript segment (`transcript_segment`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub segment_id: String,
    pub speaker: Party,
    pub text: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// What happened, by event type (Appendix B.2).
#[derive(Clone, Debug)]
pub enum EventKind {
    CallStarted {
        started_at: Timestamp,
    },
    CallConnected,
    CallEnded {
        ended_at: Timestamp,
        duration_seconds: Option<u32>,
        final_status: CallStatus,
        hangup_by: Option<Party>,
    },
    TranscriptSegment(Segment),
    ToolCalled {
        tool_name: String,
        /// Pairs the call with its result when the runtime sends one (else by tool name).
        tool_call_id: Option<String>,
    },
    ToolResult {
        tool_name: String,
        tool_call_id: Option<String>,
        /// The tool's error, `None` when it succeeded.
        error: Option<String>,
    },
    RecordingAvailable {
        recording_url: String,
        storage_provider: String,
        content_type: String,
        duration_seconds: Option<u32>,
    },
    RuntimeError {
        component: Component,
        message: String,
        fatal: bool,
    },
}

impl EventKind {
    /// The wire name of the type.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CallStarted { .. } => "call_started",
            EventKind::CallConnected => "call_connected",
            EventKind::CallEnded { .. } => "call_ended",
            EventKind::TranscriptSegment(_) => "transcript_segment",
            EventKind::ToolCalled { .. } => "tool_called",
            EventKind::ToolResult { .. } => "tool_result",
            EventKind::RecordingAvailable { .. } => "recording_available",
            EventKind::RuntimeError { .. } => "runtime_error",
        }
    }

    /// Whether this is a tool event (kept in the tool log too).
    pub fn is_tool(&self) -> bool {
        matches!(
            self,
            EventKind::ToolCalled { .. } | EventKind::ToolResult { .. }
        )
    }
}

#[derive(Deserialize)]
struct StartedPayload {
    started_at: Timestamp,
}

#[derive(Deserialize)]
struct EndedPayload {
    ended_at: Timestamp,
    #[serde(default)]
    duration_seconds: Option<u32>,
    final_status: CallStatus,
    #[serde(default)]
    hangup_by: Option<Party>,
}

#[derive(Deserialize)]
struct ToolCalledPayload {
    tool_name: String,
    #[serde(default)]
    #[allow(dead_code)]
    arguments: Value,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
struct ToolResultPayload {
    tool_name: String,
    #[serde(default)]
    #[allow(dead_code)]
    result: Value,
    #[serde(default)]
    error: Value,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
struct RecordingPayload {
    recording_url: String,
    storage_provider: String,
    content_type: String,
    #[serde(default)]
    duration_seconds: Option<u32>,
}

#[derive(Deserialize)]
struct ErrorPayload {
    component: Component,
    message: String,
    #[serde(default)]
    fatal: bool,
}

/// Parses `payload` as `T`, naming the failing field under `event.payload`.
fn payload<T: DeserializeOwned>(payload: &Value) -> Result<T> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = match crate::json::missing_field_path(&path, &message).as_str() {
            "body" => "event.payload".to_owned(),
            inner => format!("event.payload.{inner}"),
        };
        Error::invalid(field, message)
    })
}

/// 1 to `max` characters, each visible ASCII or in `extra`.
fn token(field: &str, raw: &str, max: usize) -> Result<()> {
    if raw.is_empty() || raw.len() > max || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} visible ASCII characters"),
        ));
    }
    Ok(())
}

fn not_ahead(field: &str, t: Timestamp, now: Timestamp) -> Result<()> {
    if t.unix() > now.unix() + MAX_CLOCK_AHEAD_SECS {
        return Err(Error::invalid(
            field,
            format!("is more than {MAX_CLOCK_AHEAD_SECS} s in the future ({t}, now {now})"),
        ));
    }
    Ok(())
}

fn text(field: &str, raw: &str, max_chars: usize) -> Result<()> {
    if raw.trim().is_empty() || raw.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max_chars} characters"),
        ));
    }
    Ok(())
}

impl RuntimeEvent {
    /// Checks an envelope against the contract at `now`.
    pub fn parse(envelope: Envelope, now: Timestamp) -> Result<Self> {
        let Envelope {
            runtime_id,
            establishment_id,
            agent_id,
            agent_version_id,
            call,
            event,
        } = envelope;
        ident("call.provider_call_sid", &call.provider_call_sid, 64)?;
        token("call.from_e164", &call.from_e164, 64)?;
        token("call.to_e164", &call.to_e164, 64)?;
        token("event.id", &event.id, 128)?;
        token("event.idempotency_key", &event.idempotency_key, 256)?;
        not_ahead("event.occurred_at", event.occurred_at, now)?;
        if serde_json::to_vec(&event.payload).map_or(0, |v| v.len()) > MAX_PAYLOAD_BYTES {
            return Err(Error::invalid(
                "event.payload",
                format!("must be at most {MAX_PAYLOAD_BYTES} bytes"),
            ));
        }
        super::storable("event.payload", &event.payload, 0)?;
        let kind = Self::kind(&event.kind, &event.payload, now)?;
        Ok(Self {
            runtime_id,
            establishment_id,
            agent_id,
            agent_version_id,
            call,
            id: event.id,
            occurred_at: event.occurred_at,
            idempotency_key: event.idempotency_key,
            payload: event.payload,
            kind,
        })
    }

    fn kind(kind: &str, raw: &Value, now: Timestamp) -> Result<EventKind> {
        Ok(match kind {
            "call_started" => {
                let p: StartedPayload = payload(raw)?;
                not_ahead("event.payload.started_at", p.started_at, now)?;
                EventKind::CallStarted {
                    started_at: p.started_at,
                }
            }
            "call_connected" => EventKind::CallConnected,
            "call_ended" => {
                let p: EndedPayload = payload(raw)?;
                not_ahead("event.payload.ended_at", p.ended_at, now)?;
                if !p.final_status.is_final() {
                    return Err(Error::invalid(
                        "event.payload.final_status",
                        "must be a final status: completed, busy, failed, no_answer, canceled \
                         or rejected",
                    ));
                }
                if p.duration_seconds.is_some_and(|d| d > 86_400) {
                    return Err(Error::invalid(
                        "event.payload.duration_seconds",
                        "must be at most 86400",
                    ));
                }
                EventKind::CallEnded {
                    ended_at: p.ended_at,
                    duration_seconds: p.duration_seconds,
                    final_status: p.final_status,
                    hangup_by: p.hangup_by,
                }
            }
            "transcript_segment" => {
                let s: Segment = payload(raw)?;
                ident("event.payload.segment_id", &s.segment_id, 128)?;
                if s.text.trim().is_empty() {
                    return Err(Error::invalid("event.payload.text", "must not be empty"));
                }
                if s.text.len() > MAX_SEGMENT_TEXT_BYTES {
                    return Err(Error::invalid(
                        "event.payload.text",
                        format!(
                            "must be at most {MAX_SEGMENT_TEXT_BYTES} bytes (got {})",
                            s.text.len()
                        ),
                    ));
                }
                not_ahead("event.payload.started_at", s.started_at, now)?;
                not_ahead("event.payload.ended_at", s.ended_at, now)?;
                if s.ended_at < s.started_at {
                    return Err(Error::invalid(
                        "event.payload.ended_at",
                        "must not be before started_at",
                    ));
                }
                if s.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
                    return Err(Error::invalid(
                        "event.payload.confidence",
                        "must be between 0 and 1",
                    ));
                }
                EventKind::TranscriptSegment(s)
            }
            "tool_called" => {
                let p: ToolCalledPayload = payload(raw)?;
                ident("event.payload.tool_name", &p.tool_name, 64)?;
                if let Some(id) = &p.tool_call_id {
                    ident("event.payload.tool_call_id", id, 128)?;
                }
                EventKind::ToolCalled {
                    tool_name: p.tool_name,
                    tool_call_id: p.tool_call_id,
                }
            }
            "tool_result" => {
                let p: ToolResultPayload = payload(raw)?;
                ident("event.payload.tool_name", &p.tool_name, 64)?;
                if let Some(id) = &p.tool_call_id {
                    ident("event.payload.tool_call_id", id, 128)?;
                }
                let error = match p.error {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                EventKind::ToolResult {
                    tool_name: p.tool_name,
                    tool_call_id: p.tool_call_id,
                    error,
                }
            }
            "recording_available" => {
                let p: RecordingPayload = payload(raw)?;
                let url_ok = ["https://", "http://", "s3://"]
                    .iter()
                    .any(|s| p.recording_url.starts_with(s));
                if !url_ok || p.recording_url.len() > 2048 {
                    return Err(Error::invalid(
                        "event.payload.recording_url",
                        "must be an https://, http:// or s3:// URL of at most 2048 characters",
                    ));
                }
                ident("event.payload.storage_provider", &p.storage_provider, 32)?;
                if !p.content_type.starts_with("audio/") || p.content_type.len() > 100 {
                    return Err(Error::invalid(
                        "event.payload.content_type",
                        "must be an audio/* media type",
                    ));
                }
                EventKind::RecordingAvailable {
                    recording_url: p.recording_url,
                    storage_provider: p.storage_provider,
                    content_type: p.content_type,
                    duration_seconds: p.duration_seconds,
                }
            }
            "runtime_error" => {
                let p: ErrorPayload = payload(raw)?;
                text("event.payload.message", &p.message, 2000)?;
                EventKind::RuntimeError {
                    component: p.component,
                    message: p.message,
                    fatal: p.fatal,
                }
            }
            other => {
                return Err(Error::invalid(
                    "event.type",
                    format!(
                        "unknown event type `{}`; expected call_started, call_connected, \
                         call_ended, transcript_segment, tool_called, tool_result, \
                         recording_available or runtime_error",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(kind: &str, payload: Value) -> Envelope {
        serde_json::from_value(json!({
            "runtime_id": crate::ids::RuntimeId::new(),
            "establishment_id": crate::ids::EstablishmentId::new(),
            "agent_id": crate::ids::AgentId::new(),
            "agent_version_id": crate::ids::AgentVersionId::new(),
            "call": {"provider": "twilio", "provider_call_sid": "CA1", "direction": "inbound",
                     "from_e164": "+15550102244", "to_e164": "+15553012211"},
            "event": {"id": "evt_1", "type": kind, "occurred_at": "2026-01-10T00:00:05Z",
                      "idempotency_key": "rt:CA1:1", "payload": payload}
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-10T00:01:00Z").unwrap()
    }

    fn field(e: Error) -> String {
        match e {
            Error::Validation { details, .. } => details["field"].as_str().unwrap().to_owned(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn the_appendix_b_segment_parses() {
        // GIVEN the segment of Appendix B.1
        let e = envelope(
            "transcript_segment",
            json!({"segment_id": "seg_1", "speaker": "customer", "text": "Hello",
                   "started_at": "2026-01-10T00:00:03Z", "ended_at": "2026-01-10T00:00:05Z",
                   "confidence": 0.91}),
        );
        // WHEN parsed
        let event = RuntimeEvent::parse(e, now()).unwrap();
        // THEN it is a segment with its fields
        let EventKind::TranscriptSegment(s) = event.kind else {
            panic!("not a segment")
        };
        assert_eq!((s.speaker, s.text.as_str()), (Party::Customer, "Hello"));
    }

    #[test]
    fn bad_events_are_refused_naming_the_field() {
        // GIVEN events breaking one rule each
        let cases = [
            (envelope("call_exploded", json!({})), "event.type"),
            (
                envelope(
                    "transcript_segment",
                    json!({"segment_id": "s", "speaker": "customer", "text": "x".repeat(8193),
                           "started_at": "2026-01-10T00:00:03Z", "ended_at": "2026-01-10T00:00:05Z"}),
                ),
                "event.payload.text",
            ),
            (
                envelope(
                    "transcript_segment",
                    json!({"segment_id": "s", "speaker": "customer", "text": "hi",
                           "started_at": "2027-01-10T00:00:03Z", "ended_at": "2027-01-10T00:00:05Z"}),
                ),
                "event.payload.started_at",
            ),
            (
                envelope(
                    "call_ended",
                    json!({"ended_at": "2026-01-10T00:00:05Z", "final_status": "in_progress"}),
                ),
                "event.payload.final_status",
            ),
            (
                envelope("call_ended", json!({"final_status": "completed"})),
                "event.payload.ended_at",
            ),
            (
                envelope(
                    "runtime_error",
                    json!({"component": "gpu", "message": "boom"}),
                ),
                "event.payload.component",
            ),
            (
                envelope(
                    "tool_called",
                    json!({"tool_name": "t", "arguments": {"x": 1e300}}),
                ),
                "event.payload",
            ),
            (
                envelope(
                    "tool_called",
                    json!({"tool_name": "t", "arguments": {"": 1}}),
                ),
                "event.payload",
            ),
            (
                envelope("tool_called", {
                    let mut deep = json!(1);
                    for _ in 0..20 {
                        deep = json!([deep]);
                    }
                    json!({"tool_name": "t", "arguments": deep})
                }),
                "event.payload",
            ),
        ];
        for (envelope, expected) in cases {
            // WHEN parsed THEN the error names the field
            let err = RuntimeEvent::parse(envelope, now()).unwrap_err();
            assert_eq!(field(err), expected);
        }
    }
}
