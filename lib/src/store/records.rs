//! The shapes of stored items (without their keys, which `keys` builds).

use crate::domain::event::{Component, Party};
use crate::domain::{
    AgentStatus, AnsweredBy, Brain, CallStatus, DesiredState, Direction, DisplayName, Disposition,
    E164, Email, ImageRef, ImportStatus, LeadStatus, Locale, Name, NumberProvider, PublicUrl, Role,
    RuntimeAction, RuntimeEnv, RuntimeStatus, TelephonyPolicy, TimeZone, VersionStatus,
};
use crate::hostapi::{CommandOutcome, RuntimeHealth};
use crate::ids::{
    AgentId, AgentVersionId, AuditId, CallId, CampaignId, CommandId, EstablishmentId, ImportJobId,
    InvitationId, LeadId, PhoneNumberId, RuntimeId, UserId,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `EST#{est}` / `EST`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstablishmentRecord {
    pub id: EstablishmentId,
    pub name: Name,
    pub timezone: TimeZone,
    pub locale: Locale,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many members are admins; kept in the same transactions that change roles, so the
    /// last admin can never be demoted or removed.
    pub admin_count: u32,
    pub telephony: TelephonyPolicy,
}

/// `USER#{usr}` / `PROFILE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub created_at: Timestamp,
    /// May create establishments without being an admin of one (the bootstrap admin).
    #[serde(default)]
    pub platform_admin: bool,
    /// Access tokens carry the generation they were issued in; a password reset moves it on,
    /// which ends every older session at once.
    #[serde(default)]
    pub token_generation: u32,
}

/// `EMAIL#{email}` / `EMAIL`: the unique login identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRecord {
    pub user_id: UserId,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// `EST#{est}` / `MEMBER#{usr}` and its mirror `USER#{usr}` / `MEMBER#{est}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberRecord {
    pub establishment_id: EstablishmentId,
    pub user_id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// `EST#{est}` / `INVITE#{email}`: at most one pending invitation per email and establishment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteRecord {
    pub invitation_id: InvitationId,
    pub establishment_id: EstablishmentId,
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: Timestamp,
    /// SHA-256 of the token, so the token item can be deleted with the invitation.
    pub token_hash: String,
    /// Epoch seconds (TTL attribute).
    pub expires_at: i64,
}

/// `INVTOKEN#{hash}` / `INVTOKEN`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InviteTokenRecord {
    pub invitation_id: InvitationId,
    pub establishment_id: EstablishmentId,
    pub email: Email,
    pub role: Role,
    pub expires_at: i64,
}

/// `RESET#{hash}` / `RESET`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResetTokenRecord {
    pub user_id: UserId,
    pub email: Email,
    pub expires_at: i64,
}

/// `JTI#{jti}` / `REVOKED`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokedRecord {
    pub expires_at: i64,
}

/// `AGENT#{agt}` / `AGENT`, listed through `gsi1` `EST#{est}#AGENTS`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub establishment_id: EstablishmentId,
    pub name: Name,
    pub description: Option<String>,
    pub status: AgentStatus,
    pub active_version_id: Option<AgentVersionId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many versions were created (the next is `v{version_count + 1}`).
    pub version_count: u32,
    /// How many activations (publish or rollback) happened: the next deployment's sequence.
    pub deployment_count: u32,
    /// The numbers routed to this agent (E.164 → number id). Kept in the transactions that
    /// route numbers, so publish knows which number items carry the active version, and an
    /// agent with numbers cannot be archived.
    pub numbers: BTreeMap<String, PhoneNumberId>,
    /// Bumped by every change to `active_version_id` or `numbers`; transactions that copy one
    /// onto number items are conditional on it, so a number can never keep a stale version.
    pub revision: u64,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `AGENT#{agt}` / `VER#{agv}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionRecord {
    pub id: AgentVersionId,
    pub agent_id: AgentId,
    pub establishment_id: EstablishmentId,
    /// 1, 2, … per agent.
    pub number: u32,
    pub name: Name,
    pub status: VersionStatus,
    pub brain: Brain,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When it was first published (set once; rollbacks keep it).
    pub published_at: Option<Timestamp>,
}

/// `AGENT#{agt}` / `DEPLOY#{seq}`: one activation of a version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub sequence: u32,
    pub agent_id: AgentId,
    pub version_id: AgentVersionId,
    pub previous_version_id: Option<AgentVersionId>,
    /// `publish` or `rollback`.
    pub action: String,
    pub actor_user_id: UserId,
    pub actor_email: Email,
    pub at: Timestamp,
}

