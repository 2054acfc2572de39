//! Typed domain values. Each is built by `parse` (or serde, which calls `parse`), so a value
//! that exists is valid; nothing past the HTTP edge handles raw strings.

mod agent;
mod call;
mod email;
mod establishment;
pub mod event;
mod phone;
mod role;
mod runtime;
mod telephony;

pub use agent::{
    AgentStatus, Brain, BrainPolicies, MaxTokens, ModelName, ModelParams, NumberProvider,
    PolicyText, Prompt, Temperature, Tool, ToolSetting, VersionStatus,
};
pub use call::{AnsweredBy, CallStatus, Direction, Disposition};
pub use email::Email;
pub use establishment::{DisplayName, Locale, Name, TimeZone};
pub use phone::E164;
pub use role::Role;
pub use runtime::{DesiredState, ImageRef, RuntimeAction, RuntimeEnv, RuntimeStatus, is_secret};
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
            let x = n.as_f64().unwrap_or(0.0).abs();
            if x != 0.0 && !(1e-129..1e125).contains(&x) {
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
