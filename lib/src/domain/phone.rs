use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in E.164 (`+14155550123`), validated against libphonenumber's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// Accepts a number written with its `+` country code (spaces and dashes allowed) that
    /// libphonenumber considers a valid, assignable number; stores the canonical E.164 form.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.starts_with('+') {
            return Err("must start with + and the country code, e.g. +14155550123".into());
        }
        let number = phonenumber::parse(None, raw).map_err(|e| e.to_string())?;
        if !phonenumber::is_valid(&number) {
            return Err("is not a valid phone number for its country".into());
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// Accepts a number as people write it: with its `+` country code, or in the national
    /// format of `region` (ISO 3166 alpha-2, e.g. `US`, `FR`); valid for its country, stored
    /// in E.164.
    pub fn parse_in(raw: &str, region: Option<&str>) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with('+') || raw.starts_with("00") {
            return Self::parse(&format!(
                "+{}",
                raw.trim_start_matches('+').trim_start_matches("00")
            ));
        }
        let Some(region) = region else {
            return Err("has no country code and no default region to read it in".into());
        };
        let country: phonenumber::country::Id = region
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("unknown region `{region}`"))?;
        let number = phonenumber::parse(Some(country), raw).map_err(|e| e.to_string())?;
        if !phonenumber::is_valid(&number) {
            return Err(format!(
                "is not a valid phone number in {region} or elsewhere"
            ));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::openapi::text_schema!(
    E164,
    "E164",
    Some(r"^\+[1-9][0-9]{6,14}$"),
    None,
    "A phone number in E.164 form (`+` and the country code), valid for its country"
);

impl TryFrom<String> for E164 {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).map_err(|why| format!("invalid E.164 phone number: {why}"))
    }
}

impl From<E164> for String {
    fn from(n: E164) -> String {
        n.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_canonical_e164() {
        // GIVEN numbers in several spellings
        // THEN valid ones come out canonical and invalid ones are refused
        assert_eq!(
            E164::parse("+1 415-555-2671").unwrap().as_str(),
            "+14155552671"
        );
        assert_eq!(
            E164::parse("+5511987654321").unwrap().as_str(),
            "+5511987654321"
        );
        for bad in [
            "",
            "4155552671",
            "+1",
            "+999123",
            "+1415555267",
            "+1 (000) 000-0000",
            "+abc",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
