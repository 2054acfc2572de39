//! Reports and the dashboard (PRD §7.7, D.3, issue 15). Every figure comes from the counters
//! of `store::reports`, never from reading calls: a call is counted ([`recount`]) by the
//! post-call worker after every job of it — the end of the call, however many times and by
//! whomever it was reported, and each analysis run — and a recount replaces the call's
//! previous contribution, so a call counts once. Reading a report costs one Query per MB of
//! aggregates: it grows with days, agents and versions, not with calls. The dashboard's KPIs
//! are cached for [`KPI_CACHE_SECS`] in the table, shared by every Lambda instance.

use super::access::require_member;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::analysis::{AnalysisStatus, SentimentLabel};
use crate::domain::report::{
    ByDirection, Counters, Figures, MAX_HOURLY_DAYS, Period, billed_minutes, counter,
    histogram_key, hour_key, local_day,
};
use crate::domain::{AnsweredBy, CampaignStatus, Direction, Role};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, AgentVersionId, CallId, EstablishmentId};
use crate::store::records::{
    AttentionRecord, CallRecord, EstablishmentRecord, ExportStatus, ReportMark,
};
use crate::store::{Aggregate, CacheRecord, Page, keys};
use crate::time::Timestamp;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a dashboard answer is served from the cache.
pub const KPI_CACHE_SECS: i64 = 15;
/// Recounts of one call tried before giving up (each lost race means another recount
/// just stored a newer state).
const RECOUNT_ATTEMPTS: usize = 5;

// ---------------------------------------------------------------------------------------
// Counting

