//! What Twilio's webhooks do (PRD §5 flow 4, §6, §9.3). The incoming-call webhook resolves the
//! called number (one read), reads the establishment, its runtime's routing copy, the caller's
//! do-not-call entry and any earlier answer for this `CallSid` (one BatchGetItem), applies the
//! telephony policy, and records the call with its answer (one transaction): three round
//! trips. The callbacks move calls forward only and store AMD results and recordings.
//! Requests reach these functions only once their signature is verified (`TwilioWebhook`).
//! The routing policy itself is `service::routing`; WhatsApp's webhooks, `service::whatsapp`.

use super::routing::{APOLOGY, decide};
use crate::app::App;
use crate::domain::{AnsweredBy, CallStatus, Direction, Disposition, E164, NumberProvider};
use crate::error::{Error, Result};
use crate::ids::CallId;
use crate::store::records::{CallRecord, CallSidRecord, HandoffRecord, NewCall, RecordingRef};
use crate::store::{CreateCallError, StatusChange};
use crate::telephony::twilio::twiml::{Verb, render};
use crate::telephony::twilio::{TwilioWebhook, Twiml};
use crate::time::Timestamp;

/// `POST /webhooks/twilio/incoming-call`: TwiML for the call. A failure on our side still
/// answers the caller (an apology), never Twilio's generic application error.
#[tracing::instrument(skip_all, fields(call_sid = hook.param("CallSid").unwrap_or("")))]
pub async fn incoming_call(app: &App, hook: &TwilioWebhook) -> Result<Twiml> {
    match route_incoming(app, hook).await {
        Err(e @ (Error::Internal(_) | Error::Unavailable(_))) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "incoming call failed; apologising");
            Ok(Twiml(render(&[Verb::Say(APOLOGY.into()), Verb::Hangup])))
        }
        other => other,
    }
}

async fn route_incoming(app: &App, hook: &TwilioWebhook) -> Result<Twiml> {
    let sid = provider_id(hook, "CallSid")?;
    let to_raw = required(hook, "To")?;
    let from_raw = hook.param("From").unwrap_or("anonymous");
    let reject = || Twiml(render(&[Verb::Reject]));
    let Ok(to) = E164::parse(to_raw) else {
        tracing::warn!(
            to = to_raw,
            "incoming call to a number that is not E.164; rejected"
        );
        return Ok(reject());
    };
    let Some(route) = app.store.resolve_route(&to).await? else {
        tracing::warn!(%to, "incoming call to a number we do not route; rejected");
        return Ok(reject());
    };
    if !route.enabled {
        tracing::warn!(%to, establishment_id = %route.establishment_id, "incoming call to a disabled number; rejected");
        return Ok(reject());
    }
    let caller = E164::parse(from_raw).ok();
    let context = app
        .store
        .inbound_context(
            &route.establishment_id,
            caller.as_ref(),
            NumberProvider::Twilio,
            sid,
        )
        .await?;
    // A retry gets the first answer. A call a runtime reported first (no answer stored) is
    // answered as usual, as that call: the stream carries its id and no call is created.
    let reported = match context.existing {
        Some(CallSidRecord {
            twiml: Some(twiml), ..
        }) => {
            tracing::info!(call_sid = %sid, "Twilio retried an incoming call; same answer");
            return Ok(Twiml(twiml));
        }
        Some(existing) => Some(existing.call_id),
        None => None,
    };
    let Some(establishment) = context.establishment else {
        tracing::warn!(establishment_id = %route.establishment_id, "number of a missing establishment; rejected");
        return Ok(reject());
    };
    let now = Timestamp::now();
    let call_id = reported.clone().unwrap_or_else(CallId::new);
    let decision = decide(
        &establishment,
        &route,
        caller.as_ref(),
        context.do_not_call,
        context.runtime.as_ref(),
        &call_id,
        now,
    );
    let twiml = render(&decision.verbs);
    if reported.is_some() {
        tracing::info!(%call_id, "incoming call a runtime reported first; routed as that call");
        return Ok(Twiml(twiml));
    }
    let handoff = decision.verbs.iter().find_map(|v| match v {
        Verb::Dial { .. } => establishment.telephony.handoff_e164.clone(),
        _ => None,
    });
    let call = CallRecord {
        agent_version_id: route.active_version_id.clone(),
        runtime_id: (decision.disposition == Disposition::Runtime)
            .then(|| context.runtime.as_ref().map(|r| r.runtime_id.clone()))
            .flatten(),
        provider_call_sid: Some(sid.to_owned()),
        started_at: (decision.status != CallStatus::Rejected).then_some(now),
        ended_at: decision.status.is_final().then_some(now),
        end_reason: decision
            .status
            .is_final()
            .then(|| decision.reason.clone())
            .flatten(),
        handoff: handoff.map(|e164| HandoffRecord {
            e164,
            reason: decision.reason.clone().unwrap_or_default(),
            requested_by: None,
            at: now,
        }),
        ..CallRecord::new(NewCall {
            id: call_id.clone(),
            establishment_id: route.establishment_id.clone(),
            agent_id: route.agent_id.clone(),
            provider: NumberProvider::Twilio,
            direction: Direction::Inbound,
            from_e164: from_raw.to_owned(),
            to_e164: to.to_string(),
            status: decision.status,
            disposition: decision.disposition,
            at: now,
        })
    };
    let guard = CallSidRecord {
        call_id: call_id.clone(),
        establishment_id: route.establishment_id.clone(),
        twiml: Some(twiml.clone()),
    };
    match app.store.create_call(&call, Some(&guard), None).await {
        Ok(()) => {
            tracing::info!(%call_id, establishment_id = %route.establishment_id, disposition = ?decision.disposition, reason = decision.reason.as_deref().unwrap_or(""), "incoming call routed");
            Ok(Twiml(twiml))
        }
        // A concurrent retry of the same CallSid won: answer what it answered.
        Err(CreateCallError::Taken) => {
            let existing = app
                .store
                .call_by_sid(NumberProvider::Twilio, sid)
                .await?
                .and_then(|g| g.twiml);
            Ok(Twiml(existing.unwrap_or(twiml)))
        }
        Err(CreateCallError::Other(e)) => Err(e),
    }
}