/// `PHONE#{e164}` / `PHONE`, listed through `gsi1` `EST#{est}#PHONES`. Carries everything an
/// inbound call needs to be routed, so routing is one GetItem.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhoneRecord {
    pub id: PhoneNumberId,
    pub e164: E164,
    pub provider: NumberProvider,
    pub establishment_id: EstablishmentId,
    pub routing_agent_id: AgentId,
    /// The routing agent's active version, copied here by publish, rollback and re-routing.
    pub active_version_id: Option<AgentVersionId>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `PHONEID#{pn}` / `PHONEID`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhoneIdRecord {
    pub e164: E164,
    pub establishment_id: EstablishmentId,
}

/// `AUDIT#{est}` / `{aud}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: AuditId,
    pub establishment_id: EstablishmentId,
    /// The member who acted (absent when a runtime acted through the tool proxy).
    #[serde(default)]
    pub actor_user_id: Option<UserId>,
    #[serde(default)]
    pub actor_email: Option<Email>,
    /// The runtime that acted through the tool proxy (a caller's opt-out, a handoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_runtime_id: Option<RuntimeId>,
    /// What happened, e.g. `agent_version.published`, `member.role_changed`.
    pub action: String,
    /// The kind of thing acted on (`agent`, `member`, `phone_number`, …) and its id.
    pub target_type: String,
    pub target_id: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub at: Timestamp,
}

/// `HOST#{host}` / `HOST`, listed through `gsi1` `HOSTS`: a Docker host running runtimes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostRecord {
    pub host_id: String,
    /// The host agent's command queue.
    pub queue_url: String,
    /// Address runtimes on this host are reached at (`base_url` = `http://{public_host}:{port}`).
    pub public_host: String,
    /// Host ports handed to runtimes, inclusive.
    pub port_from: u16,
    pub port_to: u16,
    /// SHA-256 of the host agent's token.
    pub token_hash: String,
    pub runtime_count: u32,
    pub created_at: Timestamp,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

/// `HOST#{host}` / `PORT#{port}`: a host port in use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostPortRecord {
    pub runtime_id: RuntimeId,
}

/// `EST#{est}` / `RUNTIME`: the establishment's current runtime, with the copy of its state
/// that routing an inbound call needs (so the webhook reads it with the establishment, in one
/// BatchGetItem). Every write of the runtime's status or health writes this copy in the same
/// transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstablishmentRuntimeRecord {
    pub runtime_id: RuntimeId,
    /// `http://{public host}:{port}` (fixed for the runtime's life).
    pub base_url: String,
    /// Where Twilio reaches the runtime over TLS; calls stream to its `/media-stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<PublicUrl>,
    pub status: RuntimeStatus,
    pub health: Option<RuntimeHealth>,
}

/// `RUNTIME#{rt}` / `RUNTIME`, listed through `gsi1` `HOST#{host}#RUNTIMES` until removed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuntimeRecord {
    pub id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub host_id: String,
    pub container_name: String,
    pub image: ImageRef,
    /// The variables whose names do not look secret (`domain::is_secret`), in the clear.
    pub env: RuntimeEnv,
    /// The others, sealed (`secrets`, context `runtime_env` of this runtime).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sealed_env: BTreeMap<String, crate::secrets::Sealed>,
    pub host_port: u16,
    pub base_url: String,
    /// Where Twilio reaches the runtime over TLS (`public_url` or `APP_PUBLIC_DOMAIN` at
    /// provisioning); `None`: streams go to `base_url`'s host, which only suits a local stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<PublicUrl>,
    pub status: RuntimeStatus,
    pub desired: DesiredState,
    pub last_command_id: CommandId,
    pub last_action: RuntimeAction,
    pub last_error: Option<String>,
    /// SHA-256 of the runtime's ingest token.
    pub ingest_token_hash: String,
    pub health: Option<RuntimeHealth>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every lifecycle request; requests are conditional on it.
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// Where a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CommandStatus {
    Pending,
    Succeeded,
    Failed,
    Superseded,
}

