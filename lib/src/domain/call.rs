//! Calls as the product sees them: where a call is in its life ([`CallStatus`], which only ever
//! moves forward), which way it goes, who answered it, and why an inbound call went where it
//! went ([`Disposition`]).

use serde::{Deserialize, Serialize};

/// Where a call is. The order of [`CallStatus::rank`] is the only order a call moves in:
/// provider callbacks arrive duplicated and out of order, and a late `ringing` must never
/// overwrite `in_progress` or a final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Created, not yet ringing (outbound calls waiting for the provider).
    Queued,
    /// The callee's phone is ringing, or an inbound call is being routed.
    Ringing,
    /// Answered; the agent (or a human) is talking.
    InProgress,
    /// Transferred to the establishment's handoff number.
    HandoffInitiated,
    /// Ended after being answered.
    Completed,
    /// The callee was busy.
    Busy,
    /// The provider could not place or connect the call.
    Failed,
    /// Nobody answered.
    NoAnswer,
    /// Hung up before it was answered.
    Canceled,
    /// Refused by policy (blacklist, do-not-call) before it was answered.
    Rejected,
}

impl CallStatus {
    /// How far along a call is; a status applies only over a lower rank.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Ringing => 1,
            CallStatus::InProgress => 2,
            CallStatus::HandoffInitiated => 3,
            _ => 4,
        }
    }

    /// Whether the call is over (nothing changes a final status).
    pub fn is_final(self) -> bool {
        self.rank() == 4
    }

    /// Whether a call at `self` may move to `next`: strictly forward only.
    pub fn advances_to(self, next: CallStatus) -> bool {
        next.rank() > self.rank()
    }

    /// The status a Twilio `CallStatus` value means; `None` for values we do not know.
    pub fn from_twilio(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" | "initiated" => CallStatus::Queued,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "answered" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::HandoffInitiated => "handoff_initiated",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Rejected => "rejected",
        }
    }
}

/// Which way a call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Who answered, from answering-machine detection (Twilio `AnsweredBy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum AnsweredBy {
    Human,
    MachineStart,
    MachineEndBeep,
    MachineEndSilence,
    MachineEndOther,
    Fax,
    Unknown,
}

impl AnsweredBy {
    /// A machine (or fax) answered, not a person.
    pub fn is_machine(self) -> bool {
        !matches!(self, AnsweredBy::Human | AnsweredBy::Unknown)
    }

    /// Parses Twilio's `AnsweredBy` value.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "human" => AnsweredBy::Human,
            "machine_start" => AnsweredBy::MachineStart,
            "machine_end_beep" => AnsweredBy::MachineEndBeep,
            "machine_end_silence" => AnsweredBy::MachineEndSilence,
            "machine_end_other" => AnsweredBy::MachineEndOther,
            "fax" => AnsweredBy::Fax,
            "unknown" => AnsweredBy::Unknown,
            _ => return None,
        })
    }
}

/// What the inbound-call webhook decided, and why; kept on the call for operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Streamed to the establishment's runtime.
    Runtime,
    /// Refused: the caller is on the establishment's blacklist.
    Blacklisted,
    /// Refused: the caller is on the establishment's do-not-call list.
    DoNotCall,
    /// Outside business hours: transferred to the handoff number.
    ClosedHandoff,
    /// Outside business hours and no handoff number: told so, then hung up.
    ClosedHangup,
    /// No runtime could take it (none, not ready, draining, agent unpublished): transferred.
    UnavailableHandoff,
    /// No runtime could take it and no handoff number: apologised, then hung up.
    UnavailableHangup,
    /// Placed by the API (outbound).
    Outbound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_never_moves_backwards() {
        // GIVEN a call in progress
        let s = CallStatus::InProgress;
        // THEN a late ringing or queued does not apply, a handoff and a final state do
        assert!(!s.advances_to(CallStatus::Ringing));
        assert!(!s.advances_to(CallStatus::Queued));
        assert!(!s.advances_to(CallStatus::InProgress));
        assert!(s.advances_to(CallStatus::HandoffInitiated));
        assert!(s.advances_to(CallStatus::Completed));
        // AND a final status is final, even against another final status
        assert!(!CallStatus::Completed.advances_to(CallStatus::Busy));
        assert!(!CallStatus::Rejected.advances_to(CallStatus::Completed));
        assert!(CallStatus::HandoffInitiated.advances_to(CallStatus::Completed));
        assert!(!CallStatus::HandoffInitiated.advances_to(CallStatus::InProgress));
    }

    #[test]
    fn twilio_statuses_map_to_ours() {
        // GIVEN every CallStatus Twilio sends
        // THEN each maps, and an unknown value does not
        assert_eq!(
            CallStatus::from_twilio("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(
            CallStatus::from_twilio("no-answer"),
            Some(CallStatus::NoAnswer)
        );
        assert_eq!(
            CallStatus::from_twilio("initiated"),
            Some(CallStatus::Queued)
        );
        assert_eq!(CallStatus::from_twilio("exploded"), None);
        assert_eq!(CallStatus::NoAnswer.as_str(), "no_answer");
        assert_eq!(
            serde_json::to_value(CallStatus::HandoffInitiated).unwrap(),
            "handoff_initiated"
        );
    }
}
