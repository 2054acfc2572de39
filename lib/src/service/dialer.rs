//! The campaign dialer (issue 14, PRD D.4 job 3): what one worker holding a campaign's lease
//! does, step by step, with the clock as an argument.
//!
//! - **Ticks.** A campaign is driven by a chain of [`Tick`] messages on the campaign queue;
//!   only the tick carrying the campaign's current `tick_seq` takes the dialer lease (an
//!   expiring conditional write), so a redelivered or duplicated tick does nothing. The
//!   holder steps the campaign for up to [`TICK_BUDGET`], gives the lease back with the chain
//!   moved on, and queues the next tick (SQS delay up to 15 minutes). The sweeper restarts a
//!   chain that is overdue (a worker killed between the two writes).
//! - **A step** ([`step`]) settles the calls in flight (final status → outcome → retry,
//!   completion or exhaustion; a slot whose call never ends is recovered when its lease
//!   expires), trips the circuit breaker, enrolls a page of leads while enrollment is under
//!   way, completes a drained campaign, waits for the runtime, a slot or the pacer, and
//!   claims at most one dial of the earliest due lead that is inside its windows and not on
//!   the do-not-call list or the blacklist.
//! - **A dial** ([`dial`]) goes through the same outbound path as `POST /calls/outbound`
//!   with the idempotency key `campaign:{campaign}:{lead}:{attempt}`: a dial retried after a
//!   crash, or while Twilio's answer is unknown, never calls the lead twice.

use super::calls::{Dial, place};
use super::readiness::takes_calls;
use crate::app::App;
use crate::domain::dialing::{
    AfterAttempt, BREAKER_WINDOW_SECS, Outcome, Pacer, breaker_trips, may_dial, next_dial_at,
};
use crate::domain::{CampaignStatus, EnrollmentStatus, PausedReason, SkipReason};
use crate::error::{Error, Result};
use crate::ids::{CampaignId, LeadId};
use crate::store::records::{AttemptRecord, CampaignRecord, EndedAttempt, EnrollmentRecord};
use crate::store::{DialerConflict, DialerError, Transition, remember};
use crate::time::Timestamp;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How long a tick's holder keeps the lease (real time); a killed worker's lease lapses then.
pub const LEASE_MS: i64 = 150_000;
/// How long one tick steps a campaign before handing over to the next tick.
pub const TICK_BUDGET: std::time::Duration = std::time::Duration::from_secs(50);
/// Leads enrolled per transaction (two items each, plus the campaign's).
const ENROLL_PAGE: usize = 49;
/// A call's slot is held until its dial plus the longest call allowed plus this.
const SLOT_GRACE_SECS: i64 = 300;
/// How often a campaign waiting for a slot looks for a freed one.
const SLOT_POLL: Duration = Duration::seconds(1);
/// How much wider than the rate dials are spaced (see `Pacer::with_slack`).
pub const PACE_SLACK_PERMILLE: u32 = 10;
/// How often a campaign with only calls in flight looks at them.
const CALLS_POLL: Duration = Duration::seconds(5);
/// How often a campaign paused for its runtime looks at it again.
const RUNTIME_POLL: Duration = Duration::seconds(30);
/// A dial whose outcome is unknown (a crash, Twilio's answer lost) is tried again, with the
/// same key, after this.
const REDIAL_AFTER: Duration = Duration::seconds(5);
/// Error codes of the outbound path that take a lead out rather than fail an attempt.
const SUPPRESSING: [&str; 2] = ["do_not_call", "blacklisted"];

/// A campaign queue message: step campaign `campaign_id` if its tick chain is at `seq`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tick {
    pub campaign_id: CampaignId,
    pub seq: u64,
}

/// The dialer lease on one campaign.
#[derive(Clone, Debug)]
pub struct Lease {
    pub campaign_id: CampaignId,
    pub token: String,
    pub seq: u64,
}

/// What to do after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Step again at once.
    Now,
    /// Step again at this instant (of the dialer's clock), waiting in process if the tick has
    /// the time.
    At(DateTime<Utc>),
    /// Every slot is taken: look again at this instant (a call may have ended by then).
    Slot(DateTime<Utc>),
    /// Nothing to dial before calls in flight end or the runtime comes back: end the tick and
    /// queue the next one for this instant rather than wait in process.
    Poll(DateTime<Utc>),
    /// Nothing to do until someone starts the campaign again.
    Idle,
}