impl From<CommandOutcome> for CommandStatus {
    fn from(o: CommandOutcome) -> Self {
        match o {
            CommandOutcome::Succeeded => CommandStatus::Succeeded,
            CommandOutcome::Failed => CommandStatus::Failed,
            CommandOutcome::Superseded => CommandStatus::Superseded,
        }
    }
}

/// `RUNTIME#{rt}` / `CMD#{cmd}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandRecord {
    pub id: CommandId,
    pub runtime_id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub action: RuntimeAction,
    pub status: CommandStatus,
    /// The last attempt's error (kept while retrying, final once failed).
    pub error: Option<String>,
    pub attempts: u32,
    pub requested_by: UserId,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// `CALL#{call}` / `CALL`; in `gsi1` `EST#{est}#CALLS` always, and until it ends in `gsi2`
/// `EST#{est}#ACTIVE` and `gsi3` `LIVE#{shard}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: CallId,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    /// The version that handled the call (`None`: the agent was not published).
    pub agent_version_id: Option<AgentVersionId>,
    /// The runtime the media stream went to.
    pub runtime_id: Option<RuntimeId>,
    pub provider: NumberProvider,
    /// Twilio's `CallSid`; an outbound call has none until Twilio accepted it.
    pub provider_call_sid: Option<String>,
    pub direction: Direction,
    /// The caller as the provider gave it (may be `anonymous` or a client id inbound).
    pub from_e164: String,
    pub to_e164: String,
    pub status: CallStatus,
    /// `status.rank()`, stored so callbacks apply with a condition `status_rank < :rank`.
    pub status_rank: u8,
    pub disposition: Disposition,
    pub created_at: Timestamp,
    /// When it was answered.
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub duration_seconds: Option<u32>,
    /// Why it ended (the provider's final status, SIP code when not 200, or our reason).
    pub end_reason: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    pub machine_detection_ms: Option<u32>,
    pub recording: Option<RecordingRef>,
    pub handoff: Option<HandoffRecord>,
    pub lead_id: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Who placed it (outbound).
    pub requested_by: Option<UserId>,
    /// The campaign that dialed it, and the attempt of the lead it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    /// Who hung up, as the runtime reported it (`call_ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_by: Option<Party>,
    /// The final status, set once by whoever ended the call first (a provider callback or the
    /// runtime's `call_ended`); later reports keep it (`if_not_exists`, hence never stored
    /// as a null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_status: Option<CallStatus>,
    /// The recording the runtime reported (`recording_available`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_file: Option<RecordingFile>,
    /// Set when the provider took the create request but its answer was lost (a timeout, a
    /// 5xx): the call may exist there. Cleared when its id is learnt (a status callback, the
    /// provider's call list); see `service::calls` on reconciling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_since: Option<Timestamp>,
    /// Set when the sweeper ended the call because its end never came; a late end report then
    /// lands on the timeline only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at: Option<Timestamp>,
    /// The post-call analysis (`service::analysis`): absent until the call ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::domain::analysis::Analysis>,
    /// The last successful analysis's summary (kept while a re-run is pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The last successful analysis's sentiment (kept while a re-run is pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<crate::domain::analysis::Sentiment>,
    /// Tool results the runtime reported during the call (`tool_result` events).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tool_calls: u32,
    /// Those of them that carried an error.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tool_errors: u32,
    /// Runtime errors reported during the call (`runtime_error` events).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runtime_errors: u32,
    /// What the call adds to the report aggregates now (`service::reports`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportMark>,
    /// Bumped by every change of `report`; each change is conditioned on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_seq: Option<u64>,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    /// `keys::CALL_ARRIVAL_SORT`: puts the call at the end of its transcript's arrival order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsi2sk: Option<String>,
}

