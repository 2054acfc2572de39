//! The campaigns API (PRD §7.6, A.6, issue 14): defining a campaign, editing it while it is
//! not running, its preview (which leads would be dialed, which skipped and why), starting
//! (enrolling the matching leads; also resuming), pausing, cancelling, reading it with its
//! progress, and its enrollments. Admins manage campaigns, operators start and pause them,
//! viewers read. Every status change is audited. The dialing itself is `service::dialer`.

use super::access::{Owned, member_of, require_member};
use super::dialer::Tick;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::dialing::{CampaignSchedule, Outcome, Pacer, RetryPolicy, next_dial_at};
use crate::domain::{
    AgentStatus, CampaignStatus, CircuitBreaker, E164, EnrollmentStatus, LeadFilter, LeadStatus,
    Pace, PausedReason, Progress, Role, SkipReason, TelephonyPolicy, VersionStatus,
};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, AgentVersionId, CallId, CampaignId, EstablishmentId, LeadId};
use crate::store::records::{
    AttemptRecord, AuditRecord, CampaignRecord, EndedAttempt, EnrollmentRecord, LeadRecord,
    UserRecord,
};
use crate::store::{Page, Store, to_attr};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest campaign name, in characters.
const MAX_NAME: usize = 200;
/// Calls in flight per campaign unless it says otherwise.
const DEFAULT_CONCURRENCY: u32 = 10;
/// Leads read per page by a preview.
const PREVIEW_PAGE: i32 = 500;

impl Owned for CampaignRecord {
    const WHAT: &'static str = "campaign";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

/// `POST /campaigns` body: A.6's fields, plus the optional dialing settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub establishment_id: EstablishmentId,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub agent_id: AgentId,
    /// A published version of `agent_id`: every call of the campaign runs it.
    pub agent_version_id: AgentVersionId,
    /// Which leads start enrolls (`{}`: all of the establishment's).
    #[serde(default)]
    pub lead_filter: LeadFilter,
    pub pace: Pace,
    pub schedule: CampaignSchedule,
    /// Calls of this campaign in flight at once, 1 to 100 (default 10); the establishment's
    /// `max_concurrent_calls` bounds all its campaigns together.
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent_calls: Option<u32>,
    /// Default: 3 attempts, again after busy, no answer and voicemail, 60 minutes apart.
    pub retry: Option<RetryPolicy>,
    /// An enabled Twilio number of the establishment; by default one routed to the agent.
    pub from_e164: Option<E164>,
    /// Ask Twilio to tell answering machines (their answers count as `voicemail`).
    #[serde(default)]
    pub answering_machine_detection: bool,
    /// Default: enabled.
    pub circuit_breaker: Option<CircuitBreaker>,
}

/// `PATCH /campaigns/{id}` body (while `created` or `paused`): each field given replaces the
/// campaign's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateCampaign {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// Another published version of the same agent.
    pub agent_version_id: Option<AgentVersionId>,
    /// Only before the first start (enrollment happens then).
    pub lead_filter: Option<LeadFilter>,
    pub pace: Option<Pace>,
    pub schedule: Option<CampaignSchedule>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent_calls: Option<u32>,
    pub retry: Option<RetryPolicy>,
    /// `null` goes back to the default caller id.
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<E164>)]
    pub from_e164: Option<Option<E164>>,
    pub answering_machine_detection: Option<bool>,
    pub circuit_breaker: Option<CircuitBreaker>,
}

