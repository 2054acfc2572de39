//! Post-call analysis as the product speaks it: the optional `analysis` section of an agent
//! version's brain (what to summarise, how to judge success, which fields to extract), and
//! what an analysis of a call is (status, summary, sentiment with its windows, extracted data).
//! Parsing checks the section like the rest of the brain; the worker that fills the results
//! lives in `service::analysis`.

use super::ident;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Most fields one section may extract.
pub const MAX_FIELDS: usize = 25;
/// Most choices of an `enum` field.
pub const MAX_CHOICES: usize = 50;
/// Longest prompt text (summary prompt, success criteria, a field's description).
pub const MAX_TEXT_CHARS: usize = 4_000;

/// The brain's `analysis` section: how calls of this version are analysed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSection {
    /// How to summarise (the analyzer's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub summary_prompt: Option<String>,
    /// What makes a call of this agent a success; `success` stays null without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub success_criteria: Option<String>,
    /// Values to extract from each call into `analysis.data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 25)]
    pub fields: Vec<AnalysisField>,
}

/// One value to extract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisField {
    /// The key in `analysis.data`: 1–64 of `[A-Za-z0-9_.:-]`, unique in the section.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[schema(max_length = 4000)]
    pub description: String,
    /// The allowed values of an `enum` field (and only of one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Whether a missing value makes the analysis unsuccessful to extract (it is still null).
    #[serde(default)]
    pub required: bool,
}

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Enum,
}

impl AnalysisSection {
    /// Checks what serde cannot: sizes, unique names, choices only (and always) on enums.
    pub fn check(&self) -> Result<(), (String, String)> {
        let text = |field: String, value: &str| {
            if value.chars().count() > MAX_TEXT_CHARS {
                Err((
                    field,
                    format!("must be at most {MAX_TEXT_CHARS} characters"),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(p) = &self.summary_prompt {
            text("analysis.summary_prompt".into(), p)?;
        }
        if let Some(c) = &self.success_criteria {
            text("analysis.success_criteria".into(), c)?;
        }
        if self.fields.len() > MAX_FIELDS {
            return Err((
                "analysis.fields".into(),
                format!("at most {MAX_FIELDS} fields"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let at = |what: &str| format!("analysis.fields[{i}].{what}");
            ident(&at("name"), &f.name, 64).map_err(|_| {
                (
                    at("name"),
                    "must be 1 to 64 characters of A-Z a-z 0-9 _ - . :".into(),
                )
            })?;
            if !seen.insert(f.name.as_str()) {
                return Err((at("name"), format!("`{}` is given twice", f.name)));
            }
            text(at("description"), &f.description)?;
            match (f.kind, f.choices.len()) {
                (FieldType::Enum, 0) => {
                    return Err((at("choices"), "an enum field needs its choices".into()));
                }
                (FieldType::Enum, n) if n > MAX_CHOICES => {
                    return Err((at("choices"), format!("at most {MAX_CHOICES} choices")));
                }
                (FieldType::Enum, _) => {
                    if f.choices
                        .iter()
                        .any(|c| c.trim().is_empty() || c.len() > 200)
                    {
                        return Err((at("choices"), "each choice is 1 to 200 bytes".into()));
                    }
                }
                (_, 0) => {}
                (_, _) => {
                    return Err((at("choices"), "only an enum field has choices".into()));
                }
            }
        }
        Ok(())
    }
}

/// Where a call's analysis is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisStatus {
    /// Queued (the call ended, or a re-run was asked for).
    Pending,
    /// A worker is on it.
    Running,
    Succeeded,
    /// Gave up after its attempts; `reason` says why.
    Failed,
    /// Nothing to analyse; `reason` says why (no customer turns, too short, a machine).
    Skipped,
}

/// Positive, neutral or negative, from a score in −1..1 (VADER's thresholds, ±0.05).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    /// The label of a compound score.
    pub fn of(score: f64) -> Self {
        if score >= 0.05 {
            SentimentLabel::Positive
        } else if score <= -0.05 {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        }
    }
}

/// The customer's sentiment over a call (PRD A.5) and per time window (§10).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// −1 (negative) to 1 (positive).
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub score: f64,
    pub computed_at: Timestamp,
    /// Consecutive windows of the call, in order, each scored on the customer's turns in it.
    pub windows: Vec<SentimentWindow>,
}

/// One window of [`Sentiment`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentimentWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    pub label: SentimentLabel,
    #[schema(minimum = -1.0, maximum = 1.0)]
    pub score: f64,
}

/// A call's analysis as stored on the call and shown by the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub status: AnalysisStatus,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// `builtin`, `openai` or `bedrock`.
    pub analyzer: Option<String>,
    /// The model the analyzer used (`vader-3.3.2` for the built-in one).
    pub model: Option<String>,
    /// Whether the call met the version's `success_criteria` (null without criteria).
    pub success: Option<bool>,
    /// One key per field of the version's section (null when not found).
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    pub completed_at: Option<Timestamp>,
    /// Runs started for this request (a retry counts, a duplicate job does not).
    pub attempts: u32,
    /// Which request this is (`end` for the end of the call, a new id per re-run); a job for
    /// another run does nothing.
    #[serde(default)]
    pub run_id: String,
    /// While `running`: until when the worker that claimed it holds it (a worker that died
    /// loses it then, and the job's redelivery takes over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
}
