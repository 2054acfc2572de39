//! Post-call analysis (PRD §9.2, §10, D.4 job 1): the job the end of a call queues, the
//! worker step that claims a run, reads what the analyzer needs and stores the outcome, and
//! the re-run an operator asks for. A run is idempotent: the call's `analysis.run_id` names
//! the request a job serves, every write is conditioned on the state the worker read, and a
//! finished run (succeeded, failed, skipped) makes every later job for it a no-op, so a
//! redelivered or duplicated job never calls the analyzer twice or writes anything new.

use crate::analysis::{Analyzer, Input};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::analysis::{Analysis, AnalysisSection, AnalysisStatus};
use crate::domain::event::Party;
use crate::domain::{AnsweredBy, Role};
use crate::error::{Error, Result};
use crate::ids::{CallId, EstablishmentId};
use crate::store::records::{CallRecord, EventRecord, SegmentRecord};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Runs of one request before it is recorded as failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a worker holds a run it claimed: longer than the worker's timeout, shorter than
/// the queue's visibility timeout, so a redelivery after a crash finds the lease expired.
pub const LEASE_SECS: i64 = 120;
/// Calls shorter than this are skipped (`too_short`).
pub const MIN_ANALYSED_SECONDS: u32 = 5;
/// The run an ended call's own job serves (a re-run gets a fresh id).
pub const END_RUN: &str = "end";
/// How long the job queued by the provider's end of a call waits (the runtime's own end and
/// last transcript segments normally arrive within seconds of the provider's).
pub const PROVIDER_END_DELAY_SECS: i32 = 20;
/// Most segments and tool events read for one analysis (a two-hour call has ~2,000).
const MAX_ITEMS: usize = 10_000;

/// The `job` of the post-call analysis.
pub const POST_CALL_JOB: &str = "post_call";
/// The `job` of a live-sentiment nudge (on the live-sentiment FIFO queue).
pub const LIVE_JOB: &str = "live_sentiment";
/// A live call's sentiment is computed at most once per slot of this many seconds: the
/// ingest function's nudges carry the slot in their deduplication id, and the queue delays
/// each message by as much, so one computation follows each slot with customer turns.
pub const LIVE_SLOT_SECS: i64 = 5;

/// The message on the summary queue (and, with `job: live_sentiment`, on the live queue).
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    /// [`POST_CALL_JOB`], [`LIVE_JOB`] or `recordings::COPY_JOB`.
    pub job: String,
    pub call_id: CallId,
    pub establishment_id: EstablishmentId,
    /// The request it serves: [`END_RUN`] or a re-run's id.
    #[serde(default = "end_run")]
    pub run_id: String,
}

fn end_run() -> String {
    END_RUN.to_owned()
}

impl Job {
    /// The post-call job of `run_id` on `call`.
    pub fn new(call: &CallRecord, run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            ..Self::of(POST_CALL_JOB, &call.id, &call.establishment_id)
        }
    }

    /// Job `kind` on call `call_id` of `establishment_id`, for the end of the call.
    pub fn of(kind: &str, call_id: &CallId, establishment_id: &EstablishmentId) -> Self {
        Self {
            job: kind.to_owned(),
            call_id: call_id.clone(),
            establishment_id: establishment_id.clone(),
            run_id: END_RUN.to_owned(),
        }
    }

    /// The call it is about, if it is one of its establishment's (else `NotFound`: a job for
    /// an unknown or foreign call is an item failure, dead-lettered after the receive count).
    pub(crate) async fn call(&self, app: &App) -> Result<CallRecord> {
        app.store
            .call(&self.call_id)
            .await?
            .filter(|c| c.establishment_id == self.establishment_id)
            .ok_or(Error::NotFound("call"))
    }
}

/// Puts `job` on the summary queue, visible after `delay_secs`; at least once (every job is
/// a no-op once its work is done).
pub async fn enqueue(app: &App, job: &Job, delay_secs: i32) -> Result<()> {
    app.summary_jobs()?
        .send_delayed(job, delay_secs)
        .await
        .map_err(|_| Error::Unavailable("the post-call queue is unavailable; retry".into()))?;
    tracing::info!(call_id = %job.call_id, job = %job.job, delay_secs, "job queued");
    Ok(())
}

