//! When a campaign may dial a lead (groundwork of the campaign dialer, issue 14): inside the
//! campaign's schedule (its days and hours in its own time zone) **and** inside the legal
//! calling hours, 08:00–21:00, in every zone the lead may be in (47 CFR 64.1200 measures them at
//! the called party's location, and a number may be in several). A lead with no zone is never
//! dialed: the rule fails closed. Every function takes the instant as input, so the dialer's
//! decisions can be walked through days and DST changes in tests without waiting.

use super::{ClockTime, TimeZone, Weekday};
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
}
