//! Report figures (issue 15). A finished call contributes a set of named integer counters
//! ([`Counters`]) to its establishment's aggregates; an aggregate is their sum, and every
//! figure a report shows ([`Figures`]) is computed from such a sum. Because a contribution is
//! only ever added, and replaced by adding the difference, a call can be recounted (its
//! analysis re-run) without reading any other call. Report periods ([`Period`]) are local days
//! of the establishment's time zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest duration the histogram tells apart; longer calls count at this many seconds.
pub const MAX_HISTOGRAM_SECS: u32 = 14_400;
/// Longest period a report covers, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// Longest period grouped by hour, in days.
pub const MAX_HOURLY_DAYS: i64 = 31;

/// Counter names. Duration histogram buckets are `d{seconds}` ([`histogram_key`]); status and
/// disposition counts are `st_{status}` and `dp_{disposition}`.
pub mod counter {
    pub const CALLS: &str = "calls";
    pub const INBOUND: &str = "inbound";
    pub const OUTBOUND: &str = "outbound";
    pub const ANSWERED: &str = "answered";
    pub const COMPLETED: &str = "completed";
    pub const WITH_DURATION: &str = "dur_n";
    pub const DURATION_SUM: &str = "dur_sum";
    pub const MINUTES_INBOUND: &str = "min_in";
    pub const MINUTES_OUTBOUND: &str = "min_out";
    pub const HANDOFFS: &str = "handoffs";
    pub const VOICEMAIL: &str = "voicemail";
    pub const ANALYSED: &str = "an_ok";
    pub const ANALYSIS_FAILED: &str = "an_failed";
    pub const SUCCESS_YES: &str = "succ_yes";
    pub const SUCCESS_NO: &str = "succ_no";
    pub const POSITIVE: &str = "sent_pos";
    pub const NEUTRAL: &str = "sent_neu";
    pub const NEGATIVE: &str = "sent_neg";
    /// Sum of sentiment scores, in thousandths.
    pub const SENTIMENT_MILLI: &str = "sent_milli";
    pub const TOOL_CALLS: &str = "tools";
    pub const TOOL_ERRORS: &str = "tool_err";
    /// Calls with at least one runtime error.
    pub const RUNTIME_ERRORS: &str = "rt_err";
    pub const SWEPT: &str = "swept";
    pub const ATTENTION: &str = "attention";
    pub const CAMPAIGN: &str = "campaign";
    pub const STATUS_PREFIX: &str = "st_";
    pub const DISPOSITION_PREFIX: &str = "dp_";
}

/// The histogram counter of a call of `secs` seconds.
pub fn histogram_key(secs: u32) -> String {
    format!("d{}", secs.min(MAX_HISTOGRAM_SECS))
}

/// Named integer counters: one call's contribution, or the sum of many.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(BTreeMap<String, i64>);

impl Counters {
    /// Adds `by` to counter `name` (a zero sum drops it).
    pub fn add(&mut self, name: &str, by: i64) {
        if by == 0 {
            return;
        }
        let value = self.0.entry(name.to_owned()).or_default();
        *value += by;
        if *value == 0 {
            self.0.remove(name);
        }
    }

    /// Counts one at `name`.
    pub fn one(&mut self, name: &str) {
        self.add(name, 1);
    }

    /// Adds every counter of `other`, times `sign`.
    pub fn merge(&mut self, other: &Counters, sign: i64) {
        for (name, value) in &other.0 {
            self.add(name, value * sign);
        }
    }

    /// What turns `old` into `self`.
    pub fn minus(&self, old: &Counters) -> Counters {
        let mut delta = self.clone();
        delta.merge(old, -1);
        delta
    }

    /// Counter `name` (0 when absent).
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    fn count(&self, name: &str) -> u64 {
        u64::try_from(self.get(name)).unwrap_or(0)
    }

