use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .pattern(Some(crate::openapi::PRINTABLE_TEXT))
                    .description(Some(concat!($what, ": trimmed, no control characters")))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}

        impl $name {
            /// Trims; refuses empty text, control characters and more than the maximum length.
            pub fn parse(raw: &str) -> Result<Self, String> {
                let value = raw.trim();
                if value.is_empty() {
                    return Err(format!("{} must not be empty", $what));
                }
                if value.chars().count() > $max {
                    return Err(format!("{} must be at most {} characters", $what, $max));
                }
                if value.chars().any(char::is_control) {
                    return Err(format!("{} must not contain control characters", $what));
                }
                Ok(Self(value.to_owned()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(/// An establishment's (or other resource's) name.
    Name, 200, "name");
bounded_text!(/// How a user's name is shown to other members.
    DisplayName, 100, "display name");

/// An IANA time zone name (`America/Sao_Paulo`), checked against the tz database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(String);

impl utoipa::PartialSchema for TimeZone {
    /// Every name of the tz database this build knows, so clients can offer a list.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An IANA time zone name (`America/Sao_Paulo`)"))
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .into()
    }
}
impl utoipa::ToSchema for TimeZone {}

impl TimeZone {
    /// Accepts only names the IANA database knows.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.parse::<chrono_tz::Tz>()
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| format!("unknown IANA time zone `{raw}`"))
    }

    /// The zone for local-time arithmetic.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The zone's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<TimeZone> for String {
    fn from(v: TimeZone) -> String {
        v.0
    }
}

/// A BCP 47 language tag of the common shapes (`pt`, `pt-BR`, `zh-Hant-TW`), normalised to
/// lowercase language and uppercase region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    pattern = "^[A-Za-z]{2,3}([-_][A-Za-z]{4})?([-_]([A-Za-z]{2}|[0-9]{3}))?$",
    example = "pt-BR"
)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

impl Locale {
    /// Language of 2–3 letters, then optional script (4 letters) and region (2 letters or
    /// 3 digits).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let err = || format!("invalid locale `{raw}`: expected a language tag like pt-BR");
        let mut parts = raw.trim().split(['-', '_']);
        let lang = parts
            .next()
            .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
            .ok_or_else(err)?;
        let mut out = lang.to_ascii_lowercase();
        let mut rest: Vec<&str> = parts.collect();
        if rest.len() > 2 {
            return Err(err());
        }
        if rest.len() == 2 || rest.first().is_some_and(|s| s.len() == 4) {
            let script = rest.remove(0);
            if script.len() != 4 || !script.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(err());
            }
            out.push('-');
            out.push_str(&script[..1].to_ascii_uppercase());
            out.push_str(&script[1..].to_ascii_lowercase());
        }
        if let Some(region) = rest.first() {
            let alpha = region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic());
            let digits = region.len() == 3 && region.chars().all(|c| c.is_ascii_digit());
            if !alpha && !digits {
                return Err(err());
            }
            out.push('-');
            out.push_str(&region.to_ascii_uppercase());
        }
        Ok(Self(out))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag's region when it is a country libphonenumber knows (`en-US` → `US`): where
    /// numbers written without a country code are read.
    pub fn phone_region(&self) -> Option<&str> {
        self.0
            .rsplit_once('-')
            .map(|(_, region)| region)
            .filter(|r| r.len() == 2 && r.parse::<phonenumber::country::Id>().is_ok())
    }
}

impl TryFrom<String> for Locale {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<Locale> for String {
    fn from(v: Locale) -> String {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locale_s_phone_region_is_its_country() {
        // GIVEN locales with and without a country
        let region = |tag: &str| {
            Locale::parse(tag)
                .unwrap()
                .phone_region()
                .map(str::to_owned)
        };
        // THEN only a country libphonenumber knows is a phone region
        assert_eq!(region("en-US").as_deref(), Some("US"));
        assert_eq!(region("pt-BR").as_deref(), Some("BR"));
        assert_eq!(region("zh-Hant-TW").as_deref(), Some("TW"));
        assert_eq!(region("en"), None);
        assert_eq!(region("es-419"), None);
    }

    #[test]
    fn time_zones_must_be_iana_names() {
        assert_eq!(
            TimeZone::parse("America/Sao_Paulo").unwrap().as_str(),
            "America/Sao_Paulo"
        );
        assert!(TimeZone::parse("Mars/Olympus_Mons").is_err());
        assert!(TimeZone::parse("").is_err());
    }

    #[test]
    fn locales_are_normalised() {
        assert_eq!(Locale::parse("pt-br").unwrap().as_str(), "pt-BR");
        assert_eq!(Locale::parse("zh_hant_tw").unwrap().as_str(), "zh-Hant-TW");
        assert_eq!(Locale::parse("es-419").unwrap().as_str(), "es-419");
        for bad in ["", "p", "portuguese", "pt-BRA1", "pt-BR-x-y"] {
            assert!(Locale::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  Helios  ").unwrap().as_str(), "Helios");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(201)).is_err());
        assert!(Name::parse("a\u{0}b").is_err());
    }
}
