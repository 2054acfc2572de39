//! Every DynamoDB key string is built here and nowhere else. The table is one table with
//! `pk`/`sk`; see docs/data-model.md for the access pattern behind each key.

use crate::domain::{E164, Email};
use crate::ids::{
    AgentId, AgentVersionId, CallId, CampaignId, CommandId, EstablishmentId, ImportJobId,
    IntegrationId, LeadId, PhoneNumberId, RuntimeId, UserId,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Partition-key attribute name.
pub const PK: &str = "pk";
/// Sort-key attribute name.
pub const SK: &str = "sk";
/// TTL attribute name (epoch seconds).
pub const TTL: &str = "expires_at";
/// Partition-key attribute of the `gsi1` index.
pub const GSI1PK: &str = "gsi1pk";
/// Sort-key attribute of the `gsi1` index.
pub const GSI1SK: &str = "gsi1sk";
/// The `gsi1` index.
pub const GSI1: &str = "gsi1";
/// Partition-key attribute of the sparse `gsi2` index.
pub const GSI2PK: &str = "gsi2pk";
/// Sort-key attribute of the sparse `gsi2` index.
pub const GSI2SK: &str = "gsi2sk";
/// The sparse `gsi3` index: every live call of every establishment, sharded.
pub const GSI3: &str = "gsi3";
/// Partition-key attribute of the sparse `gsi3` index.
pub const GSI3PK: &str = "gsi3pk";
/// Sort-key attribute of the sparse `gsi3` index.
pub const GSI3SK: &str = "gsi3sk";

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Self { pk, sk: sk.into() }
    }

    /// The key as DynamoDB attributes.
    pub fn attrs(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// What readiness checks read: `HEALTH` / `HEALTH`, which nothing writes.
pub fn health_probe() -> Key {
    Key::new("HEALTH".into(), "HEALTH")
}

/// Establishment by id: `EST#{est}` / `EST`.
pub fn establishment(est: &EstablishmentId) -> Key {
    Key::new(format!("EST#{est}"), "EST")
}

/// Partition holding an establishment, its members and its pending invitations.
pub fn establishment_partition(est: &EstablishmentId) -> String {
    format!("EST#{est}")
}

/// Member of an establishment: `EST#{est}` / `MEMBER#{usr}`.
pub fn member(est: &EstablishmentId, usr: &UserId) -> Key {
    Key::new(format!("EST#{est}"), format!("MEMBER#{usr}"))
}

/// Mirror of a membership under its user: `USER#{usr}` / `MEMBER#{est}`.
pub fn membership(usr: &UserId, est: &EstablishmentId) -> Key {
    Key::new(format!("USER#{usr}"), format!("MEMBER#{est}"))
}

/// Partition of a user: profile and membership mirrors.
pub fn user_partition(usr: &UserId) -> String {
    format!("USER#{usr}")
}

/// Sort-key prefix of membership items (in both partitions).
pub const MEMBER_PREFIX: &str = "MEMBER#";
/// Sort-key prefix of pending-invitation items.
pub const INVITE_PREFIX: &str = "INVITE#";

/// Sort key of a user's profile. In the `USER#{usr}` partition the membership mirrors
/// (`MEMBER#…`) sort before it, so one Query from `MEMBER#` to `PROFILE` reads the whole account.
pub const PROFILE: &str = "PROFILE";

/// User profile: `USER#{usr}` / `PROFILE`.
pub fn user(usr: &UserId) -> Key {
    Key::new(format!("USER#{usr}"), PROFILE)
}

/// Login by email, unique: `EMAIL#{lowercased}` / `EMAIL` → user id and password hash.
pub fn email(email: &Email) -> Key {
    Key::new(format!("EMAIL#{email}"), "EMAIL")
}

/// Pending invitation of an email to an establishment, unique per pair:
/// `EST#{est}` / `INVITE#{email}`.
pub fn invite(est: &EstablishmentId, email: &Email) -> Key {
    Key::new(format!("EST#{est}"), format!("{INVITE_PREFIX}{email}"))
}

/// Invitation token (by SHA-256 of the token): `INVTOKEN#{hash}` / `INVTOKEN`.
pub fn invite_token(hash: &str) -> Key {
    Key::new(format!("INVTOKEN#{hash}"), "INVTOKEN")
}

/// Password-reset token (by SHA-256 of the token): `RESET#{hash}` / `RESET`.
pub fn reset_token(hash: &str) -> Key {
    Key::new(format!("RESET#{hash}"), "RESET")
}

/// A revoked access token: `JTI#{jti}` / `REVOKED`, kept until the token would expire.
pub fn revoked_token(jti: &str) -> Key {
    Key::new(format!("JTI#{jti}"), "REVOKED")
}

/// Agent by id: `AGENT#{agt}` / `AGENT`.
pub fn agent(agt: &AgentId) -> Key {
    Key::new(agent_partition(agt), "AGENT")
}

/// Partition of an agent: the agent, its versions and its deployment history.
pub fn agent_partition(agt: &AgentId) -> String {
    format!("AGENT#{agt}")
}

/// `gsi1` partition listing an establishment's agents (sort key: the agent id, so creation order).
pub fn agents_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#AGENTS")
}