/// A campaign as the API shows it, with its progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: CampaignId,
    pub establishment_id: EstablishmentId,
    pub name: String,
    pub status: CampaignStatus,
    /// Why a paused campaign is paused.
    pub paused_reason: Option<PausedReason>,
    pub agent_id: AgentId,
    pub agent_version_id: AgentVersionId,
    pub lead_filter: LeadFilter,
    pub pace: Pace,
    pub schedule: CampaignSchedule,
    pub max_concurrent_calls: u32,
    pub retry: RetryPolicy,
    pub from_e164: Option<E164>,
    pub answering_machine_detection: bool,
    pub circuit_breaker: CircuitBreaker,
    pub progress: Progress,
    /// Whether start has enrolled every matching lead yet.
    pub enrollment_complete: bool,
    /// When the dialer may dial next (the pacer's next slot), while it runs.
    pub next_dial_at: Option<Timestamp>,
    /// The last thing that kept the dialer from dialing (the runtime, the breaker).
    pub last_error: Option<String>,
    /// The failures that tripped the circuit breaker.
    pub circuit_breaker_failures: Vec<EndedAttempt>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl From<CampaignRecord> for CampaignView {
    fn from(c: CampaignRecord) -> Self {
        let next_dial_at = (c.status == CampaignStatus::Running)
            .then(|| {
                let pacer = Pacer::new(c.pace.calls_per_minute)
                    .ok()?
                    .with_slack(super::dialer::PACE_SLACK_PERMILLE);
                let last = c.last_dial_us.and_then(DateTime::from_timestamp_micros)?;
                let at = pacer.next(Some(last), Utc::now());
                Timestamp::from_unix(at.timestamp())
            })
            .flatten();
        Self {
            id: c.id,
            establishment_id: c.establishment_id,
            name: c.name,
            status: c.status,
            paused_reason: c.paused_reason,
            agent_id: c.agent_id,
            agent_version_id: c.agent_version_id,
            lead_filter: c.lead_filter,
            pace: c.pace,
            schedule: c.schedule,
            max_concurrent_calls: c.max_concurrent_calls,
            retry: c.retry,
            from_e164: c.from_e164,
            answering_machine_detection: c.answering_machine_detection,
            circuit_breaker: c.circuit_breaker,
            progress: c.progress,
            enrollment_complete: c.enrolled_all,
            next_dial_at,
            last_error: c.last_error,
            circuit_breaker_failures: c.breaker_failures,
            created_at: c.created_at,
            started_at: c.started_at,
            ended_at: c.ended_at,
            updated_at: c.updated_at,
        }
    }
}

/// `GET /campaigns` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignListParams {
    pub establishment_id: EstablishmentId,
    pub status: Option<CampaignStatus>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// `GET /campaigns/{id}/enrollments` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentListParams {
    pub status: Option<EnrollmentStatus>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// A lead in a campaign: where it is and every dial of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnrollmentView {
    pub lead_id: LeadId,
    pub phone_e164: E164,
    pub status: EnrollmentStatus,
    pub skip_reason: Option<SkipReason>,
    /// Dials so far (the first included).
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    /// When it may be dialed next (queued or waiting for a retry).
    pub next_attempt_at: Option<Timestamp>,
    pub call_ids: Vec<CallId>,
    pub attempt_log: Vec<AttemptRecord>,
    pub enrolled_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<EnrollmentRecord> for EnrollmentView {
    fn from(e: EnrollmentRecord) -> Self {
        Self {
            lead_id: e.lead_id,
            phone_e164: e.phone_e164,
            status: e.status,
            skip_reason: e.skip_reason,
            attempts: e.attempt_count,
            last_outcome: e.attempts.iter().rev().find_map(|a| a.outcome),
            next_attempt_at: e.next_attempt_at,
            call_ids: e
                .attempts
                .iter()
                .filter_map(|a| a.call_id.clone())
                .collect(),
            attempt_log: e.attempts,
            enrolled_at: e.enrolled_at,
            updated_at: e.updated_at,
        }
    }
}

/// `GET /campaigns/{id}/preview`: what start would enroll now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Leads matching the filter.
    pub matching: u32,
    /// Of those, the leads start would queue for dialing.
    pub would_dial: u32,
    /// The others, by reason: `do_not_call`, `invalid_phone`, `no_timezone`, `no_window`,
    /// `already_enrolled` (every reason is present, 0 when none).
    pub skipped: BTreeMap<String, u32>,
    /// The first instant one of them may be dialed (windows and calling hours).
    pub first_dial_at: Option<Timestamp>,
}