/// Where a call is counted in the report aggregates: the aggregates it was added to and what
/// it added, so the next recount can take exactly that away.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportMark {
    /// The local day (`YYYY-MM-DD`, the establishment's zone when counted) of its start.
    pub day: String,
    /// The UTC hour (`YYYY-MM-DDTHH`) of its start.
    pub hour: String,
    pub agent_id: AgentId,
    pub agent_version_id: Option<AgentVersionId>,
    pub counters: crate::domain::report::Counters,
    /// Its entry in the needs-attention list, when it is on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionRecord>,
}

/// Where a calls export is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Asked for; the post-call worker has not written it yet.
    Pending,
    /// Written; downloadable.
    Ready,
    /// Not made (`error` says why).
    Failed,
}

/// A CSV export of an establishment's calls (`RPT#{est}` / `EXPORT#{id}`), made by the
/// post-call worker; removed by TTL a day after it was asked for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportRecord {
    pub export_id: String,
    pub establishment_id: EstablishmentId,
    pub requested_by: UserId,
    /// The first instant exported, and the first one after.
    pub start: Timestamp,
    pub end: Timestamp,
    /// The local days (and the zone) the period was asked as.
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub status: ExportStatus,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    /// The CSV's object key, once ready.
    pub object_key: Option<String>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// TTL (Unix seconds).
    pub expires_at: i64,
}

/// A call an operator should look at (`ATTN#{est}` / `{ended_at}#{call}`), with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttentionRecord {
    pub call_id: CallId,
    pub agent_id: AgentId,
    pub agent_version_id: Option<AgentVersionId>,
    pub direction: Direction,
    pub from_e164: String,
    pub to_e164: String,
    pub status: CallStatus,
    pub created_at: Timestamp,
    pub ended_at: Timestamp,
    pub duration_seconds: Option<u32>,
    /// `negative_sentiment`, `analysis_failed`, `handoff`, `runtime_error`, `swept`.
    pub reasons: Vec<String>,
    pub summary: Option<String>,
}

/// What every new call has; the rest starts empty ([`CallRecord::new`]).
#[derive(Clone, Debug)]
pub struct NewCall {
    pub id: CallId,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    pub provider: NumberProvider,
    pub direction: Direction,
    pub from_e164: String,
    pub to_e164: String,
    pub status: CallStatus,
    pub disposition: Disposition,
    pub at: Timestamp,
}

impl CallRecord {
    /// A call as it begins: nothing answered, ended, recorded or indexed yet.
    pub fn new(c: NewCall) -> Self {
        Self {
            id: c.id,
            establishment_id: c.establishment_id,
            agent_id: c.agent_id,
            agent_version_id: None,
            runtime_id: None,
            provider: c.provider,
            provider_call_sid: None,
            direction: c.direction,
            from_e164: c.from_e164,
            to_e164: c.to_e164,
            status: c.status,
            status_rank: c.status.rank(),
            disposition: c.disposition,
            created_at: c.at,
            started_at: None,
            ended_at: None,
            duration_seconds: None,
            end_reason: None,
            answered_by: None,
            machine_detection_ms: None,
            recording: None,
            handoff: None,
            lead_id: None,
            metadata: None,
            requested_by: None,
            campaign_id: None,
            hangup_by: None,
            final_status: c.status.is_final().then_some(c.status),
            recording_file: None,
            unconfirmed_since: None,
            swept_at: None,
            analysis: None,
            summary: None,
            sentiment: None,
            tool_calls: 0,
            tool_errors: 0,
            runtime_errors: 0,
            report: None,
            report_seq: None,
            updated_at: c.at,
            gsi1pk: None,
            gsi1sk: None,
            gsi2pk: None,
            gsi2sk: None,
            gsi3pk: None,
            gsi3sk: None,
            lsi2sk: None,
        }
    }
}