/// Sort-key prefix of version items.
pub const VERSION_PREFIX: &str = "VER#";

/// A version of an agent: `AGENT#{agt}` / `VER#{agv}` (version ids sort by creation time).
pub fn agent_version(agt: &AgentId, agv: &AgentVersionId) -> Key {
    Key::new(agent_partition(agt), format!("{VERSION_PREFIX}{agv}"))
}

/// Sort-key prefix of deployment items.
pub const DEPLOYMENT_PREFIX: &str = "DEPLOY#";

/// The `seq`-th activation of a version of an agent: `AGENT#{agt}` / `DEPLOY#{seq:08}`.
pub fn deployment(agt: &AgentId, seq: u32) -> Key {
    Key::new(agent_partition(agt), format!("{DEPLOYMENT_PREFIX}{seq:08}"))
}

/// A routed phone number, unique across tenants; what an inbound call resolves in one read:
/// `PHONE#{e164}` / `PHONE`.
pub fn phone(e164: &E164) -> Key {
    Key::new(format!("PHONE#{e164}"), "PHONE")
}

/// A phone number by its id (the API's handle) → its E.164: `PHONEID#{pn}` / `PHONEID`.
pub fn phone_id(pn: &PhoneNumberId) -> Key {
    Key::new(format!("PHONEID#{pn}"), "PHONEID")
}

/// `gsi1` partition listing an establishment's numbers (sort key: the E.164).
pub fn phones_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#PHONES")
}

/// Partition of an establishment's audit log; sort keys are audit ids (time-ordered ULIDs).
pub fn audit_partition(est: &EstablishmentId) -> String {
    format!("AUDIT#{est}")
}

/// An audit entry: `AUDIT#{est}` / `{aud}`.
pub fn audit(est: &EstablishmentId, id: &crate::ids::AuditId) -> Key {
    Key::new(audit_partition(est), id.as_str())
}

/// Which runtime an establishment has, unique per establishment: `EST#{est}` / `RUNTIME`.
/// (Sorts after the people range `INVITE#`..`MEMBER#~` of that partition.)
pub fn establishment_runtime(est: &EstablishmentId) -> Key {
    Key::new(establishment_partition(est), "RUNTIME")
}

/// A runtime by id: `RUNTIME#{rt}` / `RUNTIME`.
pub fn runtime(rt: &RuntimeId) -> Key {
    Key::new(format!("RUNTIME#{rt}"), "RUNTIME")
}

/// A lifecycle command of a runtime: `RUNTIME#{rt}` / `CMD#{cmd}`.
pub fn command(rt: &RuntimeId, cmd: &CommandId) -> Key {
    Key::new(format!("RUNTIME#{rt}"), format!("CMD#{cmd}"))
}

/// A Docker host: `HOST#{host}` / `HOST`.
pub fn host(host: &str) -> Key {
    Key::new(host_partition(host), "HOST")
}

/// Partition of a host: the host and its allocated ports.
pub fn host_partition(host: &str) -> String {
    format!("HOST#{host}")
}

/// Sort-key prefix of allocated host ports.
pub const PORT_PREFIX: &str = "PORT#";

/// A host port in use, unique per host: `HOST#{host}` / `PORT#{port:05}`.
pub fn host_port(host: &str, port: u16) -> Key {
    Key::new(host_partition(host), format!("{PORT_PREFIX}{port:05}"))
}