/// Whether `lead` may be enrolled in campaign `id` at `now`: the first instant it may be
/// dialed, or why it is skipped. Shared by the preview and the dialer's enrollment.
pub fn classify(
    lead: &LeadRecord,
    id: &CampaignId,
    schedule: &CampaignSchedule,
    blacklist: &[E164],
    now: DateTime<Utc>,
) -> std::result::Result<DateTime<Utc>, SkipReason> {
    if lead.status == LeadStatus::DoNotCall || blacklist.contains(&lead.phone_e164) {
        return Err(SkipReason::DoNotCall);
    }
    if lead.status == LeadStatus::Invalid {
        return Err(SkipReason::InvalidPhone);
    }
    if lead.timezones.is_empty() {
        return Err(SkipReason::NoTimezone);
    }
    if lead.active_campaign_id.as_ref().is_some_and(|c| c != id) {
        return Err(SkipReason::AlreadyEnrolled);
    }
    next_dial_at(schedule, &lead.timezones, now).ok_or(SkipReason::NoWindow)
}

fn check_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::invalid("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn check_pace(pace: Pace) -> Result<Pace> {
    Pacer::new(pace.calls_per_minute).map_err(|e| Error::invalid("pace.calls_per_minute", e))?;
    Ok(pace)
}

fn check_concurrency(calls: u32) -> Result<u32> {
    TelephonyPolicy::check_concurrency(calls).map_err(|e| Error::invalid("max_concurrent_calls", e))
}

/// The agent must be the establishment's and not archived, the version one of its
/// published versions.
async fn check_version(
    app: &App,
    est: &EstablishmentId,
    agent: &AgentId,
    version: &AgentVersionId,
) -> Result<()> {
    let (a, v) = app.store.agent_and_version(agent, version).await?;
    let a = a
        .filter(|a| &a.establishment_id == est)
        .ok_or_else(|| Error::NotFoundField {
            field: "agent_id",
            message: "no such agent in this establishment".into(),
        })?;
    if a.status == AgentStatus::Archived {
        return Err(Error::conflict_on("agent_id", "the agent is archived"));
    }
    let v = v.ok_or_else(|| Error::NotFoundField {
        field: "agent_version_id",
        message: "no such version of this agent".into(),
    })?;
    if v.status == VersionStatus::Draft {
        return Err(Error::unprocessable(
            "version_not_published",
            Some("agent_version_id"),
            "agent_version_id: a draft cannot run a campaign; publish it first",
        ));
    }
    Ok(())
}

/// The caller id, if given, must be an enabled Twilio number of the establishment.
async fn check_caller_id(app: &App, est: &EstablishmentId, from: &E164) -> Result<()> {
    match app.store.resolve_route(from).await? {
        Some(r)
            if &r.establishment_id == est
                && r.enabled
                && r.provider == crate::domain::NumberProvider::Twilio =>
        {
            Ok(())
        }
        _ => Err(Error::unprocessable(
            "invalid_caller_id",
            Some("from_e164"),
            "from_e164: not an enabled Twilio number of this establishment",
        )),
    }
}

fn audit(
    c: &CampaignRecord,
    user: &UserRecord,
    action: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> AuditRecord {
    AuditRecord::new(
        &c.establishment_id,
        user,
        action,
        ("campaign", c.id.as_str()),
        before,
        after,
    )
}

/// `POST /campaigns` (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %req.establishment_id))]
pub async fn create(app: &App, principal: &Principal, req: CreateCampaign) -> Result<CampaignView> {
    let name = check_name(&req.name)?;
    let pace = check_pace(req.pace)?;
    let max_concurrent_calls =
        check_concurrency(req.max_concurrent_calls.unwrap_or(DEFAULT_CONCURRENCY))?;
    let est = req.establishment_id.clone();
    let user = require_member(app, principal, &est, Role::Admin, "establishment").await?;
    check_version(app, &est, &req.agent_id, &req.agent_version_id).await?;
    if let Some(from) = &req.from_e164 {
        check_caller_id(app, &est, from).await?;
    }
    let now = Timestamp::now();
    let c = CampaignRecord {
        id: CampaignId::new(),
        establishment_id: est,
        name,
        agent_id: req.agent_id,
        agent_version_id: req.agent_version_id,
        lead_filter: req.lead_filter,
        pace,
        schedule: req.schedule,
        max_concurrent_calls,
        retry: req.retry.unwrap_or_default(),
        from_e164: req.from_e164,
        answering_machine_detection: req.answering_machine_detection,
        circuit_breaker: req.circuit_breaker.unwrap_or_default(),
        status: CampaignStatus::Created,
        paused_reason: None,
        progress: Progress::default(),
        enrolled_all: false,
        enrolled_through: None,
        last_dial_us: None,
        next_dial_at: None,
        last_error: None,
        dialing_leads: Vec::new(),
        recent_attempts: Vec::new(),
        breaker_failures: Vec::new(),
        tick_seq: 0,
        tick_due_ms: None,
        lease_token: None,
        lease_until_ms: None,
        created_by: user.id.clone(),
        created_at: now,
        updated_at: now,
        started_at: None,
        ended_at: None,
        version: 1,
    };
    let entry = audit(
        &c,
        &user,
        "campaign.created",
        serde_json::Value::Null,
        serde_json::json!({ "name": c.name, "agent_version_id": c.agent_version_id }),
    );
    app.store.create_campaign(&c, &entry).await?;
    Ok(c.into())
}

/// `GET /campaigns` (viewers and up): newest first.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn list(
    app: &App,
    principal: &Principal,
    params: CampaignListParams,
) -> Result<Page<CampaignView>> {
    let list = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = list.limit()?;
    let est = &params.establishment_id;
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    Ok(app
        .store
        .campaigns_page(est, params.status, limit, list.cursor.as_deref())
        .await?
        .map(CampaignView::from))
}

