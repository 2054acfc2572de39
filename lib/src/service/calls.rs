//! Calls through the API (PRD §7.5, Appendix A.5): placing outbound calls (operators and
//! admins, idempotent on `Idempotency-Key`), reading a call, and handing a live call off to
//! the establishment's handoff number. Foreign calls are 404.

use super::access::{member_of, require_member};
use super::readiness::takes_calls;
use super::routing::stream_url;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::event::Party;
use crate::domain::{
    AgentStatus, AnsweredBy, CallStatus, Direction, Disposition, E164, NumberProvider, Role,
};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, AgentVersionId, CallId, EstablishmentId, RuntimeId, UserId};
use crate::store::records::{
    AgentRecord, CallRecord, HandoffRecord, NewCall, OutboundRequestRecord, RecordingRef,
    StoredError,
};
use crate::store::{CallFilter, CreateCallError, OutboundContext, Page};
use crate::telephony::{OutboundCall, ProviderError, StreamTarget};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// Largest `metadata`, serialised.
const MAX_METADATA_BYTES: usize = 4096;

/// `POST /calls/outbound` body.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequest {
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    pub to_e164: E164,
    /// A number of the establishment; by default one routed to the agent, else any.
    #[serde(default)]
    pub from_e164: Option<E164>,
    #[serde(default)]
    pub lead_id: Option<String>,
    /// Free-form JSON object passed along with the call (at most 4 KiB).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Ask Twilio to detect answering machines (result in `answered_by`).
    #[serde(default)]
    pub answering_machine_detection: bool,
}

/// `POST /calls/{id}/handoff` body (Appendix A.5).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    /// Why a human takes over (shown to the operator), 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub reason: String,
}

/// `POST /calls/{id}/handoff` answer (Appendix A.5).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HandoffView {
    pub call_id: CallId,
    pub status: CallStatus,
    pub handoff_e164: E164,
}

/// A call as the API shows it (the Appendix A.5 fields first).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallView {
    pub call_id: CallId,
    pub provider: NumberProvider,
    pub provider_call_sid: Option<String>,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    pub agent_version_id: Option<AgentVersionId>,
    pub runtime_id: Option<RuntimeId>,
    pub status: CallStatus,
    pub direction: Direction,
    pub disposition: Disposition,
    pub from_e164: String,
    pub to_e164: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Final length, or the time since answering while the call is live.
    pub duration_seconds: Option<u32>,
    pub end_reason: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    pub recording: Option<RecordingView>,
    /// Where the recording is served (`GET /calls/{id}/recording`), once one was reported by
    /// the provider or the runtime.
    pub recording_link: Option<String>,
    pub handoff: Option<HandoffRecord>,
    /// Who hung up, as the runtime reported it.
    pub hangup_by: Option<Party>,
    pub lead_id: Option<String>,
    /// The campaign that dialed it.
    pub campaign_id: Option<crate::ids::CampaignId>,
    pub metadata: Option<serde_json::Value>,
    /// The customer's sentiment over the call and per window (PRD A.5, §10), from the last
    /// successful analysis; `null` until then.
    pub sentiment: Option<crate::domain::analysis::Sentiment>,
    /// The last successful analysis's summary; `null` until then.
    pub summary: Option<String>,
    /// Where the post-call analysis is (`null` while the call is live), with its extracted data.
    pub analysis: Option<crate::domain::analysis::Analysis>,
    /// Since when Twilio has not confirmed creating this outbound call (its answer was lost);
    /// absent once confirmed. See `POST /calls/outbound` in docs/api.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed_since: Option<Timestamp>,
    /// Tool results the runtime reported, and how many of them were errors.
    pub tool_calls: u32,
    pub tool_errors: u32,
    /// Runtime errors reported during the call.
    pub runtime_errors: u32,
    /// When the sweeper ended the call because its end was never reported.
    pub swept_at: Option<Timestamp>,
    /// Why the call is on the dashboard's needs-attention list (empty: it is not; only ended
    /// calls are).
    pub needs_attention: Vec<String>,
}

/// A call's recording, without the provider URL (which needs our credentials).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingView {
    pub recording_sid: String,
    pub status: String,
    pub duration_seconds: Option<u32>,
    pub channels: Option<u32>,
}