/// `POST /webhooks/twilio/call-status`: moves the call forward; duplicates and late
/// deliveries change nothing.
#[tracing::instrument(skip_all, fields(call_sid = hook.param("CallSid").unwrap_or("")))]
pub async fn call_status(app: &App, hook: &TwilioWebhook) -> Result<()> {
    let raw = required(hook, "CallStatus")?;
    let status = CallStatus::from_twilio(raw)
        .ok_or_else(|| Error::invalid("CallStatus", format!("unknown call status `{raw}`")))?;
    let Some(call_id) = call_of(app, hook).await? else {
        return Ok(());
    };
    let at = hook
        .param("Timestamp")
        .and_then(|t| Timestamp::parse_rfc2822(t).ok())
        .unwrap_or_else(Timestamp::now);
    let end_reason = status
        .is_final()
        .then(|| match hook.param("SipResponseCode") {
            Some(code) if code != "200" => format!("{raw} (SIP {code})"),
            _ => raw.to_owned(),
        });
    let change = StatusChange {
        status,
        at,
        duration_seconds: hook.param("CallDuration").and_then(|d| d.parse().ok()),
        end_reason,
    };
    let (applied, before) = app.store.advance_call(&call_id, &change).await?;
    // An outbound call whose create answer was lost learns its CallSid here (the callback URL
    // carries our call id): from now on it is an ordinary call.
    if let Some(call) = &before
        && call.provider_call_sid.is_none()
        && let Some(sid) = hook.param("CallSid")
    {
        crate::domain::ident("CallSid", sid, crate::domain::MAX_PROVIDER_ID)?;
        app.store.set_provider_sid(call, sid).await?;
        tracing::info!(%call_id, call_sid = sid, "unconfirmed call confirmed by its status callback");
    }
    tracing::info!(%call_id, status = status.as_str(), applied, sequence = hook.param("SequenceNumber").unwrap_or(""), "call status");
    // A call the runtime never reports the end of (it crashed, it was never reached) is
    // analysed all the same. The job waits for the runtime's own end and last segments, which
    // normally follow within seconds; a retried callback queues it again (a no-op once done).
    if status.is_final()
        && let Some(call) = &before
    {
        crate::service::analysis::queue_after_end(
            app,
            &call_id,
            &call.establishment_id,
            crate::service::analysis::PROVIDER_END_DELAY_SECS,
        )
        .await?;
    }
    Ok(())
}