/// The API spelling of a serde enum value.
fn spelling(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Why an ended call needs an operator's look (empty: it does not).
pub fn attention_reasons(call: &CallRecord) -> Vec<String> {
    let mut reasons = Vec::new();
    if call
        .sentiment
        .as_ref()
        .is_some_and(|s| s.label == SentimentLabel::Negative)
    {
        reasons.push("negative_sentiment");
    }
    if call
        .analysis
        .as_ref()
        .is_some_and(|a| a.status == AnalysisStatus::Failed)
    {
        reasons.push("analysis_failed");
    }
    if call.handoff.is_some() {
        reasons.push("handoff");
    }
    if call.runtime_errors > 0 {
        reasons.push("runtime_error");
    }
    if call.swept_at.is_some() {
        reasons.push("swept");
    }
    reasons.into_iter().map(str::to_owned).collect()
}

/// What an ended call adds to the aggregates; `None` while it is live.
pub fn mark(call: &CallRecord, zone: Tz) -> Option<ReportMark> {
    use counter::*;
    let status = call.final_status?;
    let mut c = Counters::default();
    c.one(CALLS);
    c.one(match call.direction {
        Direction::Inbound => INBOUND,
        Direction::Outbound => OUTBOUND,
    });
    if call.started_at.is_some() {
        c.one(ANSWERED);
    }
    c.one(&format!("{STATUS_PREFIX}{}", status.as_str()));
    if status == crate::domain::CallStatus::Completed {
        c.one(COMPLETED);
    }
    c.one(&format!(
        "{DISPOSITION_PREFIX}{}",
        spelling(&call.disposition)
    ));
    if let Some(secs) = call.duration_seconds {
        c.one(WITH_DURATION);
        c.add(DURATION_SUM, i64::from(secs));
        c.one(&histogram_key(secs));
        c.add(
            match call.direction {
                Direction::Inbound => MINUTES_INBOUND,
                Direction::Outbound => MINUTES_OUTBOUND,
            },
            billed_minutes(secs),
        );
    }
    if call.handoff.is_some() {
        c.one(HANDOFFS);
    }
    if call.direction == Direction::Outbound && call.answered_by.is_some_and(AnsweredBy::is_machine)
    {
        c.one(VOICEMAIL);
    }
    if let Some(analysis) = &call.analysis {
        match analysis.status {
            AnalysisStatus::Succeeded => {
                c.one(ANALYSED);
                match analysis.success {
                    Some(true) => c.one(SUCCESS_YES),
                    Some(false) => c.one(SUCCESS_NO),
                    None => {}
                }
            }
            AnalysisStatus::Failed => c.one(ANALYSIS_FAILED),
            _ => {}
        }
    }
    if let Some(sentiment) = &call.sentiment {
        c.one(match sentiment.label {
            SentimentLabel::Positive => POSITIVE,
            SentimentLabel::Neutral => NEUTRAL,
            SentimentLabel::Negative => NEGATIVE,
        });
        c.add(SENTIMENT_MILLI, (sentiment.score * 1000.0).round() as i64);
    }
    c.add(TOOL_CALLS, i64::from(call.tool_calls));
    c.add(TOOL_ERRORS, i64::from(call.tool_errors));
    if call.runtime_errors > 0 {
        c.one(RUNTIME_ERRORS);
    }
    if call.swept_at.is_some() {
        c.one(SWEPT);
    }
    if call.campaign_id.is_some() {
        c.one(CAMPAIGN);
    }
    let reasons = attention_reasons(call);
    let attention = (!reasons.is_empty()).then(|| {
        c.one(ATTENTION);
        AttentionRecord {
            call_id: call.id.clone(),
            agent_id: call.agent_id.clone(),
            agent_version_id: call.agent_version_id.clone(),
            direction: call.direction,
            from_e164: call.from_e164.clone(),
            to_e164: call.to_e164.clone(),
            status,
            created_at: call.created_at,
            ended_at: call.ended_at.unwrap_or(call.updated_at),
            duration_seconds: call.duration_seconds,
            reasons,
            summary: call.summary.clone(),
        }
    });
    let began: DateTime<Utc> = call.created_at.into();
    Some(ReportMark {
        day: local_day(zone, began).to_string(),
        hour: hour_key(began),
        agent_id: call.agent_id.clone(),
        agent_version_id: call.agent_version_id.clone(),
        counters: c,
        attention,
    })
}

/// Counts call `id` as it is now: replaces what it added to the aggregates before (nothing,
/// the first time) by what it adds now, in one transaction; `Ok(false)` when nothing changed
/// (one read). Safe to run any number of times, concurrently included.
#[tracing::instrument(skip_all, fields(call_id = %id))]
pub async fn recount(app: &App, id: &CallId, est: &EstablishmentId) -> Result<bool> {
    for _ in 0..RECOUNT_ATTEMPTS {
        let (call, establishment) = app.store.call_and_establishment(id, est).await?;
        let (Some(call), Some(establishment)) = (call, establishment) else {
            return Err(Error::NotFound("call"));
        };
        if call.establishment_id != *est {
            return Err(Error::NotFound("call"));
        }
        let next = mark(&call, establishment.timezone.tz());
        if next == call.report {
            return Ok(false);
        }
        if app.store.recount_call(&call, next.as_ref()).await? {
            tracing::info!(
                attention = next.as_ref().is_some_and(|m| m.attention.is_some()),
                "call counted in the reports"
            );
            return Ok(true);
        }
    }
    Err(Error::Unavailable(
        "the call kept changing while it was counted; retry".into(),
    ))
}

/// `callplane-admin backfill-reports`: counts every ended call of establishment `est` (calls
/// from before the aggregates existed, or after a change of how calls are counted); answers
/// how many calls were read and how many changed the aggregates.
pub async fn backfill(app: &App, est: &EstablishmentId) -> Result<(u64, u64)> {
    let (mut read, mut changed) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let page = app
            .store
            .call_history_of(
                std::slice::from_ref(est),
                &crate::store::CallFilter::default(),
                100,
                cursor.as_deref(),
            )
            .await?;
        for call in &page.items {
            read += 1;
            if call.final_status.is_some() {
                changed += u64::from(recount(app, &call.id, est).await?);
            }
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((read, changed)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// The establishment, if the caller's role in it allows `role` (404 for non-members).
async fn establishment(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    role: Role,
) -> Result<EstablishmentRecord> {
    require_member(app, principal, est, role, "establishment").await?;
    app.store
        .establishment(est)
        .await?
        .ok_or(Error::NotFound("establishment"))
}

fn period(
    zone: Tz,
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    default_range: &str,
) -> Result<Period> {
    Period::parse(zone, range, from, to, Utc::now(), default_range)
        .map_err(|(field, why)| Error::invalid(field, why))
}

/// The day aggregates of `period` (optionally of one agent).
async fn days(
    app: &App,
    est: &EstablishmentId,
    period: &Period,
    agent: Option<&AgentId>,
) -> Result<Vec<Aggregate>> {
    app.store
        .aggregates(
            est,
            keys::REPORT_DAY_PREFIX,
            &period.from.to_string(),
            &period.to.to_string(),
            agent,
        )
        .await
}

/// The hour aggregates of `period`'s exact instants.
async fn hours(
    app: &App,
    est: &EstablishmentId,
    period: &Period,
    agent: Option<&AgentId>,
) -> Result<Vec<Aggregate>> {
    let last = period.end - chrono::Duration::seconds(1);
    app.store
        .aggregates(
            est,
            keys::REPORT_HOUR_PREFIX,
            &hour_key(period.start),
            &hour_key(last),
            agent,
        )
        .await
}

/// The sum of `aggregates` per period (day or hour).
fn per_period(aggregates: &[Aggregate]) -> BTreeMap<String, Counters> {
    let mut sums: BTreeMap<String, Counters> = BTreeMap::new();
    for a in aggregates {
        sums.entry(a.period.clone())
            .or_default()
            .merge(&a.counters, 1);
    }
    sums
}

fn total<'a>(aggregates: impl IntoIterator<Item = &'a Aggregate>) -> Counters {
    total_of(aggregates.into_iter().map(|a| &a.counters))
}

/// The period a report covered, as its answer states it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeriodView {
    /// First local day.
    pub from: String,
    /// Last local day (inclusive).
    pub to: String,
    /// The establishment's zone the days are in.
    pub time_zone: String,
    /// The first instant covered.
    pub start: Timestamp,
    /// The first instant after the period.
    pub end: Timestamp,
}

fn stamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix(at.timestamp()).unwrap_or_else(Timestamp::now)
}

impl From<&Period> for PeriodView {
    fn from(p: &Period) -> Self {
        Self {
            from: p.from.to_string(),
            to: p.to.to_string(),
            time_zone: p.zone.name().to_owned(),
            start: stamp(p.start),
            end: stamp(p.end),
        }
    }
}

// -- Dashboard ----------------------------------------------------------------------------

/// `GET /dashboard/kpis` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiParams {
    pub establishment_id: EstablishmentId,
    /// `today` (default), `7d` or `30d`.
    #[param(pattern = "^(today|7d|30d)$")]
    pub range: Option<String>,
}

