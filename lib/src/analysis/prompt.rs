//! What the LLM analyzers (`openai`, `bedrock`) ask and how they read the answer, shared so
//! that both send the same instructions, transcript and JSON Schema and hold the model's
//! answer to the same rules (a field value of the wrong type is null, never coerced).

use super::{AnalyzerError, Builtin, Input, Output};
use crate::domain::analysis::{AnalysisSection, FieldType, Sentiment, SentimentLabel};
use crate::domain::event::Party;
use crate::time::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The instructions when the version's section gives no summary prompt.
const DEFAULT_SUMMARY: &str = "Summarise the call in two or three sentences: who called, what \
     they wanted, what the agent did and how the call ended.";
/// Longest transcript sent, in characters (about 30k tokens); the end of a longer call is kept.
const MAX_TRANSCRIPT_CHARS: usize = 120_000;
/// The name of the answer's schema (`[A-Za-z0-9_-]`; both providers take it).
pub(super) const SCHEMA_NAME: &str = "call_analysis";

/// What the model is asked to answer (the schema below says the same).
#[derive(Debug, Deserialize)]
pub(super) struct Answer {
    summary: String,
    sentiment: AnswerSentiment,
    success: Option<bool>,
    data: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerSentiment {
    label: SentimentLabel,
    score: f64,
}

/// The system instructions for `section`.
pub(super) fn instructions(section: &AnalysisSection) -> String {
    let mut instructions = vec![
        "You analyse a finished phone call between a customer and an AI voice agent. Answer \
         only with the JSON the schema describes."
            .to_owned(),
        format!(
            "summary: {}",
            section.summary_prompt.as_deref().unwrap_or(DEFAULT_SUMMARY)
        ),
        "sentiment: the customer's overall sentiment; label positive, neutral or negative, \
         score from -1 (negative) to 1 (positive)."
            .to_owned(),
    ];
    instructions.push(match &section.success_criteria {
        Some(criteria) => format!("success: true when the call met this, else false: {criteria}"),
        None => "success: null (no criteria were given).".to_owned(),
    });
    if section.fields.is_empty() {
        instructions.push("data: an empty object.".to_owned());
    } else {
        instructions
            .push("data: one key per field below; null when the call does not say it.".to_owned());
        for f in &section.fields {
            instructions.push(format!("- {}: {}", f.name, f.description));
        }
    }
    instructions.join("\n")
}

/// The answer's JSON Schema, in strict mode's dialect: every property required, nothing else
/// allowed, null spelled as a type.
pub(super) fn schema(section: &AnalysisSection) -> Value {
    let mut properties = Map::new();
    for f in &section.fields {
        let mut p = match f.kind {
            FieldType::String => json!({ "type": ["string", "null"] }),
            FieldType::Number => json!({ "type": ["number", "null"] }),
            FieldType::Boolean => json!({ "type": ["boolean", "null"] }),
            FieldType::Enum => {
                let mut choices: Vec<Value> = f.choices.iter().map(|c| json!(c)).collect();
                choices.push(Value::Null);
                json!({ "type": ["string", "null"], "enum": choices })
            }
        };
        p["description"] = json!(f.description);
        properties.insert(f.name.clone(), p);
    }
    let names: Vec<&str> = section.fields.iter().map(|f| f.name.as_str()).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "sentiment", "success", "data"],
        "properties": {
            "summary": { "type": "string" },
            "sentiment": {
                "type": "object",
                "additionalProperties": false,
                "required": ["label", "score"],
                "properties": {
                    "label": { "type": "string", "enum": ["positive", "neutral", "negative"] },
                    "score": { "type": "number" },
                },
            },
            "success": { "type": ["boolean", "null"] },
            "data": {
                "type": "object",
                "additionalProperties": false,
                "required": names,
                "properties": properties,
            },
        },
    })
}

/// The call as the model reads it: facts, then `[mm:ss] Speaker: text` lines.
pub(super) fn transcript(input: &Input<'_>) -> String {
    let call = input.call;
    let mut lines = vec![format!(
        "Call: {} from {} to {}, {} seconds, ended as {}.",
        match call.direction {
            crate::domain::Direction::Inbound => "inbound",
            crate::domain::Direction::Outbound => "outbound",
        },
        call.from_e164,
        call.to_e164,
        call.duration_seconds.unwrap_or(0),
        call.status.as_str()
    )];
    for e in input.tools.iter().filter(|e| e.kind == "tool_result") {
        lines.push(format!(
            "Tool {}: {}",
            e.payload["tool_name"].as_str().unwrap_or("?"),
            if e.payload["error"].is_null() {
                "succeeded"
            } else {
                "failed"
            }
        ));
    }
    let start = input.segments.first().map(|s| s.started_at.unix());
    let mut said: Vec<String> = input
        .segments
        .iter()
        .map(|s| {
            let at = s.started_at.unix() - start.unwrap_or(0);
            let who = match s.speaker {
                Party::Customer => "Customer",
                Party::Agent => "Agent",
                Party::Operator => "Operator",
                Party::System => "System",
            };
            format!("[{:02}:{:02}] {who}: {}", at / 60, at % 60, s.text)
        })
        .collect();
    // Keep the end of an overlong call (how it ended matters most).
    let mut total: usize = said.iter().map(|l| l.len() + 1).sum();
    let mut dropped = 0;
    while total > MAX_TRANSCRIPT_CHARS && !said.is_empty() {
        total -= said.remove(0).len() + 1;
        dropped += 1;
    }
    if dropped > 0 {
        lines.push(format!("({dropped} earlier lines left out)"));
    }
    lines.extend(said);
    lines.join("\n")
}

/// The answer in `content` (the model's text: the JSON the schema describes).
pub(super) fn answer(content: &str) -> Result<Answer, AnalyzerError> {
    serde_json::from_str(content).map_err(|e| {
        AnalyzerError::Invalid(format!("the content is not the analysis asked for: {e}"))
    })
}

/// The analysis `answer` makes for `input`: the model's summary, label, score, success (only
/// with criteria) and fields (checked), with VADER's windows from `vader`.
pub(super) fn output(answer: Answer, input: &Input<'_>, vader: &Builtin, model: &str) -> Output {
    let now = Timestamp::now();
    let windows = vader
        .sentiment(input.segments, now)
        .map(|s| s.windows)
        .unwrap_or_default();
    Output {
        summary: Some(answer.summary.trim().to_owned()).filter(|s| !s.is_empty()),
        sentiment: Some(Sentiment {
            label: answer.sentiment.label,
            score: answer.sentiment.score.clamp(-1.0, 1.0),
            computed_at: now,
            windows,
        }),
        success: answer
            .success
            .filter(|_| input.section.success_criteria.is_some()),
        data: fields(input.section, answer.data),
        model: model.to_owned(),
    }
}

/// One key per field, each value kept only when it has the field's type (else null).
fn fields(section: &AnalysisSection, mut found: Map<String, Value>) -> Map<String, Value> {
    section
        .fields
        .iter()
        .map(|f| {
            let value = found.remove(&f.name).unwrap_or(Value::Null);
            let fits = match (f.kind, &value) {
                (_, Value::Null) => true,
                (FieldType::String, Value::String(_)) => true,
                (FieldType::Number, Value::Number(_)) => true,
                (FieldType::Boolean, Value::Bool(_)) => true,
                (FieldType::Enum, Value::String(s)) => f.choices.contains(s),
                _ => false,
            };
            (f.name.clone(), if fits { value } else { Value::Null })
        })
        .collect()
}

/// At most 300 characters of `text`, for error reasons.
pub(super) fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}