async fn member_campaign(
    app: &App,
    principal: &Principal,
    id: &CampaignId,
    role: Role,
) -> Result<(UserRecord, CampaignRecord)> {
    member_of(app, principal, app.store.campaign(id).await?, role).await
}

/// `GET /campaigns/{id}` (viewers and up), with its progress.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &CampaignId) -> Result<CampaignView> {
    Ok(member_campaign(app, principal, id, Role::Viewer)
        .await?
        .1
        .into())
}

/// `PATCH /campaigns/{id}` (admins), while `created` or `paused`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn update(
    app: &App,
    principal: &Principal,
    id: &CampaignId,
    req: UpdateCampaign,
) -> Result<CampaignView> {
    let mut sets: Vec<(&str, AttributeValue)> = Vec::new();
    let mut removes = Vec::new();
    if let Some(name) = &req.name {
        sets.push(("name", to_attr(&check_name(name)?)?));
    }
    if let Some(pace) = req.pace {
        sets.push(("pace", to_attr(&check_pace(pace)?)?));
    }
    if let Some(calls) = req.max_concurrent_calls {
        sets.push(("max_concurrent_calls", to_attr(&check_concurrency(calls)?)?));
    }
    if let Some(schedule) = &req.schedule {
        sets.push(("schedule", to_attr(schedule)?));
    }
    if let Some(retry) = &req.retry {
        sets.push(("retry", to_attr(retry)?));
    }
    if let Some(amd) = req.answering_machine_detection {
        sets.push(("answering_machine_detection", AttributeValue::Bool(amd)));
    }
    if let Some(breaker) = &req.circuit_breaker {
        sets.push(("circuit_breaker", to_attr(breaker)?));
    }
    let (user, c) = member_campaign(app, principal, id, Role::Admin).await?;
    if !matches!(c.status, CampaignStatus::Created | CampaignStatus::Paused) {
        return Err(Error::Conflict(format!(
            "the campaign is {}; only a created or paused campaign can be edited",
            c.status.as_str()
        )));
    }
    if let Some(filter) = &req.lead_filter {
        if c.status != CampaignStatus::Created {
            return Err(Error::conflict_on(
                "lead_filter",
                "leads were enrolled when the campaign started; the filter cannot change now",
            ));
        }
        sets.push(("lead_filter", to_attr(filter)?));
    }
    if let Some(version) = &req.agent_version_id {
        check_version(app, &c.establishment_id, &c.agent_id, version).await?;
        sets.push(("agent_version_id", to_attr(version)?));
    }
    match &req.from_e164 {
        Some(Some(from)) => {
            check_caller_id(app, &c.establishment_id, from).await?;
            sets.push(("from_e164", to_attr(from)?));
        }
        Some(None) => removes.push("from_e164"),
        None => {}
    }
    let changed: Vec<&str> = sets
        .iter()
        .map(|(k, _)| *k)
        .chain(removes.iter().copied())
        .collect();
    let entry = audit(
        &c,
        &user,
        "campaign.updated",
        serde_json::json!({ "version": c.version }),
        serde_json::json!({ "changed": changed }),
    );
    let from = [CampaignStatus::Created, CampaignStatus::Paused];
    change(app, &c, &from, &sets, &removes, &entry).await?;
    fresh(app, id).await
}

