//! The campaign dialer's decisions (groundwork of issue 14), as pure functions of the instant:
//!
//! - **when** a lead may be dialed: inside the campaign's schedule (its days and hours in its
//!   own time zone) **and** inside the legal calling hours, 08:00–21:00, in every zone the
//!   lead may be in (47 CFR 64.1200 measures them at the called party's location, and a number
//!   may be in several); a lead with no zone is never dialed — the rule fails closed;
//! - **what an attempt came to** ([`Outcome`], from the call's final status and Twilio's
//!   `AnsweredBy`) and whether the lead is dialed again ([`RetryPolicy::after`]: one attempt
//!   budget per lead, by outcome, never after a human conversation);
//! - **how fast** ([`Pacer`]: any rate from 1 to 600 per minute, evenly spaced, never more than
//!   the rate in any 60 s);
//! - **when to stop** ([`breaker_trips`]: at least half of at least 5 attempts in 120 s failed).
//!
//! Every function takes the instant as input, so the dialer's decisions can be walked through
//! days and DST changes in tests without waiting.

use super::{AnsweredBy, CallStatus, ClockTime, TimeZone, Weekday};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone as _, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// The legal calling hours at the called party's location: from 08:00 (inclusive) to 21:00
/// (exclusive), as minutes since local midnight.
pub const CALLING_HOURS: (u16, u16) = (8 * 60, 21 * 60);

/// How far ahead [`next_dial_at`] looks for an open window.
pub const HORIZON_DAYS: i64 = 8;

/// A campaign's schedule (A.6 `schedule`): on `days`, from `start` (inclusive) to `end`
/// (exclusive), in `timezone`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawSchedule")]
pub struct CampaignSchedule {
    pub timezone: TimeZone,
    /// Non-empty, no repeats.
    pub days: Vec<Weekday>,
    pub start: ClockTime,
    /// After `start`.
    pub end: ClockTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    timezone: TimeZone,
    days: Vec<Weekday>,
    start: ClockTime,
    end: ClockTime,
}

impl TryFrom<RawSchedule> for CampaignSchedule {
    type Error = String;
    fn try_from(raw: RawSchedule) -> Result<Self, String> {
        super::telephony::check_days_and_hours(&raw.days, raw.start, raw.end)?;
        Ok(Self {
            timezone: raw.timezone,
            days: raw.days,
            start: raw.start,
            end: raw.end,
        })
    }
}

/// The zone's rules (a [`TimeZone`] is checked against the tz database when it is built).
fn tz(zone: &TimeZone) -> chrono_tz::Tz {
    zone.as_str().parse().unwrap_or(chrono_tz::UTC)
}

/// `at` in `zone`: the weekday and the minute since local midnight.
fn local(zone: &TimeZone, at: DateTime<Utc>) -> (Weekday, u16) {
    let local = at.with_timezone(&tz(zone));
    let minute = (local.hour() * 60 + local.minute()) as u16;
    (Weekday::from_chrono(local.weekday()), minute)
}

impl CampaignSchedule {
    /// Whether the schedule is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let (day, minute) = local(&self.timezone, at);
        self.days.contains(&day) && self.start.minutes() <= minute && minute < self.end.minutes()
    }
}

/// Whether `at` is inside the legal calling hours in every one of `zones`; `false` for none.
pub fn within_calling_hours(zones: &[TimeZone], at: DateTime<Utc>) -> bool {
    !zones.is_empty()
        && zones.iter().all(|zone| {
            let (_, minute) = local(zone, at);
            (CALLING_HOURS.0..CALLING_HOURS.1).contains(&minute)
        })
}

/// Whether a lead in `zones` may be dialed at `at` under `schedule`.
pub fn may_dial(schedule: &CampaignSchedule, zones: &[TimeZone], at: DateTime<Utc>) -> bool {
    schedule.is_open(at) && within_calling_hours(zones, at)
}