/// `gsi1` partition listing every host (for placement).
pub const HOSTS_INDEX: &str = "HOSTS";

/// `gsi1` partition listing the runtimes a host runs (sort key: runtime id).
pub fn host_runtimes_index(host: &str) -> String {
    format!("HOST#{host}#RUNTIMES")
}

/// A call: `CALL#{call}` / `CALL`.
pub fn call(id: &CallId) -> Key {
    Key::new(format!("CALL#{id}"), "CALL")
}

/// A provider's call id, unique per provider: `CALLSID#{provider}#{sid}` / `CALLSID` → the call
/// (and, for inbound calls, the TwiML we answered, so a Twilio retry gets the same answer).
pub fn call_sid(provider: crate::domain::NumberProvider, sid: &str) -> Key {
    let provider = provider.as_str();
    Key::new(format!("CALLSID#{provider}#{sid}"), "CALLSID")
}

/// `gsi1` partition of an establishment's call history (sort key [`call_sort`]).
pub fn calls_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#CALLS")
}

/// Sparse `gsi2` partition of an establishment's calls that have not ended (sort key
/// [`call_sort`]); a call leaves it when it reaches a final status.
pub fn active_calls_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#ACTIVE")
}

/// What takes an ended call out of the live indexes (`gsi2`, `gsi3`), appended to an update
/// expression.
pub const REMOVE_LIVE: &str = " REMOVE gsi2pk, gsi2sk, gsi3pk, gsi3sk";

/// Partitions of the live-calls index (`gsi3`): a call's is fixed by its id, so a busy
/// platform's live calls spread over this many index partitions instead of one hot one.
pub const LIVE_SHARDS: u8 = 8;

/// The sparse `gsi4` index (keys only): an establishment's leads by name.
pub const GSI4: &str = "gsi4";
/// Partition-key attribute of the sparse `gsi4` index.
pub const GSI4PK: &str = "gsi4pk";
/// Sort-key attribute of the sparse `gsi4` index.
pub const GSI4SK: &str = "gsi4sk";

/// Sparse `gsi3` partition of the live calls of every establishment in shard `shard`
/// (sort key [`call_sort`]): what the sweeper reads to end calls whose end never came.
pub fn live_calls_index(shard: u8) -> String {
    format!("LIVE#{shard}")
}

/// The live-calls shard of call `id`: its last character (random in a ULID) modulo
/// [`LIVE_SHARDS`].
pub fn live_shard(id: &CallId) -> u8 {
    id.as_str().bytes().last().unwrap_or(0) % LIVE_SHARDS
}

/// Index sort key of a call: its creation time, then its id.
pub fn call_sort(created_at: &crate::time::Timestamp, id: &CallId) -> String {
    format!("{created_at}#{id}")
}

/// Sort-key prefix of do-not-call entries.
pub const DNC_PREFIX: &str = "DNC#";

/// A number on an establishment's do-not-call list: `EST#{est}` / `DNC#{e164}`.
pub fn do_not_call(est: &EstablishmentId, e164: &E164) -> Key {
    Key::new(establishment_partition(est), format!("{DNC_PREFIX}{e164}"))
}

/// An outbound-call request by its `Idempotency-Key`, per establishment:
/// `IDEMP#{est}#{key}` / `OUTBOUND` (expires after a day).
pub fn outbound_request(est: &EstablishmentId, idempotency_key: &str) -> Key {
    Key::new(format!("IDEMP#{est}#{idempotency_key}"), "OUTBOUND")
}

/// Sort-key attribute of the `lsi1` local index ("in time order" within a partition).
pub const LSI1SK: &str = "lsi1sk";
/// The `lsi1` local index.
pub const LSI1: &str = "lsi1";
/// Sort-key attribute of the `lsi2` local index ("in arrival order" within a partition).
pub const LSI2SK: &str = "lsi2sk";
/// The `lsi2` local index.
pub const LSI2: &str = "lsi2";

/// Partition of a call: the call, its timeline, its transcript.
pub fn call_partition(id: &CallId) -> String {
    format!("CALL#{id}")
}