/// One hour of today.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HourCount {
    /// The hour's start.
    pub start: Timestamp,
    pub calls: u64,
    pub answered: u64,
}

/// The dashboard's KPIs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Kpis {
    pub establishment_id: EstablishmentId,
    pub range: String,
    pub period: PeriodView,
    /// Calls live now.
    pub active_calls: u64,
    /// Campaigns running now.
    pub campaigns_running: u64,
    /// The ended calls of the period (`calls` is their total).
    #[serde(flatten)]
    pub figures: Figures,
    /// Today's calls by hour (with `range=today`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_hour: Vec<HourCount>,
    /// When these figures were computed; answers within 15 s of it are served from the cache.
    pub computed_at: Timestamp,
}

/// `GET /dashboard/kpis` (viewers and up): served from the shared cache when it was computed
/// in the last [`KPI_CACHE_SECS`] seconds.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn kpis(app: &App, principal: &Principal, params: KpiParams) -> Result<Kpis> {
    let est = &params.establishment_id;
    let range = params.range.as_deref().unwrap_or("today");
    if !["today", "7d", "30d"].contains(&range) {
        return Err(Error::invalid(
            "range",
            format!("unknown range `{range}`; one of today, 7d, 30d"),
        ));
    }
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    let name = format!("kpis:{range}");
    let (establishment, cached) = app.store.cached(est, &name).await?;
    let establishment = establishment.ok_or(Error::NotFound("establishment"))?;
    let now = Timestamp::now_millis();
    if let Some(hit) = cached.filter(|c| c.fresh_until_ms > now)
        && let Ok(kpis) = serde_json::from_str::<Kpis>(&hit.body)
    {
        return Ok(kpis);
    }
    let zone = establishment.timezone.tz();
    let period = Period::named(zone, range, Utc::now()).map_err(|e| Error::invalid("range", e))?;
    let (aggregates, today, active_calls, campaigns_running) = tokio::try_join!(
        days(app, est, &period, None),
        async {
            if range == "today" {
                hours(app, est, &period, None).await
            } else {
                Ok(Vec::new())
            }
        },
        app.store.live_call_count(est),
        running_campaigns(app, est),
    )?;
    let mut by_hour = per_period(&today);
    let by_hour = period
        .each_hour()
        .filter(|h| *h <= Utc::now())
        .map(|h| {
            let c = by_hour.remove(&hour_key(h)).unwrap_or_default();
            HourCount {
                start: stamp(h),
                calls: c.get(counter::CALLS).max(0) as u64,
                answered: c.get(counter::ANSWERED).max(0) as u64,
            }
        })
        .collect();
    let kpis = Kpis {
        establishment_id: est.clone(),
        range: range.to_owned(),
        period: (&period).into(),
        active_calls,
        campaigns_running,
        figures: Figures::from(&total(&aggregates)),
        by_hour,
        computed_at: Timestamp::now(),
    };
    let record = CacheRecord {
        body: serde_json::to_string(&kpis).map_err(Error::internal)?,
        fresh_until_ms: now + KPI_CACHE_SECS * 1000,
        expires_at: Timestamp::now().unix() + 3600,
    };
    // The answer stands even if it could not be cached.
    if let Err(e) = app.store.cache(est, &name, &record).await {
        tracing::warn!(error = %e, "dashboard answer not cached");
    }
    Ok(kpis)
}

