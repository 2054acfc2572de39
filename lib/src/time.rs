//! Time as the API speaks it: RFC 3339 UTC with `Z`, to the second (`2026-01-10T00:00:00Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time, always UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

crate::openapi::text_schema!(
    Timestamp,
    "Timestamp",
    None,
    Some("date-time"),
    "RFC 3339, UTC"
);

impl Timestamp {
    /// Now, truncated to whole seconds so what we store is what we show.
    pub fn now() -> Self {
        let now = Utc::now();
        Self(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now))
    }

    /// Milliseconds since the Unix epoch, now (for stamps finer than a [`Timestamp`]).
    pub fn now_millis() -> i64 {
        Utc::now().timestamp_millis()
    }

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Option<Self> {
        DateTime::from_timestamp(secs, 0).map(Self)
    }

    /// Seconds since the Unix epoch (the form DynamoDB TTL wants).
    pub fn unix(&self) -> i64 {
        self.0.timestamp()
    }

    /// Milliseconds since the Unix epoch (what was parsed, before display truncates it).
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This time plus a number of seconds.
    pub fn plus_secs(&self, secs: i64) -> Self {
        Self(self.0 + chrono::Duration::seconds(secs))
    }

    /// Parses RFC 2822 (`Tue, 10 Jan 2026 00:00:00 +0000`, Twilio's callback `Timestamp`).
    pub fn parse_rfc2822(raw: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc2822(raw).map(|t| Self(t.with_timezone(&Utc)))
    }

    /// Parses RFC 3339 (any offset) and normalises to UTC.
    pub fn parse(raw: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(raw).map(|t| Self(t.with_timezone(&Utc)))
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339_utc_with_z() {
        // GIVEN a time given with an offset
        let t = Timestamp::parse("2026-01-10T02:00:00+02:00").unwrap();
        // THEN it prints in UTC with Z, to the second
        assert_eq!(t.to_string(), "2026-01-10T00:00:00Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-01-10T00:00:00Z\""
        );
    }
}