/// A dial the step claimed: place it with [`dial`].
#[derive(Clone, Debug)]
pub struct Claim {
    pub campaign: CampaignRecord,
    pub enrollment: EnrollmentRecord,
}

/// What a step did and what comes next.
#[derive(Debug)]
pub struct Step {
    pub claim: Option<Claim>,
    pub next: Next,
}

impl Step {
    fn wait(next: Next) -> Self {
        Self { claim: None, next }
    }
}

/// Takes the dialer lease on a campaign, if its tick chain is at `seq` (any, for `None`) and
/// no live lease is held.
pub async fn acquire(app: &App, id: &CampaignId, seq: Option<u64>) -> Result<Option<Lease>> {
    let token = ulid::Ulid::new().to_string();
    let now_ms = Timestamp::now_millis();
    Ok(app
        .store
        .take_dialer_lease(id, seq, &token, now_ms, now_ms + LEASE_MS)
        .await?
        .map(|c| Lease {
            campaign_id: c.id,
            token,
            seq: c.tick_seq,
        }))
}

/// Gives the lease back, moving the chain to the next tick (due at `next`, if any).
pub async fn release(app: &App, lease: &Lease, next: Option<DateTime<Utc>>) -> Result<bool> {
    app.store
        .end_dialer_lease(
            &lease.campaign_id,
            &lease.token,
            lease.seq + 1,
            next.map(|t| t.timestamp_millis()),
        )
        .await
}

fn stamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix(at.timestamp()).unwrap_or_else(Timestamp::now)
}

/// How long what a lease holder read stays good for its next steps: the campaign (a member's
/// pause shows within it, and a claim is refused at once by its `running` condition), the
/// calls in flight, the runtime's state, and the queue's head.
const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// What a lease holder remembers between steps, so a step that dials costs one transaction
/// rather than every read again: the worker keeps one for its tick; `Memory::default()`
/// reads everything. Its own writes keep it true; anything unexpected clears it.
#[derive(Debug, Default)]
pub struct Memory {
    campaign: Option<(CampaignRecord, std::time::Instant)>,
    settled: Option<std::time::Instant>,
    context: Option<(
        crate::store::records::EstablishmentRecord,
        Option<crate::store::records::EstablishmentRuntimeRecord>,
        u32,
        std::time::Instant,
    )>,
    /// The queue's head, earliest due first, already checked against the do-not-call list.
    due: std::collections::VecDeque<EnrollmentRecord>,
    due_read: Option<std::time::Instant>,
}

fn fresh(at: Option<std::time::Instant>) -> bool {
    at.is_some_and(|t| t.elapsed() < FRESH)
}

/// Steps the campaign once at `now` (see the module docs). `placing` are the leads whose
/// dials this holder is still placing (their attempts have no call yet and must not be
/// redone); `memory` is what this holder read in its earlier steps.
pub async fn step(
    app: &App,
    lease: &Lease,
    now: DateTime<Utc>,
    placing: &HashSet<LeadId>,
    memory: &mut Memory,
) -> Result<Step> {
    let (mut c, read_at) = match memory.campaign.take() {
        Some((c, at)) if fresh(Some(at)) => (c, at),
        _ => match app.store.campaign(&lease.campaign_id).await? {
            Some(c) => (c, std::time::Instant::now()),
            None => return Ok(Step::wait(Next::Idle)),
        },
    };
    if c.lease_token.as_deref() != Some(lease.token.as_str()) {
        tracing::warn!(campaign_id = %c.id, "dialer lease lost");
        *memory = Memory::default();
        return Ok(Step::wait(Next::Idle));
    }
    let result = step_with(app, lease, now, placing, memory, &mut c).await;
    match &result {
        Ok(step) if step.claim.is_some() || step.next != Next::Now => {
            memory.campaign = Some((c, read_at));
        }
        // Something changed that the memory may not reflect: read again.
        _ => *memory = Memory::default(),
    }
    result
}