/// A recording a runtime reported. One in our bucket (`s3://{bucket}/recordings/{est}/…`) is
/// served through presigned URLs; any other URL is a reference until the post-call worker
/// copies the object in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordingFile {
    /// The URL as reported.
    pub url: String,
    /// The object key when the recording is in our bucket.
    pub bucket_key: Option<String>,
    pub storage_provider: String,
    pub content_type: String,
    pub duration_seconds: Option<u32>,
    pub reported_at: Timestamp,
    /// Bringing it into the bucket (`service::recordings`): `retrying` or `failed`, with the
    /// last error; absent until a copy was tried, and once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_error: Option<String>,
    /// Its size in the bucket, once copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Copies tried and failed for a reason that may pass (`service::recordings`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copy_attempts: u32,
}

/// `CALL#{call}` / `EVT#{idempotency key}`: one runtime event on the call's timeline (also the
/// event's idempotency guard).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventRecord {
    pub call_id: CallId,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: Timestamp,
    /// `occurred_at` to the millisecond (tool durations are often under a second).
    pub occurred_ms: i64,
    pub received_at: Timestamp,
    pub idempotency_key: String,
    pub runtime_id: RuntimeId,
    pub payload: serde_json::Value,
    /// Why the event did not apply in full (a segment id already used, with the first kept).
    pub note: Option<String>,
    /// Tool events: the tool, the runtime's pairing id and the error, for the tool log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_error: Option<String>,
    /// `keys::timeline_sort`.
    pub lsi1sk: String,
    /// `keys::tool_sort` for tool events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsi2sk: Option<String>,
}

/// `CALL#{call}` / `SEG#{segment}`: a transcript segment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub segment_id: String,
    pub speaker: Party,
    pub text: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub confidence: Option<f64>,
    /// The event that carried it.
    pub event_id: String,
    /// `keys::transcript_sort` (time order).
    pub lsi1sk: String,
    /// `keys::arrival_sort` (arrival order, for polls).
    pub lsi2sk: String,
}

/// `RUNTIME#{rt}` / `ERR#{component}`: the latest error a runtime reported for a component.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuntimeErrorRecord {
    pub component: Component,
    pub message: String,
    pub fatal: bool,
    pub occurred_at: Timestamp,
    pub call_id: CallId,
}

/// A call's recording as the provider reported it (the object is copied to S3 later).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordingRef {
    pub provider_recording_sid: String,
    /// The provider's URL (fetching it needs the account's credentials).
    pub url: String,
    pub status: String,
    pub duration_seconds: Option<u32>,
    pub channels: Option<u32>,
}

/// A transfer of a call to the establishment's handoff number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffRecord {
    pub e164: E164,
    pub reason: String,
    /// `None` when policy transferred it (closed, no runtime).
    pub requested_by: Option<UserId>,
    pub at: Timestamp,
}

/// `CALLSID#{provider}#{sid}` / `CALLSID`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallSidRecord {
    pub call_id: CallId,
    pub establishment_id: EstablishmentId,
    /// The TwiML the inbound webhook answered (a retry gets it again).
    pub twiml: Option<String>,
}

/// `EST#{est}` / `DNC#{e164}`: never call this number, never take its calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DoNotCallRecord {
    pub e164: E164,
    pub reason: Option<String>,
    /// The member who added it (absent when the caller opted out during a call).
    #[serde(default)]
    pub added_by: Option<UserId>,
    pub added_at: Timestamp,
    /// The call during which the caller opted out (the tool proxy's `dnc/add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
}

/// `IDEMP#{est}#{key}` / `OUTBOUND`: what an outbound request with this key did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboundRequestRecord {
    pub call_id: CallId,
    /// SHA-256 of the request body as parsed, so a reused key with another body is refused.
    pub request_hash: String,
    /// The error the first request ended with, replayed as is.
    pub error: Option<StoredError>,
    /// Epoch seconds; DynamoDB's TTL removes the record after a day.
    pub expires_at: i64,
}

