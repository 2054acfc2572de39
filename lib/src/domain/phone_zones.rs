//! The time zones a phone number can be in, from libphonenumber's prefix map (vendored with its
//! licence in `lib/data/libphonenumber-timezones/`, compiled in): the longest prefix of the
//! number's digits that the map knows gives the candidates. A number is only known to be at a
//! given local time when every candidate zone agrees — the dialer calls a lead only inside its
//! window in all of them (PRD §14).

use super::{E164, TimeZone};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The map as shipped: `PREFIX|Zone&Zone…` lines, `#` comments.
const MAP: &str = include_str!("../../data/libphonenumber-timezones/map_data.txt");

/// Longest prefix in the map (digits).
const MAX_PREFIX: usize = 9;

/// The map, parsed on first use (about 3,300 lines; tens of microseconds).
fn map() -> &'static HashMap<&'static str, Vec<&'static str>> {
    static PARSED: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        MAP.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('|'))
            .map(|(prefix, zones)| (prefix, zones.split('&').collect()))
            .collect()
    })
}

/// The zones `number` can be in, most specific prefix first matched; empty when the map knows
/// no prefix of it. Zones the tz database does not know are left out (none in the shipped map:
/// a test checks).
pub fn candidates(number: &E164) -> Vec<TimeZone> {
    let digits = number.as_str().trim_start_matches('+');
    let map = map();
    (1..=digits.len().min(MAX_PREFIX))
        .rev()
        .find_map(|len| map.get(&digits[..len]))
        .map(|zones| {
            zones
                .iter()
                .filter_map(|z| TimeZone::parse(z).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(number: &str) -> Vec<String> {
        candidates(&E164::parse(number).unwrap())
            .iter()
            .map(|z| z.as_str().to_owned())
            .collect()
    }

    #[test]
    fn every_zone_of_the_map_is_one_the_tz_database_knows_and_no_prefix_is_longer_than_read() {
        // GIVEN the vendored map
        for (prefix, zones) in map() {
            // THEN every prefix is digits within the length looked up, every zone parses
            assert!(
                prefix.len() <= MAX_PREFIX && prefix.bytes().all(|b| b.is_ascii_digit()),
                "{prefix}"
            );
            for zone in zones {
                assert!(TimeZone::parse(zone).is_ok(), "{prefix}: {zone}");
            }
        }
    }

    #[test]
    fn nanp_numbers_get_their_area_codes_zone_or_every_candidate() {
        // GIVEN numbers of one-zone and two-zone area codes, and exchanges that narrow one
        // THEN New York's 212 is one zone, Idaho's 208 two, and a known exchange of 208 one
        assert_eq!(zones("+12125550123"), ["America/New_York"]);
        assert_eq!(
            zones("+12085550123"),
            ["America/Boise", "America/Los_Angeles"]
        );
        assert_eq!(zones("+12082011234"), ["America/Denver"]);
    }

    #[test]
    fn numbers_elsewhere_get_their_countrys_zones() {
        assert_eq!(zones("+442071838750"), ["Europe/London"]);
        assert_eq!(zones("+33142685300"), ["Europe/Paris"]);
        assert_eq!(zones("+61293744000"), ["Australia/Sydney"]);
        // AND a number no narrower prefix places (NANP toll-free) gives every candidate
        let anywhere = zones("+18005550100");
        assert!(anywhere.len() > 20 && anywhere.contains(&"Pacific/Honolulu".to_owned()));
        // AND a Jersey number is Jersey's, not London's
        assert_eq!(zones("+441534123456"), ["Europe/Jersey"]);
    }
}