async fn running_campaigns(app: &App, est: &EstablishmentId) -> Result<u64> {
    let (mut count, mut cursor) = (0, None::<String>);
    loop {
        let page = app
            .store
            .campaigns_page(est, Some(CampaignStatus::Running), 100, cursor.as_deref())
            .await?;
        count += page.items.len() as u64;
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}

/// `GET /dashboard/needs-attention` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttentionParams {
    pub establishment_id: EstablishmentId,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// `GET /dashboard/needs-attention` (viewers and up): ended calls with a negative sentiment,
/// a failed analysis, a handoff, a runtime error or an end the sweeper had to make, newest
/// first.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn needs_attention(
    app: &App,
    principal: &Principal,
    params: AttentionParams,
) -> Result<Page<AttentionRecord>> {
    let list = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = list.limit()?;
    let est = &params.establishment_id;
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    app.store
        .attention_page(est, limit, list.cursor.as_deref())
        .await
}

// -- Agent performance --------------------------------------------------------------------

/// How agent performance is grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PerformanceGroup {
    Agent,
    Version,
    Day,
}

/// `GET /reports/agent-performance` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PerformanceParams {
    pub establishment_id: EstablishmentId,
    /// `today`, `7d`, `30d` (default) or `90d`; or give `from` and `to`.
    #[param(pattern = "^(today|7d|30d|90d)$")]
    pub range: Option<String>,
    /// A date (`YYYY-MM-DD`, local) or an RFC 3339 instant.
    pub from: Option<String>,
    /// A date (inclusive) or an RFC 3339 instant (exclusive); at most 366 days after `from`.
    pub to: Option<String>,
    pub agent_id: Option<AgentId>,
    /// `agent` (default), `version` or `day`.
    pub group_by: Option<PerformanceGroup>,
}

/// One day of a series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The local day.
    pub day: String,
    pub calls: u64,
    pub answered: u64,
    pub average_duration_seconds: Option<f64>,
    pub handoff_rate: Option<f64>,
    pub success_rate: Option<f64>,
    pub average_sentiment: Option<f64>,
}

/// One group of an agent-performance report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PerformanceRow {
    /// The agent (absent with `group_by=day`).
    pub agent_id: Option<AgentId>,
    pub agent_name: Option<String>,
    /// The version (with `group_by=version`; `null` there for calls no version took).
    pub agent_version_id: Option<AgentVersionId>,
    /// The local day (with `group_by=day`).
    pub day: Option<String>,
    pub figures: Figures,
    /// The group's figures day by day over the period (not with `group_by=day`).
    pub series: Vec<SeriesPoint>,
}

/// `GET /reports/agent-performance`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentPerformance {
    pub establishment_id: EstablishmentId,
    pub period: PeriodView,
    pub group_by: PerformanceGroup,
    pub rows: Vec<PerformanceRow>,
}

