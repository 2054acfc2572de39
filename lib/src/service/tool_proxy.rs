//! The tool proxy (PRD §9.4, D.8): runtimes call business tools here during a call, so no
//! integration secret ever sits on a runtime. A call is checked in order — the runtime's
//! ingest token against the call's runtime, the call live (or ended under 10 minutes ago),
//! the arguments, the tool enabled in the brain of the call's version, the establishment's
//! integration connected and enabled, the minute's rate limit — then claimed under its
//! `Idempotency-Key` before the provider is called, so a retry returns the first answer and
//! sends nothing twice. Every call, refused ones included, lands in the call's tool log.
//!
//! Answers are `{ok, result, error: {code, message, retryable}}` with an HTTP status that
//! says the same (200, 400, 403, 404, 409, 422, 429 with `Retry-After`, 502, 503, 504).

use crate::app::App;
use crate::auth::secret_token;
use crate::domain::integration::{Credentials, IntegrationStatus, IntegrationType};
use crate::domain::{CallStatus, E164, Email};
use crate::error::Error;
use crate::ids::CallId;
use crate::providers::ProviderError;
use crate::store::records::{
    CallRecord, EventRecord, IntegrationRecord, ToolKeyRecord, ToolKeyState,
};
use crate::store::{Claim, ToolCallWrite, keys};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How long after its end a call still takes tool calls (a summary email sent as the caller
/// hangs up).
pub const ENDED_GRACE_SECS: i64 = 600;
/// A claim older than this whose answer never came is reported as of unknown outcome.
pub const STALE_CLAIM_SECS: i64 = 60;

/// The tools the proxy serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyTool {
    EmailSend,
    CalendarCreateEvent,
    CalendarFindFreeSlots,
    WhatsappSendMessage,
    CrmFindContact,
    CrmUpsertContact,
    CrmCreateNote,
    CrmLogCall,
    Handoff,
    DncAdd,
}

impl ProxyTool {
    /// The name in the tool log.
    pub fn name(self) -> &'static str {
        match self {
            ProxyTool::EmailSend => "email.send",
            ProxyTool::CalendarCreateEvent => "calendar.create_event",
            ProxyTool::CalendarFindFreeSlots => "calendar.find_free_slots",
            ProxyTool::WhatsappSendMessage => "whatsapp.send_message",
            ProxyTool::CrmFindContact => "crm.find_contact",
            ProxyTool::CrmUpsertContact => "crm.upsert_contact",
            ProxyTool::CrmCreateNote => "crm.create_note",
            ProxyTool::CrmLogCall => "crm.log_call",
            ProxyTool::Handoff => "handoff",
            ProxyTool::DncAdd => "dnc.add",
        }
    }

    /// The rate-limit group (`TOOL_RATE_LIMITS`).
    pub fn group(self) -> &'static str {
        match self {
            ProxyTool::EmailSend => "email",
            ProxyTool::CalendarCreateEvent | ProxyTool::CalendarFindFreeSlots => "calendar",
            ProxyTool::WhatsappSendMessage => "whatsapp",
            ProxyTool::CrmFindContact
            | ProxyTool::CrmUpsertContact
            | ProxyTool::CrmCreateNote
            | ProxyTool::CrmLogCall => "crm",
            ProxyTool::Handoff => "handoff",
            ProxyTool::DncAdd => "dnc",
        }
    }

    /// The integration it needs (none for the built-in tools).
    pub fn integration(self) -> Option<IntegrationType> {
        match self.group() {
            "email" => Some(IntegrationType::Email),
            "calendar" => Some(IntegrationType::GoogleCalendar),
            "whatsapp" => Some(IntegrationType::WhatsappMessaging),
            "crm" => Some(IntegrationType::Crm),
            _ => None,
        }
    }

    /// Whether a timeout may have left the effect done (then it is not tried again).
    fn reads_only(self) -> bool {
        matches!(
            self,
            ProxyTool::CalendarFindFreeSlots | ProxyTool::CrmFindContact
        )
    }
}

/// What went wrong, as the runtime reads it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolError {
    /// `validation_failed`, `unauthorized`, `call_not_found`, `call_ended`,
    /// `tool_not_enabled`, `integration_missing`, `integration_disabled`,
    /// `integration_not_connected`, `in_progress`, `outcome_unknown`, `rate_limited`,
    /// `provider_rejected`, `provider_rate_limited`, `provider_unavailable`,
    /// `provider_timeout`, `integration_unauthorized`, `unavailable`, or a rule of the
    /// built-in tools (`no_handoff_number`, `call_not_in_progress`).
    pub code: String,
    pub message: String,
    /// Whether the same call may work if sent again (with the same `Idempotency-Key`).
    pub retryable: bool,
}

