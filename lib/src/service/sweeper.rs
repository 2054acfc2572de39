//! The sweeper (PRD D.4; run every minute by a schedule): ends the calls whose end never came,
//! so `/calls/active` holds only calls that are live. A call is ended as `failed` with
//! `end_reason: "no_end_reported"` when it has run longer than its establishment's
//! `max_call_duration_seconds` plus a grace, or when neither the provider nor the runtime has
//! said anything about it for the idle limit (`config::SweepConfig`). Its post-call job is
//! queued like any other end's; a late end report afterwards lands on the timeline only.
//!
//! The same round restarts campaign tick chains that broke (see `service::dialer`).
//!
//! Reads per round: one Query of the keys-only live index per shard, for the calls created
//! before the earlier of the two limits; the calls and their establishments by BatchGetItem;
//! one Query of a call's timeline (newest event) only for calls older than the idle limit
//! whose record is idle too.

use crate::app::App;
use crate::domain::TelephonyPolicy;
use crate::error::Result;
use crate::ids::{CallId, EstablishmentId};
use crate::store::keys;
use crate::store::records::CallRecord;
use crate::time::Timestamp;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::HashMap;

/// Calls looked at concurrently.
const PARALLEL: usize = 8;

/// What one round did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Live calls old enough to be looked at.
    pub examined: usize,
    /// The calls ended, and why.
    pub ended: Vec<SweptCall>,
    /// Campaign tick chains found broken and restarted (`service::dialer::restart_chains`).
    pub campaign_chains_restarted: u32,
}

/// A call the sweeper ended.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SweptCall {
    pub call_id: CallId,
    pub establishment_id: EstablishmentId,
    /// `over_max_duration` or `no_sign_of_life`.
    pub why: &'static str,
}

/// One round at `now`.
#[tracing::instrument(skip_all)]
pub async fn sweep(app: &App, now: Timestamp) -> Result<SweepReport> {
    let limits = app.config.sweep;
    let shortest = i64::from(
        limits
            .idle_secs
            .min(TelephonyPolicy::MIN_DURATION + limits.grace_secs),
    );
    let before = now.plus_secs(-shortest);
    let shards = futures::stream::iter(0..keys::LIVE_SHARDS)
        .map(|shard| app.store.live_calls_before(shard, &before))
        .buffer_unordered(usize::from(keys::LIVE_SHARDS))
        .try_collect::<Vec<_>>()
        .await?;
    let calls: Vec<CallRecord> = shards.into_iter().flatten().collect();
    let mut ests: Vec<EstablishmentId> = calls.iter().map(|c| c.establishment_id.clone()).collect();
    ests.sort();
    ests.dedup();
    let max_duration: HashMap<EstablishmentId, u32> = app
        .store
        .establishments(&ests)
        .await?
        .into_iter()
        .map(|(id, est)| (id, est.telephony.max_call_duration_seconds))
        .collect();
    let examined = calls.len();
    let ended = futures::stream::iter(calls)
        .map(|call| {
            let limit = max_duration
                .get(&call.establishment_id)
                .copied()
                .unwrap_or(TelephonyPolicy::default().max_call_duration_seconds);
            async move { settle(app, call, limit, &now).await }
        })
        .buffer_unordered(PARALLEL)
        .try_filter_map(|swept| async move { Ok(swept) })
        .try_collect::<Vec<_>>()
        .await?;
    // Campaigns ride on the same schedule: a broken tick chain is restarted within a minute.
    let campaign_chains_restarted = if app.campaign_ticks.is_some() {
        crate::service::dialer::restart_chains(app, now.into()).await?
    } else {
        0
    };
    tracing::info!(
        examined,
        ended = ended.len(),
        campaign_chains_restarted,
        "sweep done"
    );
    Ok(SweepReport {
        examined,
        ended,
        campaign_chains_restarted,
    })
}

/// Ends `call` if it is past its limits; `None` when it is not (or changed meanwhile).
async fn settle(
    app: &App,
    call: CallRecord,
    max_duration_secs: u32,
    now: &Timestamp,
) -> Result<Option<SweptCall>> {
    let limits = app.config.sweep;
    let began = call.started_at.unwrap_or(call.created_at);
    let over = now.unix() - began.unix() > i64::from(max_duration_secs + limits.grace_secs);
    let idle_since = |at: &Timestamp| now.unix() - at.unix() > i64::from(limits.idle_secs);
    let why = if over {
        "over_max_duration"
    } else if idle_since(&call.updated_at)
        && app
            .store
            .last_event_received(&call.id)
            .await?
            .is_none_or(|at| idle_since(&at))
    {
        "no_sign_of_life"
    } else {
        return Ok(None);
    };
    if !app.store.end_unreported(&call, now).await? {
        return Ok(None);
    }
    tracing::warn!(call_id = %call.id, establishment_id = %call.establishment_id, why, "call ended by the sweeper");
    // The call is ended either way; a job that could not be queued is logged, and an
    // operator's re-run (`POST /calls/{id}/analysis`) makes up for it.
    if let Err(e) =
        crate::service::analysis::queue_after_end(app, &call.id, &call.establishment_id, 0).await
    {
        tracing::error!(call_id = %call.id, error = %e, "post-call job of a swept call not queued");
    }
    Ok(Some(SweptCall {
        call_id: call.id,
        establishment_id: call.establishment_id,
        why,
    }))
}