/// `GET /reports/agent-performance` (viewers and up): per agent, version or day.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn agent_performance(
    app: &App,
    principal: &Principal,
    params: PerformanceParams,
) -> Result<AgentPerformance> {
    let est = &params.establishment_id;
    let establishment = establishment(app, principal, est, Role::Viewer).await?;
    let period = period(
        establishment.timezone.tz(),
        params.range.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        "30d",
    )?;
    let names = agent_names(app, est).await?;
    if let Some(agent) = &params.agent_id
        && !names.contains_key(agent)
    {
        return Err(Error::NotFound("agent"));
    }
    let group_by = params.group_by.unwrap_or(PerformanceGroup::Agent);
    let aggregates = days(app, est, &period, params.agent_id.as_ref()).await?;
    type GroupKey = (Option<AgentId>, Option<AgentVersionId>, Option<String>);
    let mut groups: BTreeMap<GroupKey, BTreeMap<String, Counters>> = BTreeMap::new();
    for a in aggregates {
        let key = match group_by {
            PerformanceGroup::Agent => (Some(a.agent_id), None, None),
            PerformanceGroup::Version => (Some(a.agent_id), a.agent_version_id, None),
            PerformanceGroup::Day => (None, None, Some(a.period.clone())),
        };
        groups
            .entry(key)
            .or_default()
            .entry(a.period)
            .or_default()
            .merge(&a.counters, 1);
    }
    let rows = groups
        .into_iter()
        .map(|((agent_id, agent_version_id, day), by_day)| {
            let figures = Figures::from(&total_of(by_day.values()));
            let series = if group_by == PerformanceGroup::Day {
                Vec::new()
            } else {
                period
                    .each_day()
                    .map(|d| {
                        let day = d.to_string();
                        let f = by_day.get(&day).map(Figures::from).unwrap_or_default();
                        SeriesPoint {
                            day,
                            calls: f.calls,
                            answered: f.answered,
                            average_duration_seconds: f.average_duration_seconds,
                            handoff_rate: f.handoff_rate,
                            success_rate: f.success_rate,
                            average_sentiment: f.sentiment.average_score,
                        }
                    })
                    .collect()
            };
            PerformanceRow {
                agent_name: agent_id.as_ref().and_then(|a| names.get(a).cloned()),
                agent_id,
                agent_version_id,
                day,
                figures,
                series,
            }
        })
        .collect();
    Ok(AgentPerformance {
        establishment_id: est.clone(),
        period: (&period).into(),
        group_by,
        rows,
    })
}

fn total_of<'a>(counters: impl IntoIterator<Item = &'a Counters>) -> Counters {
    let mut sum = Counters::default();
    for c in counters {
        sum.merge(c, 1);
    }
    sum
}

/// The establishment's agents' names (archived ones included).
async fn agent_names(app: &App, est: &EstablishmentId) -> Result<BTreeMap<AgentId, String>> {
    let mut names = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = app.store.agents_of(est, 100, cursor.as_deref()).await?;
        names.extend(page.items.into_iter().map(|a| (a.id, a.name.to_string())));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(names),
        }
    }
}

// -- Calls report -------------------------------------------------------------------------

/// How the calls report is grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallsGroup {
    Day,
    Hour,
    Status,
    Direction,
    Disposition,
}

/// `GET /reports/calls` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallsReportParams {
    pub establishment_id: EstablishmentId,
    /// `today`, `7d` (default), `30d` or `90d`; or give `from` and `to`.
    #[param(pattern = "^(today|7d|30d|90d)$")]
    pub range: Option<String>,
    /// A date (`YYYY-MM-DD`, local) or an RFC 3339 instant.
    pub from: Option<String>,
    /// A date (inclusive) or an RFC 3339 instant (exclusive).
    pub to: Option<String>,
    /// `day` (default), `hour` (periods of at most 31 days), `status`, `direction` or
    /// `disposition`.
    pub group_by: Option<CallsGroup>,
}

/// One group of the calls report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallsGroupRow {
    /// The local day, the hour's start (RFC 3339), or the status, direction or disposition.
    pub key: String,
    pub calls: u64,
    /// Every figure of the group (for `day` and `hour`).
    pub figures: Option<Figures>,
}

/// `GET /reports/calls`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallsReport {
    pub establishment_id: EstablishmentId,
    pub period: PeriodView,
    pub group_by: CallsGroup,
    /// The whole period (`duration_buckets` gives the length breakdown).
    pub totals: Figures,
    pub groups: Vec<CallsGroupRow>,
}