async fn step_with(
    app: &App,
    lease: &Lease,
    now: DateTime<Utc>,
    placing: &HashSet<LeadId>,
    memory: &mut Memory,
    c: &mut CampaignRecord,
) -> Result<Step> {
    // Calls in flight first: they free slots, and a paused or cancelled campaign still counts
    // how its calls ended.
    if c.progress.dialing > 0 && !fresh(memory.settled) {
        memory.settled = Some(std::time::Instant::now());
        if let Some(step) = settle_in_flight(app, lease, c, now, placing).await? {
            return Ok(step);
        }
    }
    if c.status == CampaignStatus::Running
        && c.circuit_breaker.enabled
        && trip_breaker(app, lease, c, now).await?
    {
        return Ok(Step::wait(waiting_for_calls(c, now)));
    }
    match c.status {
        CampaignStatus::Created => return Ok(Step::wait(Next::Idle)),
        CampaignStatus::Cancelled if c.progress.queued + c.progress.retry_wait > 0 => {
            drop_waiting(app, lease, c).await?;
            return Ok(Step::wait(Next::Now));
        }
        CampaignStatus::Completed | CampaignStatus::Cancelled => {
            if c.progress.dialing == 0 {
                app.store.retire_campaign(&c.id, &lease.token).await?;
            }
            return Ok(Step::wait(waiting_for_calls(c, now)));
        }
        CampaignStatus::Paused if !c.paused_reason.is_some_and(PausedReason::resumes_itself) => {
            return Ok(Step::wait(waiting_for_calls(c, now)));
        }
        CampaignStatus::Paused | CampaignStatus::Running => {}
    }
    // The pacer first: a step that may not dial yet reads nothing more.
    let pacer = Pacer::new(c.pace.calls_per_minute)
        .map_err(Error::internal)?
        .with_slack(PACE_SLACK_PERMILLE);
    let last = c.last_dial_us.and_then(DateTime::from_timestamp_micros);
    let earliest = pacer.next(last, now);
    if c.status == CampaignStatus::Running && c.enrolled_all && earliest > now {
        return Ok(Step::wait(Next::At(earliest)));
    }
    // Kept with the instant it was read, so it goes stale a second after the read (a runtime
    // that starts draining is seen within a second), not a second after its last use.
    let (est, runtime, in_flight, read_at) = match memory.context.take() {
        Some(context) if fresh(Some(context.3)) => context,
        _ => match app.store.dialer_context(&c.establishment_id).await? {
            (Some(est), runtime, in_flight) => (est, runtime, in_flight, std::time::Instant::now()),
            (None, ..) => return Ok(Step::wait(Next::Idle)),
        },
    };
    memory.context = Some((est.clone(), runtime.clone(), in_flight, read_at));
    // The runtime must take calls; otherwise the campaign waits, saying why.
    let ready = match &runtime {
        None => Err("the establishment has no runtime".to_owned()),
        Some(r) => takes_calls(r.status, r.health.as_ref(), Timestamp::now()),
    };
    match (c.status, ready) {
        (CampaignStatus::Running, Err(why)) => {
            let message = format!("dialing waits for the runtime: {why}");
            app.store
                .dialer_status(
                    c,
                    &lease.token,
                    CampaignStatus::Running,
                    CampaignStatus::Paused,
                    Some(PausedReason::RuntimeUnavailable),
                    &[("last_error", crate::store::s_attr(&message))],
                )
                .await?;
            tracing::info!(campaign_id = %c.id, %why, "campaign paused: runtime unavailable");
            return Ok(Step::wait(Next::Poll(now + RUNTIME_POLL)));
        }
        (CampaignStatus::Paused, Err(_)) => {
            return Ok(Step::wait(Next::Poll(now + RUNTIME_POLL)));
        }
        (CampaignStatus::Paused, Ok(())) => {
            app.store
                .dialer_status(
                    c,
                    &lease.token,
                    CampaignStatus::Paused,
                    CampaignStatus::Running,
                    None,
                    &[],
                )
                .await?;
            tracing::info!(campaign_id = %c.id, "campaign resumed: runtime takes calls again");
            return Ok(Step::wait(Next::Now));
        }
        _ => {}
    }
    if !c.enrolled_all {
        enroll_page(app, lease, c, &est.telephony.blacklist_e164, now).await?;
        return Ok(Step::wait(Next::Now));
    }
    if c.progress.is_drained() {
        let ended = crate::store::s_attr(stamp(now).to_string());
        if app
            .store
            .dialer_status(
                c,
                &lease.token,
                CampaignStatus::Running,
                CampaignStatus::Completed,
                None,
                &[("ended_at", ended)],
            )
            .await?
        {
            tracing::info!(campaign_id = %c.id, "campaign completed");
        }
        return Ok(Step::wait(Next::Now));
    }
    // Capacity: the campaign's own limit, then the establishment's across campaigns.
    let est_limit = est.telephony.max_concurrent_calls;
    if c.progress.dialing >= c.max_concurrent_calls || in_flight >= est_limit {
        return Ok(Step::wait(Next::Slot(now + SLOT_POLL)));
    }
    if memory.due.is_empty() || !fresh(memory.due_read) {
        let head = app.store.enrollments_due(&c.id, 25).await?;
        let numbers: Vec<_> = head.iter().map(|e| e.phone_e164.clone()).collect();
        let listed = app
            .store
            .on_do_not_call_lists(&c.establishment_id, &numbers)
            .await?;
        memory.due.clear();
        memory.due_read = Some(std::time::Instant::now());
        for e in head {
            if est.telephony.blacklist_e164.contains(&e.phone_e164)
                || listed.contains(&e.phone_e164)
            {
                finish(app, lease, c, &e, EnrollmentStatus::Suppressed, None).await?;
            } else {
                memory.due.push_back(e);
            }
        }
    }
    let Some(e) = memory.due.pop_front() else {
        // Nothing waits: only calls in flight are left.
        return Ok(Step::wait(Next::Poll(now + CALLS_POLL)));
    };
    if let Some(at) = e.next_attempt_at.map(DateTime::<Utc>::from)
        && at > now
    {
        memory.due.push_front(e);
        return Ok(Step::wait(Next::At(at)));
    }
    if !may_dial(&c.schedule, &e.timezones, now) {
        match next_dial_at(&c.schedule, &e.timezones, now) {
            Some(at) => requeue(app, lease, c, &e, at).await?,
            None => {
                let reason = Some(SkipReason::NoWindow);
                finish(app, lease, c, &e, EnrollmentStatus::Skipped, reason).await?;
            }
        }
        memory.due_read = None;
        return Ok(Step::wait(Next::Now));
    }
    claim(app, lease, c, e, now, est_limit, &est.telephony).await
}

