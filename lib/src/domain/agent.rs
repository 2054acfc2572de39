//! An agent version's "brain" (PRD §6: a version is brain only): the prompt, the model and its
//! parameters, the tools it may use and the policies that shape the LLM and tooling. Telephony
//! lives in the establishment's policy, never here. Every value is checked when parsed, so a
//! stored brain is always valid.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Longest accepted prompt, in characters (well under DynamoDB's 400 KB item limit).
pub const MAX_PROMPT_CHARS: usize = 100_000;

/// The system prompt: non-empty, at most [`MAX_PROMPT_CHARS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(min_length = 1, max_length = 100_000)]
#[serde(try_from = "String", into = "String")]
pub struct Prompt(String);

impl Prompt {
    /// Refuses blank prompts and prompts over the limit; keeps the text as written.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("prompt must not be empty".into());
        }
        if raw.chars().count() > MAX_PROMPT_CHARS {
            return Err(format!(
                "prompt must be at most {MAX_PROMPT_CHARS} characters"
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl TryFrom<String> for Prompt {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<Prompt> for String {
    fn from(p: Prompt) -> String {
        p.0
    }
}

/// A model or provider identifier (`openai`, `gpt-4.1-mini`): 1–100 characters of letters,
/// digits and `.`, `-`, `_`, `:`, `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._:/-]{1,100}$")]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    /// Accepts identifier-like names only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not a model identifier (1-100 of letters, digits, . - _ : /)"
            ))
        }
    }
}

impl TryFrom<String> for ModelName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<ModelName> for String {
    fn from(m: ModelName) -> String {
        m.0
    }
}

/// Sampling temperature, 0–2.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(minimum = 0.0, maximum = 2.0)]
#[serde(try_from = "f64", into = "f64")]
pub struct Temperature(f64);

impl TryFrom<f64> for Temperature {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=2.0).contains(&v) && super::fits_dynamodb(v) {
            Ok(Self(v))
        } else {
            Err(format!(
                "temperature must be 0, or between 1e-129 and 2, got {v}"
            ))
        }
    }
}

impl From<Temperature> for f64 {
    fn from(t: Temperature) -> f64 {
        t.0
    }
}

/// Most tokens the model may produce per reply, 1–32768.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(minimum = 1, maximum = 32_768)]
#[serde(try_from = "f64", into = "i64")]
pub struct MaxTokens(u32);

/// Read as a number so that an integral float (`1024.0`, what some JSON encoders write for an
/// integer) is the integer it denotes, as JSON Schema's `integer` says.
impl TryFrom<f64> for MaxTokens {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.fract() == 0.0 && (1.0..=32_768.0).contains(&v) {
            // Integral and in range, so the conversion is exact.
            Ok(Self(v as u32))
        } else {
            Err(format!(
                "max_tokens must be an integer between 1 and 32768, got {v}"
            ))
        }
    }
}

impl From<MaxTokens> for i64 {
    fn from(t: MaxTokens) -> i64 {
        i64::from(t.0)
    }
}

/// The model and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    pub provider: ModelName,
    pub model: ModelName,
    pub temperature: Temperature,
    pub max_tokens: MaxTokens,
}

/// The tools the platform knows; any other name is refused.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Email,
    Calendar,
    WhatsappMessaging,
    Crm,
    Handoff,
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Email => "email",
            Tool::Calendar => "calendar",
            Tool::WhatsappMessaging => "whatsapp_messaging",
            Tool::Crm => "crm",
            Tool::Handoff => "handoff",
        })
    }
}

/// A tool's switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSetting {
    pub enabled: bool,
}

/// Policies that shape the LLM and its tooling (never telephony: that is the establishment's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrainPolicies {
    /// The first thing the agent says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<PolicyText>,
    /// The language the agent speaks (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<super::Locale>,
    /// Ask the caller before running a tool that changes something (booking, sending).
    #[serde(default)]
    pub confirm_before_actions: bool,
    /// Topics the agent declines to discuss (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_topics: Vec<PolicyText>,
}

impl BrainPolicies {
    /// Most forbidden topics.
    pub const MAX_TOPICS: usize = 50;
}

/// A short policy text: non-blank, at most 1000 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyText(String);

impl TryFrom<String> for PolicyText {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        if raw.trim().is_empty() {
            Err("must not be empty".into())
        } else if raw.chars().count() > 1000 {
            Err("must be at most 1000 characters".into())
        } else {
            Ok(Self(raw))
        }
    }
}

impl From<PolicyText> for String {
    fn from(t: PolicyText) -> String {
        t.0
    }
}

/// An agent version's whole brain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Brain {
    pub prompt: Prompt,
    pub model: ModelParams,
    pub tools: BTreeMap<Tool, ToolSetting>,
    #[serde(default)]
    pub policies: BrainPolicies,
    /// How this version's calls are analysed after they end (`domain::analysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::analysis::AnalysisSection>,
}

impl Brain {
    /// Checks rules that span fields (serde has checked each value).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.policies.forbidden_topics.len() > BrainPolicies::MAX_TOPICS {
            return Err((
                "policies.forbidden_topics".into(),
                format!("at most {} topics", BrainPolicies::MAX_TOPICS),
            ));
        }
        match &self.analysis {
            Some(section) => section.check(),
            None => Ok(()),
        }
    }
}

/// Where a version is in its life: a draft can be edited; publishing makes it the active
/// version (`published`) and archives the one it replaces; an archived version was published
/// once and can be rolled back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    Draft,
    Published,
    Archived,
}

impl VersionStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
            VersionStatus::Archived => "archived",
        }
    }
}

/// Whether an agent takes calls and new versions, or was archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Archived,
}

impl AgentStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Archived => "archived",
        }
    }
}

/// Who carries a phone number's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NumberProvider {
    Twilio,
    Whatsapp,
    Generic,
}

impl NumberProvider {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberProvider::Twilio => "twilio",
            NumberProvider::Whatsapp => "whatsapp",
            NumberProvider::Generic => "generic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brains_parse_and_refuse_out_of_range_values() {
        // GIVEN the PRD's example brain
        let good = json!({
            "prompt": "You are a helpful assistant...",
            "model": {"provider": "openai", "model": "gpt-4.1-mini", "temperature": 0.7, "max_tokens": 1024},
            "tools": {"email": {"enabled": true}, "whatsapp_messaging": {"enabled": false}}
        });
        // WHEN it is parsed
        let brain: Brain = serde_json::from_value(good.clone()).unwrap();
        // THEN it round-trips
        assert_eq!(
            serde_json::to_value(&brain).unwrap()["tools"],
            good["tools"]
        );

        // AND each bad value is refused
        for (path, bad) in [
            ("/prompt", json!("   ")),
            ("/model/temperature", json!(2.5)),
            // below DynamoDB's smallest number: it would fail the write with a 500
            ("/model/temperature", json!(1e-131)),
            ("/model/max_tokens", json!(0)),
            ("/model/max_tokens", json!(40000)),
            ("/tools", json!({"teleport": {"enabled": true}})),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = bad;
            assert!(serde_json::from_value::<Brain>(v).is_err(), "{path}");
        }
    }
}