/// The first instant from `at` on when a lead in `zones` may be dialed under `schedule`,
/// within [`HORIZON_DAYS`]; `None` when there is none (no zone, or windows that never meet).
///
/// The open instants are a union of intervals, each starting at `at` or where one of the
/// windows opens (the schedule's start in its zone, 08:00 in one of the lead's zones); so
/// checking those candidates, in order, finds the first open instant exactly.
pub fn next_dial_at(
    schedule: &CampaignSchedule,
    zones: &[TimeZone],
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if zones.is_empty() {
        return None;
    }
    let at = at.with_nanosecond(0).unwrap_or(at);
    let mut candidates = vec![at];
    let openings = std::iter::once((&schedule.timezone, schedule.start.minutes()))
        .chain(zones.iter().map(|zone| (zone, CALLING_HOURS.0)));
    for (zone, minute) in openings {
        let first_day = at.with_timezone(&tz(zone)).date_naive() - Duration::days(1);
        for offset in 0..=HORIZON_DAYS + 1 {
            if let Some(instant) = local_instant(zone, first_day + Duration::days(offset), minute)
                && instant >= at
            {
                candidates.push(instant);
            }
        }
    }
    candidates.sort();
    let horizon = at + Duration::days(HORIZON_DAYS);
    candidates
        .into_iter()
        .take_while(|c| *c <= horizon)
        .find(|c| may_dial(schedule, zones, *c))
}

/// The instant of `minute` past midnight on `date` in `zone` (the earlier one when clocks go
/// back; after the gap when they go forward).
fn local_instant(zone: &TimeZone, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
    let zone = tz(zone);
    zone.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// What one dial of a lead came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A person answered and the call went on: never dialed again.
    Human,
    /// An answering machine or fax took it (Twilio's `AnsweredBy` `machine_*`, `fax`).
    Voicemail,
    Busy,
    NoAnswer,
    /// The provider could not place or connect it, or it was refused.
    Failed,
}

impl Outcome {
    /// The outcome of a call that reached final status `status`, answered by `answered_by`
    /// when Twilio's answering-machine detection said; `None` while the call is not over.
    pub fn of(status: CallStatus, answered_by: Option<AnsweredBy>) -> Option<Self> {
        if !status.is_final() {
            return None;
        }
        Some(match status {
            CallStatus::Busy => Outcome::Busy,
            CallStatus::NoAnswer | CallStatus::Canceled => Outcome::NoAnswer,
            CallStatus::Failed | CallStatus::Rejected => Outcome::Failed,
            _ if answered_by.is_some_and(AnsweredBy::is_machine) => Outcome::Voicemail,
            _ => Outcome::Human,
        })
    }

    /// Whether it counts against the circuit breaker (busy and no answer say nothing about
    /// our side).
    pub fn is_failure(self) -> bool {
        self == Outcome::Failed
    }
}

/// A campaign's retry policy (A.6 `retry`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawRetry")]
pub struct RetryPolicy {
    /// Dials of one lead in all, the first included (1 to 10).
    pub max_attempts: u32,
    /// The outcomes worth another dial; never `human`.
    pub retry_on: Vec<Outcome>,
    /// The wait after such an outcome, in minutes (1 to 10,080: a week).
    pub delay_minutes: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: u32,
    retry_on: Vec<Outcome>,
    delay_minutes: u32,
}

impl TryFrom<RawRetry> for RetryPolicy {
    type Error = String;
    fn try_from(raw: RawRetry) -> Result<Self, String> {
        if !(1..=10).contains(&raw.max_attempts) {
            return Err("max_attempts must be between 1 and 10".into());
        }
        if raw.retry_on.contains(&Outcome::Human) {
            return Err("retry_on cannot hold human: a conversation is never dialed again".into());
        }
        if !(1..=10_080).contains(&raw.delay_minutes) {
            return Err("delay_minutes must be between 1 and 10080".into());
        }
        let mut retry_on = raw.retry_on;
        retry_on.sort_by_key(|o| *o as u8);
        retry_on.dedup();
        Ok(Self {
            max_attempts: raw.max_attempts,
            retry_on,
            delay_minutes: raw.delay_minutes,
        })
    }
}

