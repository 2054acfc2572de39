//! The per-process application state handlers share: configuration and the clients, built once
//! at cold start and reused by every invocation.

use crate::auth::JwtKeys;
use crate::blobs::Blobs;
use crate::config::{Config, ConfigError, MailTransport, Secret};
use crate::domain::NumberProvider;
use crate::error::{Error, Result};
use crate::mail::Mailer;
use crate::queues::Queue;
use crate::store::Store;
use crate::telephony::TelephonyPort;
use crate::telephony::twilio::{RetryPolicy, TwilioClient};
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
    /// Voice providers, when the telephony settings are present.
    pub telephony: Option<Telephony>,
    /// The post-call job queue (`SUMMARY_QUEUE_URL`), when configured.
    pub summary_jobs: Option<Queue>,
    /// The live-sentiment FIFO queue (`LIVE_SENTIMENT_QUEUE_URL`), when configured.
    pub live_sentiment: Option<Queue>,
    /// The leads import queue (`LEAD_IMPORT_QUEUE_URL`), when configured.
    pub lead_imports: Option<Queue>,
    /// The campaign dialer's tick queue (`CAMPAIGN_QUEUE_URL`), when configured.
    pub campaign_ticks: Option<Queue>,
    /// Seals and opens secrets at rest under `KMS_KEY_ID`, when configured.
    pub envelope: Option<Arc<crate::secrets::Envelope>>,
    /// Provider clients (integrations, tool proxy), built on first use.
    providers: std::sync::OnceLock<crate::providers::Providers>,
    /// The last readiness answer and when it was computed (`service::health`).
    pub ready_cache:
        std::sync::Mutex<Option<(std::time::Instant, crate::service::health::Readiness)>>,
}

/// The telephony settings and the provider adapters built from them.
#[derive(Debug)]
pub struct Telephony {
    /// The public base URL Twilio calls (no trailing `/`).
    pub public_url: String,
    /// Twilio's auth token, for webhook signatures.
    pub auth_token: Secret,
    /// `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_APP_SECRET`.
    pub whatsapp_verify_token: Option<Secret>,
    pub whatsapp_app_secret: Option<Secret>,
    /// The Twilio adapter.
    pub twilio: Arc<dyn TelephonyPort>,
}

impl Telephony {
    /// The adapter that serves numbers of `provider`.
    pub fn port(&self, provider: NumberProvider) -> Result<&dyn TelephonyPort> {
        match provider {
            NumberProvider::Twilio => Ok(self.twilio.as_ref()),
            other => Err(Error::Unavailable(format!(
                "calls through {other:?} are not supported yet"
            ))),
        }
    }

    /// A URL of ours that Twilio calls back, e.g. `/webhooks/twilio/call-status?call_id=…`.
    pub fn callback(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.public_url)
    }
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

    /// The telephony adapters; only the calls and webhook functions use them, and their
    /// start-up checks the settings, so a miss here is a deployment error.
    pub fn telephony(&self) -> Result<&Telephony> {
        self.telephony
            .as_ref()
            .ok_or_else(|| Error::internal("telephony is not configured (TWILIO_ACCOUNT_SID)"))
    }

    /// The post-call job queue; the ingest function checks the setting at start-up.
    pub fn summary_jobs(&self) -> Result<&Queue> {
        self.summary_jobs.as_ref().ok_or_else(|| {
            Error::internal("the summary queue is not configured (SUMMARY_QUEUE_URL)")
        })
    }

    /// The campaign tick queue; the functions that tick campaigns check the setting at
    /// start-up.
    pub fn campaign_ticks(&self) -> Result<&Queue> {
        self.campaign_ticks.as_ref().ok_or_else(|| {
            Error::internal("the campaign queue is not configured (CAMPAIGN_QUEUE_URL)")
        })
    }

    /// The envelope secrets are sealed with (`KMS_KEY_ID`, checked at start-up where needed).
    pub fn envelope(&self) -> Result<&crate::secrets::Envelope> {
        self.envelope
            .as_deref()
            .ok_or_else(|| Error::internal("no KMS key is configured (KMS_KEY_ID)"))
    }

    /// The provider clients (one connection pool per instance).
    pub fn providers(&self) -> &crate::providers::Providers {
        self.providers
            .get_or_init(|| crate::providers::Providers::new(self.config.integrations.clone()))
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
        let telephony = config.telephony.as_ref().map(|t| Telephony {
            public_url: t.public_url.clone(),
            auth_token: t.auth_token.clone(),
            whatsapp_verify_token: t.whatsapp_verify_token.clone(),
            whatsapp_app_secret: t.whatsapp_app_secret.clone(),
            twilio: Arc::new(TwilioClient::new(
                &t.api_base,
                &t.account_sid,
                &t.auth_token,
                RetryPolicy {
                    base: std::time::Duration::from_millis(t.retry_base_ms),
                    timeout: std::time::Duration::from_millis(t.timeout_ms),
                    ..RetryPolicy::default()
                },
            )) as Arc<dyn TelephonyPort>,
        });
        let sqs = aws_sdk_sqs::Client::new(sdk);
        Self {
            telephony,
            store: Store::new(
                dynamo,
                &config.table_name,
                config.jwt_secret.expose().as_bytes(),
            ),
            jwt: JwtKeys::new(
                config.jwt_secret.expose().as_bytes(),
                config
                    .jwt_secret_previous
                    .as_ref()
                    .map(|s| s.expose().as_bytes()),
                &config.jwt_issuer,
                config.token_ttl_secs,
            ),
            blobs,
            mailer,
            summary_jobs: config
                .summary_queue_url
                .as_ref()
                .map(|url| Queue::new(sqs.clone(), url.clone())),
            live_sentiment: config
                .live_sentiment_queue_url
                .as_ref()
                .map(|url| Queue::new(sqs.clone(), url.clone())),
            lead_imports: config
                .lead_import_queue_url
                .as_ref()
                .map(|url| Queue::new(sqs.clone(), url.clone())),
            campaign_ticks: config
                .campaign_queue_url
                .as_ref()
                .map(|url| Queue::new(sqs.clone(), url.clone())),
            envelope: config.kms_key_id.as_ref().map(|key| {
                Arc::new(crate::secrets::Envelope::new(
                    aws_sdk_kms::Client::new(sdk),
                    key.clone(),
                ))
            }),
            sqs,
            providers: std::sync::OnceLock::new(),
            config,
            ready_cache: std::sync::Mutex::new(None),
        }
    }
}