/// `GET /reports/calls` (viewers and up): volume over time and the breakdowns.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn calls(
    app: &App,
    principal: &Principal,
    params: CallsReportParams,
) -> Result<CallsReport> {
    let est = &params.establishment_id;
    let establishment = establishment(app, principal, est, Role::Viewer).await?;
    let period = period(
        establishment.timezone.tz(),
        params.range.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        "7d",
    )?;
    let group_by = params.group_by.unwrap_or(CallsGroup::Day);
    if group_by == CallsGroup::Hour && (period.to - period.from).num_days() >= MAX_HOURLY_DAYS {
        return Err(Error::invalid(
            "group_by",
            format!("`hour` covers at most {MAX_HOURLY_DAYS} days; ask a shorter period or `day`"),
        ));
    }
    let aggregates = if group_by == CallsGroup::Hour {
        hours(app, est, &period, None).await?
    } else {
        days(app, est, &period, None).await?
    };
    let by_period = per_period(&aggregates);
    let totals = Figures::from(&total(&aggregates));
    let row = |key: String, c: Option<&Counters>| {
        let figures = c.map(Figures::from).unwrap_or_default();
        CallsGroupRow {
            key,
            calls: figures.calls,
            figures: Some(figures),
        }
    };
    let counts = |map: &BTreeMap<String, u64>| -> Vec<CallsGroupRow> {
        map.iter()
            .map(|(k, v)| CallsGroupRow {
                key: k.clone(),
                calls: *v,
                figures: None,
            })
            .collect()
    };
    let groups = match group_by {
        CallsGroup::Day => period
            .each_day()
            .map(|d| row(d.to_string(), by_period.get(&d.to_string())))
            .collect(),
        CallsGroup::Hour => period
            .each_hour()
            .map(|h| {
                let local = h.with_timezone(&period.zone).to_rfc3339();
                row(local, by_period.get(&hour_key(h)))
            })
            .collect(),
        CallsGroup::Status => counts(&totals.by_status),
        CallsGroup::Disposition => counts(&totals.by_disposition),
        CallsGroup::Direction => counts(&BTreeMap::from([
            ("inbound".to_owned(), totals.inbound),
            ("outbound".to_owned(), totals.outbound),
        ])),
    };
    Ok(CallsReport {
        establishment_id: est.clone(),
        period: (&period).into(),
        group_by,
        totals,
        groups,
    })
}

// -- Usage (the billing stub) ---------------------------------------------------------------

/// `GET /establishments/{id}/usage` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// `YYYY-MM` (default: this month, local).
    #[param(pattern = r"^\d{4}-\d{2}$")]
    pub month: Option<String>,
}

/// One day of usage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageDay {
    pub day: String,
    pub calls: ByDirection,
    pub billed_minutes: ByDirection,
}

/// `GET /establishments/{id}/usage`: what billing would charge (a stub: no prices yet).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub establishment_id: EstablishmentId,
    pub month: String,
    pub period: PeriodView,
    /// Always `stub`: billing is not built yet.
    pub plan: String,
    pub calls: ByDirection,
    /// Each call's length rounded up to the minute, as Twilio bills.
    pub billed_minutes: ByDirection,
    /// Every day of the month.
    pub days: Vec<UsageDay>,
}

/// `GET /establishments/{id}/usage` (admin).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn usage(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: UsageParams,
) -> Result<Usage> {
    let establishment = establishment(app, principal, est, Role::Admin).await?;
    let zone = establishment.timezone.tz();
    let month = match params.month {
        Some(m) => m,
        None => local_day(zone, Utc::now()).format("%Y-%m").to_string(),
    };
    let period = Period::month(zone, &month).map_err(|e| Error::invalid("month", e))?;
    let aggregates = days(app, est, &period, None).await?;
    let mut by_day = per_period(&aggregates);
    let split = |c: &Counters| {
        let f = Figures::from(c);
        (
            ByDirection {
                inbound: f.inbound,
                outbound: f.outbound,
            },
            f.billed_minutes,
        )
    };
    let (calls, billed_minutes) = split(&total(&aggregates));
    let days = period
        .each_day()
        .map(|d| {
            let day = d.to_string();
            let (calls, billed_minutes) = split(&by_day.remove(&day).unwrap_or_default());
            UsageDay {
                day,
                calls,
                billed_minutes,
            }
        })
        .collect();
    Ok(Usage {
        establishment_id: est.clone(),
        month,
        period: (&period).into(),
        plan: "stub".into(),
        calls,
        billed_minutes,
        days,
    })
}

// -- Calls export ---------------------------------------------------------------------------

