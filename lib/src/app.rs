//! The per-process application state handlers share: configuration and the clients, built once
//! at cold start and reused by every invocation.

use crate::auth::JwtKeys;
use crate::blobs::Blobs;
use crate::config::{Config, ConfigError, MailTransport};
use crate::mail::Mailer;
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;

/// Shared state of a function.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Store,
    pub blobs: Blobs,
    pub mailer: Mailer,
    pub jwt: JwtKeys,
    /// SQS, for runtime host command queues (their URLs are on the host records).
    pub sqs: aws_sdk_sqs::Client,
}

/// What handlers receive.
pub type AppState = Arc<App>;

impl App {
    /// Reads configuration and builds the SDK clients; fails fast on bad configuration.
    pub async fn from_env() -> Result<AppState, ConfigError> {
        let config = Config::from_env()?;
        let sdk = crate::aws::load().await;
        Ok(Arc::new(Self::new(config, &sdk)))
    }

    /// State over the given SDK configuration.
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        Self::with_dynamo(config, sdk, aws_sdk_dynamodb::Client::new(sdk))
    }

    /// State with a caller-built DynamoDB client (benchmarks add a round-trip counter).
    pub fn with_dynamo(config: Config, sdk: &SdkConfig, dynamo: aws_sdk_dynamodb::Client) -> Self {
        let blobs = Blobs::new(crate::aws::s3(sdk), &config.bucket_name);
        let mailer = match config.mail_transport {
            MailTransport::Outbox => Mailer::Outbox {
                blobs: blobs.clone(),
                from: config.mail_from.clone(),
            },
            MailTransport::Ses => Mailer::Ses {
                client: aws_sdk_sesv2::Client::new(sdk),
                from: config.mail_from.clone(),
            },
        };
        Self {
            store: Store::new(dynamo, &config.table_name, &config.jwt_secret),
            jwt: JwtKeys::new(
                &config.jwt_secret,
                &config.jwt_issuer,
                config.token_ttl_secs,
            ),
            blobs,
            mailer,
            sqs: aws_sdk_sqs::Client::new(sdk),
            config,
        }
    }
}