/// The call whose partition is `pk` (`CALL#{call}`), if it is one.
pub fn call_of_partition(pk: &str) -> Option<CallId> {
    CallId::parse(pk.strip_prefix("CALL#")?).ok()
}

/// Sort-key prefix of a call's timeline events (table and `lsi1`).
pub const EVENT_PREFIX: &str = "EVT#";
/// Sort-key prefix of a call's transcript segments (table, `lsi1` and `lsi2`).
pub const SEGMENT_PREFIX: &str = "SEG#";
/// `lsi2` sort-key prefix of a call's tool events.
pub const TOOL_PREFIX: &str = "TOOL#";

/// A runtime event of a call, by its idempotency key: `CALL#{call}` / `EVT#{key}`. Created
/// only if absent, so this item *is* the idempotency guard (scoped to the call, so one
/// tenant's runtime can never shadow another's keys).
pub fn call_event(id: &CallId, idempotency_key: &str) -> Key {
    Key::new(
        call_partition(id),
        format!("{EVENT_PREFIX}{idempotency_key}"),
    )
}

/// `lsi1` sort key of an event: the timeline, by when it happened, then by its id.
pub fn timeline_sort(occurred_at: &crate::time::Timestamp, event_id: &str) -> String {
    format!("{EVENT_PREFIX}{occurred_at}#{event_id}")
}

/// `lsi2` sort key of a tool event (tool log, by when it happened).
pub fn tool_sort(occurred_at: &crate::time::Timestamp, event_id: &str) -> String {
    format!("{TOOL_PREFIX}{occurred_at}#{event_id}")
}

/// A transcript segment, unique per call by the runtime's segment id (the first one wins):
/// `CALL#{call}` / `SEG#{segment}`.
pub fn transcript_segment(id: &CallId, segment_id: &str) -> Key {
    Key::new(call_partition(id), format!("{SEGMENT_PREFIX}{segment_id}"))
}

/// `lsi1` sort key of a segment: the transcript order, `started_at` then segment id.
pub fn transcript_sort(started_at: &crate::time::Timestamp, segment_id: &str) -> String {
    format!("{SEGMENT_PREFIX}{started_at}#{segment_id}")
}

/// `lsi2` sort key of a segment: when it was stored (a ULID), which transcript polls follow.
pub fn arrival_sort(stamp: &ulid::Ulid) -> String {
    format!("{SEGMENT_PREFIX}{stamp}")
}

/// `lsi2` sort key of the call item itself. It sorts after every [`arrival_sort`] key (`~`
/// is above the ULID alphabet), so a transcript poll's one Query ends with the call and
/// learns whether it is over without a second read.
pub const CALL_ARRIVAL_SORT: &str = "SEG#~CALL";

/// The latest error a runtime reported for one component: `RUNTIME#{rt}` / `ERR#{component}`
/// (one item per component, overwritten, so a noisy runtime cannot grow anything).
pub fn runtime_error(rt: &RuntimeId, component: &str) -> Key {
    Key::new(
        format!("RUNTIME#{rt}"),
        format!("{RUNTIME_ERROR_PREFIX}{component}"),
    )
}

/// Sort-key prefix of a runtime's error items.
pub const RUNTIME_ERROR_PREFIX: &str = "ERR#";

/// Partition of a runtime: the runtime, its commands, its latest errors.
pub fn runtime_partition(rt: &RuntimeId) -> String {
    format!("RUNTIME#{rt}")
}

/// A lead: `LEAD#{lead}` / `LEAD` (the id is derived from establishment and number, see
/// [`LeadId::of`], so this key is also what keeps a number to one lead).
pub fn lead(id: &LeadId) -> Key {
    Key::new(format!("LEAD#{id}"), "LEAD")
}

/// `gsi1` partition of an establishment's leads, newest first (sort key [`lead_sort`]).
pub fn leads_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#LEADS")
}

/// `gsi2` partition of an establishment's leads in one status (sort key [`lead_sort`]): the
/// dialer's queue, `(establishment, status, created_at DESC)`.
pub fn leads_by_status_index(est: &EstablishmentId, status: crate::domain::LeadStatus) -> String {
    format!("EST#{est}#LEADS#{}", status.as_str())
}

/// Index sort key of a lead: its creation time, then its id.
pub fn lead_sort(created_at: &crate::time::Timestamp, id: &LeadId) -> String {
    format!("{created_at}#{id}")
}