/// The `job` of a calls export on the summary queue (the post-call worker makes it).
pub const EXPORT_JOB: &str = "calls_export";
/// Where exports are written in the bucket: `exports/{est}/{export_id}.csv`.
pub const EXPORTS_PREFIX: &str = "exports/";
/// The same request within this many seconds (same caller, establishment and period) finds
/// the same export instead of starting another.
const EXPORT_REUSE_SECS: i64 = 300;
/// How long a download URL works.
const EXPORT_URL_TTL_SECS: u64 = 900;
/// Most calls one export holds; a larger period is refused with the count.
pub const MAX_EXPORT_ROWS: u64 = 100_000;
/// The CSV's columns.
pub const EXPORT_COLUMNS: &[&str] = &[
    "call_id",
    "created_at",
    "started_at",
    "ended_at",
    "direction",
    "from_e164",
    "to_e164",
    "agent_id",
    "agent_version_id",
    "status",
    "disposition",
    "duration_seconds",
    "sentiment",
    "sentiment_score",
    "success",
    "summary",
    "lead_id",
    "campaign_id",
];

/// `GET /reports/calls/export` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    pub establishment_id: EstablishmentId,
    /// `today`, `7d` (default), `30d` or `90d`; or give `from` and `to`.
    #[param(pattern = "^(today|7d|30d|90d)$")]
    pub range: Option<String>,
    /// A date (`YYYY-MM-DD`, local) or an RFC 3339 instant.
    pub from: Option<String>,
    /// A date (inclusive) or an RFC 3339 instant (exclusive).
    pub to: Option<String>,
}

/// A calls export: poll the same request until it is `ready`, then download the CSV.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    pub export_id: String,
    pub status: ExportStatus,
    /// First and last local day, and the exact instants.
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Calls in the file, once ready.
    pub rows: Option<u64>,
    /// A presigned GET of the CSV (once ready), valid until `download_expires_at`.
    pub download_url: Option<String>,
    pub download_expires_at: Option<Timestamp>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: Timestamp,
}

/// The message of an export job.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportJob {
    pub job: String,
    pub establishment_id: EstablishmentId,
    pub export_id: String,
}

/// `GET /reports/calls/export` (viewers and up): the caller's export of the calls that began
/// in the period; the first request starts it (one job on the post-call queue), the same
/// request within 5 minutes answers the same export, with its download URL once ready.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn export(app: &App, principal: &Principal, params: ExportParams) -> Result<ExportView> {
    let est = &params.establishment_id;
    let establishment = establishment(app, principal, est, Role::Viewer).await?;
    let period = period(
        establishment.timezone.tz(),
        params.range.as_deref(),
        params.from.as_deref(),
        params.to.as_deref(),
        "7d",
    )?;
    let now = Timestamp::now();
    let id = {
        use sha2::Digest;
        let seed = format!(
            "{est}|{}|{}|{}|{}",
            principal.user_id,
            period.start.timestamp(),
            period.end.timestamp(),
            now.unix() / EXPORT_REUSE_SECS
        );
        let digest = sha2::Sha256::digest(seed.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("exp_{hex}")
    };
    if let Some(existing) = app.store.export(est, &id).await? {
        return export_view(app, existing).await;
    }
    let record = crate::store::records::ExportRecord {
        export_id: id.clone(),
        establishment_id: est.clone(),
        requested_by: principal.user_id.clone(),
        start: stamp(period.start),
        end: stamp(period.end),
        from: period.from.to_string(),
        to: period.to.to_string(),
        time_zone: period.zone.name().to_owned(),
        status: ExportStatus::Pending,
        rows: None,
        bytes: None,
        object_key: None,
        error: None,
        created_at: now,
        finished_at: None,
        expires_at: now.unix() + 86_400,
    };
    if !app.store.create_export(&record).await? {
        // A concurrent identical request created it first.
        let existing = app.store.export(est, &id).await?;
        return export_view(app, existing.ok_or(Error::NotFound("export"))?).await;
    }
    let job = ExportJob {
        job: EXPORT_JOB.into(),
        establishment_id: est.clone(),
        export_id: id,
    };
    app.summary_jobs()?
        .send(&job)
        .await
        .map_err(|_| Error::Unavailable("the export queue is unavailable; retry".into()))?;
    export_view(app, record).await
}