impl From<RecordingRef> for RecordingView {
    fn from(r: RecordingRef) -> Self {
        Self {
            recording_sid: r.provider_recording_sid,
            status: r.status,
            duration_seconds: r.duration_seconds,
            channels: r.channels,
        }
    }
}

impl CallView {
    /// The view of `c` at `now`.
    pub fn of(c: CallRecord, now: Timestamp) -> Self {
        let live = c
            .started_at
            .filter(|_| !c.status.is_final())
            .map(|s| u32::try_from(now.unix() - s.unix()).unwrap_or(0));
        let needs_attention = if c.final_status.is_some() {
            crate::service::reports::attention_reasons(&c)
        } else {
            Vec::new()
        };
        let recording_link = (c.recording.is_some() || c.recording_file.is_some())
            .then(|| format!("/calls/{}/recording", c.id));
        Self {
            call_id: c.id,
            provider: c.provider,
            provider_call_sid: c.provider_call_sid,
            establishment_id: c.establishment_id,
            agent_id: c.agent_id,
            agent_version_id: c.agent_version_id,
            runtime_id: c.runtime_id,
            status: c.status,
            direction: c.direction,
            disposition: c.disposition,
            from_e164: c.from_e164,
            to_e164: c.to_e164,
            created_at: c.created_at,
            started_at: c.started_at,
            ended_at: c.ended_at,
            duration_seconds: c.duration_seconds.or(live),
            end_reason: c.end_reason,
            answered_by: c.answered_by,
            recording_link,
            recording: c.recording.map(RecordingView::from),
            handoff: c.handoff,
            hangup_by: c.hangup_by,
            lead_id: c.lead_id,
            campaign_id: c.campaign_id,
            metadata: c.metadata,
            sentiment: c.sentiment,
            summary: c.summary,
            analysis: c.analysis,
            unconfirmed_since: c.unconfirmed_since,
            tool_calls: c.tool_calls,
            tool_errors: c.tool_errors,
            runtime_errors: c.runtime_errors,
            swept_at: c.swept_at,
            needs_attention,
        }
    }
}

/// An outbound call's answer: `replayed` when an earlier request with the same key made it.
#[derive(Debug)]
pub struct Placed {
    pub call: CallView,
    pub replayed: bool,
}

