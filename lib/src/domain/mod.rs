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
