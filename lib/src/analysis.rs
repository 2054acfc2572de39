//! The analyzers behind one port: what a call's analysis reads (the call, its transcript in
//! spoken order, its tool calls, the pinned version's `analysis` section) and what it answers
//! (summary, sentiment with windows, success, extracted fields). `builtin` works offline with
//! no key: an extractive summary and VADER sentiment (vader-parity, which reproduces the
//! Python reference's scores); `openai` asks any OpenAI-compatible endpoint (`openai.rs`).
//! The worker that claims, runs and stores an analysis is `service::analysis`.

mod bedrock;
mod openai;
mod prompt;
pub use bedrock::Bedrock;
pub use openai::OpenAi;

use crate::domain::analysis::{AnalysisSection, Sentiment, SentimentLabel, SentimentWindow};
use crate::domain::event::Party;
use crate::store::records::{CallRecord, EventRecord, SegmentRecord};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// What an analysis reads.
#[derive(Debug)]
pub struct Input<'a> {
    pub call: &'a CallRecord,
    /// In spoken order.
    pub segments: &'a [SegmentRecord],
    /// `tool_called` / `tool_result` events, in the order they happened.
    pub tools: &'a [EventRecord],
    pub section: &'a AnalysisSection,
}

/// What an analyzer answers.
#[derive(Debug, PartialEq)]
pub struct Output {
    pub summary: Option<String>,
    pub sentiment: Option<Sentiment>,
    pub success: Option<bool>,
    /// One key per field of the section.
    pub data: Map<String, Value>,
    pub model: String,
}

/// Why an analyzer gave no answer: every kind is retried with back-off, then recorded.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    /// The provider did not answer, or answered 5xx or 429.
    #[error("the analyzer is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something that is not the analysis asked for.
    #[error("the analyzer's answer is not an analysis: {0}")]
    Invalid(String),
}

/// The configured analyzer (`ANALYZER`).
#[derive(Debug)]
pub enum Analyzer {
    /// Offline: extractive summary and VADER sentiment; no success judgement, no fields.
    Builtin(Builtin),
    /// An OpenAI-compatible chat completions endpoint.
    OpenAi(OpenAi),
    /// Amazon Bedrock Converse.
    Bedrock(Bedrock),
}

impl Analyzer {
    /// The analyzer `kind` configures.
    /// `sdk` gives Bedrock its credentials, region and endpoint.
    pub fn new(kind: &crate::config::AnalyzerKind, sdk: &aws_config::SdkConfig) -> Self {
        match kind {
            crate::config::AnalyzerKind::Builtin => Analyzer::Builtin(Builtin::default()),
            crate::config::AnalyzerKind::OpenAi(config) => {
                Analyzer::OpenAi(OpenAi::new(config.clone()))
            }
            crate::config::AnalyzerKind::Bedrock(config) => {
                Analyzer::Bedrock(Bedrock::new(config.clone(), sdk))
            }
        }
    }

    /// Its name, as recorded on each analysis.
    pub fn name(&self) -> &'static str {
        match self {
            Analyzer::Builtin(_) => "builtin",
            Analyzer::OpenAi(_) => "openai",
            Analyzer::Bedrock(_) => "bedrock",
        }
    }

    /// The sentiment of the customer's turns so far, for a live call: VADER whatever the
    /// analyzer (deterministic, free, and on the scale the windows use); `None` before the
    /// customer has spoken.
    pub fn live_sentiment(&self, segments: &[SegmentRecord], now: Timestamp) -> Option<Sentiment> {
        match self {
            Analyzer::Builtin(b) => b.sentiment(segments, now),
            Analyzer::OpenAi(o) => o.vader().sentiment(segments, now),
            Analyzer::Bedrock(b) => b.vader().sentiment(segments, now),
        }
    }

    /// Analyses one call.
    pub async fn analyze(&self, input: &Input<'_>) -> Result<Output, AnalyzerError> {
        match self {
            Analyzer::Builtin(b) => Ok(b.analyze(input)),
            Analyzer::OpenAi(o) => o.analyze(input).await,
            Analyzer::Bedrock(b) => b.analyze(input).await,
        }
    }
}

/// The built-in analyzer; holds VADER's lexicon, parsed on first use (not at cold start: the
/// parse is most of a millisecond or more, and the worker may start for a batch of skips).
#[derive(Default)]
pub struct Builtin {
    vader: std::sync::OnceLock<vader_parity::SentimentIntensityAnalyzer>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin").finish_non_exhaustive()
    }
}

/// The model name recorded for the built-in analyzer.
pub const BUILTIN_MODEL: &str = "extractive+vader-3.3.2";

/// A window of sentiment: one minute, widened so that a call has at most this many windows.
pub const WINDOW_SECS: i64 = 60;
/// Most windows of one call.
pub const MAX_WINDOWS: i64 = 30;
/// Longest quote of the caller in a summary, in characters.
const QUOTE_CHARS: usize = 160;