/// The proxy's answer body.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolAnswer {
    pub ok: bool,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<ToolError>,
}

/// An answer with its HTTP status (and `Retry-After` for 429/503).
#[derive(Clone, Debug)]
pub struct ToolReply {
    pub status: u16,
    pub answer: ToolAnswer,
    pub retry_after: Option<u64>,
}

impl ToolReply {
    fn ok(result: Value) -> Self {
        Self {
            status: 200,
            answer: ToolAnswer {
                ok: true,
                result: Some(result),
                error: None,
            },
            retry_after: None,
        }
    }

    /// A refusal: `ok: false` with `error {code, message, retryable}`.
    pub fn refused(status: u16, code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            status,
            answer: ToolAnswer {
                ok: false,
                result: None,
                error: Some(ToolError {
                    code: code.to_owned(),
                    message: message.into(),
                    retryable,
                }),
            },
            retry_after: None,
        }
    }

    /// Our own error in the proxy's shape; the envelope logs an internal cause, as every
    /// other answer does.
    fn from_error(e: &Error) -> Self {
        let body = e.envelope();
        let retryable = matches!(e, Error::Unavailable(_));
        Self::refused(e.code().0.as_u16(), body.code, body.message, retryable)
    }

    fn from_provider(e: &ProviderError) -> Self {
        let status = match e.code {
            "provider_timeout" => 504,
            "provider_rejected" => 422,
            "provider_rate_limited" => 503,
            _ => 502,
        };
        Self {
            retry_after: e.retry_after,
            ..Self::refused(
                status,
                e.code,
                e.message.clone(),
                e.retryable && !e.maybe_done,
            )
        }
    }
}

/// A tool call as it arrives: the call it is for, and its arguments.
struct Request {
    call: CallRef,
    arguments: Value,
}

enum CallRef {
    Id(CallId),
    Sid(String),
}

fn split(body: Value) -> Result<Request, Error> {
    let Value::Object(mut map) = body else {
        return Err(Error::invalid("body", "must be a JSON object"));
    };
    let id = map.remove("call_id");
    let sid = map.remove("provider_call_sid");
    let call = match (id, sid) {
        (Some(Value::String(id)), None) => CallRef::Id(
            CallId::parse(&id).map_err(|_| Error::invalid("call_id", "is not a call id"))?,
        ),
        (None, Some(Value::String(sid))) => {
            crate::domain::ident("provider_call_sid", &sid, crate::domain::MAX_PROVIDER_ID)?;
            CallRef::Sid(sid)
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "call_id",
                "name the call by call_id or by provider_call_sid, not both",
            ));
        }
        (Some(_), None) => return Err(Error::invalid("call_id", "must be a string")),
        (None, Some(_)) => return Err(Error::invalid("provider_call_sid", "must be a string")),
        (None, None) => {
            return Err(Error::invalid(
                "call_id",
                "is required (or provider_call_sid)",
            ));
        }
    };
    Ok(Request {
        call,
        arguments: Value::Object(map),
    })
}