    /// Every counter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counters named `{prefix}{key}`, by key.
    fn by_prefix(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), (*v).max(0) as u64)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    /// The duration histogram, seconds → calls, in order.
    fn histogram(&self) -> Vec<(u32, u64)> {
        let mut h: Vec<(u32, u64)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let secs = k.strip_prefix('d')?.parse().ok()?;
                (*v > 0).then_some((secs, *v as u64))
            })
            .collect();
        h.sort_unstable();
        h
    }
}

impl FromIterator<(String, i64)> for Counters {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        let mut c = Counters::default();
        for (k, v) in iter {
            c.add(&k, v);
        }
        c
    }
}

/// `a / b` to four decimals; `None` when `b` is 0.
pub fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| (a as f64 / b as f64 * 10_000.0).round() / 10_000.0)
}

/// The nearest-rank `p` percentile (0 < p ≤ 1) of a histogram of whole seconds.
fn percentile(histogram: &[(u32, u64)], p: f64) -> Option<u32> {
    let n: u64 = histogram.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    let rank = ((p * n as f64).ceil() as u64).max(1);
    let mut seen = 0;
    histogram.iter().find_map(|(secs, c)| {
        seen += c;
        (seen >= rank).then_some(*secs)
    })
}

/// Calls by length: `[0, 10)`, `[10, 30)`, `[30, 60)`, `[60, 180)` and `180` seconds or more.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DurationBuckets {
    #[serde(rename = "0_10")]
    pub under_10: u64,
    #[serde(rename = "10_30")]
    pub from_10_to_30: u64,
    #[serde(rename = "30_60")]
    pub from_30_to_60: u64,
    #[serde(rename = "60_180")]
    pub from_60_to_180: u64,
    #[serde(rename = "180_plus")]
    pub over_180: u64,
}

/// The sentiment of analysed calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentimentMix {
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    /// Mean score (−1 to 1) of the calls with a sentiment.
    pub average_score: Option<f64>,
}

/// A figure split by call direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ByDirection {
    pub inbound: u64,
    pub outbound: u64,
}

/// Every figure of a set of ended calls. Rates are fractions to four decimals, `null` when
/// their denominator is 0: answer rate of calls, handoff rate of answered calls, success rate
/// of calls whose analysis judged success, tool-error rate of tool calls, voicemail rate of
/// outbound calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub calls: u64,
    pub inbound: u64,
    pub outbound: u64,
    /// Calls that were answered (by a person or a machine).
    pub answered: u64,
    pub answer_rate: Option<f64>,
    /// Calls whose final status is `completed`.
    pub completed: u64,
    pub average_duration_seconds: Option<f64>,
    /// Nearest-rank median of the calls with a length.
    pub p50_duration_seconds: Option<u32>,
    pub p90_duration_seconds: Option<u32>,
    pub duration_buckets: DurationBuckets,
    pub handoffs: u64,
    pub handoff_rate: Option<f64>,
    /// Calls whose post-call analysis succeeded.
    pub analysed: u64,
    pub analysis_failed: u64,
    pub successful: u64,
    pub success_rate: Option<f64>,
    pub sentiment: SentimentMix,
    pub tool_calls: u64,
    pub tool_errors: u64,
    pub tool_error_rate: Option<f64>,
    /// Outbound calls answered by a machine.
    pub voicemail: u64,
    pub voicemail_rate: Option<f64>,
    /// Each call's length rounded up to the minute, as Twilio bills.
    pub billed_minutes: ByDirection,
    /// Calls with a runtime error reported during them.
    pub runtime_errors: u64,
    /// Calls the sweeper ended (their end was never reported).
    pub swept: u64,
    /// Calls an operator should look at (`GET /dashboard/needs-attention`).
    pub needs_attention: u64,
    /// Calls placed by campaigns.
    pub campaign_calls: u64,
    /// Calls by final status.
    pub by_status: BTreeMap<String, u64>,
    /// Calls by what routing decided.
    pub by_disposition: BTreeMap<String, u64>,
}