impl Builtin {
    fn analyze(&self, input: &Input<'_>) -> Output {
        Output {
            summary: Some(summary(input)),
            sentiment: self.sentiment(input.segments, Timestamp::now()),
            success: None,
            data: input
                .section
                .fields
                .iter()
                .map(|f| (f.name.clone(), Value::Null))
                .collect(),
            model: BUILTIN_MODEL.to_owned(),
        }
    }

    /// VADER's compound score of one text, in −1..1.
    pub fn score(&self, text: &str) -> f64 {
        self.vader
            .get_or_init(vader_parity::SentimentIntensityAnalyzer::new)
            .polarity_scores(text)
            .compound
    }

    /// The customer's sentiment: the mean compound of their turns, and the same per window
    /// (windows with no customer turn are left out). `None` without customer turns.
    pub fn sentiment(&self, segments: &[SegmentRecord], now: Timestamp) -> Option<Sentiment> {
        let turns: Vec<(&SegmentRecord, f64)> = segments
            .iter()
            .filter(|s| s.speaker == Party::Customer)
            .map(|s| (s, self.score(&s.text)))
            .collect();
        let first = segments.iter().map(|s| s.started_at).min()?;
        let last = segments.iter().map(|s| s.ended_at).max()?;
        let score = mean(turns.iter().map(|(_, c)| *c))?;
        let span = (last.unix() - first.unix()).max(1);
        let width = WINDOW_SECS.max((span + MAX_WINDOWS - 1) / MAX_WINDOWS);
        // (start, sum of compounds, turns): segments come in spoken order, so windows do too.
        let mut sums: Vec<(Timestamp, f64, u32)> = Vec::new();
        for (turn, compound) in &turns {
            let offset = (turn.started_at.unix() - first.unix()).max(0);
            let start = first.plus_secs(offset / width * width);
            match sums.last_mut() {
                Some((at, sum, n)) if *at == start => {
                    *sum += compound;
                    *n += 1;
                }
                _ => sums.push((start, *compound, 1)),
            }
        }
        let windows = sums
            .into_iter()
            .map(|(start, sum, n)| {
                let score = round4(sum / f64::from(n));
                SentimentWindow {
                    start,
                    end: start.plus_secs(width),
                    label: SentimentLabel::of(score),
                    score,
                }
            })
            .collect();
        Some(Sentiment {
            label: SentimentLabel::of(score),
            score: round4(score),
            computed_at: now,
            windows,
        })
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Who called, what was asked, what the agent did, how it ended, the tools' outcomes; from
/// the record and the transcript only, never invented.
fn summary(input: &Input<'_>) -> String {
    let call = input.call;
    let mut parts = Vec::new();
    let who = match call.direction {
        crate::domain::Direction::Inbound => format!("Inbound call from {}", call.from_e164),
        crate::domain::Direction::Outbound => format!("Outbound call to {}", call.to_e164),
    };
    let length = call
        .duration_seconds
        .map(|d| format!(" lasting {}m{:02}s", d / 60, d % 60))
        .unwrap_or_default();
    parts.push(format!("{who}{length}."));
    let said = |party: Party| {
        input
            .segments
            .iter()
            .find(|s| s.speaker == party && !s.text.trim().is_empty())
            .map(|s| quote(&s.text))
    };
    if let Some(asked) = said(Party::Customer) {
        parts.push(format!("The caller said: \"{asked}\"."));
    }
    if let Some(answer) = said(Party::Agent) {
        parts.push(format!("The agent answered: \"{answer}\"."));
    }
    let tools: Vec<String> = input
        .tools
        .iter()
        .filter(|e| e.kind == "tool_result")
        .map(|e| {
            let name = e.payload["tool_name"].as_str().unwrap_or("a tool");
            let failed = !e.payload["error"].is_null();
            format!("{name} ({})", if failed { "failed" } else { "succeeded" })
        })
        .collect();
    if !tools.is_empty() {
        parts.push(format!("Tools used: {}.", tools.join(", ")));
    }
    let mut ending = format!("It ended as {}", call.status.as_str().replace('_', " "));
    if let Some(by) = call.hangup_by {
        ending.push_str(&format!(", hung up by the {}", party_name(by)));
    }
    if let Some(handoff) = &call.handoff {
        ending.push_str(&format!(", after a handoff to {}", handoff.e164));
    }
    parts.push(format!("{ending}."));
    parts.join(" ")
}

fn party_name(p: Party) -> &'static str {
    match p {
        Party::Customer => "caller",
        Party::Agent => "agent",
        Party::Operator => "operator",
        Party::System => "system",
    }
}

fn quote(text: &str) -> String {
    let text = text.trim().replace('"', "'");
    if text.chars().count() <= QUOTE_CHARS {
        return text;
    }
    let cut: String = text.chars().take(QUOTE_CHARS).collect();
    format!("{}…", cut.trim_end())
}
