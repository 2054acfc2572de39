//! The inbound routing policy (PRD §6, §9.3): given the establishment's telephony policy,
//! the caller, the clock and the runtime's state, what happens to an incoming call — stream it
//! to the runtime, transfer it, apologise or refuse — and where a runtime's media stream is.
//! Pure functions: the Twilio webhook (`service::webhooks`) reads the state and writes the
//! outcome; outbound calls use `stream_url` too.

use super::readiness::takes_calls;
use crate::domain::{CallStatus, Disposition, E164};
use crate::ids::CallId;
use crate::store::Route;
use crate::store::records::{EstablishmentRecord, EstablishmentRuntimeRecord};
use crate::telephony::twilio::twiml::Verb;
use crate::time::Timestamp;

/// Spoken before transferring a call that came outside business hours.
pub const CLOSED_TRANSFER: &str =
    "Thank you for calling. We are closed right now, so we are connecting you to our team.";
/// Spoken before hanging up a call that came outside business hours.
pub const CLOSED_HANGUP: &str =
    "Thank you for calling. We are closed right now. Please call again during business hours.";
/// Spoken before hanging up when no runtime can take the call and there is no handoff number.
pub const APOLOGY: &str =
    "We are sorry, we cannot take your call right now. Please try again in a few minutes.";
/// How long a transfer rings the handoff number.
const DIAL_TIMEOUT_SECS: u32 = 30;

/// What the webhook decided for a call.
#[derive(Debug, PartialEq)]
pub struct Decision {
    pub disposition: Disposition,
    pub verbs: Vec<Verb>,
    /// The status the call is recorded with.
    pub status: CallStatus,
    /// Why the call went where it went when that was not the runtime (for the log and the call).
    pub reason: Option<String>,
}

/// The telephony policy, in order: blacklist and do-not-call refuse; outside business hours
/// transfers (or says so and hangs up); a runtime that cannot take the call transfers (or
/// apologises and hangs up); otherwise the media stream goes to the runtime.
pub fn decide(
    establishment: &EstablishmentRecord,
    route: &Route,
    caller: Option<&E164>,
    do_not_call: bool,
    runtime: Option<&EstablishmentRuntimeRecord>,
    call_id: &CallId,
    now: Timestamp,
) -> Decision {
    let policy = &establishment.telephony;
    let refuse = |disposition, reason: &str| Decision {
        disposition,
        verbs: vec![Verb::Reject],
        status: CallStatus::Rejected,
        reason: Some(reason.to_owned()),
    };
    if caller.is_some_and(|c| policy.blacklist_e164.contains(c)) {
        return refuse(Disposition::Blacklisted, "blacklisted");
    }
    if do_not_call {
        return refuse(Disposition::DoNotCall, "do_not_call");
    }
    let dial = |to: &E164| Verb::Dial {
        to: to.to_string(),
        caller_id: None,
        timeout_secs: DIAL_TIMEOUT_SECS,
    };
    if !policy.is_open(now.into(), establishment.timezone.tz()) {
        let reason = Some("outside_business_hours".to_owned());
        return match &policy.handoff_e164 {
            Some(to) => Decision {
                disposition: Disposition::ClosedHandoff,
                verbs: vec![Verb::Say(CLOSED_TRANSFER.into()), dial(to)],
                status: CallStatus::HandoffInitiated,
                reason,
            },
            None => Decision {
                disposition: Disposition::ClosedHangup,
                verbs: vec![Verb::Say(CLOSED_HANGUP.into()), Verb::Hangup],
                status: CallStatus::InProgress,
                reason,
            },
        };
    }
    let target = match (runtime, &route.active_version_id) {
        (_, None) => Err("the agent has no published version".to_owned()),
        (None, _) => Err("the establishment has no runtime".to_owned()),
        (Some(rt), Some(version)) => {
            takes_calls(rt.status, rt.health.as_ref(), now).map(|()| Verb::Stream {
                url: stream_url(&rt.base_url, rt.public_url.as_ref()),
                parameters: vec![
                    ("call_id".into(), call_id.to_string()),
                    ("establishment_id".into(), establishment.id.to_string()),
                    ("agent_id".into(), route.agent_id.to_string()),
                    ("agent_version_id".into(), version.to_string()),
                    (
                        "max_call_duration_seconds".into(),
                        policy.max_call_duration_seconds.to_string(),
                    ),
                ],
            })
        }
    };
    match (target, &policy.handoff_e164) {
        (Ok(stream), _) => Decision {
            disposition: Disposition::Runtime,
            verbs: vec![stream],
            status: CallStatus::InProgress,
            reason: None,
        },
        (Err(why), Some(to)) => Decision {
            disposition: Disposition::UnavailableHandoff,
            verbs: vec![dial(to)],
            status: CallStatus::HandoffInitiated,
            reason: Some(format!("runtime_unavailable: {why}")),
        },
        (Err(why), None) => Decision {
            disposition: Disposition::UnavailableHangup,
            verbs: vec![Verb::Say(APOLOGY.into()), Verb::Hangup],
            status: CallStatus::InProgress,
            reason: Some(format!("runtime_unavailable: {why}")),
        },
    }
}

/// The runtime's media-stream endpoint: `wss://{public address}/media-stream`, where the
/// host's TLS front answers for it (docs/runtime-hosts.md). Without a public address (a local
/// stack) the host's own address and port, which Twilio cannot reach with a valid certificate.
pub fn stream_url(base_url: &str, public_url: Option<&crate::domain::PublicUrl>) -> String {
    if let Some(public) = public_url {
        return public.media_stream();
    }
    let authority = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    format!("wss://{authority}/media-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_goes_to_the_runtime_host_over_tls() {
        // GIVEN runtime base URLs as provisioning stores them
        // THEN the stream URL keeps host and port and always uses wss
        assert_eq!(
            stream_url("http://10.0.0.7:18080", None),
            "wss://10.0.0.7:18080/media-stream"
        );
        assert_eq!(
            stream_url("https://rt.example.com/", None),
            "wss://rt.example.com/media-stream"
        );
        // AND a runtime with a public address streams there, through the host's TLS front
        let public = crate::domain::PublicUrl::parse("https://rt-helios.example.com").unwrap();
        assert_eq!(
            stream_url("http://10.0.0.7:18080", Some(&public)),
            "wss://rt-helios.example.com/media-stream"
        );
    }

    #[test]
    fn public_addresses_are_https_names() {
        // GIVEN candidate public addresses
        // THEN names over https (or wss, or bare, as APP_PUBLIC_DOMAIN is) are taken
        for ok in [
            "https://rt.example.com",
            "wss://rt.example.com:8443",
            "rt.example.com/",
        ] {
            assert!(crate::domain::PublicUrl::parse(ok).is_ok(), "{ok}");
        }
        // AND plain http, paths, bare hosts and junk are refused
        for bad in [
            "http://rt.example.com",
            "https://rt.example.com/x",
            "localhost",
            "",
            "https://-a.example.com",
        ] {
            assert!(crate::domain::PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