/// What a campaign that does not dial waits for: its calls in flight to end, or nothing.
fn waiting_for_calls(c: &CampaignRecord, now: DateTime<Utc>) -> Next {
    if c.progress.dialing > 0 {
        Next::Poll(now + CALLS_POLL)
    } else {
        Next::Idle
    }
}

/// Claims the dial of `e`: its new attempt, the campaign's figures and pacer stamp, a slot.
async fn claim(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    e: EnrollmentRecord,
    now: DateTime<Utc>,
    est_limit: u32,
    policy: &crate::domain::TelephonyPolicy,
) -> Result<Step> {
    let mut next_c = c.clone();
    let mut next_e = e.clone();
    next_e.status = EnrollmentStatus::Dialing;
    next_e.attempt_count += 1;
    next_e.attempts.push(AttemptRecord {
        number: next_e.attempt_count,
        call_id: None,
        dialed_at: stamp(now),
        outcome: None,
        ended_at: None,
        error: None,
        refused: None,
    });
    next_e.next_attempt_at = None;
    next_e.lease_expires_at = Some(stamp(
        now + Duration::seconds(i64::from(policy.max_call_duration_seconds) + SLOT_GRACE_SECS),
    ));
    next_e.updated_at = Timestamp::now();
    next_c.progress.moved(e.status, EnrollmentStatus::Dialing);
    next_c.progress.calls_placed += 1;
    next_c.dialing_leads.push(e.lead_id.clone());
    next_c.last_dial_us = Some(now.timestamp_micros());
    let t = Transition {
        enrollment: &next_e,
        was: (e.status, e.attempt_count),
    };
    match app
        .store
        .claim_dial(&next_c, &lease.token, &t, est_limit)
        .await
    {
        Ok(()) => {
            *c = next_c.clone();
            Ok(Step {
                claim: Some(Claim {
                    campaign: next_c,
                    enrollment: next_e,
                }),
                next: Next::Now,
            })
        }
        Err(DialerError::Conflict(DialerConflict::EstablishmentFull)) => {
            Ok(Step::wait(Next::Slot(now + SLOT_POLL)))
        }
        // A stale index entry, or the campaign paused meanwhile: look again.
        Err(DialerError::Conflict(_)) => Ok(Step::wait(Next::Now)),
        Err(DialerError::Other(e)) => Err(e),
    }
}

/// The idempotency key of attempt `attempt` of `lead` in campaign `id`.
pub fn attempt_key(id: &CampaignId, lead: &LeadId, attempt: u32) -> String {
    format!("campaign:{id}:{lead}:{attempt}")
}