/// Applies a member's change (see `Store::update_campaign`); 409 when the campaign moved
/// meanwhile.
async fn change(
    app: &App,
    c: &CampaignRecord,
    from: &[CampaignStatus],
    sets: &[(&str, AttributeValue)],
    removes: &[&str],
    entry: &AuditRecord,
) -> Result<()> {
    if app
        .store
        .update_campaign(c, from, sets, removes, entry)
        .await?
    {
        Ok(())
    } else {
        Err(Error::Conflict(
            "the campaign changed meanwhile; read it again and retry".into(),
        ))
    }
}

async fn fresh(app: &App, id: &CampaignId) -> Result<CampaignView> {
    app.store
        .campaign(id)
        .await?
        .map(CampaignView::from)
        .ok_or(Error::NotFound("campaign"))
}

/// What start would enroll at `now`: every matching lead read, classified.
async fn preview_of(app: &App, c: &CampaignRecord, now: DateTime<Utc>) -> Result<Preview> {
    let est = app
        .store
        .establishment(&c.establishment_id)
        .await?
        .ok_or(Error::NotFound("establishment"))?;
    let mut preview = Preview {
        matching: 0,
        would_dial: 0,
        skipped: [
            SkipReason::DoNotCall,
            SkipReason::InvalidPhone,
            SkipReason::NoTimezone,
            SkipReason::NoWindow,
            SkipReason::AlreadyEnrolled,
        ]
        .into_iter()
        .map(|r| (r.as_str().to_owned(), 0))
        .collect(),
        first_dial_at: None,
    };
    let mut after: Option<String> = None;
    loop {
        let (leads, last) = app
            .store
            .leads_matching(
                &c.establishment_id,
                &c.lead_filter,
                after.as_deref(),
                PREVIEW_PAGE,
            )
            .await?;
        for lead in &leads {
            preview.matching += 1;
            match classify(lead, &c.id, &c.schedule, &est.telephony.blacklist_e164, now) {
                Ok(at) => {
                    preview.would_dial += 1;
                    let at = Timestamp::from_unix(at.timestamp());
                    if preview.first_dial_at.is_none() || at < preview.first_dial_at {
                        preview.first_dial_at = at;
                    }
                }
                Err(reason) => *preview.skipped.entry(reason.as_str().into()).or_default() += 1,
            }
        }
        match last {
            Some(last) => after = Some(last),
            None => return Ok(preview),
        }
    }
}

/// `GET /campaigns/{id}/preview` (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn preview(app: &App, principal: &Principal, id: &CampaignId) -> Result<Preview> {
    let (_, c) = member_campaign(app, principal, id, Role::Viewer).await?;
    preview_of(app, &c, Utc::now()).await
}

/// Queues a tick at the campaign's current chain number (a tick of an old number is
/// dropped by the dialer, so this never starts a second chain).
async fn wake(app: &App, id: &CampaignId) -> Result<()> {
    let Some(c) = app.store.campaign(id).await? else {
        return Ok(());
    };
    let tick = Tick {
        campaign_id: c.id,
        seq: c.tick_seq,
    };
    app.campaign_ticks()?.send(&tick).await?;
    Ok(())
}