/// `POST /webhooks/twilio/amd-callback`: stores who answered.
#[tracing::instrument(skip_all, fields(call_sid = hook.param("CallSid").unwrap_or("")))]
pub async fn amd_result(app: &App, hook: &TwilioWebhook) -> Result<()> {
    let raw = required(hook, "AnsweredBy")?;
    let answered_by = AnsweredBy::parse(raw)
        .ok_or_else(|| Error::invalid("AnsweredBy", format!("unknown value `{raw}`")))?;
    let Some(call_id) = call_of(app, hook).await? else {
        return Ok(());
    };
    let ms = hook
        .param("MachineDetectionDuration")
        .and_then(|d| d.parse().ok());
    app.store
        .record_answered_by(&call_id, answered_by, ms)
        .await?;
    tracing::info!(%call_id, answered_by = raw, "answering machine detection");
    Ok(())
}

/// `POST /webhooks/twilio/recording-status`: stores the recording reference once the
/// recording is complete (or known to be absent).
#[tracing::instrument(skip_all, fields(call_sid = hook.param("CallSid").unwrap_or("")))]
pub async fn recording_status(app: &App, hook: &TwilioWebhook) -> Result<()> {
    let status = required(hook, "RecordingStatus")?;
    if status == "in-progress" {
        return Ok(());
    }
    let recording = RecordingRef {
        provider_recording_sid: provider_id(hook, "RecordingSid")?.to_owned(),
        url: hook.param("RecordingUrl").unwrap_or_default().to_owned(),
        status: status.to_owned(),
        duration_seconds: hook.param("RecordingDuration").and_then(|d| d.parse().ok()),
        channels: hook.param("RecordingChannels").and_then(|d| d.parse().ok()),
    };
    let Some(call_id) = call_of(app, hook).await? else {
        return Ok(());
    };
    let call = app.store.record_recording(&call_id, &recording).await?;
    tracing::info!(%call_id, recording_sid = %recording.provider_recording_sid, status, "recording");
    if let Some(call) = call
        && status == "completed"
        && !recording.url.is_empty()
    {
        crate::service::recordings::queue_copy(app, &call_id, &call.establishment_id).await?;
    }
    Ok(())
}

/// The call a callback is about: the `call_id` we put in the callback URL (signed with the
/// rest of the URL), else the `CallSid`'s guard. `None` (logged) for calls we never made.
async fn call_of(app: &App, hook: &TwilioWebhook) -> Result<Option<CallId>> {
    if let Some(raw) = hook.query("call_id") {
        return CallId::parse(raw)
            .map(Some)
            .map_err(|e| Error::invalid("call_id", e));
    }
    let sid = provider_id(hook, "CallSid")?;
    let found = app.store.call_by_sid(NumberProvider::Twilio, sid).await?;
    if found.is_none() {
        tracing::warn!(
            call_sid = sid,
            "callback for a call we have no record of; ignored"
        );
    }
    Ok(found.map(|g| g.call_id))
}

fn required<'a>(hook: &'a TwilioWebhook, name: &'static str) -> Result<&'a str> {
    hook.param(name)
        .ok_or_else(|| Error::invalid(name, "is required"))
}

/// A provider id (`CallSid`, `RecordingSid`) that goes into a key: required and of an id's
/// shape, so a 2 KB value is a 400 and not DynamoDB's key-size 500.
fn provider_id<'a>(hook: &'a TwilioWebhook, name: &'static str) -> Result<&'a str> {
    let raw = required(hook, name)?;
    crate::domain::ident(name, raw, crate::domain::MAX_PROVIDER_ID)?;
    Ok(raw)
}