impl From<&Counters> for Figures {
    fn from(c: &Counters) -> Self {
        use counter::*;
        let histogram = c.histogram();
        let mut buckets = DurationBuckets::default();
        for (secs, n) in &histogram {
            let slot = match secs {
                0..10 => &mut buckets.under_10,
                10..30 => &mut buckets.from_10_to_30,
                30..60 => &mut buckets.from_30_to_60,
                60..180 => &mut buckets.from_60_to_180,
                _ => &mut buckets.over_180,
            };
            *slot += n;
        }
        let with_duration = c.count(WITH_DURATION);
        let sentiments = c.count(POSITIVE) + c.count(NEUTRAL) + c.count(NEGATIVE);
        let successful = c.count(SUCCESS_YES);
        Figures {
            calls: c.count(CALLS),
            inbound: c.count(INBOUND),
            outbound: c.count(OUTBOUND),
            answered: c.count(ANSWERED),
            answer_rate: ratio(c.count(ANSWERED), c.count(CALLS)),
            completed: c.count(COMPLETED),
            average_duration_seconds: (with_duration > 0)
                .then(|| (c.get(DURATION_SUM) as f64 / with_duration as f64 * 10.0).round() / 10.0),
            p50_duration_seconds: percentile(&histogram, 0.5),
            p90_duration_seconds: percentile(&histogram, 0.9),
            duration_buckets: buckets,
            handoffs: c.count(HANDOFFS),
            handoff_rate: ratio(c.count(HANDOFFS), c.count(ANSWERED)),
            analysed: c.count(ANALYSED),
            analysis_failed: c.count(ANALYSIS_FAILED),
            successful,
            success_rate: ratio(successful, successful + c.count(SUCCESS_NO)),
            sentiment: SentimentMix {
                positive: c.count(POSITIVE),
                neutral: c.count(NEUTRAL),
                negative: c.count(NEGATIVE),
                average_score: (sentiments > 0)
                    .then(|| (c.get(SENTIMENT_MILLI) as f64 / sentiments as f64).round() / 1000.0),
            },
            tool_calls: c.count(TOOL_CALLS),
            tool_errors: c.count(TOOL_ERRORS),
            tool_error_rate: ratio(c.count(TOOL_ERRORS), c.count(TOOL_CALLS)),
            voicemail: c.count(VOICEMAIL),
            voicemail_rate: ratio(c.count(VOICEMAIL), c.count(OUTBOUND)),
            billed_minutes: ByDirection {
                inbound: c.count(MINUTES_INBOUND),
                outbound: c.count(MINUTES_OUTBOUND),
            },
            runtime_errors: c.count(RUNTIME_ERRORS),
            swept: c.count(SWEPT),
            needs_attention: c.count(ATTENTION),
            campaign_calls: c.count(CAMPAIGN),
            by_status: c.by_prefix(STATUS_PREFIX),
            by_disposition: c.by_prefix(DISPOSITION_PREFIX),
        }
    }
}

/// Billed minutes of a call of `secs` seconds.
pub fn billed_minutes(secs: u32) -> i64 {
    i64::from(secs.div_ceil(60))
}

/// A report's period: whole local days `from..=to` of the establishment's zone, or, when it
/// was given as instants, exactly `start..end` (hour figures use it; day figures cover the
/// local days it touches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub zone: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The first instant covered.
    pub start: DateTime<Utc>,
    /// The first instant after the period.
    pub end: DateTime<Utc>,
}

/// Named periods: `today`, `7d`, `30d`, `90d` (the last N local days, today included).
pub const RANGES: &[&str] = &["today", "7d", "30d", "90d"];