/// Places a claimed dial through the outbound path and records the call on the attempt; a
/// refusal for good is recorded too (the next step settles it). An error that leaves the
/// outcome unknown is left for the next step to redo with the same key.
pub async fn dial(app: &App, claim: Claim) -> Result<()> {
    let (c, e) = (&claim.campaign, &claim.enrollment);
    let attempt = e.attempt_count;
    let key = attempt_key(&c.id, &e.lead_id, attempt);
    let dial = Dial {
        establishment_id: c.establishment_id.clone(),
        agent_id: c.agent_id.clone(),
        agent_version_id: Some(c.agent_version_id.clone()),
        to: e.phone_e164.clone(),
        from: c.from_e164.clone(),
        lead_id: Some(e.lead_id.to_string()),
        campaign_id: Some(c.id.clone()),
        metadata: None,
        answering_machine_detection: c.answering_machine_detection,
        requested_by: None,
    };
    let hash = crate::auth::secret_token::hash(&format!("{key}#{}", c.agent_version_id));
    match place(app, dial, Some(key), hash).await {
        Ok(placed) => {
            app.store
                .record_dial(&c.id, &e.lead_id, attempt, &placed.call.call_id)
                .await?;
            Ok(())
        }
        Err(err) => {
            let (status, code) = err.code();
            if status.is_client_error() && status.as_u16() != 409 {
                tracing::info!(campaign_id = %c.id, lead_id = %e.lead_id, %code, error = %err, "dial refused");
                app.store
                    .refuse_dial(&c.id, &e.lead_id, attempt, code, &err.to_string())
                    .await?;
                Ok(())
            } else {
                tracing::warn!(campaign_id = %c.id, lead_id = %e.lead_id, error = %err, "dial outcome unknown; redone with the same key");
                Ok(())
            }
        }
    }
}

/// Settles what can be settled among the calls in flight; a step to return when a dial must
/// be redone first.
async fn settle_in_flight(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    now: DateTime<Utc>,
    placing: &HashSet<LeadId>,
) -> Result<Option<Step>> {
    let dialing = app.store.enrollments_of(&c.id, &c.dialing_leads).await?;
    let call_ids: Vec<_> = dialing
        .iter()
        .filter_map(|e| e.attempts.last().and_then(|a| a.call_id.clone()))
        .collect();
    let calls = app.store.calls_by_id(&call_ids).await?;
    for e in dialing {
        if placing.contains(&e.lead_id) {
            continue;
        }
        let Some(attempt) = e.attempts.last() else {
            continue;
        };
        let expired = e
            .lease_expires_at
            .is_some_and(|t| DateTime::<Utc>::from(t) <= now);
        match (&attempt.call_id, &attempt.refused) {
            (None, Some(code)) => {
                let (outcome, status) = if SUPPRESSING.contains(&code.as_str()) {
                    (None, Some(EnrollmentStatus::Suppressed))
                } else {
                    (Some(Outcome::Failed), None)
                };
                settle(
                    app,
                    lease,
                    c,
                    &e,
                    outcome,
                    status,
                    attempt.error.clone(),
                    now,
                )
                .await?;
            }
            (None, None) if expired => {
                let why = Some("the dial's outcome stayed unknown until its slot expired".into());
                settle(app, lease, c, &e, Some(Outcome::Failed), None, why, now).await?;
            }
            (None, None) => {
                let redo = DateTime::<Utc>::from(attempt.dialed_at) + REDIAL_AFTER <= now;
                if redo && c.status == CampaignStatus::Running {
                    // Killed mid-dial, or Twilio's answer was lost: the same key again.
                    return Ok(Some(Step {
                        claim: Some(Claim {
                            campaign: c.clone(),
                            enrollment: e,
                        }),
                        next: Next::Now,
                    }));
                }
            }
            (Some(call_id), _) => {
                let call = calls.iter().find(|k| &k.id == call_id);
                let outcome = call.and_then(|k| Outcome::of(k.status, k.answered_by));
                match outcome {
                    Some(o) => settle(app, lease, c, &e, Some(o), None, None, now).await?,
                    None if expired => {
                        let why = Some("no final status arrived before the slot expired".into());
                        settle(app, lease, c, &e, Some(Outcome::Failed), None, why, now).await?;
                    }
                    None => {}
                }
            }
        }
    }
    Ok(None)
}