// --- Arguments of each tool ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailArgs {
    to: Email,
    subject: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    reply_to: Option<Email>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attendee {
    email: Email,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AttendeeArg {
    Address(Email),
    Object(Attendee),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventArgs {
    summary: String,
    start: String,
    end: String,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    attendees: Vec<AttendeeArg>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotArgs {
    start: String,
    end: String,
    duration_minutes: u32,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    max_slots: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateArg {
    name: String,
    language: String,
    #[serde(default)]
    components: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhatsappArgs {
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    template: Option<TemplateArg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindContactArgs {
    #[serde(default)]
    email: Option<Email>,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertContactArgs {
    #[serde(default)]
    email: Option<Email>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    company: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteArgs {
    contact_id: String,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogCallArgs {
    contact_id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffArgs {
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DncArgs {
    #[serde(default)]
    reason: Option<String>,
}

/// Checked arguments.
enum Args {
    Email(EmailArgs),
    Event(EventArgs),
    Slots(SlotArgs),
    Whatsapp {
        to: E164,
        message: Value,
    },
    Find {
        property: &'static str,
        value: String,
    },
    Upsert {
        key: (&'static str, String),
        properties: Value,
    },
    Note(NoteArgs),
    LogCall(LogCallArgs),
    Handoff(String),
    Dnc(Option<String>),
}

fn bounded_text(field: &str, raw: &str, max: usize) -> Result<String, Error> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn instant(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, Error> {
    chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        Error::invalid(
            field,
            "must be an RFC 3339 instant with its offset, e.g. 2026-12-03T15:00:00-05:00",
        )
    })
}

fn zone(raw: Option<&str>) -> Result<Option<String>, Error> {
    raw.map(|z| {
        z.parse::<chrono_tz::Tz>()
            .map(|_| z.to_owned())
            .map_err(|_| {
                Error::invalid("time_zone", "must be an IANA time zone, e.g. Europe/Paris")
            })
    })
    .transpose()
}

fn crm_id(field: &str, raw: &str) -> Result<String, Error> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            field,
            "must be a HubSpot object id (digits)",
        ));
    }
    Ok(t.to_owned())
}

fn parse_args(tool: ProxyTool, raw: Value) -> Result<Args, Error> {
    use crate::json::from_value;
    Ok(match tool {
        ProxyTool::EmailSend => {
            let mut a: EmailArgs = from_value(raw)?;
            a.subject = bounded_text("subject", &a.subject, 200)?;
            if a.text.is_none() && a.html.is_none() {
                return Err(Error::invalid("text", "text or html is required"));
            }
            for (field, body) in [("text", &a.text), ("html", &a.html)] {
                if body.as_ref().is_some_and(|b| b.len() > 100_000) {
                    return Err(Error::invalid(field, "must be at most 100000 bytes"));
                }
            }
            Args::Email(a)
        }
        ProxyTool::CalendarCreateEvent => {
            let mut a: EventArgs = from_value(raw)?;
            a.summary = bounded_text("summary", &a.summary, 200)?;
            let (start, end) = (instant("start", &a.start)?, instant("end", &a.end)?);
            if end <= start || end - start > chrono::Duration::days(14) {
                return Err(Error::invalid(
                    "end",
                    "must be after start, at most 14 days later",
                ));
            }
            zone(a.time_zone.as_deref())?;
            if a.attendees.len() > 50 {
                return Err(Error::invalid("attendees", "at most 50"));
            }
            if a.description.as_ref().is_some_and(|d| d.len() > 8000) {
                return Err(Error::invalid("description", "must be at most 8000 bytes"));
            }
            Args::Event(a)
        }
        ProxyTool::CalendarFindFreeSlots => {
            let a: SlotArgs = from_value(raw)?;
            let (start, end) = (instant("start", &a.start)?, instant("end", &a.end)?);
            if end <= start || end - start > chrono::Duration::days(31) {
                return Err(Error::invalid(
                    "end",
                    "must be after start, at most 31 days later",
                ));
            }
            if !(5..=480).contains(&a.duration_minutes) {
                return Err(Error::invalid("duration_minutes", "must be 5 to 480"));
            }
            if a.max_slots.is_some_and(|m| !(1..=50).contains(&m)) {
                return Err(Error::invalid("max_slots", "must be 1 to 50"));
            }
            zone(a.time_zone.as_deref())?;
            Args::Slots(a)
        }
        ProxyTool::WhatsappSendMessage => {
            let a: WhatsappArgs = from_value(raw)?;
            let to = crate::domain::integration::recipient_phone("to", &a.to)?;
            let digits = to.as_str().trim_start_matches('+').to_owned();
            let message = match (a.text, a.template) {
                (Some(text), None) => {
                    let body = bounded_text("text", &text, 4096)?;
                    json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                        "to": digits, "type": "text", "text": {"preview_url": false, "body": body}})
                }
                (None, Some(t)) => {
                    let name = bounded_text("template.name", &t.name, 512)?;
                    let language = bounded_text("template.language", &t.language, 15)?;
                    let mut template = json!({"name": name, "language": {"code": language}});
                    if let Some(c) = t.components {
                        crate::domain::storable("template.components", &c, 2)?;
                        template["components"] = c;
                    }
                    json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                        "to": digits, "type": "template", "template": template})
                }
                _ => {
                    return Err(Error::invalid(
                        "text",
                        "give text or template (one of them)",
                    ));
                }
            };
            Args::Whatsapp { to, message }
        }
        ProxyTool::CrmFindContact => {
            let a: FindContactArgs = from_value(raw)?;
            match (a.email, a.phone) {
                (Some(e), None) => Args::Find {
                    property: "email",
                    value: e.to_string(),
                },
                (None, Some(p)) => Args::Find {
                    property: "phone",
                    value: crate::domain::integration::recipient_phone("phone", &p)?.to_string(),
                },
                _ => return Err(Error::invalid("email", "give email or phone (one of them)")),
            }
        }
        ProxyTool::CrmUpsertContact => {
            let a: UpsertContactArgs = from_value(raw)?;
            let phone = a
                .phone
                .as_deref()
                .map(|p| crate::domain::integration::recipient_phone("phone", p))
                .transpose()?;
            let key = match (&a.email, &phone) {
                (Some(e), _) => ("email", e.to_string()),
                (None, Some(p)) => ("phone", p.to_string()),
                (None, None) => return Err(Error::invalid("email", "email or phone is required")),
            };
            let mut properties = Map::new();
            if let Some(e) = &a.email {
                properties.insert("email".into(), json!(e));
            }
            if let Some(p) = &phone {
                properties.insert("phone".into(), json!(p));
            }
            for (field, name, value) in [
                ("first_name", "firstname", &a.first_name),
                ("last_name", "lastname", &a.last_name),
                ("company", "company", &a.company),
            ] {
                if let Some(v) = value {
                    properties.insert(name.into(), json!(bounded_text(field, v, 200)?));
                }
            }
            Args::Upsert {
                key,
                properties: Value::Object(properties),
            }
        }
        ProxyTool::CrmCreateNote => {
            let mut a: NoteArgs = from_value(raw)?;
            a.contact_id = crm_id("contact_id", &a.contact_id)?;
            a.body = bounded_text("body", &a.body, 65_000)?;
            Args::Note(a)
        }
        ProxyTool::CrmLogCall => {
            let mut a: LogCallArgs = from_value(raw)?;
            a.contact_id = crm_id("contact_id", &a.contact_id)?;
            if let Some(t) = &a.title {
                a.title = Some(bounded_text("title", t, 200)?);
            }
            if a.body.as_ref().is_some_and(|b| b.len() > 65_000) {
                return Err(Error::invalid("body", "must be at most 65000 bytes"));
            }
            Args::LogCall(a)
        }
        ProxyTool::Handoff => {
            let a: HandoffArgs = from_value(raw)?;
            Args::Handoff(bounded_text("reason", &a.reason, 200)?)
        }
        ProxyTool::DncAdd => {
            let a: DncArgs = from_value(raw)?;
            Args::Dnc(
                a.reason
                    .map(|r| bounded_text("reason", &r, 200))
                    .transpose()?,
            )
        }
    })
}

/// Arguments as the tool log keeps them: secret-looking fields masked.
fn redacted(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if crate::domain::is_secret(k) {
                        (k.clone(), json!("********"))
                    } else {
                        (k.clone(), redacted(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

/// `POST /tool-proxy/…`: one tool call from a runtime.
#[tracing::instrument(skip_all, fields(tool = tool.name()))]
pub async fn call(
    app: &App,
    tool: ProxyTool,
    token: Option<&str>,
    idempotency_key: Option<&str>,
    body: Value,
) -> ToolReply {
    match run(app, tool, token, idempotency_key, body).await {
        Ok(reply) => reply,
        Err(e) => ToolReply::from_error(&e),
    }
}

/// The call's events, keyed so a retry of the same attempt writes nothing new.
struct Log<'a> {
    call: &'a CallRecord,
    runtime: crate::ids::RuntimeId,
    tool: ProxyTool,
    base: String,
    tool_call_id: Option<String>,
    arguments: Value,
    started_ms: i64,
}

impl Log<'_> {
    fn event(
        &self,
        kind: &str,
        suffix: &str,
        payload: Value,
        error: Option<String>,
    ) -> EventRecord {
        let now = Timestamp::now();
        let event_id = format!("tp_{}", crate::ids::next_ulid());
        EventRecord {
            call_id: self.call.id.clone(),
            event_id: event_id.clone(),
            kind: kind.to_owned(),
            occurred_at: now,
            occurred_ms: Timestamp::now_millis(),
            received_at: now,
            idempotency_key: format!("{}:{suffix}", self.base),
            runtime_id: self.runtime.clone(),
            payload,
            note: None,
            tool_name: Some(self.tool.name().to_owned()),
            tool_call_id: self.tool_call_id.clone(),
            tool_error: error,
            lsi1sk: keys::timeline_sort(&now, &event_id),
            lsi2sk: Some(keys::tool_sort(&now, &event_id)),
        }
    }

    fn called(&self) -> EventRecord {
        self.event(
            "tool_called",
            "called",
            json!({"tool_name": self.tool.name(), "tool_call_id": self.tool_call_id,
                "arguments": self.arguments, "source": "tool_proxy"}),
            None,
        )
    }

    fn result(&self, reply: &ToolReply) -> EventRecord {
        let error = reply.answer.error.as_ref();
        self.event(
            "tool_result",
            "result",
            json!({"tool_name": self.tool.name(), "tool_call_id": self.tool_call_id,
                "result": reply.answer.result, "error": error, "source": "tool_proxy",
                "duration_ms": (Timestamp::now_millis() - self.started_ms).max(0)}),
            error.map(|e| format!("{}: {}", e.code, e.message)),
        )
    }

    /// A refusal logged as a called/result pair, then answered.
    async fn refuse(&self, app: &App, reply: ToolReply) -> Result<ToolReply, Error> {
        let write = ToolCallWrite {
            call: self.call,
            called: self.called(),
            result: Some(self.result(&reply)),
        };
        app.store.finish_tool_call(&write, false, None).await?;
        Ok(reply)
    }
}

async fn run(
    app: &App,
    tool: ProxyTool,
    token: Option<&str>,
    idempotency_key: Option<&str>,
    body: Value,
) -> Result<ToolReply, Error> {
    let Some(token) = token else {
        return Ok(ToolReply::refused(
            401,
            "unauthorized",
            "send the runtime's ingest token as `Authorization: Bearer …`",
            false,
        ));
    };
    let request = split(body)?;
    let key = crate::service::calls::idempotency_key(idempotency_key)?;
    let not_found = || {
        ToolReply::refused(
            404,
            "call_not_found",
            "no call of this runtime has that id",
            false,
        )
    };
    let call = match &request.call {
        CallRef::Id(id) => app.store.call(id).await?,
        CallRef::Sid(sid) => match app
            .store
            .call_by_sid(crate::domain::NumberProvider::Twilio, sid)
            .await?
        {
            Some(guard) => app.store.call(&guard.call_id).await?,
            None => None,
        },
    };
    let Some(call) = call else {
        return Ok(not_found());
    };
    let Some(runtime_id) = call.runtime_id.clone() else {
        return Ok(not_found());
    };
    let expected = secret_token::ingest_token(&app.config, &runtime_id)?;
    if !secret_token::matches(token, &secret_token::hash(&expected)) {
        return Ok(not_found());
    }
    let key_ref = key
        .as_ref()
        .map(|k| keys::tool_key(&call.id, tool.name(), k));
    let context = app
        .store
        .tool_context(&call, tool.integration(), key_ref.as_ref())
        .await?;
    match &context.runtime {
        Some(r)
            if r.status != crate::domain::RuntimeStatus::Removed
                && secret_token::matches(token, &r.ingest_token_hash) => {}
        _ => return Ok(not_found()),
    }
    let now = Timestamp::now();
    // The same key: the first answer, or why there is none yet.
    let attempt = match &context.key {
        None => 1,
        Some(k) => match k.state {
            ToolKeyState::Done => {
                let answer: ToolAnswer = k
                    .answer
                    .clone()
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(Error::internal)?
                    .ok_or_else(|| Error::internal("a done tool key has an answer"))?;
                return Ok(ToolReply {
                    status: k.http_status.unwrap_or(200),
                    answer,
                    retry_after: None,
                });
            }
            ToolKeyState::Pending if now.unix() - k.claimed_at.unix() < STALE_CLAIM_SECS => {
                return Ok(ToolReply {
                    retry_after: Some(2),
                    ..ToolReply::refused(
                        409,
                        "in_progress",
                        "a call with this Idempotency-Key is in progress; retry shortly",
                        true,
                    )
                });
            }
            ToolKeyState::Pending => {
                return Ok(ToolReply::refused(
                    409,
                    "outcome_unknown",
                    "a call with this Idempotency-Key started but its outcome was never recorded; it may have been carried out, so it is not repeated",
                    false,
                ));
            }
            ToolKeyState::Retry => k.attempt + 1,
        },
    };
    let log = Log {
        call: &call,
        runtime: runtime_id.clone(),
        tool,
        base: match &key {
            Some(k) => format!("proxy:{}:{k}:{attempt}", tool.name()),
            None => format!("proxy:{}:{}", tool.name(), crate::ids::next_ulid()),
        },
        tool_call_id: key.clone(),
        arguments: redacted(&request.arguments),
        started_ms: Timestamp::now_millis(),
    };
    // Refusals below are logged on the call.
    if let Some(ended) = call.ended_at
        && now.unix() - ended.unix() > ENDED_GRACE_SECS
    {
        return log
            .refuse(
                app,
                ToolReply::refused(
                    409,
                    "call_ended",
                    format!("the call ended at {ended}; tools work until 10 minutes after its end"),
                    false,
                ),
            )
            .await;
    }
    let args = match parse_args(tool, request.arguments.clone()) {
        Ok(a) => a,
        Err(e) => return log.refuse(app, ToolReply::from_error(&e)).await,
    };
    if let Some(brain_tool) = tool.integration().map(IntegrationType::tool) {
        let enabled = context
            .version
            .as_ref()
            .and_then(|v| v.brain.tools.get(&brain_tool))
            .is_some_and(|s| s.enabled);
        if !enabled {
            return log
                .refuse(
                    app,
                    ToolReply::refused(
                        403,
                        "tool_not_enabled",
                        format!(
                            "the `{brain_tool}` tool is not enabled in this call's agent version"
                        ),
                        false,
                    ),
                )
                .await;
        }
    }
    let integration = match tool.integration() {
        None => None,
        Some(kind) => match &context.integration {
            None => {
                return log
                    .refuse(
                        app,
                        ToolReply::refused(
                            403,
                            "integration_missing",
                            format!("the establishment has no {kind} integration"),
                            false,
                        ),
                    )
                    .await;
            }
            Some(i) if !i.enabled => {
                return log
                    .refuse(
                        app,
                        ToolReply::refused(
                            403,
                            "integration_disabled",
                            format!("the establishment's {kind} integration is disabled"),
                            false,
                        ),
                    )
                    .await;
            }
            Some(i) if i.status != IntegrationStatus::Connected => {
                let why = i
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "consent not given yet".into());
                return log
                    .refuse(
                        app,
                        ToolReply::refused(
                            403,
                            "integration_not_connected",
                            format!(
                                "the establishment's {kind} integration is not connected: {why}"
                            ),
                            false,
                        ),
                    )
                    .await;
            }
            Some(i) => Some(i.clone()),
        },
    };
    // Claim: the key, the minute's budget, the call event.
    let minute = now.unix().div_euclid(60);
    let rate_key = keys::tool_rate(&call.establishment_id, tool.group(), minute);
    let limit = app.config.integrations.rate_limit(tool.group());
    let called = log.called();
    let claim = app
        .store
        .claim_tool_call(
            key_ref.as_ref().map(|k| (k, attempt)),
            (&rate_key, limit, (minute + 2) * 60),
            &ToolCallWrite {
                call: &call,
                called: called.clone(),
                result: None,
            },
        )
        .await?;
    match claim {
        Claim::Claimed => {}
        Claim::Taken => {
            return Ok(ToolReply {
                retry_after: Some(2),
                ..ToolReply::refused(
                    409,
                    "in_progress",
                    "a call with this Idempotency-Key is in progress; retry shortly",
                    true,
                )
            });
        }
        Claim::RateLimited => {
            let wait = u64::try_from(60 - now.unix().rem_euclid(60)).unwrap_or(60);
            let reply = ToolReply {
                retry_after: Some(wait),
                ..ToolReply::refused(
                    429,
                    "rate_limited",
                    format!(
                        "the establishment's {} tools are limited to {limit} calls a minute",
                        tool.group()
                    ),
                    true,
                )
            };
            return log.refuse(app, reply).await;
        }
    }
    let outcome = execute(app, &call, &runtime_id, args, integration.clone()).await;
    // The provider refused our credentials: the connection shows it until reconnected.
    if let (Err(Failure::Provider(e)), Some(i)) = (&outcome, &integration)
        && e.is_auth()
        && let Err(store) = app.store.integration_failed(i, &e.message).await
    {
        tracing::warn!(error = %store, "integration not marked failed");
    }
    let (reply, again) = match outcome {
        Ok(result) => (ToolReply::ok(result), false),
        Err(Failure::Provider(e)) => {
            let mut reply = ToolReply::from_provider(&e);
            // A read that timed out did nothing; a send that timed out may have gone out.
            let again = e.retryable && (!e.maybe_done || tool.reads_only());
            if let Some(err) = reply.answer.error.as_mut() {
                err.retryable = again;
            }
            (reply, again)
        }
        Err(Failure::Ours(e)) => {
            let reply = ToolReply::from_error(&e);
            let again = reply.answer.error.as_ref().is_some_and(|e| e.retryable);
            (reply, again)
        }
    };
    let record = ToolKeyRecord {
        state: if again {
            ToolKeyState::Retry
        } else {
            ToolKeyState::Done
        },
        attempt,
        claimed_at: now,
        http_status: Some(reply.status),
        answer: Some(serde_json::to_value(&reply.answer).map_err(Error::internal)?),
    };
    app.store
        .finish_tool_call(
            &ToolCallWrite {
                call: &call,
                called,
                result: Some(log.result(&reply)),
            },
            true,
            key_ref.as_ref().map(|k| (k, &record)),
        )
        .await?;
    Ok(reply)
}

enum Failure {
    Provider(ProviderError),
    Ours(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Ours(e)
    }
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Failure::Provider(e)
    }
}

/// Carries out a checked, claimed tool call.
async fn execute(
    app: &App,
    call: &CallRecord,
    runtime: &crate::ids::RuntimeId,
    args: Args,
    integration: Option<IntegrationRecord>,
) -> Result<Value, Failure> {
    let credentials = match integration {
        None => None,
        Some(i) => {
            let (record, credentials) = crate::service::integrations::usable(app, i).await?;
            Some((record, credentials))
        }
    };
    let token = || -> Result<&str, Failure> {
        match credentials.as_ref().and_then(|(_, c)| c.as_ref()) {
            Some(Credentials::Token { access_token } | Credentials::Oauth { access_token, .. }) => {
                Ok(access_token.as_str())
            }
            _ => Err(Failure::Ours(Error::internal(
                "the integration has no token",
            ))),
        }
    };
    let providers = app.providers();
    match args {
        Args::Email(a) => {
            let (record, secret) = credentials
                .as_ref()
                .ok_or_else(|| Error::internal("email needs its integration"))?;
            send_email(app, record, secret.as_ref(), a).await
        }
        Args::Event(a) => {
            let mut event = json!({
                "summary": a.summary,
                "start": {"dateTime": a.start.trim()},
                "end": {"dateTime": a.end.trim()},
                "attendees": a.attendees.iter().map(|at| match at {
                    AttendeeArg::Address(e) => json!({"email": e}),
                    AttendeeArg::Object(o) => json!({"email": o.email}),
                }).collect::<Vec<_>>(),
            });
            if let Some(z) = &a.time_zone {
                event["start"]["timeZone"] = json!(z);
                event["end"]["timeZone"] = json!(z);
            }
            if let Some(d) = &a.description {
                event["description"] = json!(d);
            }
            Ok(providers.google_insert_event(token()?, &event).await?)
        }
        Args::Slots(a) => {
            let time_zone = a.time_zone.clone().unwrap_or_else(|| "UTC".into());
            let busy = providers
                .google_busy(token()?, a.start.trim(), a.end.trim(), &time_zone)
                .await?;
            Ok(free_slots(&a, &busy))
        }
        Args::Whatsapp { to, message } => {
            let (record, _) = credentials
                .as_ref()
                .ok_or_else(|| Error::internal("whatsapp needs its integration"))?;
            let id = record.settings["phone_number_id"]
                .as_str()
                .unwrap_or_default();
            let mut out = providers.whatsapp_send(token()?, id, &message).await?;
            out["to"] = json!(to);
            Ok(out)
        }
        Args::Find { property, value } => {
            let found = providers.hubspot_find(token()?, property, &value).await?;
            Ok(json!({"found": found.is_some(), "contact": found}))
        }
        Args::Upsert { key, properties } => {
            let existing = providers.hubspot_find(token()?, key.0, &key.1).await?;
            let id = existing
                .as_ref()
                .and_then(|c| c["contact_id"].as_str().map(str::to_owned));
            let saved = providers
                .hubspot_save_contact(token()?, id.as_deref(), &properties)
                .await?;
            Ok(json!({"created": id.is_none(), "contact": saved}))
        }
        Args::Note(a) => {
            let properties = json!({
                "hs_timestamp": Timestamp::now().to_string(),
                "hs_note_body": a.body,
            });
            // 202: note to contact (HubSpot-defined association).
            Ok(providers
                .hubspot_engagement(token()?, "notes", 202, &a.contact_id, &properties)
                .await?)
        }
        Args::LogCall(a) => {
            let direction = match call.direction {
                crate::domain::Direction::Inbound => "INBOUND",
                crate::domain::Direction::Outbound => "OUTBOUND",
            };
            let properties = json!({
                "hs_timestamp": call.started_at.unwrap_or(call.created_at).to_string(),
                "hs_call_title": a.title.unwrap_or_else(|| format!("{} call", direction.to_ascii_lowercase())),
                "hs_call_body": a.body.unwrap_or_default(),
                "hs_call_direction": direction,
                "hs_call_status": "COMPLETED",
                "hs_call_from_number": call.from_e164,
                "hs_call_to_number": call.to_e164,
                "hs_call_duration": call.duration_seconds.map(|d| u64::from(d) * 1000),
            });
            // 194: call to contact.
            Ok(providers
                .hubspot_engagement(token()?, "calls", 194, &a.contact_id, &properties)
                .await?)
        }
        Args::Handoff(reason) => handoff(app, call, runtime, reason).await,
        Args::Dnc(reason) => opt_out(app, call, runtime, reason).await,
    }
}

async fn send_email(
    app: &App,
    record: &IntegrationRecord,
    secret: Option<&Credentials>,
    a: EmailArgs,
) -> Result<Value, Failure> {
    let from_name = record.settings["from_name"].as_str().map(str::to_owned);
    let default_reply_to = record.settings["reply_to"]
        .as_str()
        .and_then(|r| Email::parse(r).ok());
    let reply_to = a.reply_to.clone().or(default_reply_to);
    match (record.mode.as_str(), secret) {
        ("smtp", Some(Credentials::Password { password })) => {
            let settings = serde_json::from_value(record.settings.clone())
                .map_err(|e| Failure::Ours(Error::internal(e)))?;
            let message = crate::smtp::SmtpMessage {
                to: a.to,
                subject: a.subject,
                text: a.text,
                html: a.html,
                reply_to,
            };
            Ok(crate::smtp::send(
                &settings,
                password,
                None,
                &message,
                app.config.integrations.provider_timeout,
            )
            .await?)
        }
        ("ses", _) => {
            let mail = crate::mail::Mail {
                to: a.to.clone(),
                subject: a.subject,
                text: a.text.unwrap_or_default(),
                html: a.html,
                reply_to,
                from_name,
            };
            app.mailer.send(&mail).await.map_err(|e| {
                tracing::warn!(error = %e, "SES refused a tool email");
                Failure::Provider(ProviderError::new(
                    "provider_unavailable",
                    "the mail service did not take the message",
                    true,
                ))
            })?;
            Ok(json!({"to": a.to, "transport": "ses"}))
        }
        _ => Err(Failure::Ours(Error::internal(
            "the email integration has no usable transport",
        ))),
    }
}

/// Free slots of `duration_minutes` between `start` and `end`, on the slot grid from `start`,
/// clear of every busy interval.
fn free_slots(a: &SlotArgs, busy: &[(String, String)]) -> Value {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s.trim()).ok();
    let (Some(start), Some(end)) = (parse(&a.start), parse(&a.end)) else {
        return json!({"slots": []});
    };
    let busy: Vec<_> = busy
        .iter()
        .filter_map(|(s, e)| Some((parse(s)?, parse(e)?)))
        .collect();
    let step = chrono::Duration::minutes(i64::from(a.duration_minutes));
    let max = a.max_slots.unwrap_or(10) as usize;
    let mut slots = Vec::new();
    let mut at = start;
    while at + step <= end && slots.len() < max {
        let to = at + step;
        if let Some((_, busy_end)) = busy.iter().find(|(bs, be)| *bs < to && *be > at) {
            // Jump past the busy interval, staying on whole minutes.
            at = (*busy_end).max(at + chrono::Duration::minutes(1));
            continue;
        }
        slots.push(json!({"start": at.to_rfc3339(), "end": to.to_rfc3339()}));
        at = to;
    }
    json!({"slots": slots, "busy": busy.len()})
}

/// The built-in handoff: the same transfer as `POST /calls/{id}/handoff`, by the runtime.
async fn handoff(
    app: &App,
    call: &CallRecord,
    runtime: &crate::ids::RuntimeId,
    reason: String,
) -> Result<Value, Failure> {
    if call.status != CallStatus::InProgress {
        return Err(Failure::Ours(Error::unprocessable(
            "call_not_in_progress",
            None,
            format!(
                "the call is {}; only a call in progress can be handed off",
                call.status.as_str()
            ),
        )));
    }
    let view = crate::service::calls::transfer(
        app,
        call,
        reason,
        None,
        crate::store::audit::AuditActor::Runtime(runtime),
    )
    .await?;
    Ok(json!({"status": view.status, "handoff_e164": view.handoff_e164}))
}

/// The built-in opt-out: the caller's number joins the do-not-call list (audited as the
/// runtime's act) and its lead turns `do_not_call`.
async fn opt_out(
    app: &App,
    call: &CallRecord,
    runtime: &crate::ids::RuntimeId,
    reason: Option<String>,
) -> Result<Value, Failure> {
    let counterpart = match call.direction {
        crate::domain::Direction::Inbound => &call.from_e164,
        crate::domain::Direction::Outbound => &call.to_e164,
    };
    let e164 = E164::parse(counterpart).map_err(|_| {
        Failure::Ours(Error::unprocessable(
            "no_caller_number",
            None,
            "the caller's number is withheld or not a phone number; nothing to add",
        ))
    })?;
    let entry = crate::store::records::DoNotCallRecord {
        e164: e164.clone(),
        reason: Some(reason.unwrap_or_else(|| "the caller opted out during a call".into())),
        added_by: None,
        added_at: Timestamp::now(),
        call_id: Some(call.id.clone()),
    };
    let added = app
        .store
        .add_do_not_call(
            &call.establishment_id,
            &entry,
            crate::store::audit::AuditActor::Runtime(runtime),
        )
        .await?;
    app.store
        .mark_lead_do_not_call(&call.establishment_id, &e164)
        .await?;
    Ok(json!({"e164": e164, "added": added}))
}