/// An API error as first answered, for idempotent replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Serde helper: leaves a zero count out of the item.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `LEAD#{lead}` / `LEAD`: one number an establishment may call, and what it knows of the
/// person. The store adds the index attributes (`gsi1` newest first, `gsi2` by status, `gsi3`
/// by number, `gsi4` by name) when it writes one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeadRecord {
    pub id: LeadId,
    pub establishment_id: EstablishmentId,
    pub phone_e164: E164,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// As given, or first and last name joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The zone given for this lead (a CSV `timezone` column, a PATCH); when set it is the
    /// only entry of `timezones`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZone>,
    /// Every zone the lead may be in: `timezone`, else the number's candidates.
    pub timezones: Vec<TimeZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Every other column of the import, by header name: the agent's context for the lead.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub status: LeadStatus,
    /// The campaigns that enrolled the lead (written by the dialer).
    #[serde(default)]
    pub campaign_ids: Vec<String>,
    /// The campaign that has the lead now (from enrollment until the lead is done with it);
    /// no other campaign enrolls it meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_campaign_id: Option<CampaignId>,
    /// The import that last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_job_id: Option<ImportJobId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every write; writes are conditional on the version they read.
    pub version: u64,
}

/// Why an import failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportFailure {
    /// `empty_file`, `not_csv`, `no_phone_column`, `too_many_columns`, `unreadable`,
    /// `file_missing`, `too_large`, `queue_unavailable`.
    pub code: String,
    pub message: String,
}

/// `IMPORT#{imp}` / `JOB`: an import of a leads file and how far it got. The row errors are
/// `IMPORT#{imp}` / `ERR#{row}` items ([`crate::leads::rows::RowError`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportJobRecord {
    pub id: ImportJobId,
    pub establishment_id: EstablishmentId,
    pub status: ImportStatus,
    /// The file in the bucket, its ETag when the job was created (every read asks for that
    /// version, so a file replaced mid-import fails the job instead of mixing two files) and
    /// its size.
    pub s3_key: String,
    pub etag: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The region national numbers are read in (ISO 3166 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub created_by: UserId,
    /// Data rows in the file, once the worker has counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<u64>,
    pub processed_rows: u64,
    /// The file row (line) of the last row whose outcome is stored with the counters in one
    /// transaction; a worker resumes after it.
    pub resume_after_row: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ImportFailure>,
    /// How many times a worker started on it.
    pub attempts: u32,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// When the job and its errors expire (TTL, epoch seconds).
    pub expires_at: i64,
}

/// `CAMPAIGN#{cmp}` / `CAMPAIGN`: a campaign as defined (A.6), where it is, its figures, and
/// the dialer's own state (pacing, the breaker's window, the tick chain and its lease). The
/// store adds `gsi1` (the establishment's campaigns) and `gsi2` (campaigns the dialer still has
/// work for).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub id: CampaignId,
    pub establishment_id: EstablishmentId,
    pub name: String,
    pub agent_id: AgentId,
    pub agent_version_id: AgentVersionId,
    pub lead_filter: crate::domain::LeadFilter,
    pub pace: crate::domain::Pace,
    pub schedule: crate::domain::dialing::CampaignSchedule,
    pub max_concurrent_calls: u32,
    pub retry: crate::domain::dialing::RetryPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_e164: Option<E164>,
    pub answering_machine_detection: bool,
    pub circuit_breaker: crate::domain::CircuitBreaker,
    pub status: crate::domain::CampaignStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<crate::domain::PausedReason>,
    pub progress: crate::domain::Progress,
    /// Enrollment is done (start enrolls the matching leads in pages, resumably).
    pub enrolled_all: bool,
    /// The index sort key of the last lead enrollment has read, to resume after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_through: Option<String>,
    /// The dialer's clock at the last dial, in epoch microseconds (the pacer's state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_dial_us: Option<i64>,
    /// When the dialer next expects to dial (`null` while it waits for a slot or is idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_dial_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The leads with a call in flight (each holds a slot), in the order they were dialed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dialing_leads: Vec<LeadId>,
    /// Attempts that ended in the breaker's window (120 s), oldest first.
    #[serde(default)]
    pub recent_attempts: Vec<EndedAttempt>,
    /// The failures that tripped the circuit breaker, when it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaker_failures: Vec<EndedAttempt>,
    /// The tick chain: only a tick carrying this number runs (see `service::dialer`).
    pub tick_seq: u64,
    /// When the chain's next tick is due (epoch ms); a chain overdue by a minute is broken
    /// and the sweeper restarts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_due_ms: Option<i64>,
    /// Who holds the dialer lease, and until when (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Bumped by every change of its definition or status.
    pub version: u64,
}