impl Default for RetryPolicy {
    /// Three dials, again after busy, no answer and voicemail, an hour apart.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_on: vec![Outcome::Voicemail, Outcome::Busy, Outcome::NoAnswer],
            delay_minutes: 60,
        }
    }
}

/// What happens to a lead after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Dial again, not before this instant (and then only inside the windows).
    RetryAt(DateTime<Utc>),
    /// A conversation took place.
    Completed,
    /// The outcome is not retried, or the budget is spent.
    Exhausted,
}

impl RetryPolicy {
    /// What follows attempt number `attempts` (1 for the first dial) ending as `outcome` at
    /// `ended_at`.
    pub fn after(&self, attempts: u32, outcome: Outcome, ended_at: DateTime<Utc>) -> AfterAttempt {
        if outcome == Outcome::Human {
            AfterAttempt::Completed
        } else if attempts < self.max_attempts && self.retry_on.contains(&outcome) {
            AfterAttempt::RetryAt(ended_at + Duration::minutes(i64::from(self.delay_minutes)))
        } else {
            AfterAttempt::Exhausted
        }
    }
}

/// Dials spread evenly at a rate of `calls_per_minute` (1 to 600): one every
/// `60 s / calls_per_minute`, rounded up to the microsecond, so no 60 s holds more than the
/// rate whatever the rate (30 a minute is one every 2 s, 7 a minute one every 8.571429 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacer {
    interval_us: i64,
}

impl Pacer {
    /// Slowest and fastest rates, per minute.
    pub const RATES: std::ops::RangeInclusive<u32> = 1..=600;

    /// A pacer at `calls_per_minute`, checked.
    pub fn new(calls_per_minute: u32) -> Result<Self, String> {
        if !Self::RATES.contains(&calls_per_minute) {
            return Err("calls_per_minute must be between 1 and 600".into());
        }
        let rate = i64::from(calls_per_minute);
        Ok(Self {
            interval_us: (60_000_000 + rate - 1) / rate,
        })
    }

    /// The same pace slowed by `permille` thousandths: the dialer spaces its dials 1 % wider
    /// than the rate, so that dials whose requests reach the provider with different
    /// latencies (the first of a minute slow, the last fast) still never put more than the
    /// rate into any 60 s there, as long as the latencies differ by less than 0.6 s.
    pub fn with_slack(self, permille: u32) -> Self {
        let extra = self.interval_us * i64::from(permille) / 1000;
        Self {
            interval_us: self.interval_us + extra,
        }
    }

    /// The earliest instant the next dial may go at: `now`, or one interval after the last
    /// dial if that is later.
    pub fn next(&self, last_dial: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
        match last_dial {
            Some(last) => now.max(last + Duration::microseconds(self.interval_us)),
            None => now,
        }
    }
}

/// How far back the circuit breaker looks.
pub const BREAKER_WINDOW_SECS: i64 = 120;
/// Fewest attempts in the window before the breaker may trip.
pub const BREAKER_MIN_ATTEMPTS: usize = 5;