/// Settles the attempt in flight of `e`: with `outcome` (then the retry policy says what
/// follows) or straight to `status` (suppressed), freeing its slot.
#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    e: &EnrollmentRecord,
    outcome: Option<Outcome>,
    status: Option<EnrollmentStatus>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut next_c = c.clone();
    let mut next_e = e.clone();
    let to = match (status, outcome) {
        (Some(status), _) => status,
        (None, None) => EnrollmentStatus::Exhausted,
        (None, Some(o)) => match c.retry.after(e.attempt_count, o, now) {
            AfterAttempt::Completed => EnrollmentStatus::Completed,
            AfterAttempt::Exhausted => EnrollmentStatus::Exhausted,
            AfterAttempt::RetryAt(at) => match next_dial_at(&c.schedule, &e.timezones, at) {
                Some(open) => {
                    next_e.next_attempt_at = Some(stamp(open));
                    EnrollmentStatus::RetryWait
                }
                None => EnrollmentStatus::Exhausted,
            },
        },
    };
    let call_id = e.attempts.last().and_then(|a| a.call_id.clone());
    if let Some(last) = next_e.attempts.last_mut() {
        last.outcome = outcome;
        last.ended_at = Some(stamp(now));
        last.error = error.clone().or(last.error.take());
    }
    next_e.status = to;
    next_e.lease_expires_at = None;
    next_e.updated_at = Timestamp::now();
    next_c.progress.moved(EnrollmentStatus::Dialing, to);
    next_c.dialing_leads.retain(|l| l != &e.lead_id);
    if call_id.is_none() {
        next_c.progress.calls_placed = next_c.progress.calls_placed.saturating_sub(1);
    }
    if let Some(o) = outcome {
        next_c.progress.ended(o);
        remember(
            &mut next_c.recent_attempts,
            EndedAttempt {
                lead_id: e.lead_id.clone(),
                call_id,
                outcome: o,
                at: stamp(now),
                error,
            },
            BREAKER_WINDOW_SECS,
        );
    }
    let t = Transition {
        enrollment: &next_e,
        was: (EnrollmentStatus::Dialing, e.attempt_count),
    };
    apply(
        app.store
            .settle_enrollment(&next_c, &lease.token, &t, true)
            .await,
    )?;
    *c = next_c;
    if to.is_final() {
        let talked = to == EnrollmentStatus::Completed;
        app.store
            .release_lead(&c.id, &e.lead_id, &c.establishment_id, talked)
            .await?;
    }
    Ok(())
}

/// Takes a waiting lead out for good (`suppressed`, or `skipped` with `reason`).
async fn finish(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    e: &EnrollmentRecord,
    to: EnrollmentStatus,
    reason: Option<SkipReason>,
) -> Result<()> {
    let mut next_c = c.clone();
    let mut next_e = e.clone();
    next_e.status = to;
    next_e.skip_reason = reason;
    next_e.next_attempt_at = None;
    next_e.updated_at = Timestamp::now();
    next_c.progress.moved(e.status, to);
    let t = Transition {
        enrollment: &next_e,
        was: (e.status, e.attempt_count),
    };
    apply(
        app.store
            .settle_enrollment(&next_c, &lease.token, &t, false)
            .await,
    )?;
    *c = next_c;
    app.store
        .release_lead(&c.id, &e.lead_id, &c.establishment_id, false)
        .await
}

/// Puts a waiting lead back in the queue at `at` (its windows are closed now).
async fn requeue(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    e: &EnrollmentRecord,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut next_e = e.clone();
    next_e.next_attempt_at = Some(stamp(at));
    next_e.updated_at = Timestamp::now();
    let t = Transition {
        enrollment: &next_e,
        was: (e.status, e.attempt_count),
    };
    apply(
        app.store
            .settle_enrollment(c, &lease.token, &t, false)
            .await,
    )
}

/// A cancelled campaign lets go of the leads still waiting (`skipped`, `cancelled`), a page
/// at a time.
async fn drop_waiting(app: &App, lease: &Lease, c: &mut CampaignRecord) -> Result<()> {
    for e in app.store.enrollments_due(&c.id, 25).await? {
        let reason = Some(SkipReason::Cancelled);
        finish(app, lease, c, &e, EnrollmentStatus::Skipped, reason).await?;
    }
    Ok(())
}

/// A dialer write's result: a stale enrollment is skipped (the next step reads it again);
/// a lost lease or a campaign that moved ends the step with an error the tick logs.
fn apply(result: std::result::Result<(), DialerError>) -> Result<()> {
    match result {
        Ok(()) | Err(DialerError::Conflict(DialerConflict::Enrollment)) => Ok(()),
        Err(DialerError::Conflict(other)) => Err(Error::Conflict(format!(
            "the dialer's write was refused ({other:?}); the next step reads the campaign again"
        ))),
        Err(DialerError::Other(e)) => Err(e),
    }
}