async fn export_view(app: &App, e: crate::store::records::ExportRecord) -> Result<ExportView> {
    let (download_url, download_expires_at) = match (&e.object_key, e.status) {
        (Some(key), ExportStatus::Ready) => (
            Some(
                app.blobs
                    .presigned_get(key, std::time::Duration::from_secs(EXPORT_URL_TTL_SECS))
                    .await?,
            ),
            Some(Timestamp::now().plus_secs(EXPORT_URL_TTL_SECS as i64)),
        ),
        _ => (None, None),
    };
    Ok(ExportView {
        export_id: e.export_id,
        status: e.status,
        from: e.from,
        to: e.to,
        time_zone: e.time_zone,
        start: e.start,
        end: e.end,
        rows: e.rows,
        download_url,
        download_expires_at,
        error: e.error,
        created_at: e.created_at,
    })
}

/// A cell a spreadsheet would not run as a formula: text starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading `'` (OWASP's advice), except a phone number
/// (`+` and digits) and a plain number.
pub fn neutralised(cell: &str) -> String {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let phone =
        cell.len() > 1 && cell[1..].bytes().all(|b| b.is_ascii_digit()) && cell.starts_with('+');
    let number = cell.parse::<f64>().is_ok_and(f64::is_finite) && !cell.starts_with('+');
    if risky && !phone && !number {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

fn export_row(c: &CallRecord) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        c.id.to_string(),
        c.created_at.to_string(),
        opt(c.started_at.map(|t| t.to_string())),
        opt(c.ended_at.map(|t| t.to_string())),
        spelling(&c.direction),
        c.from_e164.clone(),
        c.to_e164.clone(),
        c.agent_id.to_string(),
        opt(c.agent_version_id.as_ref().map(ToString::to_string)),
        c.status.as_str().to_owned(),
        spelling(&c.disposition),
        opt(c.duration_seconds.map(|d| d.to_string())),
        opt(c.sentiment.as_ref().map(|s| spelling(&s.label))),
        opt(c.sentiment.as_ref().map(|s| s.score.to_string())),
        opt(c
            .analysis
            .as_ref()
            .and_then(|a| a.success)
            .map(|s| s.to_string())),
        opt(c.summary.clone()),
        opt(c.lead_id.clone()),
        opt(c.campaign_id.as_ref().map(ToString::to_string)),
    ]
    .into_iter()
    .map(|cell| neutralised(&cell))
    .collect()
}

/// The export `job` asks for (the post-call worker): reads the calls that began in its period
/// page by page, writes the CSV to the bucket, and marks the export ready; a no-op once it
/// is not pending.
#[tracing::instrument(skip_all, fields(export_id = %job.export_id))]
pub async fn run_export(app: &App, job: &ExportJob) -> Result<()> {
    let Some(mut export) = app
        .store
        .export(&job.establishment_id, &job.export_id)
        .await?
    else {
        tracing::info!("no such export (expired?)");
        return Ok(());
    };
    if export.status != ExportStatus::Pending {
        return Ok(());
    }
    let filter = crate::store::CallFilter {
        from: Some(export.start),
        to: Some(export.end.plus_secs(-1)),
        ..Default::default()
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(EXPORT_COLUMNS).map_err(Error::internal)?;
    let (mut rows, mut cursor) = (0u64, None::<String>);
    let mut too_many = false;
    loop {
        let page = app
            .store
            .call_history_of(
                std::slice::from_ref(&export.establishment_id),
                &filter,
                100,
                cursor.as_deref(),
            )
            .await?;
        for call in &page.items {
            rows += 1;
            if rows > MAX_EXPORT_ROWS {
                too_many = true;
                break;
            }
            out.write_record(export_row(call))
                .map_err(Error::internal)?;
        }
        match page.cursor {
            Some(next) if !too_many => cursor = Some(next),
            _ => break,
        }
    }
    export.finished_at = Some(Timestamp::now());
    if too_many {
        export.status = ExportStatus::Failed;
        export.error = Some(format!(
            "more than {MAX_EXPORT_ROWS} calls began in this period; export a shorter one"
        ));
    } else {
        let body = out.into_inner().map_err(Error::internal)?;
        let key = format!(
            "{EXPORTS_PREFIX}{}/{}.csv",
            export.establishment_id, export.export_id
        );
        export.bytes = Some(body.len() as u64);
        app.blobs.put(&key, body, "text/csv; charset=utf-8").await?;
        export.status = ExportStatus::Ready;
        export.rows = Some(rows);
        export.object_key = Some(key);
    }
    app.store.finish_export(&export).await?;
    tracing::info!(rows, status = ?export.status, "calls export finished");
    Ok(())
}