/// `gsi3` partition (keys only) of an establishment's leads by number; the sort key is the
/// E.164, so a phone-prefix search is one range read.
pub fn lead_phones_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#LEADPHONES")
}

/// `gsi4` partition (keys only) of an establishment's named leads by name; the sort key is
/// [`lead_name_sort`], so a name-prefix search is one range read.
pub fn lead_names_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#LEADNAMES")
}

/// `gsi4` sort key of a named lead: the name as searched (see [`search_name`]), then its id.
pub fn lead_name_sort(name: &str, id: &LeadId) -> String {
    format!("{}#{id}", search_name(name))
}

/// A name as name searches compare it: lowercased, whitespace collapsed, at most 200
/// characters, no `#` (the separator of [`lead_name_sort`]).
pub fn search_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace('#', "")
        .chars()
        .take(200)
        .collect()
}

/// Partition of an import job: the job and its per-row errors.
pub fn import_partition(id: &ImportJobId) -> String {
    format!("IMPORT#{id}")
}

/// An import job: `IMPORT#{imp}` / `JOB`.
pub fn import_job(id: &ImportJobId) -> Key {
    Key::new(import_partition(id), "JOB")
}

/// Sort-key prefix of an import's row errors.
pub const IMPORT_ERROR_PREFIX: &str = "ERR#";

/// A row an import rejected: `IMPORT#{imp}` / `ERR#{row:010}` (in file order).
pub fn import_error(id: &ImportJobId, row: u64) -> Key {
    Key::new(
        import_partition(id),
        format!("{IMPORT_ERROR_PREFIX}{row:010}"),
    )
}

/// Partition of a campaign: the campaign and its enrollments.
pub fn campaign_partition(id: &CampaignId) -> String {
    format!("CAMPAIGN#{id}")
}

/// A campaign: `CAMPAIGN#{cmp}` / `CAMPAIGN`.
pub fn campaign(id: &CampaignId) -> Key {
    Key::new(campaign_partition(id), "CAMPAIGN")
}

/// `gsi1` partition of an establishment's campaigns, newest first (sort key
/// [`campaign_sort`]).
pub fn campaigns_index(est: &EstablishmentId) -> String {
    format!("EST#{est}#CAMPAIGNS")
}

/// Index sort key of a campaign: its creation time, then its id.
pub fn campaign_sort(created_at: &crate::time::Timestamp, id: &CampaignId) -> String {
    format!("{created_at}#{id}")
}

/// `gsi2` partition of the campaigns the dialer still has work for (running, paused, or over
/// with calls in flight); the sort key is the campaign id. The sweeper ticks each of them.
pub const ACTIVE_CAMPAIGNS_INDEX: &str = "CAMPAIGNS#ACTIVE";

/// Sort-key prefix of a campaign's enrollments.
pub const ENROLLMENT_PREFIX: &str = "ENR#";

/// A lead enrolled in a campaign: `CAMPAIGN#{cmp}` / `ENR#{lead}`.
pub fn enrollment(id: &CampaignId, lead: &LeadId) -> Key {
    Key::new(campaign_partition(id), format!("{ENROLLMENT_PREFIX}{lead}"))
}

/// `gsi2` partition of a campaign's enrollments waiting to be dialed (queued or waiting for a
/// retry), by [`due_sort`]: the dialer's queue, in the order they become due.
pub fn enrollments_due_index(id: &CampaignId) -> String {
    format!("CAMPAIGN#{id}#DUE")
}

/// `gsi2` sort key of a waiting enrollment: when it is due (epoch milliseconds, zero-padded
/// so the strings sort as the numbers), then the lead.
pub fn due_sort(due_ms: i64, lead: &LeadId) -> String {
    format!("{:013}#{lead}", due_ms.max(0))
}

/// An establishment's count of campaign calls in flight, across its campaigns:
/// `EST#{est}` / `DIALSLOTS`.
pub fn dial_slots(est: &EstablishmentId) -> Key {
    Key::new(establishment_partition(est), "DIALSLOTS")
}

/// Partition of an establishment's report aggregates and cached dashboard answers.
pub fn reports_partition(est: &EstablishmentId) -> String {
    format!("RPT#{est}")
}