/// Whether the campaign should pause itself: of the attempts that ended in the last
/// [`BREAKER_WINDOW_SECS`] before `now`, at least [`BREAKER_MIN_ATTEMPTS`], and at least half
/// of them failures (busy and no answer are not).
pub fn breaker_trips(ended: &[(DateTime<Utc>, Outcome)], now: DateTime<Utc>) -> bool {
    let since = now - Duration::seconds(BREAKER_WINDOW_SECS);
    let recent: Vec<Outcome> = ended
        .iter()
        .filter(|(at, _)| *at > since && *at <= now)
        .map(|(_, outcome)| *outcome)
        .collect();
    let failed = recent.iter().filter(|o| o.is_failure()).count();
    recent.len() >= BREAKER_MIN_ATTEMPTS && failed * 2 >= recent.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse(name).unwrap()
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule(json: serde_json::Value) -> CampaignSchedule {
        serde_json::from_value(json).unwrap()
    }

    fn weekdays_9_to_17_new_york() -> CampaignSchedule {
        schedule(serde_json::json!({
            "timezone": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00", "end": "17:00"
        }))
    }

    #[test]
    fn a_lead_is_dialed_only_inside_the_schedule_and_its_calling_hours() {
        // GIVEN a weekday 09:00-17:00 New York campaign and a New York lead
        let s = weekdays_9_to_17_new_york();
        let ny = [zone("America/New_York")];
        // THEN Monday 10:00 is open; before 09:00, at 17:00 and on Saturday it is not
        assert!(may_dial(&s, &ny, utc("2026-12-07T15:00:00Z")));
        assert!(!may_dial(&s, &ny, utc("2026-12-07T13:59:00Z")));
        assert!(!may_dial(&s, &ny, utc("2026-12-07T22:00:00Z")));
        assert!(!may_dial(&s, &ny, utc("2026-12-05T15:00:00Z")));
    }

    #[test]
    fn a_lead_in_several_zones_is_dialed_only_when_every_zone_is_inside_08_to_21() {
        // GIVEN a campaign open around the clock and an Idaho 208 lead (Boise or Los Angeles)
        let always = schedule(serde_json::json!({
            "timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00", "end": "24:00"
        }));
        let idaho = [zone("America/Boise"), zone("America/Los_Angeles")];
        // THEN 08:30 in Boise (07:30 in Los Angeles) is closed, 09:00 in Los Angeles open,
        // 20:30 in Boise open, 21:00 in Boise closed (December: Boise UTC-7, LA UTC-8)
        assert!(!may_dial(&always, &idaho, utc("2026-12-07T15:30:00Z")));
        assert!(may_dial(&always, &idaho, utc("2026-12-07T17:00:00Z")));
        assert!(may_dial(&always, &idaho, utc("2026-12-08T03:30:00Z")));
        assert!(!may_dial(&always, &idaho, utc("2026-12-08T04:00:00Z")));
        // AND a lead with no zone is never dialed, nor given a next time
        assert!(!may_dial(&always, &[], utc("2026-12-07T17:00:00Z")));
        assert_eq!(
            next_dial_at(&always, &[], utc("2026-12-07T17:00:00Z")),
            None
        );
    }

    #[test]
    fn the_next_dial_time_skips_to_the_first_instant_both_windows_are_open() {
        // GIVEN the weekday New York campaign, Friday 16:30 New York
        let s = weekdays_9_to_17_new_york();
        let friday = utc("2026-12-04T21:30:00Z");
        // THEN a New York lead may be dialed now; after 17:00 the next time is Monday 09:00
        assert_eq!(
            next_dial_at(&s, &[zone("America/New_York")], friday),
            Some(friday)
        );
        assert_eq!(
            next_dial_at(&s, &[zone("America/New_York")], utc("2026-12-04T22:00:00Z")),
            Some(utc("2026-12-07T14:00:00Z"))
        );
        // AND a Los Angeles lead waits for 08:00 there (11:00 New York) on Monday
        assert_eq!(
            next_dial_at(
                &s,
                &[zone("America/Los_Angeles")],
                utc("2026-12-07T13:00:00Z")
            ),
            Some(utc("2026-12-07T16:00:00Z"))
        );
        // AND a Sydney lead waits for its 08:00, which is 16:00 in New York the day before
        // (December): inside the schedule's last hour
        assert_eq!(
            next_dial_at(&s, &[zone("Australia/Sydney")], utc("2026-12-07T14:00:00Z")),
            Some(utc("2026-12-07T21:00:00Z"))
        );
    }

    #[test]
    fn windows_follow_daylight_saving_changes() {
        // GIVEN a New York lead on the day clocks go forward (2026-03-08, 02:00 -> 03:00)
        let always = schedule(serde_json::json!({
            "timezone": "America/New_York", "days": ["sun"], "start": "00:00", "end": "24:00"
        }));
        let ny = [zone("America/New_York")];
        // THEN 08:00 local is 12:00 UTC that day (EDT), not 13:00 (EST)
        assert_eq!(
            next_dial_at(&always, &ny, utc("2026-03-08T05:00:00Z")),
            Some(utc("2026-03-08T12:00:00Z"))
        );
        assert!(!may_dial(&always, &ny, utc("2026-03-08T11:59:00Z")));
    }

    #[test]
    fn schedules_are_checked_when_read() {
        // GIVEN schedules with no day, a repeated day, end before start, an unknown zone or day
        for bad in [
            serde_json::json!({ "timezone": "UTC", "days": [], "start": "09:00", "end": "17:00" }),
            serde_json::json!({ "timezone": "UTC", "days": ["mon", "mon"], "start": "09:00", "end": "17:00" }),
            serde_json::json!({ "timezone": "UTC", "days": ["mon"], "start": "17:00", "end": "09:00" }),
            serde_json::json!({ "timezone": "Mars/Base", "days": ["mon"], "start": "09:00", "end": "17:00" }),
            serde_json::json!({ "timezone": "UTC", "days": ["someday"], "start": "09:00", "end": "17:00" }),
        ] {
            // THEN each is refused
            assert!(
                serde_json::from_value::<CampaignSchedule>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_attempt_s_outcome_comes_from_its_final_status_and_answering_machine_detection() {
        // GIVEN final statuses with and without Twilio's AnsweredBy
        let of = |status, by| Outcome::of(status, by);
        // THEN a completed call is a conversation unless a machine answered
        assert_eq!(of(CallStatus::Completed, None), Some(Outcome::Human));
        assert_eq!(
            of(CallStatus::Completed, Some(AnsweredBy::Human)),
            Some(Outcome::Human)
        );
        assert_eq!(
            of(CallStatus::Completed, Some(AnsweredBy::MachineEndBeep)),
            Some(Outcome::Voicemail)
        );
        assert_eq!(of(CallStatus::Busy, None), Some(Outcome::Busy));
        assert_eq!(of(CallStatus::NoAnswer, None), Some(Outcome::NoAnswer));
        assert_eq!(of(CallStatus::Failed, None), Some(Outcome::Failed));
        // AND a call still going has no outcome yet
        assert_eq!(of(CallStatus::InProgress, Some(AnsweredBy::Human)), None);
    }

    #[test]
    fn retries_follow_the_outcome_within_one_budget_and_never_after_a_conversation() {
        // GIVEN three dials, again after busy and voicemail, 30 minutes apart
        let policy: RetryPolicy = serde_json::from_value(serde_json::json!({
            "max_attempts": 3, "retry_on": ["busy", "voicemail", "busy"], "delay_minutes": 30
        }))
        .unwrap();
        let at = utc("2026-12-07T15:00:00Z");
        // THEN busy on the first and second dial is retried 30 minutes later, not on the third
        assert_eq!(
            policy.after(1, Outcome::Busy, at),
            AfterAttempt::RetryAt(utc("2026-12-07T15:30:00Z"))
        );
        assert!(matches!(
            policy.after(2, Outcome::Voicemail, at),
            AfterAttempt::RetryAt(_)
        ));
        assert_eq!(policy.after(3, Outcome::Busy, at), AfterAttempt::Exhausted);
        // AND an outcome not listed ends the lead, a conversation completes it
        assert_eq!(
            policy.after(1, Outcome::NoAnswer, at),
            AfterAttempt::Exhausted
        );
        assert_eq!(policy.after(1, Outcome::Human, at), AfterAttempt::Completed);
        // AND policies that would retry a conversation or have no budget are refused
        for bad in [
            serde_json::json!({ "max_attempts": 3, "retry_on": ["human"], "delay_minutes": 30 }),
            serde_json::json!({ "max_attempts": 0, "retry_on": [], "delay_minutes": 30 }),
            serde_json::json!({ "max_attempts": 3, "retry_on": [], "delay_minutes": 0 }),
            serde_json::json!({ "max_attempts": 3, "retry_on": ["hung_up"], "delay_minutes": 30 }),
        ] {
            assert!(
                serde_json::from_value::<RetryPolicy>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn paced_dials_never_exceed_the_rate_in_any_60_seconds() {
        // GIVEN rates that do and do not divide a minute, each dialing as fast as allowed
        for rate in [1, 6, 7, 30, 59, 60, 61, 599, 600] {
            let pacer = Pacer::new(rate).unwrap();
            let start = utc("2026-12-07T15:00:00Z");
            let mut dials = vec![];
            let mut last = None;
            while dials.len() < 3 * rate as usize + 1 {
                let at = pacer.next(last, start);
                dials.push(at);
                last = Some(at);
            }
            // THEN every window of 60 s starting at a dial holds at most `rate` dials, and the
            // rate is met: `rate + 1` dials span a minute, give or take the rounding (at most a
            // microsecond per dial)
            for (i, from) in dials.iter().enumerate() {
                let within = dials[i..]
                    .iter()
                    .take_while(|t| **t < *from + Duration::seconds(60))
                    .count();
                assert!(within <= rate as usize, "{rate}/min: {within} in 60 s");
            }
            let span = dials[rate as usize] - dials[0];
            assert!(
                span <= Duration::seconds(60) + Duration::microseconds(i64::from(rate)),
                "{rate}: {span}"
            );
        }
        assert!(Pacer::new(0).is_err());
        assert!(Pacer::new(601).is_err());
    }

    #[test]
    fn a_pace_with_slack_is_one_percent_under_the_rate_and_never_over_it() {
        // GIVEN 60 a minute with the dialer's 1 % slack
        let pacer = Pacer::new(60).unwrap().with_slack(10);
        let start = utc("2026-12-07T14:00:00Z");
        // WHEN it dials as fast as it may for two minutes
        let mut dials = vec![start];
        while let Some(last) = dials.last().copied() {
            let next = pacer.next(Some(last), last);
            if next >= start + Duration::seconds(120) {
                break;
            }
            dials.push(next);
        }
        // THEN dials are 1.01 s apart: 119 in 120 s, at most 60 in any 60 s even when the
        // first of a minute reaches the provider 0.5 s late and the last on time
        assert_eq!(dials[1] - dials[0], Duration::milliseconds(1010));
        assert_eq!(dials.len(), 119);
        for (i, t) in dials.iter().enumerate() {
            let late_first = *t + Duration::milliseconds(500);
            let within = dials[i + 1..]
                .iter()
                .take_while(|u| **u < late_first + Duration::seconds(60))
                .count()
                + 1;
            assert!(within <= 60, "{within} from {t}");
        }
    }

    #[test]
    fn the_breaker_trips_when_half_of_five_recent_attempts_failed() {
        // GIVEN attempts ending in the last two minutes
        let now = utc("2026-12-07T15:10:00Z");
        let ago = |secs: i64| now - Duration::seconds(secs);
        let failed = |secs| (ago(secs), Outcome::Failed);
        let busy = |secs| (ago(secs), Outcome::Busy);
        // THEN 3 failed of 5 trips, 2 of 5 does not, 4 of 4 is too few to judge
        assert!(breaker_trips(
            &[failed(1), failed(2), failed(3), busy(4), busy(5)],
            now
        ));
        assert!(!breaker_trips(
            &[failed(1), failed(2), busy(3), busy(4), busy(5)],
            now
        ));
        assert!(!breaker_trips(
            &[failed(1), failed(2), failed(3), failed(4)],
            now
        ));
        // AND failures older than 120 s do not count; busy and no answer are never failures
        assert!(!breaker_trips(
            &[
                failed(1),
                failed(2),
                failed(121),
                busy(3),
                (ago(4), Outcome::NoAnswer),
                busy(5)
            ],
            now
        ));
    }
}
