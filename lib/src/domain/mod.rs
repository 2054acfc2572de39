//! Typed domain values. Each is built by `parse` (or serde, which calls `parse`), so a value
//! that exists is valid; nothing past the HTTP edge handles raw strings.

mod agent;
pub mod analysis;
mod call;
mod campaign;
pub mod dialing;
mod email;
mod establishment;
pub mod event;
pub mod integration;
mod lead;
mod phone;
pub mod phone_zones;
pub mod report;
mod role;
mod runtime;
mod telephony;

pub use agent::{
    AgentStatus, Brain, BrainPolicies, MaxTokens, ModelName, ModelParams, NumberProvider,
    PolicyText, Prompt, Temperature, Tool, ToolSetting, VersionStatus,
};
pub use call::{AnsweredBy, CallStatus, Direction, Disposition};
pub use campaign::{
    CampaignStatus, CircuitBreaker, EnrollmentStatus, LeadFilter, Pace, PausedReason, Progress,
    SkipReason,
};
pub use email::Email;
pub use establishment::{DisplayName, Locale, Name, TimeZone};
pub use lead::{ImportStatus, LeadStatus};
pub use phone::E164;
pub use role::Role;
pub use runtime::{
    DesiredState, HostId, ImageRef, PublicUrl, RuntimeAction, RuntimeEnv, RuntimeStatus, is_secret,
};
pub use telephony::{BusinessHours, ClockTime, TelephonyPolicy, Weekday};

/// Lets a PATCH body tell "absent" (leave as is) from `null` (clear): use
/// `#[serde(default, deserialize_with = "domain::nullable")] field: Option<Option<T>>`.
pub fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Checks an id that comes from outside and goes into a key or a cursor (a provider's
/// `CallSid`, a host id, a segment id): 1 to `max` of `[A-Za-z0-9_.:-]`. DynamoDB refuses keys
/// over 2 KB with a 500, and other characters have no business in an id.
pub fn ident(field: &str, raw: &str, max: usize) -> Result<(), crate::error::Error> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':');
    if raw.is_empty() || raw.len() > max || !raw.bytes().all(ok) {
        return Err(crate::error::Error::invalid(
            field,
            format!("must be 1 to {max} characters of A-Z a-z 0-9 _ - . :"),
        ));
    }
    Ok(())
}

/// Longest provider id accepted (Twilio's SIDs are 34 characters).
pub const MAX_PROVIDER_ID: usize = 64;

/// Whether DynamoDB can store `x` as a number: zero, or a magnitude between 1e-130 and 1e126
/// (with a margin for the decimal form serde_dynamo writes). Every float the API stores is
/// checked with this, so that a value like `1e-131` is a 400 and not DynamoDB's 500.
pub fn fits_dynamodb(x: f64) -> bool {
    x == 0.0 || (1e-129..1e125).contains(&x.abs())
}

/// Deepest nesting a free-form JSON value may have (DynamoDB stores up to 32 levels, the item
/// around it uses some).
pub const MAX_DOCUMENT_DEPTH: usize = 16;

/// Checks that DynamoDB can store free-form JSON a client sent (event payloads, call
/// metadata): bounded nesting, no empty object keys, numbers within its range (magnitude 1e-130
/// to 1e126). `depth` is how deep `value` already sits (0 at the top).
pub fn storable(
    field: &str,
    value: &serde_json::Value,
    depth: usize,
) -> Result<(), crate::error::Error> {
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(crate::error::Error::invalid(
            field,
            format!("nests deeper than {MAX_DOCUMENT_DEPTH} levels"),
        ));
    }
    match value {
        serde_json::Value::Number(n) => {
            if !fits_dynamodb(n.as_f64().unwrap_or(0.0)) {
                return Err(crate::error::Error::invalid(
                    field,
                    format!("holds a number out of range: {n}"),
                ));
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                storable(field, item, depth + 1)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if key.is_empty() {
                    return Err(crate::error::Error::invalid(
                        field,
                        "holds an empty object key",
                    ));
                }
                storable(field, item, depth + 1)?;
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::String(_) => {}
    }
    Ok(())
}
