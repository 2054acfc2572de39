//! The `openai` analyzer: one `POST {base}/chat/completions` to any OpenAI-compatible
//! endpoint with `response_format: json_schema` (strict), asking for the summary, the
//! customer's sentiment, success against the version's criteria and the version's fields. The
//! per-window sentiment series stays VADER's (deterministic and free); the call's label and
//! score are the model's. Redirects are not followed.

use super::{AnalyzerError, Builtin, Input, Output};
use crate::config::OpenAiConfig;
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

/// The analyzer; holds its HTTP client and VADER for the windows.
#[derive(Debug)]
pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
    windows: Builtin,
}

/// What the model is asked to answer (the schema below says the same).
#[derive(Debug, Deserialize)]
struct Answer {
    summary: String,
    sentiment: AnswerSentiment,
    success: Option<bool>,
    data: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct AnswerSentiment {
    label: SentimentLabel,
    score: f64,
}

impl OpenAi {
    /// The VADER scorer its windows come from.
    pub(super) fn vader(&self) -> &Builtin {
        &self.windows
    }

    /// An analyzer over `config`.
    pub fn new(config: OpenAiConfig) -> Self {
        let http = crate::web::client_builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            windows: Builtin::default(),
        }
    }

    /// The model name recorded on each analysis.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    pub(super) async fn analyze(&self, input: &Input<'_>) -> Result<Output, AnalyzerError> {
        let body = request(&self.config.model, input);
        let url = format!("{}/chat/completions", self.config.base_url);
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.config.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| AnalyzerError::Unavailable(format!("POST {url}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| AnalyzerError::Unavailable(format!("reading the answer: {e}")))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(AnalyzerError::Unavailable(format!(
                "{status}: {}",
                excerpt(&text)
            )));
        }
        if !status.is_success() {
            return Err(AnalyzerError::Invalid(format!(
                "{status}: {}",
                excerpt(&text)
            )));
        }
        let answer = parse(&text)?;
        let now = Timestamp::now();
        let windows = self
            .windows
            .sentiment(input.segments, now)
            .map(|s| s.windows)
            .unwrap_or_default();
        Ok(Output {
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
            model: self.config.model.clone(),
        })
    }
}

/// The chat completion request for `input`.
fn request(model: &str, input: &Input<'_>) -> Value {
    let section = input.section;
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
    json!({
        "model": model,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": instructions.join("\n") },
            { "role": "user", "content": transcript(input) },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": { "name": "call_analysis", "strict": true, "schema": schema(section) },
        },
    })
}

/// The answer's JSON Schema, in strict mode's dialect: every property required, nothing else
/// allowed, null spelled as a type.
fn schema(section: &AnalysisSection) -> Value {
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
fn transcript(input: &Input<'_>) -> String {
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

/// The analysis in a chat completion's answer (`choices[0].message.content`, a JSON string).
fn parse(text: &str) -> Result<Answer, AnalyzerError> {
    let body: Value = serde_json::from_str(text)
        .map_err(|e| AnalyzerError::Invalid(format!("the answer is not JSON: {e}")))?;
    let message = &body["choices"][0]["message"];
    if let Some(refusal) = message["refusal"].as_str() {
        return Err(AnalyzerError::Invalid(format!(
            "the model refused: {}",
            excerpt(refusal)
        )));
    }
    let content = message["content"].as_str().ok_or_else(|| {
        AnalyzerError::Invalid("no choices[0].message.content in the answer".into())
    })?;
    serde_json::from_str(content).map_err(|e| {
        AnalyzerError::Invalid(format!("the content is not the analysis asked for: {e}"))
    })
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

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}
