//! The `bedrock` analyzer: one Amazon Bedrock `Converse` call with the function's IAM role (no
//! key to store), the same instructions, transcript and JSON Schema as the `openai` analyzer
//! (`prompt`), and structured output (`outputConfig.textFormat` of type `json_schema`), so the
//! model's text is the analysis. Throttling, 5xx and timeouts are `Unavailable` (retried by
//! the worker); anything else — a refused request, a cut or malformed answer — is `Invalid`.

use super::prompt::{self, excerpt};
use super::{AnalyzerError, Builtin, Input, Output};
use crate::config::BedrockConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, JsonSchemaDefinition,
    Message, OutputConfig, OutputFormat, OutputFormatStructure, OutputFormatType, StopReason,
    SystemContentBlock,
};

/// The analyzer; holds its client and VADER for the windows.
#[derive(Debug)]
pub struct Bedrock {
    config: BedrockConfig,
    client: aws_sdk_bedrockruntime::Client,
    windows: Builtin,
}

/// Error codes that mean "try again later".
const RETRYABLE: &[&str] = &[
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelTimeoutException",
];

impl Bedrock {
    /// An analyzer over `config`, with the SDK's configuration (credentials, region, endpoint).
    pub fn new(config: BedrockConfig, sdk: &aws_config::SdkConfig) -> Self {
        let client = aws_sdk_bedrockruntime::Client::from_conf(
            aws_sdk_bedrockruntime::config::Builder::from(sdk)
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(config.timeout)
                        .build(),
                )
                .build(),
        );
        Self {
            config,
            client,
            windows: Builtin::default(),
        }
    }

    /// The VADER scorer its windows come from.
    pub(super) fn vader(&self) -> &Builtin {
        &self.windows
    }

    pub(super) async fn analyze(&self, input: &Input<'_>) -> Result<Output, AnalyzerError> {
        let invalid = |e: aws_sdk_bedrockruntime::error::BuildError| {
            AnalyzerError::Invalid(format!("building the request: {e}"))
        };
        let schema = JsonSchemaDefinition::builder()
            .name(prompt::SCHEMA_NAME)
            .schema(prompt::schema(input.section).to_string())
            .build()
            .map_err(invalid)?;
        let format = OutputFormat::builder()
            .r#type(OutputFormatType::JsonSchema)
            .structure(OutputFormatStructure::JsonSchema(schema))
            .build()
            .map_err(invalid)?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(prompt::transcript(input)))
            .build()
            .map_err(invalid)?;
        let answer = self
            .client
            .converse()
            .model_id(&self.config.model_id)
            .system(SystemContentBlock::Text(prompt::instructions(
                input.section,
            )))
            .messages(message)
            .inference_config(InferenceConfiguration::builder().temperature(0.0).build())
            .output_config(OutputConfig::builder().text_format(format).build())
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or_default().to_owned();
                let detail = e
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{e}"));
                if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
                    || RETRYABLE.contains(&code.as_str())
                {
                    AnalyzerError::Unavailable(format!("Converse: {code} {}", excerpt(&detail)))
                } else {
                    AnalyzerError::Invalid(format!("Converse: {code} {}", excerpt(&detail)))
                }
            })?;
        if answer.stop_reason == StopReason::MaxTokens {
            return Err(AnalyzerError::Invalid(
                "the answer was cut at the model's token limit".into(),
            ));
        }
        let text = match answer.output {
            Some(ConverseOutput::Message(m)) => m.content.into_iter().find_map(|c| match c {
                ContentBlock::Text(t) => Some(t),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| AnalyzerError::Invalid("no text in the Converse answer".into()))?;
        let parsed = prompt::answer(&text)?;
        Ok(prompt::output(
            parsed,
            input,
            &self.windows,
            &self.config.model_id,
        ))
    }
}