/// Pauses a running campaign whose recent attempts failed too often, listing the failures.
async fn trip_breaker(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    let ended: Vec<_> = c
        .recent_attempts
        .iter()
        .map(|a| (DateTime::<Utc>::from(a.at), a.outcome))
        .collect();
    if !breaker_trips(&ended, now) {
        return Ok(false);
    }
    let failures: Vec<EndedAttempt> = c
        .recent_attempts
        .iter()
        .filter(|a| a.outcome.is_failure())
        .cloned()
        .collect();
    let message = format!(
        "circuit breaker: {} of the last {} attempts failed within {} s",
        failures.len(),
        c.recent_attempts.len(),
        BREAKER_WINDOW_SECS
    );
    let paused = app
        .store
        .dialer_status(
            c,
            &lease.token,
            CampaignStatus::Running,
            CampaignStatus::Paused,
            Some(PausedReason::CircuitBreaker),
            &[
                ("breaker_failures", crate::store::to_attr(&failures)?),
                ("last_error", crate::store::s_attr(&message)),
            ],
        )
        .await?;
    if paused {
        tracing::warn!(campaign_id = %c.id, %message, "campaign paused by its circuit breaker");
        c.status = CampaignStatus::Paused;
        c.paused_reason = Some(PausedReason::CircuitBreaker);
    }
    Ok(paused)
}

/// Enrolls the next page of matching leads (start enrolls the leads matching the filter at
/// that moment, in creation order, resumably).
async fn enroll_page(
    app: &App,
    lease: &Lease,
    c: &mut CampaignRecord,
    blacklist: &[crate::domain::E164],
    now: DateTime<Utc>,
) -> Result<()> {
    let (leads, last) = app
        .store
        .leads_matching(
            &c.establishment_id,
            &c.lead_filter,
            c.enrolled_through.as_deref(),
            ENROLL_PAGE as i32,
        )
        .await?;
    let mut attempt = leads;
    for _ in 0..3 {
        let mut next_c = c.clone();
        let mut entries = Vec::with_capacity(attempt.len());
        for lead in &attempt {
            let verdict = super::campaigns::classify(lead, &c.id, &c.schedule, blacklist, now);
            let (status, reason, next_at) = match verdict {
                Ok(at) => (EnrollmentStatus::Queued, None, Some(stamp(at))),
                Err(reason) => (EnrollmentStatus::Skipped, Some(reason), None),
            };
            next_c.progress.enrolled += 1;
            *next_c.progress.leads(status) += 1;
            let enrollment = EnrollmentRecord {
                campaign_id: c.id.clone(),
                lead_id: lead.id.clone(),
                phone_e164: lead.phone_e164.clone(),
                timezones: lead.timezones.clone(),
                status,
                skip_reason: reason,
                attempt_count: 0,
                attempts: Vec::new(),
                next_attempt_at: next_at,
                lease_expires_at: None,
                enrolled_at: stamp(now),
                updated_at: Timestamp::now(),
            };
            let takes = (status == EnrollmentStatus::Queued && lead.active_campaign_id.is_none())
                .then_some(lead);
            entries.push((enrollment, takes));
        }
        next_c.enrolled_through = last.clone().or(c.enrolled_through.clone());
        next_c.enrolled_all = last.is_none();
        match app.store.enroll_page(&next_c, &lease.token, &entries).await {
            Ok(()) => {
                *c = next_c;
                return Ok(());
            }
            // Another campaign took one of these leads meanwhile: read them again.
            Err(DialerError::Conflict(DialerConflict::Lead)) => {
                let ids: Vec<_> = attempt.iter().map(|l| l.id.clone()).collect();
                attempt = app.store.leads_by_id(&ids).await?;
            }
            Err(e) => return apply(Err(e)),
        }
    }
    Err(Error::Conflict(
        "leads kept changing while the campaign enrolled them; the next step retries".into(),
    ))
}

/// What a tick did.
#[derive(Debug, PartialEq, Eq)]
pub enum TickOutcome {
    /// The chain is elsewhere (a duplicate or stale tick) or the lease is held: nothing done.
    Skipped,
    /// Stepped; the next tick is due at this instant (`None`: the campaign is idle).
    Stepped { next: Option<DateTime<Utc>> },
}