/// Sort-key prefix of daily aggregates.
pub const REPORT_DAY_PREFIX: &str = "D#";
/// Sort-key prefix of hourly aggregates.
pub const REPORT_HOUR_PREFIX: &str = "H#";

/// One agent version's aggregate of one local day: `RPT#{est}` /
/// `D#{YYYY-MM-DD}#{agt}#{agv or -}` (days sort together, so a period is one key range).
pub fn report_day(
    est: &EstablishmentId,
    day: &str,
    agent: &AgentId,
    version: Option<&AgentVersionId>,
) -> Key {
    report_key(REPORT_DAY_PREFIX, est, day, agent, version)
}

/// One agent version's aggregate of one UTC hour: `RPT#{est}` / `H#{YYYY-MM-DDTHH}#{agt}#{agv}`.
pub fn report_hour(
    est: &EstablishmentId,
    hour: &str,
    agent: &AgentId,
    version: Option<&AgentVersionId>,
) -> Key {
    report_key(REPORT_HOUR_PREFIX, est, hour, agent, version)
}

fn report_key(
    prefix: &str,
    est: &EstablishmentId,
    period: &str,
    agent: &AgentId,
    version: Option<&AgentVersionId>,
) -> Key {
    let version = version.map_or("-", |v| v.as_str());
    Key::new(
        reports_partition(est),
        format!("{prefix}{period}#{agent}#{version}"),
    )
}

/// The sort-key range of the aggregates of periods `first..=last` (days or hours) under
/// `prefix`.
pub fn report_range(prefix: &str, first: &str, last: &str) -> (String, String) {
    (format!("{prefix}{first}#"), format!("{prefix}{last}#~"))
}

/// A cached dashboard answer: `RPT#{est}` / `CACHE#{name}`.
pub fn report_cache(est: &EstablishmentId, name: &str) -> Key {
    Key::new(reports_partition(est), format!("CACHE#{name}"))
}

/// Partition of an establishment's needs-attention list.
pub fn attention_partition(est: &EstablishmentId) -> String {
    format!("ATTN#{est}")
}

/// A call on the needs-attention list: `ATTN#{est}` / `{ended_at}#{call}` (newest last).
pub fn attention(est: &EstablishmentId, ended_at: &crate::time::Timestamp, call: &CallId) -> Key {
    Key::new(attention_partition(est), format!("{ended_at}#{call}"))
}

/// A calls export of an establishment: `RPT#{est}` / `EXPORT#{id}`.
pub fn report_export(est: &EstablishmentId, id: &str) -> Key {
    Key::new(reports_partition(est), format!("EXPORT#{id}"))
}

/// An establishment's connection of one type (one per type): `EST#{est}` / `INTEGRATION#{type}`.
/// Keyed by type so the tool proxy finds it in the same batch read as the call's version.
pub fn integration(
    est: &EstablishmentId,
    kind: crate::domain::integration::IntegrationType,
) -> Key {
    Key::new(format!("EST#{est}"), format!("INTEGRATION#{kind}"))
}

/// Sort-key prefix of an establishment's connections.
pub const INTEGRATION_PREFIX: &str = "INTEGRATION#";

/// Where an integration id points: `INT#{int}` / `INT`.
pub fn integration_id(id: &IntegrationId) -> Key {
    Key::new(format!("INT#{id}"), "INT")
}

/// A pending OAuth consent, by the SHA-256 of its state's nonce: `OAUTH#{hash}` / `STATE`.
pub fn oauth_state(nonce_hash: &str) -> Key {
    Key::new(format!("OAUTH#{nonce_hash}"), "STATE")
}

/// A tool-proxy call's idempotency record on its call: `CALL#{call}` / `TOOLKEY#{tool}#{key}`.
pub fn tool_key(call: &CallId, tool: &str, idempotency_key: &str) -> Key {
    Key::new(
        call_partition(call),
        format!("TOOLKEY#{tool}#{idempotency_key}"),
    )
}

/// One minute's tool calls of a group in an establishment: `RATE#{est}` / `{group}#{minute}`.
pub fn tool_rate(est: &EstablishmentId, group: &str, minute: i64) -> Key {
    Key::new(format!("RATE#{est}"), format!("{group}#{minute}"))
}