impl Period {
    /// Local days `from..=to` of `zone`.
    pub fn days(zone: Tz, from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            zone,
            from,
            to,
            start: day_start(zone, from),
            end: day_start(zone, to + Duration::days(1)),
        }
    }

    /// `range` (one of [`RANGES`]) ending on the local day of `now`.
    pub fn named(zone: Tz, range: &str, now: DateTime<Utc>) -> Result<Self, String> {
        let days = match range {
            "today" => 1,
            "7d" => 7,
            "30d" => 30,
            "90d" => 90,
            _ => {
                return Err(format!(
                    "unknown range `{range}`; one of {}",
                    RANGES.join(", ")
                ));
            }
        };
        let today = local_day(zone, now);
        Ok(Self::days(zone, today - Duration::days(days - 1), today))
    }

    /// `range`, or `from` and `to` (dates or RFC 3339 instants), as the query gave them; the
    /// error names the field. Neither given: `default_range`.
    pub fn parse(
        zone: Tz,
        range: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
        default_range: &str,
    ) -> Result<Self, (&'static str, String)> {
        let period = match (range, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(("range", "give `range` or `from` and `to`, not both".into()));
            }
            (Some(range), None, None) => Self::named(zone, range, now).map_err(|e| ("range", e))?,
            (None, None, None) => {
                Self::named(zone, default_range, now).map_err(|e| ("range", e))?
            }
            (None, Some(_), None) => return Err(("to", "`from` needs `to`".into())),
            (None, None, Some(_)) => return Err(("from", "`to` needs `from`".into())),
            (None, Some(from), Some(to)) => {
                let (from_day, start) = bound(zone, "from", from, false)?;
                let (to_day, end) = bound(zone, "to", to, true)?;
                if start >= end {
                    return Err(("from", "`from` must be before `to`".into()));
                }
                Self {
                    zone,
                    from: from_day,
                    to: to_day,
                    start,
                    end,
                }
            }
        };
        let days = (period.to - period.from).num_days() + 1;
        if days > MAX_PERIOD_DAYS {
            return Err((
                if range.is_some() { "range" } else { "to" },
                format!("the period spans {days} days; at most {MAX_PERIOD_DAYS}"),
            ));
        }
        Ok(period)
    }

    /// Every local day of the period, in order.
    pub fn each_day(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }

    /// The UTC hours the period covers (each starting at or after `start`, before `end`).
    pub fn each_hour(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        use chrono::DurationRound;
        let first = self
            .start
            .duration_trunc(Duration::hours(1))
            .unwrap_or(self.start);
        std::iter::successors(Some(first), |h| Some(*h + Duration::hours(1)))
            .take_while(|h| *h < self.end)
    }

    /// The month `YYYY-MM` as local days.
    pub fn month(zone: Tz, raw: &str) -> Result<Self, String> {
        let first = NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| raw.len() == 7)
            .ok_or_else(|| format!("`{raw}` is not a month (YYYY-MM)"))?;
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| format!("`{raw}` is out of range"))?;
        Ok(Self::days(zone, first, next - Duration::days(1)))
    }
}

/// `raw` as a date (the whole local day) or an instant: the local day it names and the
/// instant the period starts (`from`) or ends (`to`, exclusive) there.
fn bound(
    zone: Tz,
    field: &'static str,
    raw: &str,
    is_end: bool,
) -> Result<(NaiveDate, DateTime<Utc>), (&'static str, String)> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        if raw.len() != 10 || day.year() < 2000 || day.year() > 9998 {
            return Err((field, format!("`{raw}` is out of range")));
        }
        let instant = day_start(zone, if is_end { day + Duration::days(1) } else { day });
        return Ok((day, instant));
    }
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| {
            (
                field,
                format!("`{raw}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"),
            )
        })?
        .with_timezone(&Utc);
    if at.year() < 2000 || at.year() > 9998 {
        return Err((field, format!("`{raw}` is out of range")));
    }
    // An exclusive end at local midnight covers the day before it, not the day it opens.
    let last = if is_end {
        at - Duration::milliseconds(1)
    } else {
        at
    };
    Ok((local_day(zone, last), at))
}

/// The local day of `at` in `zone`.
pub fn local_day(zone: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

/// The instant local day `day` begins in `zone` (the first valid local time on a day whose
/// midnight a DST change skips).
pub fn day_start(zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    match zone.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => {
            // Midnight skipped: the day starts when the clocks jump (within two hours).
            (1..=120)
                .find_map(|m| {
                    zone.from_local_datetime(&(midnight + Duration::minutes(m)))
                        .earliest()
                })
                .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
        }
    }
}