/// Queues the post-call job of the end of call `call_id` ([`END_RUN`]), visible after
/// `delay_secs`.
pub async fn queue_after_end(
    app: &App,
    call_id: &CallId,
    establishment_id: &EstablishmentId,
    delay_secs: i32,
) -> Result<()> {
    enqueue(
        app,
        &Job::of(POST_CALL_JOB, call_id, establishment_id),
        delay_secs,
    )
    .await
}

/// The sentiment of live call `job.call_id` so far, from every customer turn stored: one read
/// of the call, the transcript, one conditional write (refused once the call has ended).
async fn live(app: &App, analyzer: &Analyzer, job: &Job) -> Result<Outcome> {
    let call = job.call(app).await?;
    if call.final_status.is_some() {
        return Ok(stale(
            "the call has ended; its analysis gives the final sentiment",
        ));
    }
    let segments = segments(app, &call.id).await?;
    let Some(sentiment) = analyzer.live_sentiment(&segments, Timestamp::now()) else {
        return Ok(stale("the customer has not spoken yet"));
    };
    if app.store.put_live_sentiment(&call.id, &sentiment).await? {
        tracing::info!(label = ?sentiment.label, score = sentiment.score, segments = segments.len(), "live sentiment stored");
    }
    Ok(Outcome::Done)
}

/// Nudges the live-sentiment queue for `calls` (those that got customer turns in one ingest
/// request): one SendMessageBatch per 10 calls, each message deduplicated per call and
/// [`LIVE_SLOT_SECS`] slot, so a call's flood of segments makes one computation per slot.
/// Best effort: live sentiment is a view, the post-call analysis the record, so a failure is
/// logged and never fails the ingest.
pub async fn nudge_live(app: &App, calls: &[(CallId, EstablishmentId)]) {
    let Some(queue) = &app.live_sentiment else {
        return;
    };
    let slot = Timestamp::now().unix() / LIVE_SLOT_SECS;
    let mut seen = std::collections::HashSet::new();
    let entries: Vec<(String, String, serde_json::Value)> = calls
        .iter()
        .filter(|(call, _)| seen.insert(call.clone()))
        .map(|(call, est)| {
            (
                call.to_string(),
                format!("{call}-{slot}"),
                serde_json::to_value(Job::of(LIVE_JOB, call, est)).unwrap_or_default(),
            )
        })
        .collect();
    for chunk in entries.chunks(10) {
        match queue.send_fifo_batch(chunk).await {
            Ok(refused) if refused.is_empty() => {}
            Ok(refused) => tracing::warn!(refused = refused.len(), "live-sentiment nudges refused"),
            Err(e) => tracing::warn!(error = %e, "live-sentiment nudges not sent"),
        }
    }
}

/// What became of one job.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do for it (done now or before, or it is stale).
    Done,
    /// Deliver it again later (the analyzer failed and attempts remain, or another worker
    /// holds the run); the reason is logged.
    Later(String),
}

/// Runs the job an SQS message of the summary queue carries: a calls export
/// (`service::reports::EXPORT_JOB`) or one of [`Job`]'s.
pub async fn run_message(app: &App, analyzer: &Analyzer, body: &str) -> Result<Outcome> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::invalid("body", format!("not a post-call job: {e}")))?;
    if value["job"] == crate::service::reports::EXPORT_JOB {
        let job = serde_json::from_value(value)
            .map_err(|e| Error::invalid("body", format!("not an export job: {e}")))?;
        crate::service::reports::run_export(app, &job).await?;
        return Ok(Outcome::Done);
    }
    let job: Job = serde_json::from_value(value)
        .map_err(|e| Error::invalid("body", format!("not a post-call job: {e}")))?;
    run(app, analyzer, &job).await
}

