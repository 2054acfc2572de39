//! The `openai` analyzer: one `POST {base}/chat/completions` to any OpenAI-compatible
//! endpoint with `response_format: json_schema` (strict), asking for the summary, the
//! customer's sentiment, success against the version's criteria and the version's fields. The
//! per-window sentiment series stays VADER's (deterministic and free); the call's label and
//! score are the model's. Redirects are not followed.

use super::prompt::{self, excerpt};
use super::{AnalyzerError, Builtin, Input, Output};
use crate::config::OpenAiConfig;
use serde_json::{Value, json};

/// The analyzer; holds its HTTP client and VADER for the windows.
#[derive(Debug)]
pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
    windows: Builtin,
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
        Ok(prompt::output(
            answer,
            input,
            &self.windows,
            &self.config.model,
        ))
    }
}

/// The chat completion request for `input`.
fn request(model: &str, input: &Input<'_>) -> Value {
    let instructions = super::prompt::instructions(input.section);
    json!({
        "model": model,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": instructions },
            { "role": "user", "content": super::prompt::transcript(input) },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": { "name": prompt::SCHEMA_NAME, "strict": true, "schema": super::prompt::schema(input.section) },
        },
    })
}

/// The analysis in a chat completion's answer (`choices[0].message.content`, a JSON string).
fn parse(text: &str) -> Result<prompt::Answer, AnalyzerError> {
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
    prompt::answer(content)
}