/// An attempt that ended, as the circuit breaker remembers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndedAttempt {
    pub lead_id: LeadId,
    pub call_id: Option<CallId>,
    pub outcome: crate::domain::dialing::Outcome,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One dial of an enrolled lead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    /// 1 for the first dial.
    pub number: u32,
    /// `null` only while the dial is being placed.
    pub call_id: Option<CallId>,
    pub dialed_at: Timestamp,
    /// `null` while the call is in flight.
    pub outcome: Option<crate::domain::dialing::Outcome>,
    pub ended_at: Option<Timestamp>,
    /// Why the dial did not reach the provider, or why its slot was recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error code when the outbound path refused the dial for good (`do_not_call`,
    /// `blacklisted`, `invalid_number`, …); such an attempt is settled without a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// `CAMPAIGN#{cmp}` / `ENR#{lead}`: a lead in a campaign and every dial of it. The store adds
/// `gsi2` while it waits to be dialed (by due time) or has a call in flight.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollmentRecord {
    pub campaign_id: CampaignId,
    pub lead_id: LeadId,
    pub phone_e164: E164,
    /// The zones the lead may be in (its calling hours are checked in each).
    pub timezones: Vec<TimeZone>,
    pub status: crate::domain::EnrollmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<crate::domain::SkipReason>,
    /// How many dials were made (conditions compare it; equals `attempts.len()`).
    pub attempt_count: u32,
    pub attempts: Vec<AttemptRecord>,
    /// When it is next due (queued, or waiting for a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Until when its call in flight holds the slot; past it the dialer recovers the slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    pub enrolled_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `EST#{est}` / `INTEGRATION#{type}`: an establishment's connection to an outside service.
/// Credentials are sealed (`secrets`, context `integration` of this id); `settings` holds
/// only what may be shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegrationRecord {
    pub id: crate::ids::IntegrationId,
    pub establishment_id: EstablishmentId,
    #[serde(rename = "type")]
    pub kind: crate::domain::integration::IntegrationType,
    pub display_name: String,
    /// `oauth`, `ses`, `smtp` or `token`.
    pub mode: String,
    pub status: crate::domain::integration::IntegrationStatus,
    pub enabled: bool,
    pub last_error: Option<String>,
    /// What may be shown: SMTP host/port/security/username/from, SES from-name/reply-to,
    /// the WhatsApp phone number id, the OAuth scopes granted.
    pub settings: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<crate::secrets::Sealed>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub connected_at: Option<Timestamp>,
    /// Bumped by every change; each change is conditioned on it.
    pub seq: u64,
}

/// `INT#{int}` / `INT`: where an integration is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegrationIdRecord {
    pub id: crate::ids::IntegrationId,
    pub establishment_id: EstablishmentId,
    #[serde(rename = "type")]
    pub kind: crate::domain::integration::IntegrationType,
}

/// `OAUTH#{hash}` / `STATE`: a consent in flight; deleted by the callback that uses it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OAuthStateRecord {
    pub establishment_id: EstablishmentId,
    pub integration_id: crate::ids::IntegrationId,
    pub redirect_url: String,
    /// The PKCE verifier (useless without the code, which only Google hands out).
    pub code_verifier: String,
    /// Epoch seconds (also the table's TTL).
    pub expires_at: i64,
}

/// Where a tool-proxy call with an idempotency key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKeyState {
    /// Claimed; the provider call is in flight (or its instance died).
    Pending,
    /// Answered: the same key gets the same answer.
    Done,
    /// Failed before anything reached the provider: the same key may try again.
    Retry,
}

/// `CALL#{call}` / `TOOLKEY#{tool}#{key}`: a tool-proxy call's idempotency record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToolKeyRecord {
    pub state: ToolKeyState,
    pub attempt: u32,
    pub claimed_at: Timestamp,
    /// The HTTP status and body answered (when `done`).
    pub http_status: Option<u16>,
    pub answer: Option<serde_json::Value>,
}