/// `POST /campaigns/{id}/start` (operators and admins): starts a created campaign (enrolling
/// the leads that match its filter now; 422 with the preview when none would be dialed) or
/// resumes a paused one. Starting a running campaign changes nothing.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn start(app: &App, principal: &Principal, id: &CampaignId) -> Result<CampaignView> {
    let (user, c) = member_campaign(app, principal, id, Role::Operator).await?;
    let action = match c.status {
        CampaignStatus::Running => return Ok(c.into()),
        CampaignStatus::Completed | CampaignStatus::Cancelled => {
            return Err(Error::Conflict(format!(
                "the campaign is {}; it cannot start again",
                c.status.as_str()
            )));
        }
        CampaignStatus::Created => "campaign.started",
        CampaignStatus::Paused => "campaign.resumed",
    };
    check_version(app, &c.establishment_id, &c.agent_id, &c.agent_version_id).await?;
    let now = Timestamp::now();
    let mut sets: Vec<(&str, AttributeValue)> = vec![
        (
            "status",
            crate::store::s_attr(CampaignStatus::Running.as_str()),
        ),
        ("recent_attempts", AttributeValue::L(Vec::new())),
    ];
    sets.extend(Store::active_index(&c.id));
    if c.status == CampaignStatus::Created {
        let preview = preview_of(app, &c, now.into()).await?;
        if preview.would_dial == 0 {
            return Err(Error::UnprocessableWith {
                code: "no_leads_to_dial",
                message: format!(
                    "none of the {} leads matching the filter can be dialed; see details.preview",
                    preview.matching
                ),
                details: serde_json::json!({ "preview": preview }),
            });
        }
        sets.push(("started_at", to_attr(&now)?));
    }
    let removes = ["paused_reason", "breaker_failures", "last_error"];
    let entry = audit(
        &c,
        &user,
        action,
        serde_json::json!({ "status": c.status, "paused_reason": c.paused_reason }),
        serde_json::json!({ "status": CampaignStatus::Running }),
    );
    let from = [CampaignStatus::Created, CampaignStatus::Paused];
    change(app, &c, &from, &sets, &removes, &entry).await?;
    wake(app, id).await?;
    fresh(app, id).await
}

/// `POST /campaigns/{id}/pause` (operators and admins): no new dials; calls in flight end and
/// are counted. Pausing a paused campaign makes it an operator's pause.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn pause(app: &App, principal: &Principal, id: &CampaignId) -> Result<CampaignView> {
    let (user, c) = member_campaign(app, principal, id, Role::Operator).await?;
    if !matches!(c.status, CampaignStatus::Running | CampaignStatus::Paused) {
        return Err(Error::Conflict(format!(
            "the campaign is {}; only a running campaign can be paused",
            c.status.as_str()
        )));
    }
    let sets = [
        (
            "status",
            crate::store::s_attr(CampaignStatus::Paused.as_str()),
        ),
        ("paused_reason", to_attr(&PausedReason::Operator)?),
    ];
    let entry = audit(
        &c,
        &user,
        "campaign.paused",
        serde_json::json!({ "status": c.status }),
        serde_json::json!({ "status": CampaignStatus::Paused, "paused_reason": PausedReason::Operator }),
    );
    let from = [CampaignStatus::Running, CampaignStatus::Paused];
    change(app, &c, &from, &sets, &[], &entry).await?;
    fresh(app, id).await
}

/// `POST /campaigns/{id}/cancel` (admins): stops the campaign for good; calls in flight end
/// and are counted, leads still waiting are let go (`skipped`, `cancelled`).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn cancel(app: &App, principal: &Principal, id: &CampaignId) -> Result<CampaignView> {
    let (user, c) = member_campaign(app, principal, id, Role::Admin).await?;
    if c.status.is_final() {
        return Err(Error::Conflict(format!(
            "the campaign is already {}",
            c.status.as_str()
        )));
    }
    let sets = [
        (
            "status",
            crate::store::s_attr(CampaignStatus::Cancelled.as_str()),
        ),
        ("ended_at", to_attr(&Timestamp::now())?),
    ];
    let entry = audit(
        &c,
        &user,
        "campaign.cancelled",
        serde_json::json!({ "status": c.status }),
        serde_json::json!({ "status": CampaignStatus::Cancelled }),
    );
    let from = [
        CampaignStatus::Created,
        CampaignStatus::Running,
        CampaignStatus::Paused,
    ];
    change(app, &c, &from, &sets, &["paused_reason"], &entry).await?;
    if c.status != CampaignStatus::Created {
        wake(app, id).await?;
    }
    fresh(app, id).await
}

/// `GET /campaigns/{id}/enrollments` (viewers and up): the campaign's leads in lead order,
/// each with its attempts.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, campaign_id = %id))]
pub async fn enrollments(
    app: &App,
    principal: &Principal,
    id: &CampaignId,
    params: EnrollmentListParams,
) -> Result<Page<EnrollmentView>> {
    let list = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = list.limit()?;
    member_campaign(app, principal, id, Role::Viewer).await?;
    Ok(app
        .store
        .enrollments_page(id, params.status, limit, list.cursor.as_deref())
        .await?
        .map(EnrollmentView::from))
}
