use super::E164;
use chrono::{Datelike, Timelike};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An establishment's telephony policy: what happens to calls regardless of which agent answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelephonyPolicy {
    /// Where calls are transferred on handoff, outside hours and when no runtime can take them.
    pub handoff_e164: Option<E164>,
    /// Calls are cut at this length (Twilio `TimeLimit`).
    pub max_call_duration_seconds: u32,
    /// When the agent answers; empty means always.
    pub business_hours: Vec<BusinessHours>,
    /// Callers that are rejected outright.
    pub blacklist_e164: Vec<E164>,
    /// Most campaign calls in flight at once across the establishment's campaigns (1 to
    /// 100; default 10).
    #[serde(default = "TelephonyPolicy::default_concurrency")]
    pub max_concurrent_calls: u32,
}

impl TelephonyPolicy {
    /// Shortest allowed call limit.
    pub const MIN_DURATION: u32 = 60;
    /// Longest allowed call limit: Twilio's own `TimeLimit` ceiling (4 hours).
    pub const MAX_DURATION: u32 = 14_400;
    /// Most numbers a blacklist may hold.
    pub const MAX_BLACKLIST: usize = 1_000;
    /// Most business-hours rules.
    pub const MAX_RULES: usize = 28;

    /// Campaign calls in flight at once unless the establishment sets another limit.
    pub const DEFAULT_CONCURRENCY: u32 = 10;
    /// Highest limit of campaign calls in flight.
    pub const MAX_CONCURRENCY: u32 = 100;

    fn default_concurrency() -> u32 {
        Self::DEFAULT_CONCURRENCY
    }

    /// Checks a limit of calls in flight: 1 to [`Self::MAX_CONCURRENCY`].
    pub fn check_concurrency(calls: u32) -> Result<u32, String> {
        if (1..=Self::MAX_CONCURRENCY).contains(&calls) {
            Ok(calls)
        } else {
            Err(format!("must be between 1 and {}", Self::MAX_CONCURRENCY))
        }
    }

    /// Checks a duration against the allowed range.
    pub fn check_duration(secs: u32) -> Result<u32, String> {
        if (Self::MIN_DURATION..=Self::MAX_DURATION).contains(&secs) {
            Ok(secs)
        } else {
            Err(format!(
                "must be between {} and {} seconds",
                Self::MIN_DURATION,
                Self::MAX_DURATION
            ))
        }
    }

    /// Whether `at` falls inside business hours in the establishment's time zone.
    pub fn is_open(&self, at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> bool {
        if self.business_hours.is_empty() {
            return true;
        }
        let local = at.with_timezone(&tz);
        let day = Weekday::from_chrono(local.weekday());
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.business_hours
            .iter()
            .any(|rule| rule.days.contains(&day) && rule.start.0 <= minute && minute < rule.end.0)
    }
}

impl Default for TelephonyPolicy {
    fn default() -> Self {
        Self {
            handoff_e164: None,
            max_call_duration_seconds: 900,
            business_hours: Vec::new(),
            blacklist_e164: Vec::new(),
            max_concurrent_calls: Self::DEFAULT_CONCURRENCY,
        }
    }
}

/// A day of the week as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub(crate) fn from_chrono(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Weekday::Mon,
            chrono::Weekday::Tue => Weekday::Tue,
            chrono::Weekday::Wed => Weekday::Wed,
            chrono::Weekday::Thu => Weekday::Thu,
            chrono::Weekday::Fri => Weekday::Fri,
            chrono::Weekday::Sat => Weekday::Sat,
            chrono::Weekday::Sun => Weekday::Sun,
        }
    }
}

/// A local wall-clock time `HH:MM`, `00:00` to `24:00` (the latter only as an end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    /// Parses `HH:MM` with two digits each.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let err = || format!("invalid time `{raw}`: expected HH:MM between 00:00 and 24:00");
        let (h, m) = raw.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u16 = h.parse().map_err(|_| err())?;
        let m: u16 = m.parse().map_err(|_| err())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(err());
        }
        Ok(Self(h * 60 + m))
    }

    /// Minutes since midnight (0 to 1440).
    pub fn minutes(self) -> u16 {
        self.0
    }
}

