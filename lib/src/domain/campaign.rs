//! Campaigns as the product sees them (PRD §7.6, A.6, issue 14): where a campaign is
//! ([`CampaignStatus`], and why a paused one is paused), where each enrolled lead is
//! ([`EnrollmentStatus`], and why a skipped one was skipped), which leads a campaign takes
//! ([`LeadFilter`]), and the figures its progress shows ([`Progress`]).

use super::LeadStatus;
use super::dialing::Outcome;
use serde::{Deserialize, Serialize};

/// `created → running ⇄ paused → completed | cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Defined, editable, never started.
    Created,
    /// Enrolling and dialing.
    Running,
    /// Not dialing (see `paused_reason`); calls in flight still finish and are counted.
    Paused,
    /// Nothing left queued, dialing or waiting for a retry.
    Completed,
    /// Stopped for good by an operator.
    Cancelled,
}

impl CampaignStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [CampaignStatus; 5] = [
        CampaignStatus::Created,
        CampaignStatus::Running,
        CampaignStatus::Paused,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
    ];

    /// The wire name, as conditions and index keys use it.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Created => "created",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the campaign is over (it never dials again).
    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }
}

/// Why a campaign is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PausedReason {
    /// An operator paused it; only `POST …/start` resumes it.
    Operator,
    /// Too many attempts failed (`circuit_breaker_failures` lists the last ones); only
    /// `POST …/start` resumes it.
    CircuitBreaker,
    /// The establishment's runtime is not running, not ready or draining; the dialer resumes
    /// on its own once the runtime takes calls again.
    RuntimeUnavailable,
}

impl PausedReason {
    /// Whether the dialer itself lifts the pause when the cause is gone.
    pub fn resumes_itself(self) -> bool {
        self == PausedReason::RuntimeUnavailable
    }
}

/// Where one enrolled lead is: `queued → dialing → (retry_wait → queued) → completed |
/// exhausted | suppressed | skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Waiting for its window, the pace and a free slot.
    Queued,
    /// A call of it is in flight (holds a concurrency slot).
    Dialing,
    /// Its last attempt is to be retried at `next_attempt_at`.
    RetryWait,
    /// A person answered and talked: never dialed again.
    Completed,
    /// Its attempt budget is spent, or its last outcome is not retried.
    Exhausted,
    /// Taken out at dial time: its number joined the do-not-call list or the blacklist.
    Suppressed,
    /// Never dialed: see `skip_reason`.
    Skipped,
}

impl EnrollmentStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [EnrollmentStatus; 7] = [
        EnrollmentStatus::Queued,
        EnrollmentStatus::Dialing,
        EnrollmentStatus::RetryWait,
        EnrollmentStatus::Completed,
        EnrollmentStatus::Exhausted,
        EnrollmentStatus::Suppressed,
        EnrollmentStatus::Skipped,
    ];

    /// The wire name, as conditions compare it.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentStatus::Queued => "queued",
            EnrollmentStatus::Dialing => "dialing",
            EnrollmentStatus::RetryWait => "retry_wait",
            EnrollmentStatus::Completed => "completed",
            EnrollmentStatus::Exhausted => "exhausted",
            EnrollmentStatus::Suppressed => "suppressed",
            EnrollmentStatus::Skipped => "skipped",
        }
    }

    /// Whether the lead is done with this campaign.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            EnrollmentStatus::Queued | EnrollmentStatus::Dialing | EnrollmentStatus::RetryWait
        )
    }
}

/// Why a lead matching the filter is not dialed (preview and enrollment).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The lead is `do_not_call`, or its number is on the do-not-call list or the blacklist.
    DoNotCall,
    /// The lead is marked `invalid`.
    InvalidPhone,
    /// No time zone is known for the number, so its calling hours are unknown (fail closed).
    NoTimezone,
    /// The campaign's schedule and the lead's 08:00–21:00 never overlap within a week.
    NoWindow,
    /// Another campaign that is not over has the lead.
    AlreadyEnrolled,
    /// The campaign was cancelled before the lead was dialed (again).
    Cancelled,
}