/// The hour key of `at` (its UTC hour, `YYYY-MM-DDTHH`).
pub fn hour_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(pairs: &[(&str, i64)]) -> Counters {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn percentiles_come_from_the_histogram_by_nearest_rank() {
        // GIVEN calls of 5, 5, 20, 40 and 300 seconds
        let mut c = Counters::default();
        for secs in [5, 5, 20, 40, 300] {
            c.one(counter::CALLS);
            c.one(counter::WITH_DURATION);
            c.add(counter::DURATION_SUM, secs);
            c.one(&histogram_key(secs as u32));
        }
        // WHEN the figures are computed
        let f = Figures::from(&c);
        // THEN the median is the third call, p90 the fifth, and the buckets split by length
        assert_eq!(f.p50_duration_seconds, Some(20));
        assert_eq!(f.p90_duration_seconds, Some(300));
        assert_eq!(f.average_duration_seconds, Some(74.0));
        assert_eq!(
            f.duration_buckets,
            DurationBuckets {
                under_10: 2,
                from_10_to_30: 1,
                from_30_to_60: 1,
                from_60_to_180: 0,
                over_180: 1
            }
        );
    }

    #[test]
    fn a_replaced_contribution_moves_by_its_difference() {
        // GIVEN a call counted with a negative sentiment, then re-analysed as positive
        let old = counters(&[("calls", 1), ("sent_neg", 1), ("sent_milli", -600)]);
        let new = counters(&[("calls", 1), ("sent_pos", 1), ("sent_milli", 400)]);
        let mut total = counters(&[("calls", 3), ("sent_neg", 2), ("sent_milli", -1000)]);
        // WHEN the difference is added
        total.merge(&new.minus(&old), 1);
        // THEN the call is counted once, with its new sentiment
        assert_eq!(
            total,
            counters(&[
                ("calls", 3),
                ("sent_neg", 1),
                ("sent_pos", 1),
                ("sent_milli", 0)
            ])
        );
        assert_eq!(total.get("sent_milli"), 0);
    }

    #[test]
    fn periods_are_local_days_and_bounded() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-03-10T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // GIVEN 03:00Z on 10 March, still 9 March in New York
        // WHEN `7d` is asked
        let p = Period::named(ny, "7d", now).unwrap();
        // THEN it is 3–9 March local, across the DST change of 8 March (a 23-hour day)
        assert_eq!(p.from.to_string(), "2026-03-03");
        assert_eq!(p.to.to_string(), "2026-03-09");
        assert_eq!(p.start.to_rfc3339(), "2026-03-03T05:00:00+00:00");
        assert_eq!(p.end.to_rfc3339(), "2026-03-10T04:00:00+00:00");
        assert_eq!(p.each_hour().count(), 7 * 24 - 1);
        // AND bad input names its field
        let bad = |r: Option<&str>, f: Option<&str>, t: Option<&str>| {
            Period::parse(ny, r, f, t, now, "7d").unwrap_err().0
        };
        assert_eq!(bad(Some("1y"), None, None), "range");
        assert_eq!(bad(None, Some("2026-03-05"), Some("2026-03-01")), "from");
        assert_eq!(bad(None, Some("2025-01-01"), Some("2026-03-01")), "to");
        assert_eq!(bad(None, Some("yesterday"), Some("2026-03-01")), "from");
        assert_eq!(bad(Some("7d"), Some("2026-03-01"), None), "range");
        // AND an instant's end at local midnight covers the day before
        let p = Period::parse(
            ny,
            None,
            Some("2026-03-01T05:00:00Z"),
            Some("2026-03-03T05:00:00Z"),
            now,
            "7d",
        )
        .unwrap();
        assert_eq!(
            (p.from.to_string(), p.to.to_string()),
            ("2026-03-01".into(), "2026-03-02".into())
        );
        assert_eq!(Period::month(ny, "2026-02").unwrap().each_day().count(), 28);
        assert!(Period::month(ny, "2026-2").is_err());
    }
}