crate::openapi::text_schema!(
    ClockTime,
    "ClockTime",
    Some("^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"),
    None,
    "A local time of day, HH:MM from 00:00 to 24:00"
);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<ClockTime> for String {
    fn from(t: ClockTime) -> String {
        t.to_string()
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One opening rule: on these days, from `start` (inclusive) to `end` (exclusive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "RawBusinessHours")]
pub struct BusinessHours {
    /// Days the rule applies to; non-empty, no repeats.
    pub days: Vec<Weekday>,
    /// Opening time.
    pub start: ClockTime,
    /// Closing time; after `start`.
    pub end: ClockTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBusinessHours {
    days: Vec<Weekday>,
    start: ClockTime,
    end: ClockTime,
}

impl TryFrom<RawBusinessHours> for BusinessHours {
    type Error = String;
    fn try_from(raw: RawBusinessHours) -> Result<Self, String> {
        check_days_and_hours(&raw.days, raw.start, raw.end)?;
        Ok(Self {
            days: raw.days,
            start: raw.start,
            end: raw.end,
        })
    }
}

/// The rule every weekly window follows: at least one day, none twice, `end` after `start`.
pub(crate) fn check_days_and_hours(
    days: &[Weekday],
    start: ClockTime,
    end: ClockTime,
) -> Result<(), String> {
    if days.is_empty() {
        return Err("days must name at least one day".into());
    }
    let mut seen = std::collections::HashSet::new();
    if !days.iter().all(|d| seen.insert(*d)) {
        return Err("days must not repeat a day".into());
    }
    if end <= start {
        return Err(format!("end {end} must be after start {start}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn hours(json: &str) -> Result<BusinessHours, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn business_hours_reject_bad_rules() {
        // GIVEN rules as the frontend sends them
        // THEN good rules parse and each bad one is refused with a reason naming it
        assert!(hours(r#"{"days":["mon","fri"],"start":"08:00","end":"22:00"}"#).is_ok());
        assert!(hours(r#"{"days":["mon"],"start":"08:00","end":"24:00"}"#).is_ok());
        let end_before = hours(r#"{"days":["mon"],"start":"22:00","end":"08:00"}"#).unwrap_err();
        assert!(
            end_before.to_string().contains("must be after start"),
            "{end_before}"
        );
        let equal = hours(r#"{"days":["mon"],"start":"08:00","end":"08:00"}"#).unwrap_err();
        assert!(equal.to_string().contains("must be after start"));
        let funday = hours(r#"{"days":["funday"],"start":"08:00","end":"09:00"}"#).unwrap_err();
        assert!(funday.to_string().contains("funday"), "{funday}");
        assert!(hours(r#"{"days":[],"start":"08:00","end":"09:00"}"#).is_err());
        assert!(hours(r#"{"days":["mon"],"start":"8:00","end":"09:00"}"#).is_err());
        assert!(hours(r#"{"days":["mon"],"start":"08:60","end":"09:00"}"#).is_err());
    }

    #[test]
    fn is_open_uses_the_establishment_time_zone() {
        // GIVEN weekday hours 08:00-22:00 in São Paulo (UTC-3)
        let policy = TelephonyPolicy {
            business_hours: vec![
                hours(r#"{"days":["mon","tue","wed","thu","fri"],"start":"08:00","end":"22:00"}"#)
                    .unwrap(),
            ],
            ..TelephonyPolicy::default()
        };
        let tz = chrono_tz::America::Sao_Paulo;
        // WHEN it is Monday 10:30 UTC (07:30 local) and Monday 11:30 UTC (08:30 local)
        let early = chrono::Utc
            .with_ymd_and_hms(2026, 1, 12, 10, 30, 0)
            .unwrap();
        let open = chrono::Utc
            .with_ymd_and_hms(2026, 1, 12, 11, 30, 0)
            .unwrap();
        // THEN only the second is open
        assert!(!policy.is_open(early, tz));
        assert!(policy.is_open(open, tz));
    }
}