/// Runs the analysis `job` asks for, at most once per run; a live-sentiment nudge updates a
/// live call's sentiment instead ([`live`]).
#[tracing::instrument(skip_all, fields(call_id = %job.call_id, run_id = %job.run_id, job = %job.job))]
pub async fn run(app: &App, analyzer: &Analyzer, job: &Job) -> Result<Outcome> {
    match job.job.as_str() {
        POST_CALL_JOB => {
            let outcome = post_call(app, analyzer, job).await?;
            // Whatever the job did (an end reported again included), the reports count the
            // call as it is now; a recount that changes nothing is one read.
            crate::service::reports::recount(app, &job.call_id, &job.establishment_id).await?;
            Ok(outcome)
        }
        LIVE_JOB => live(app, analyzer, job).await,
        crate::service::recordings::COPY_JOB => crate::service::recordings::copy(app, job).await,
        other => Err(Error::invalid("job", format!("unknown job `{other}`"))),
    }
}

/// The post-call analysis of `job`'s run.
async fn post_call(app: &App, analyzer: &Analyzer, job: &Job) -> Result<Outcome> {
    let call = job.call(app).await?;
    let now = Timestamp::now();
    let (expected, attempts) = match &call.analysis {
        None if job.run_id == END_RUN => (None, 0),
        None => return Ok(stale("the call has no such run")),
        Some(a) if a.run_id != job.run_id => return Ok(stale("a newer run replaced it")),
        Some(a) => match a.status {
            AnalysisStatus::Succeeded | AnalysisStatus::Failed | AnalysisStatus::Skipped => {
                return Ok(stale("already finished"));
            }
            AnalysisStatus::Running if a.lease_until.is_some_and(|l| l > now) => {
                return Ok(Outcome::Later("another worker holds this run".into()));
            }
            AnalysisStatus::Pending | AnalysisStatus::Running => (Some(a), a.attempts),
        },
    };
    let mut claim = fresh(&job.run_id, AnalysisStatus::Running, Some(analyzer.name()));
    claim.attempts = attempts + 1;
    claim.lease_until = Some(now.plus_secs(LEASE_SECS));
    if !app
        .store
        .put_analysis(&call.id, expected, &claim, None)
        .await?
    {
        return Ok(Outcome::Later(
            "another worker changed the run first".into(),
        ));
    }
    let finished = analyse(app, analyzer, &call, &claim).await;
    let (next, results, outcome) = match finished {
        Ok(Step::Skipped(reason)) => {
            let mut next = done(&claim, AnalysisStatus::Skipped);
            next.reason = Some(reason.to_owned());
            (next, None, Outcome::Done)
        }
        Ok(Step::Analysed(out)) => {
            let mut next = done(&claim, AnalysisStatus::Succeeded);
            next.model = Some(out.model.clone());
            next.success = out.success;
            next.data = out.data.clone();
            (next, Some(out), Outcome::Done)
        }
        Err(why) if claim.attempts < MAX_ATTEMPTS => {
            let mut next = claim.clone();
            next.status = AnalysisStatus::Pending;
            next.lease_until = None;
            next.reason = Some(why.clone());
            (next, None, Outcome::Later(why))
        }
        Err(why) => {
            let mut next = done(&claim, AnalysisStatus::Failed);
            next.reason = Some(format!("gave up after {} attempts: {why}", claim.attempts));
            (next, None, Outcome::Done)
        }
    };
    let stored = app
        .store
        .put_analysis(
            &call.id,
            Some(&claim),
            &next,
            results
                .as_ref()
                .and_then(|o| o.summary.as_deref().map(|s| (s, o.sentiment.as_ref()))),
        )
        .await?;
    if !stored {
        // Our lease ran out and another worker took the run over: its outcome stands.
        return Ok(stale("the lease ran out before the outcome was stored"));
    }
    tracing::info!(status = ?next.status, attempts = next.attempts, "analysis stored");
    Ok(outcome)
}

fn stale(why: &str) -> Outcome {
    tracing::info!(why, "nothing to do for this job");
    Outcome::Done
}

/// An analysis of run `run_id` in `status`, with nothing found yet.
fn fresh(run_id: &str, status: AnalysisStatus, analyzer: Option<&str>) -> Analysis {
    Analysis {
        status,
        reason: None,
        analyzer: analyzer.map(str::to_owned),
        model: None,
        success: None,
        data: serde_json::Map::new(),
        completed_at: None,
        attempts: 0,
        run_id: run_id.to_owned(),
        lease_until: None,
    }
}

fn done(claim: &Analysis, status: AnalysisStatus) -> Analysis {
    Analysis {
        status,
        completed_at: Some(Timestamp::now()),
        lease_until: None,
        reason: None,
        ..claim.clone()
    }
}