impl SkipReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::DoNotCall => "do_not_call",
            SkipReason::InvalidPhone => "invalid_phone",
            SkipReason::NoTimezone => "no_timezone",
            SkipReason::NoWindow => "no_window",
            SkipReason::AlreadyEnrolled => "already_enrolled",
            SkipReason::Cancelled => "cancelled",
        }
    }
}

/// Which leads a campaign takes when it starts (A.6 `lead_filter`): every field given must
/// match; `{}` takes every lead of the establishment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadFilter {
    /// The lead's status (A.6's example: `"new"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LeadStatus>,
    /// Leads last written by this import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_job_id: Option<crate::ids::ImportJobId>,
}

/// A.6 `pace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pace {
    /// Dials per minute, 1 to 600, spread evenly (never more in any 60 s).
    #[schema(minimum = 1, maximum = 600)]
    pub calls_per_minute: u32,
}

/// Whether the campaign pauses itself when attempts fail (at least half of at least 5 that
/// ended in 120 s; busy and no answer are not failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    pub enabled: bool,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// A campaign's figures (issue 14 item 4): its leads by enrollment status, and its dials by
/// outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    pub enrolled: u32,
    pub queued: u32,
    pub dialing: u32,
    pub retry_wait: u32,
    pub completed: u32,
    pub exhausted: u32,
    pub suppressed: u32,
    pub skipped: u32,
    /// Dials placed (every attempt that reached the provider).
    pub calls_placed: u32,
    pub answered_human: u32,
    pub voicemail: u32,
    pub busy: u32,
    pub no_answer: u32,
    pub failed: u32,
}

impl Progress {
    /// The lead counter of `status`.
    pub fn leads(&mut self, status: EnrollmentStatus) -> &mut u32 {
        match status {
            EnrollmentStatus::Queued => &mut self.queued,
            EnrollmentStatus::Dialing => &mut self.dialing,
            EnrollmentStatus::RetryWait => &mut self.retry_wait,
            EnrollmentStatus::Completed => &mut self.completed,
            EnrollmentStatus::Exhausted => &mut self.exhausted,
            EnrollmentStatus::Suppressed => &mut self.suppressed,
            EnrollmentStatus::Skipped => &mut self.skipped,
        }
    }

    /// A lead moved from `from` to `to`.
    pub fn moved(&mut self, from: EnrollmentStatus, to: EnrollmentStatus) {
        let was = self.leads(from);
        *was = was.saturating_sub(1);
        *self.leads(to) += 1;
    }

    /// An attempt ended as `outcome`.
    pub fn ended(&mut self, outcome: Outcome) {
        *match outcome {
            Outcome::Human => &mut self.answered_human,
            Outcome::Voicemail => &mut self.voicemail,
            Outcome::Busy => &mut self.busy,
            Outcome::NoAnswer => &mut self.no_answer,
            Outcome::Failed => &mut self.failed,
        } += 1;
    }

    /// Whether nothing is queued, dialing or waiting for a retry.
    pub fn is_drained(&self) -> bool {
        self.queued == 0 && self.dialing == 0 && self.retry_wait == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_filter_names_its_unknown_keys() {
        // GIVEN a filter with a key the API does not know
        let bad = serde_json::json!({"status": "new", "city": "Recife"});
        // WHEN it is read
        let err = serde_json::from_value::<LeadFilter>(bad).unwrap_err();
        // THEN the error names the key
        assert!(err.to_string().contains("city"), "{err}");
    }

    #[test]
    fn progress_moves_a_lead_between_counters() {
        // GIVEN a campaign with two queued leads
        let mut p = Progress {
            enrolled: 2,
            queued: 2,
            ..Progress::default()
        };
        // WHEN one is dialed and then waits for a retry
        p.moved(EnrollmentStatus::Queued, EnrollmentStatus::Dialing);
        p.moved(EnrollmentStatus::Dialing, EnrollmentStatus::RetryWait);
        p.ended(Outcome::Busy);
        // THEN the counters say so and the campaign is not drained
        assert_eq!((p.queued, p.dialing, p.retry_wait, p.busy), (1, 0, 1, 1));
        assert!(!p.is_drained());
    }
}