/// Checks an `Idempotency-Key` header value: 1–255 visible ASCII characters.
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<String>> {
    match raw {
        None => Ok(None),
        Some(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        Some(_) => Err(Error::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// `POST /calls/outbound` (operators and admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %req.establishment_id))]
pub async fn outbound(
    app: &App,
    principal: &Principal,
    key: Option<String>,
    req: OutboundRequest,
) -> Result<Placed> {
    check_extras(&req)?;
    let user = require_member(
        app,
        principal,
        &req.establishment_id,
        Role::Operator,
        "establishment",
    )
    .await?;
    let request_hash = hash_request(&req)?;
    let dial = Dial {
        establishment_id: req.establishment_id,
        agent_id: req.agent_id,
        agent_version_id: None,
        to: req.to_e164,
        from: req.from_e164,
        lead_id: req.lead_id,
        campaign_id: None,
        metadata: req.metadata,
        answering_machine_detection: req.answering_machine_detection,
        requested_by: Some(user.id),
    };
    place(app, dial, key, request_hash).await
}

/// An outbound call to place, from the API or from a campaign.
#[derive(Debug)]
pub(crate) struct Dial {
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    /// The version the call runs (a campaign pins one); by default the agent's active one.
    pub agent_version_id: Option<AgentVersionId>,
    pub to: E164,
    pub from: Option<E164>,
    pub lead_id: Option<String>,
    pub campaign_id: Option<crate::ids::CampaignId>,
    pub metadata: Option<serde_json::Value>,
    pub answering_machine_detection: bool,
    pub requested_by: Option<crate::ids::UserId>,
}

/// Places `dial` — the one outbound path, for the API and the dialer: checks (the do-not-call
/// list, the blacklist, the caller id, the runtime) at dial time, and the idempotency key's
/// record, so a retry with the same key never dials twice (`request_hash` tells a reuse of
/// the key for another request).
pub(crate) async fn place(
    app: &App,
    dial: Dial,
    key: Option<String>,
    request_hash: String,
) -> Result<Placed> {
    let est = dial.establishment_id.clone();
    let context = app
        .store
        .outbound_context(&est, &dial.agent_id, &dial.to, key.as_deref())
        .await?;
    if let Some(earlier) = &context.request {
        return replay(app, earlier, &request_hash, key.as_deref()).await;
    }
    let plan = plan(app, &dial, &context).await?;
    let now = Timestamp::now();
    let call = CallRecord {
        agent_version_id: Some(plan.version.clone()),
        runtime_id: Some(plan.runtime_id.clone()),
        lead_id: dial.lead_id.clone(),
        campaign_id: dial.campaign_id.clone(),
        metadata: dial.metadata.clone(),
        requested_by: dial.requested_by.clone(),
        ..CallRecord::new(NewCall {
            id: CallId::new(),
            establishment_id: est.clone(),
            agent_id: plan.agent.id.clone(),
            provider: NumberProvider::Twilio,
            direction: Direction::Outbound,
            from_e164: plan.from.to_string(),
            to_e164: dial.to.to_string(),
            status: CallStatus::Queued,
            disposition: Disposition::Outbound,
            at: now,
        })
    };
    let record = OutboundRequestRecord {
        call_id: call.id.clone(),
        request_hash: request_hash.clone(),
        error: None,
        expires_at: now.unix() + IDEMPOTENCY_TTL_SECS,
    };
    let reservation = key.as_deref().map(|k| (k, &record));
    match app.store.create_call(&call, None, reservation).await {
        Ok(()) => {}
        // A concurrent request with the same key won the race: answer as a replay of it.
        Err(CreateCallError::Taken) => {
            let Some(key) = key.as_deref() else {
                return Err(Error::Conflict("call id collision; retry".into()));
            };
            let earlier = app
                .store
                .outbound_request(&est, key)
                .await?
                .ok_or_else(|| {
                    Error::Conflict("a request with this key is settling; retry".into())
                })?;
            return replay(app, &earlier, &request_hash, Some(key)).await;
        }
        Err(CreateCallError::Other(e)) => return Err(e),
    }
    let mut parameters = vec![
        ("call_id".into(), call.id.to_string()),
        ("establishment_id".into(), est.to_string()),
        ("agent_id".into(), plan.agent.id.to_string()),
        ("agent_version_id".into(), plan.version.to_string()),
        (
            "max_call_duration_seconds".into(),
            plan.max_duration.to_string(),
        ),
    ];
    if let Some(lead) = &dial.lead_id {
        parameters.push(("lead_id".into(), lead.clone()));
    }
    if let Some(campaign) = &dial.campaign_id {
        parameters.push(("campaign_id".into(), campaign.to_string()));
    }
    let telephony = app.telephony()?;
    let outbound_call = OutboundCall {
        to: dial.to.clone(),
        from: plan.from.clone(),
        stream: StreamTarget {
            url: stream_url(&plan.base_url, plan.public_url.as_ref()),
            parameters,
        },
        time_limit_secs: plan.max_duration,
        status_callback: telephony
            .callback(&format!("/webhooks/twilio/call-status?call_id={}", call.id)),
        amd_callback: dial.answering_machine_detection.then(|| {
            telephony.callback(&format!(
                "/webhooks/twilio/amd-callback?call_id={}",
                call.id
            ))
        }),
    };
    match telephony
        .port(call.provider)?
        .place_call(&outbound_call)
        .await
    {
        Ok(placed) => {
            app.store
                .set_provider_sid(&call, &placed.provider_call_id)
                .await?;
            tracing::info!(call_id = %call.id, call_sid = %placed.provider_call_id, "outbound call placed");
            let mut call = call;
            call.provider_call_sid = Some(placed.provider_call_id);
            Ok(Placed {
                call: CallView::of(call, Timestamp::now()),
                replayed: false,
            })
        }
        // Twilio took the request but its answer was lost: the call may exist. The key stays
        // held so that no retry dials the person a second time (see `replay`).
        Err(ProviderError::Unconfirmed(why)) => {
            tracing::warn!(call_id = %call.id, %why, "Twilio did not confirm the call; reconciling");
            if let Some(call) = reconcile(app, &call).await? {
                return Ok(Placed {
                    call: CallView::of(call, Timestamp::now()),
                    replayed: false,
                });
            }
            app.store.mark_unconfirmed(&call).await?;
            Err(Error::Unavailable(format!(
                "Twilio did not confirm call {} ({why}); it may still be placed. Retry with the \
                 same Idempotency-Key: the retry answers this call once Twilio confirms it, \
                 and places it only if Twilio never did",
                call.id
            )))
        }
        Err(provider_error) => {
            // Refusals are remembered under the key; what Twilio surely never received
            // (unreachable, rate-limited) releases it for a retry.
            let retryable = matches!(
                provider_error,
                ProviderError::RateLimited | ProviderError::Unavailable(_)
            );
            let error = Error::from(provider_error);
            let (status, code) = error.code();
            let stored = StoredError {
                status: status.as_u16(),
                code: code.to_owned(),
                message: error.to_string(),
            };
            app.store
                .fail_outbound(&call, key.as_deref(), &stored, retryable)
                .await?;
            after_failure(app, &call).await;
            Err(error)
        }
    }
}

/// A call that failed before Twilio took it ends here, with no callback to follow: its
/// post-call job (which counts it in the reports) is queued now. Best effort: the call has
/// failed either way, and `callplane-admin backfill-reports` counts a call whose job was lost.
async fn after_failure(app: &App, call: &CallRecord) {
    if let Err(e) =
        crate::service::analysis::queue_after_end(app, &call.id, &call.establishment_id, 0).await
    {
        tracing::error!(call_id = %call.id, error = %e, "post-call job of a failed outbound call not queued");
    }
}

/// What an outbound call needs, checked.
struct Plan {
    agent: AgentRecord,
    version: AgentVersionId,
    from: E164,
    runtime_id: RuntimeId,
    base_url: String,
    public_url: Option<crate::domain::PublicUrl>,
    max_duration: u32,
}

async fn plan(app: &App, req: &Dial, context: &OutboundContext) -> Result<Plan> {
    let establishment = context
        .establishment
        .as_ref()
        .ok_or(Error::NotFound("establishment"))?;
    let agent = context
        .agent
        .clone()
        .filter(|a| a.establishment_id == req.establishment_id)
        .ok_or_else(|| Error::NotFoundField {
            field: "agent_id",
            message: "no such agent in this establishment".into(),
        })?;
    if agent.status == AgentStatus::Archived {
        return Err(Error::conflict_on("agent_id", "the agent is archived"));
    }
    let version = req
        .agent_version_id
        .clone()
        .or_else(|| agent.active_version_id.clone())
        .ok_or_else(|| Error::conflict_on("agent_id", "the agent has no published version"))?;
    let policy = &establishment.telephony;
    if policy.blacklist_e164.contains(&req.to) {
        return Err(Error::unprocessable(
            "blacklisted",
            Some("to_e164"),
            "to_e164: the number is on the establishment's blacklist",
        ));
    }
    if context.do_not_call {
        return Err(Error::unprocessable(
            "do_not_call",
            Some("to_e164"),
            "to_e164: the number is on the establishment's do-not-call list",
        ));
    }
    let from = caller_id(app, req, &agent).await?;
    let runtime = context.runtime.as_ref().ok_or_else(|| {
        Error::Conflict("the establishment has no runtime to take the call".into())
    })?;
    takes_calls(runtime.status, runtime.health.as_ref(), Timestamp::now())
        .map_err(|why| Error::Conflict(format!("the call cannot be placed: {why}")))?;
    Ok(Plan {
        agent,
        version,
        from,
        runtime_id: runtime.runtime_id.clone(),
        base_url: runtime.base_url.clone(),
        public_url: runtime.public_url.clone(),
        max_duration: policy.max_call_duration_seconds,
    })
}

/// The number to call from: the one asked for, which must be an enabled Twilio number of the
/// establishment; else the agent's first number, else the establishment's first enabled one.
async fn caller_id(app: &App, req: &Dial, agent: &AgentRecord) -> Result<E164> {
    let usable =
        |provider: NumberProvider, enabled: bool| enabled && provider == NumberProvider::Twilio;
    if let Some(from) = &req.from {
        let route = app.store.resolve_route(from).await?;
        return match route {
            Some(r)
                if r.establishment_id == req.establishment_id && usable(r.provider, r.enabled) =>
            {
                Ok(from.clone())
            }
            _ => Err(Error::unprocessable(
                "invalid_caller_id",
                Some("from_e164"),
                "from_e164: not an enabled Twilio number of this establishment",
            )),
        };
    }
    let phones = app.store.all_phones_of(&req.establishment_id).await?;
    phones
        .iter()
        .filter(|p| usable(p.provider, p.enabled))
        .min_by_key(|p| p.routing_agent_id != agent.id)
        .map(|p| p.e164.clone())
        .ok_or_else(|| {
            Error::unprocessable(
                "no_caller_id",
                Some("from_e164"),
                "the establishment has no enabled Twilio number to call from",
            )
        })
}

fn check_extras(req: &OutboundRequest) -> Result<()> {
    if let Some(lead) = &req.lead_id
        && (lead.is_empty() || lead.len() > 128)
    {
        return Err(Error::invalid("lead_id", "must be 1 to 128 characters"));
    }
    if let Some(meta) = &req.metadata {
        if !meta.is_object() {
            return Err(Error::invalid("metadata", "must be a JSON object"));
        }
        crate::domain::storable("metadata", meta, 0)?;
        if meta.to_string().len() > MAX_METADATA_BYTES {
            return Err(Error::invalid(
                "metadata",
                format!("must be at most {MAX_METADATA_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// SHA-256 (hex) of the parsed request, canonical JSON (object keys sorted).
fn hash_request(req: &OutboundRequest) -> Result<String> {
    let json = serde_json::to_string(req).map_err(Error::internal)?;
    Ok(crate::auth::secret_token::hash(&json))
}

/// How long an unconfirmed call may stay unseen, in Twilio's call list and by its status
/// callbacks, before it counts as never created. Twilio lists a created call at once and calls
/// back `initiated` within seconds.
const UNCONFIRMED_GRACE_SECS: i64 = 60;

/// Looks for an unconfirmed call in Twilio's call list (same `To` and `From`, created since it
/// was, and not known as another of our calls) and, when it is there, records its CallSid:
/// the call is then confirmed.
async fn reconcile(app: &App, call: &CallRecord) -> Result<Option<CallRecord>> {
    let (Ok(to), Ok(from)) = (E164::parse(&call.to_e164), E164::parse(&call.from_e164)) else {
        return Ok(None);
    };
    let port = app.telephony()?.port(call.provider)?;
    let candidates = match port.find_calls(&to, &from, call.created_at).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(call_id = %call.id, error = %e, "could not read Twilio's call list");
            return Ok(None);
        }
    };
    let mut unknown = None;
    for candidate in candidates {
        match app
            .store
            .call_by_sid(call.provider, &candidate.provider_call_id)
            .await?
        {
            Some(guard) if guard.call_id == call.id => {
                unknown = Some(candidate);
                break;
            }
            Some(_) => {}
            None => {
                unknown = Some(candidate);
                break;
            }
        }
    }
    match unknown {
        Some(found) => {
            app.store
                .set_provider_sid(call, &found.provider_call_id)
                .await?;
            tracing::info!(call_id = %call.id, call_sid = %found.provider_call_id, "unconfirmed call found in Twilio's call list");
            let mut call = call.clone();
            call.provider_call_sid = Some(found.provider_call_id);
            call.unconfirmed_since = None;
            Ok(Some(call))
        }
        None => Ok(None),
    }
}

/// The answer to a request whose key was used before: the same call (or the same error) for
/// the same body, 422 for another body. A call Twilio has not confirmed is reconciled first:
/// found, it is answered; unseen past [`UNCONFIRMED_GRACE_SECS`], it is failed and the key
/// released, so the next retry places it; otherwise the client is asked to retry shortly.
async fn replay(
    app: &App,
    earlier: &OutboundRequestRecord,
    hash: &str,
    key: Option<&str>,
) -> Result<Placed> {
    if earlier.request_hash != hash {
        return Err(Error::unprocessable(
            "idempotency_key_reused",
            Some("Idempotency-Key"),
            "Idempotency-Key was used with a different request body",
        ));
    }
    if let Some(e) = &earlier.error {
        // Only final refusals are remembered (a retryable failure releases the key), and
        // the provider's refusals are all 422s.
        return Err(match e.code.as_str() {
            "invalid_number" => Error::unprocessable("invalid_number", Some("to_e164"), &e.message),
            _ => Error::unprocessable("provider_refused", None, &e.message),
        });
    }
    let mut call = app
        .store
        .call(&earlier.call_id)
        .await?
        .ok_or_else(|| Error::internal("idempotency record points at a missing call"))?;
    if let Some(since) = call.unconfirmed_since
        && call.provider_call_sid.is_none()
        && call.final_status.is_none()
    {
        match reconcile(app, &call).await? {
            Some(confirmed) => call = confirmed,
            None if Timestamp::now().unix() - since.unix() >= UNCONFIRMED_GRACE_SECS => {
                let stored = StoredError {
                    status: 503,
                    code: "unavailable".into(),
                    message: "Twilio never created the call".into(),
                };
                app.store.fail_outbound(&call, key, &stored, true).await?;
                after_failure(app, &call).await;
                return Err(Error::Unavailable(format!(
                    "Twilio never created call {}; retry with the same Idempotency-Key to \
                     place it",
                    call.id
                )));
            }
            None => {
                return Err(Error::Conflict(format!(
                    "Twilio has not confirmed call {} yet; retry in a few seconds",
                    call.id
                )));
            }
        }
    }
    Ok(Placed {
        call: CallView::of(call, Timestamp::now()),
        replayed: true,
    })
}

/// `GET /calls/active` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActiveParams {
    /// Absent: every establishment the caller belongs to.
    pub establishment_id: Option<EstablishmentId>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// `GET /calls/active` (viewers and up, Appendix A.5): the establishment's calls that have not
/// ended, newest first; without `establishment_id`, those of every establishment the caller
/// belongs to (each call says its `establishment_id`).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = ?params.establishment_id))]
pub async fn active(
    app: &App,
    principal: &Principal,
    params: ActiveParams,
) -> Result<Page<CallView>> {
    let list = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = list.limit()?;
    let cursor = list.cursor.as_deref();
    let page = match &params.establishment_id {
        Some(est) => {
            require_member(app, principal, est, Role::Viewer, "establishment").await?;
            app.store.active_calls(est, limit, cursor).await?
        }
        None => {
            let ests = my_establishments(app, principal).await?;
            app.store.active_calls_of(&ests, limit, cursor).await?
        }
    };
    let now = Timestamp::now();
    Ok(page.map(|c| CallView::of(c, now)))
}

/// `GET /calls` query (PRD §7.5): `from`/`to` bound when calls were created (RFC 3339,
/// inclusive).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Absent: every establishment the caller belongs to.
    pub establishment_id: Option<EstablishmentId>,
    pub status: Option<CallStatus>,
    pub direction: Option<Direction>,
    pub agent_id: Option<AgentId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// `GET /calls` (viewers and up): the establishment's calls, newest first, filtered; without
/// `establishment_id`, those of every establishment the caller belongs to.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = ?params.establishment_id))]
pub async fn history(
    app: &App,
    principal: &Principal,
    params: HistoryParams,
) -> Result<Page<CallView>> {
    let list = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = list.limit()?;
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        return Err(Error::invalid("from", "must not be after `to`"));
    }
    let filter = CallFilter {
        status: params.status,
        direction: params.direction,
        agent_id: params.agent_id,
        from: params.from,
        to: params.to,
    };
    let cursor = list.cursor.as_deref();
    let page = match &params.establishment_id {
        Some(est) => {
            require_member(app, principal, est, Role::Viewer, "establishment").await?;
            app.store.call_history(est, &filter, limit, cursor).await?
        }
        None => {
            let ests = my_establishments(app, principal).await?;
            app.store
                .call_history_of(&ests, &filter, limit, cursor)
                .await?
        }
    };
    let now = Timestamp::now();
    Ok(page.map(|c| CallView::of(c, now)))
}

/// Most establishments a list without `establishment_id` reads at once (one Query each).
const MAX_MERGED_ESTABLISHMENTS: usize = 25;

/// The establishments the caller belongs to (one Query), for lists across them.
async fn my_establishments(app: &App, principal: &Principal) -> Result<Vec<EstablishmentId>> {
    let mut ests: Vec<EstablishmentId> = app
        .store
        .memberships(&principal.user_id)
        .await?
        .into_iter()
        .map(|m| m.establishment_id)
        .collect();
    ests.sort();
    if ests.len() > MAX_MERGED_ESTABLISHMENTS {
        return Err(Error::invalid(
            "establishment_id",
            format!(
                "is required for members of more than {MAX_MERGED_ESTABLISHMENTS} establishments"
            ),
        ));
    }
    Ok(ests)
}

/// `GET /calls/{id}` (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &CallId) -> Result<CallView> {
    let call = member_call(app, principal, id, Role::Viewer).await?.1;
    Ok(CallView::of(call, Timestamp::now()))
}

/// The call and the caller's account, if the caller has `role` in the call's establishment;
/// 404 for calls of other establishments.
pub(crate) async fn member_call(
    app: &App,
    principal: &Principal,
    id: &CallId,
    role: Role,
) -> Result<(crate::store::records::UserRecord, CallRecord)> {
    member_of(app, principal, app.store.call(id).await?, role).await
}

/// `POST /calls/{id}/handoff` (operators and admins): transfers a call in progress to the
/// establishment's handoff number (PRD §11).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn handoff(
    app: &App,
    principal: &Principal,
    id: &CallId,
    req: HandoffRequest,
) -> Result<HandoffView> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Error::invalid("reason", "must be 1 to 200 characters"));
    }
    let (user, call) = member_call(app, principal, id, Role::Operator).await?;
    if call.status != CallStatus::InProgress {
        return Err(Error::Conflict(format!(
            "the call is {}; only a call in progress can be handed off",
            call.status.as_str()
        )));
    }
    transfer(
        app,
        &call,
        reason.to_owned(),
        Some(user.id.clone()),
        (&user).into(),
    )
    .await
}

/// Transfers a call in progress to its establishment's handoff number: marks it (audited as
/// `actor`'s act), asks the provider, and puts it back in progress if the provider refuses.
/// Shared by the operator's `POST /calls/{id}/handoff` and the tool proxy's `handoff`.
pub(crate) async fn transfer(
    app: &App,
    call: &CallRecord,
    reason: String,
    requested_by: Option<UserId>,
    actor: crate::store::audit::AuditActor<'_>,
) -> Result<HandoffView> {
    let establishment = app
        .store
        .establishment_required(&call.establishment_id)
        .await?;
    let to = establishment.telephony.handoff_e164.ok_or_else(|| {
        Error::unprocessable(
            "no_handoff_number",
            None,
            "the establishment has no handoff number (PATCH …/telephony handoff_e164)",
        )
    })?;
    let sid = call
        .provider_call_sid
        .clone()
        .ok_or_else(|| Error::Conflict("the call has not reached the provider yet".into()))?;
    let handoff = HandoffRecord {
        e164: to.clone(),
        reason,
        requested_by,
        at: Timestamp::now(),
    };
    if !app.store.begin_handoff(call, &handoff, actor).await? {
        return Err(Error::Conflict(
            "the call changed meanwhile; only a call in progress can be handed off".into(),
        ));
    }
    let port = app.telephony()?.port(call.provider)?;
    if let Err(e) = port.transfer(&sid, &to, None).await {
        app.store.undo_handoff(&call.id).await?;
        return Err(e.into());
    }
    tracing::info!(call_id = %call.id, handoff = %to, "call handed off");
    Ok(HandoffView {
        call_id: call.id.clone(),
        status: CallStatus::HandoffInitiated,
        handoff_e164: to,
    })
}