enum Step {
    Skipped(&'static str),
    Analysed(crate::analysis::Output),
}

/// Reads what the analysis needs and runs it; `Err` carries why it failed (to retry).
async fn analyse(
    app: &App,
    analyzer: &Analyzer,
    call: &CallRecord,
    claim: &Analysis,
) -> std::result::Result<Step, String> {
    // Each skip is decided before the reads it does not need.
    if call.answered_by.is_some_and(AnsweredBy::is_machine) {
        return Ok(Step::Skipped("answered_by_machine"));
    }
    let read = |e: Error| format!("reading the call: {e}");
    let segments = segments(app, &call.id).await.map_err(read)?;
    if !segments.iter().any(|s| s.speaker == Party::Customer) {
        return Ok(Step::Skipped("no_customer_turns"));
    }
    if call
        .duration_seconds
        .is_some_and(|d| d < MIN_ANALYSED_SECONDS)
    {
        return Ok(Step::Skipped("too_short"));
    }
    let section = pinned_section(app, call).await.map_err(read)?;
    let tools = tool_events(app, &call.id).await.map_err(read)?;
    tracing::info!(
        segments = segments.len(),
        tools = tools.len(),
        attempt = claim.attempts,
        analyzer = analyzer.name(),
        "analysing"
    );
    let input = Input {
        call,
        segments: &segments,
        tools: &tools,
        section: &section,
    };
    analyzer
        .analyze(&input)
        .await
        .map(Step::Analysed)
        .map_err(|e| e.to_string())
}

/// The `analysis` section of the version that took the call (never the agent's current
/// draft); empty when the call had no version or the version has none.
async fn pinned_section(app: &App, call: &CallRecord) -> Result<AnalysisSection> {
    let Some(version) = &call.agent_version_id else {
        return Ok(AnalysisSection::default());
    };
    Ok(app
        .store
        .version(&call.agent_id, version)
        .await?
        .and_then(|v| v.brain.analysis)
        .unwrap_or_default())
}

/// The call's transcript in spoken order (every page).
async fn segments(app: &App, id: &CallId) -> Result<Vec<SegmentRecord>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let (page, next) = app.store.transcript_page(id, 500, start).await?;
        all.extend(page);
        match next {
            Some(next) if all.len() < MAX_ITEMS => start = Some(next),
            _ => return Ok(all),
        }
    }
}

/// The call's tool events in the order they happened (every page).
async fn tool_events(app: &App, id: &CallId) -> Result<Vec<EventRecord>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let (page, next) = app.store.tool_events(id, None, 500, start).await?;
        all.extend(page);
        match next {
            Some(next) if all.len() < MAX_ITEMS => start = Some(next),
            _ => return Ok(all),
        }
    }
}

/// `POST /calls/{id}/analysis` (operators and admins): analyses an ended call again, with the
/// `analysis` section of the version that took it. The previous summary and sentiment stay
/// until the new run succeeds. 409 while the call is live or a run is in progress.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, call_id = %id))]
pub async fn rerun(app: &App, principal: &Principal, id: &CallId) -> Result<Analysis> {
    let (_, call) = crate::service::calls::member_call(app, principal, id, Role::Operator).await?;
    if call.final_status.is_none() {
        return Err(Error::Conflict(
            "the call has not ended; it is analysed when it does".into(),
        ));
    }
    // A queued run is replaced (its job becomes stale); a running one is let finish.
    if let Some(a) = &call.analysis
        && a.status == AnalysisStatus::Running
        && a.lease_until.is_some_and(|l| l > Timestamp::now())
    {
        return Err(Error::Conflict(
            "an analysis of this call is running; retry when it is done".into(),
        ));
    }
    // The analyzer is named when a worker claims the run.
    let next = fresh(
        &crate::ids::next_ulid().to_string(),
        AnalysisStatus::Pending,
        None,
    );
    if !app
        .store
        .put_analysis(&call.id, call.analysis.as_ref(), &next, None)
        .await?
    {
        return Err(Error::Conflict(
            "the analysis changed meanwhile; retry".into(),
        ));
    }
    enqueue(app, &Job::new(&call, &next.run_id), 0).await?;
    Ok(next)
}