/// Handles one tick with the real clock: takes the lease, steps the campaign for up to
/// [`TICK_BUDGET`] (dials are placed concurrently while the next ones are paced), waits for
/// the dials it started, gives the lease back and queues the next tick.
pub async fn tick(app: &crate::app::AppState, tick: &Tick) -> Result<TickOutcome> {
    let Some(lease) = acquire(app, &tick.campaign_id, Some(tick.seq)).await? else {
        return Ok(TickOutcome::Skipped);
    };
    let started = std::time::Instant::now();
    let mut placing: HashSet<LeadId> = HashSet::new();
    let mut memory = Memory::default();
    let mut dials = tokio::task::JoinSet::new();
    let mut next = None;
    let mut failure = None;
    loop {
        while let Some(done) = dials.try_join_next() {
            finished_dial(&mut placing, done);
        }
        let now = Utc::now();
        let step = match step(app, &lease, now, &placing, &mut memory).await {
            Ok(step) => step,
            Err(e) => {
                failure = Some(e);
                next = Some(now + Duration::seconds(5));
                break;
            }
        };
        if let Some(claim) = step.claim {
            let lead = claim.enrollment.lead_id.clone();
            if placing.insert(lead.clone()) {
                let app = app.clone();
                dials.spawn(async move {
                    let outcome = dial(&app, claim).await;
                    (lead, outcome)
                });
            }
        }
        let left = TICK_BUDGET.saturating_sub(started.elapsed());
        match step.next {
            Next::Idle => break,
            Next::Now if !left.is_zero() => {}
            Next::Now => {
                next = Some(Utc::now());
                break;
            }
            Next::Poll(at) => {
                next = Some(at);
                break;
            }
            Next::At(at) | Next::Slot(at) => {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                if wait >= left {
                    next = Some(at);
                    break;
                }
                // A dial that finishes frees a slot: look again then rather than later.
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    Some(done) = dials.join_next(), if !dials.is_empty() => {
                        finished_dial(&mut placing, done);
                    }
                }
            }
        }
    }
    while let Some(done) = dials.join_next().await {
        finished_dial(&mut placing, done);
    }
    if !release(app, &lease, next).await? {
        tracing::warn!(campaign_id = %tick.campaign_id, "lease lapsed before the tick ended");
        return Ok(TickOutcome::Skipped);
    }
    if let Some(at) = next {
        let delay = (at - Utc::now()).num_seconds().clamp(0, 900);
        let message = Tick {
            campaign_id: tick.campaign_id.clone(),
            seq: lease.seq + 1,
        };
        app.campaign_ticks()?
            .send_delayed(&message, i32::try_from(delay).unwrap_or(900))
            .await?;
    }
    if let Some(e) = failure {
        tracing::warn!(campaign_id = %tick.campaign_id, error = %e, "step failed; the next tick retries");
    }
    Ok(TickOutcome::Stepped { next })
}

fn finished_dial(
    placing: &mut HashSet<LeadId>,
    done: std::result::Result<(LeadId, Result<()>), tokio::task::JoinError>,
) {
    match done {
        Ok((lead, outcome)) => {
            if let Err(e) = outcome {
                tracing::warn!(lead_id = %lead, error = %e, "dial not recorded; the next step redoes it");
            }
            placing.remove(&lead);
        }
        Err(e) => tracing::error!(error = %e, "dial task failed"),
    }
}

/// Restarts the tick chains that broke (a worker killed between giving the lease back and
/// queueing the next tick, a lost message): every campaign with work whose lease is free and
/// whose next tick is overdue by a minute gets a tick at its current number. Run by the
/// sweeper's round.
pub async fn restart_chains(app: &App, now: DateTime<Utc>) -> Result<u32> {
    let now_ms = now.timestamp_millis();
    let mut sent = 0;
    for c in app.store.active_campaigns().await? {
        let has_work = c.status == CampaignStatus::Running
            || c.progress.dialing > 0
            || (c.status == CampaignStatus::Cancelled && !c.progress.is_drained())
            || (c.status == CampaignStatus::Paused
                && c.paused_reason.is_some_and(PausedReason::resumes_itself))
            || (c.status.is_final() && c.progress.dialing == 0);
        let leased = c.lease_until_ms.is_some_and(|until| until > now_ms);
        let overdue = c.tick_due_ms.is_none_or(|due| due + 60_000 < now_ms);
        if has_work && !leased && overdue {
            let tick = Tick {
                campaign_id: c.id.clone(),
                seq: c.tick_seq,
            };
            app.campaign_ticks()?.send(&tick).await?;
            sent += 1;
        }
    }
    Ok(sent)
}
