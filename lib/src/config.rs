//! Configuration from the environment, read once at start-up. Fail fast: a missing or invalid
//! variable stops start-up with one line naming it.

use std::fmt;

/// The post-call analyzer (`ANALYZER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnalyzerKind {
    /// `crate::analysis::Builtin`.
    Builtin,
    /// Any OpenAI-compatible `/chat/completions` endpoint (`ANALYZER=openai`).
    OpenAi(OpenAiConfig),
    /// Amazon Bedrock Converse with the function's IAM role (`ANALYZER=bedrock`).
    Bedrock(BedrockConfig),
}

/// The Bedrock analyzer's settings; the endpoint is the SDK's (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
/// overrides it, as for every AWS service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BedrockConfig {
    /// `BEDROCK_MODEL_ID`, default `amazon.nova-lite-v1:0`: a model or inference profile
    /// that supports Converse's structured output.
    pub model_id: String,
    /// One request's limit (`ANALYZER_TIMEOUT_MS`, default 30000).
    pub timeout: std::time::Duration,
}

/// An OpenAI-compatible analyzer's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API's base, up to and including `/v1` (`OPENAI_BASE_URL`, default
    /// `https://api.openai.com/v1`).
    pub base_url: String,
    /// `OPENAI_API_KEY` (required; in AWS a Secrets Manager reference).
    pub api_key: Secret,
    /// `OPENAI_MODEL`, default `gpt-4.1-mini`.
    pub model: String,
    /// One request's limit (`ANALYZER_TIMEOUT_MS`, default 30000).
    pub timeout: std::time::Duration,
}

/// How outgoing mail (invitations, password resets) leaves the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailTransport {
    /// Written to the bucket under `outbox/` and logged: the local stack and tests.
    Outbox,
    /// Sent through Amazon SES v2.
    Ses,
}

/// Everything a function needs to know about its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The DynamoDB table holding all records (`TABLE_NAME`).
    pub table_name: String,
    /// The S3 bucket for big objects and the local mail outbox (`BUCKET_NAME`).
    pub bucket_name: String,
    /// HS256 signing key for access tokens and cursors (`JWT_SECRET`, at least 32 bytes).
    pub jwt_secret: Secret,
    /// The key access tokens were signed with before the last rotation
    /// (`JWT_SECRET_PREVIOUS`): still accepted, never used to sign. Keep it set for one token
    /// lifetime (`TOKEN_TTL_SECONDS`) after changing `JWT_SECRET`, then remove it.
    pub jwt_secret_previous: Option<Secret>,
    /// Derives each runtime's ingest token (`INGEST_TOKEN_SECRET`, at least 32 bytes), apart
    /// from `JWT_SECRET` so that rotating the user-token key leaves runtimes working. When
    /// unset, `JWT_SECRET` is used (the tokens deployments issued before it existed).
    pub ingest_token_secret: Secret,
    /// `iss` claim written and required on tokens (`JWT_ISSUER`, default `callplane`).
    pub jwt_issuer: String,
    /// Access-token lifetime in seconds (`TOKEN_TTL_SECONDS`, default 3600).
    pub token_ttl_secs: i64,
    /// `MAIL_TRANSPORT`: `outbox` (default) or `ses`.
    pub mail_transport: MailTransport,
    /// Sender address for mail (`MAIL_FROM`).
    pub mail_from: String,
    /// Base URL of the admin frontend, for links in mail (`CALLPLANE_APP_URL`).
    pub app_url: String,
    /// The ingest endpoint runtimes post call events to, injected into every runtime as
    /// `CALLPLANE_INGEST_URL` (`INGEST_URL`, default `http://127.0.0.1:9000/ingest/call-events`).
    pub ingest_url: String,
    /// The tool proxy's base URL, injected into every runtime as `CALLPLANE_TOOL_PROXY_URL`
    /// (`TOOL_PROXY_URL`, default `http://127.0.0.1:9000/tool-proxy`).
    pub tool_proxy_url: String,
    /// Voice-provider settings; only the functions that place or receive calls need them
    /// (see [`Config::telephony`]).
    pub telephony: Option<TelephonyConfig>,
    /// The post-call job queue (`SUMMARY_QUEUE_URL`); the ingest function needs it (see
    /// [`Config::summary_queue`]).
    pub summary_queue_url: Option<String>,
    /// The FIFO queue of live-sentiment nudges (`LIVE_SENTIMENT_QUEUE_URL`); the ingest
    /// function needs it (see [`Config::live_sentiment_queue`]).
    pub live_sentiment_queue_url: Option<String>,
    /// The queue of leads import jobs (`LEAD_IMPORT_QUEUE_URL`); the leads function needs it
    /// (see [`Config::lead_import_queue`]).
    pub lead_import_queue_url: Option<String>,
    /// The queue of campaign dialer ticks (`CAMPAIGN_QUEUE_URL`); the campaigns API, the
    /// campaign worker and the sweeper need it (see [`Config::campaign_queue`]).
    pub campaign_queue_url: Option<String>,
    /// The KMS key secrets are sealed under (`KMS_KEY_ID`: an id, ARN or alias); the runtimes
    /// function needs it (see [`Config::kms_key`]).
    pub kms_key_id: Option<String>,
    /// The images runtimes may be provisioned from (`RUNTIME_IMAGES`, comma-separated; an
    /// entry ending in `*` allows every reference that starts with the rest, e.g.
    /// `registry.example.com/voice-agent-runtime:*`). Default: `RUNTIME_IMAGE` (the voice-agent
    /// runtime, default `voice-agent-runtime:latest`) and the runtime-sim image. A tenant's
    /// admin must not run arbitrary code on a shared host.
    pub runtime_images: Vec<String>,
    /// A path prefix requests may carry before the routes (`API_BASE_PATH`, e.g. `/prod`): an
    /// API Gateway stage other than `$default` puts its name first in every path Lambda sees,
    /// as a custom domain's API mapping may. Requests are answered with and without it.
    pub api_base_path: Option<String>,
    /// Which analyzer the post-call worker uses (`ANALYZER`): `builtin` (default; offline,
    /// no key), `openai` or `bedrock`. Anything else is refused at start-up rather than
    /// silently replaced.
    pub analyzer: AnalyzerKind,
    /// When the sweeper ends a call whose end never came (see `service::sweeper`).
    pub sweep: SweepConfig,
    /// Integrations and the tool proxy: provider base URLs, the Google OAuth client, allowed
    /// redirect origins, the provider timeout and the per-tool rate limits.
    pub integrations: IntegrationsConfig,
    /// Copying external recordings into the bucket (`RECORDING_MAX_BYTES`, default 512 MiB;
    /// `RECORDING_TIMEOUT_SECS`, default 45, below the post-call function's 60 s timeout).
    pub recording_limits: crate::recordings::Limits,
}

/// The sweeper's limits. A live call is ended as `failed` / `no_end_reported` when it has run
/// longer than its establishment's `max_call_duration_seconds` plus `grace_secs`, or when
/// neither the provider nor the runtime has said anything about it for `idle_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepConfig {
    /// `SWEEP_GRACE_SECONDS`, default 120 (30..=3600).
    pub grace_secs: u32,
    /// `SWEEP_IDLE_SECONDS`, default 600 (60..=86400).
    pub idle_secs: u32,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            grace_secs: 120,
            idle_secs: 600,
        }
    }
}

impl Config {
    /// Whether a runtime may be provisioned from `image`.
    pub fn image_allowed(&self, image: &str) -> bool {
        self.runtime_images
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => image == allowed,
            })
    }
}

/// What the calls and webhook functions need to talk to Twilio and to be called by it.
#[derive(Clone, Debug)]
pub struct TelephonyConfig {
    /// The public base URL Twilio calls (`CALLPLANE_PUBLIC_URL`): webhook signatures are
    /// checked against it and callback URLs given to Twilio start with it.
    pub public_url: String,
    /// `TWILIO_ACCOUNT_SID`.
    pub account_sid: String,
    /// `TWILIO_AUTH_TOKEN`: signs webhooks and authenticates REST calls.
    pub auth_token: Secret,
    /// `TWILIO_API_BASE`, default `https://api.twilio.com`.
    pub api_base: String,
    /// First back-off of rate-limited REST calls (`TWILIO_RETRY_BASE_MS`, default 250).
    pub retry_base_ms: u64,
    /// How long a REST call may take before its answer counts as lost
    /// (`TWILIO_TIMEOUT_MS`, default 10000).
    pub timeout_ms: u64,
    /// `WHATSAPP_VERIFY_TOKEN`: the token Meta's subscription check must present.
    pub whatsapp_verify_token: Option<Secret>,
    /// `WHATSAPP_APP_SECRET`: signs WhatsApp webhook bodies (`X-Hub-Signature-256`).
    pub whatsapp_app_secret: Option<Secret>,
}

/// Integrations and the tool proxy. Every provider base URL is configuration, so the local
/// stack and the tests point them at stand-ins speaking the providers' wire formats.
#[derive(Clone, Debug)]
pub struct IntegrationsConfig {
    /// `GOOGLE_OAUTH_CLIENT_ID` / `GOOGLE_OAUTH_CLIENT_SECRET`: the OAuth client Google
    /// Calendar connections use. Unset: connecting Google Calendar answers 422
    /// `oauth_not_configured`.
    pub google_client: Option<(String, Secret)>,
    /// `GOOGLE_AUTH_URL`, default `https://accounts.google.com/o/oauth2/v2/auth`.
    pub google_auth_url: String,
    /// `GOOGLE_TOKEN_URL`, default `https://oauth2.googleapis.com/token`.
    pub google_token_url: String,
    /// `GOOGLE_REVOKE_URL`, default `https://oauth2.googleapis.com/revoke`.
    pub google_revoke_url: String,
    /// `GOOGLE_CALENDAR_API_URL`, default `https://www.googleapis.com/calendar/v3`.
    pub google_calendar_url: String,
    /// `WHATSAPP_GRAPH_API_URL`, default `https://graph.facebook.com/v21.0`.
    pub whatsapp_graph_url: String,
    /// `HUBSPOT_API_URL`, default `https://api.hubapi.com`.
    pub hubspot_url: String,
    /// Where Google sends the browser back (`OAUTH_CALLBACK_URL`): this API's
    /// `/integrations/oauth/callback`; default `http://127.0.0.1:9000/integrations/oauth/callback`.
    pub oauth_callback_url: String,
    /// Origins a connect flow may send the browser back to (`INTEGRATION_REDIRECT_ORIGINS`,
    /// comma-separated; default the origin of `CALLPLANE_APP_URL`).
    pub redirect_origins: Vec<String>,
    /// How long a provider call may take (`TOOL_TIMEOUT_SECS`, default 8, 1..=25): the
    /// runtime waiting for the answer is on a live call.
    pub provider_timeout: std::time::Duration,
    /// Tool calls per establishment per minute, by tool group (`TOOL_RATE_LIMITS`, e.g.
    /// `email=30,whatsapp=30,calendar=60,crm=120,handoff=10,dnc=20`, these being the defaults).
    pub rate_limits: std::collections::BTreeMap<String, u32>,
}

impl IntegrationsConfig {
    /// Calls per minute allowed for a tool group.
    pub fn rate_limit(&self, group: &str) -> u32 {
        self.rate_limits.get(group).copied().unwrap_or(60)
    }
}

/// The origin (`scheme://host[:port]`) of an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() || host.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// Default calls per minute of each tool group.
const DEFAULT_RATE_LIMITS: &[(&str, u32)] = &[
    ("email", 30),
    ("whatsapp", 30),
    ("calendar", 60),
    ("crm", 120),
    ("handoff", 10),
    ("dnc", 20),
];

fn integrations(
    get: &impl Fn(&str) -> Option<String>,
    app_url: &str,
) -> Result<IntegrationsConfig, ConfigError> {
    let value = |var: &str| get(var).filter(|v| !v.trim().is_empty());
    let url = |var: &'static str, default: &str| {
        let raw = value(var).unwrap_or_else(|| default.to_owned());
        if raw.starts_with("http://") || raw.starts_with("https://") {
            Ok(raw.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError {
                var,
                problem: "must be an http(s) URL".into(),
            })
        }
    };
    let google_client = match (
        value("GOOGLE_OAUTH_CLIENT_ID"),
        value("GOOGLE_OAUTH_CLIENT_SECRET"),
    ) {
        (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError {
                var: "GOOGLE_OAUTH_CLIENT_SECRET",
                problem: "is not set while GOOGLE_OAUTH_CLIENT_ID is".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                var: "GOOGLE_OAUTH_CLIENT_ID",
                problem: "is not set while GOOGLE_OAUTH_CLIENT_SECRET is".into(),
            });
        }
    };
    let redirect_origins = match value("INTEGRATION_REDIRECT_ORIGINS") {
        Some(raw) => raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                origin_of(o).ok_or(ConfigError {
                    var: "INTEGRATION_REDIRECT_ORIGINS",
                    problem: format!("`{o}` is not an http(s) origin"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => origin_of(app_url).into_iter().collect(),
    };
    let timeout = match value("TOOL_TIMEOUT_SECS") {
        None => 8,
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=25).contains(s))
            .ok_or(ConfigError {
                var: "TOOL_TIMEOUT_SECS",
                problem: "must be a whole number of seconds from 1 to 25".into(),
            })?,
    };
    let mut rate_limits: std::collections::BTreeMap<String, u32> = DEFAULT_RATE_LIMITS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    if let Some(raw) = value("TOOL_RATE_LIMITS") {
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = pair.split_once('=').and_then(|(k, v)| {
                let n = v.trim().parse::<u32>().ok().filter(|n| *n >= 1)?;
                rate_limits
                    .contains_key(k.trim())
                    .then(|| (k.trim().to_owned(), n))
            });
            let (k, n) = parsed.ok_or(ConfigError {
                var: "TOOL_RATE_LIMITS",
                problem: format!(
                    "`{pair}` is not `group=calls_per_minute` with a group among email, whatsapp, calendar, crm, handoff, dnc"
                ),
            })?;
            rate_limits.insert(k, n);
        }
    }
    Ok(IntegrationsConfig {
        google_client,
        google_auth_url: url(
            "GOOGLE_AUTH_URL",
            "https://accounts.google.com/o/oauth2/v2/auth",
        )?,
        google_token_url: url("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")?,
        google_revoke_url: url("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke")?,
        google_calendar_url: url(
            "GOOGLE_CALENDAR_API_URL",
            "https://www.googleapis.com/calendar/v3",
        )?,
        whatsapp_graph_url: url("WHATSAPP_GRAPH_API_URL", "https://graph.facebook.com/v21.0")?,
        hubspot_url: url("HUBSPOT_API_URL", "https://api.hubapi.com")?,
        oauth_callback_url: url(
            "OAUTH_CALLBACK_URL",
            "http://127.0.0.1:9000/integrations/oauth/callback",
        )?,
        redirect_origins,
        provider_timeout: std::time::Duration::from_secs(timeout),
        rate_limits,
    })
}

/// The local runtime stand-in's image (`make runtime-sim-image`), allowed by default.
pub const RUNTIME_SIM_IMAGE: &str = "callplane/runtime-sim:dev";

/// A secret value from the environment. Its `Debug` never shows it, so a config, a client or
/// an error that holds one can be logged whole; `expose` is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that signs or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {var} {problem}")]
pub struct ConfigError {
    var: &'static str,
    problem: String,
}

impl Config {
    /// The telephony settings, or the error naming what is missing (the calls and
    /// twilio-webhooks functions call this at start-up to fail fast).
    pub fn telephony(&self) -> Result<&TelephonyConfig, ConfigError> {
        self.telephony.as_ref().ok_or(ConfigError {
            var: "TWILIO_ACCOUNT_SID",
            problem: "is not set (with TWILIO_AUTH_TOKEN and CALLPLANE_PUBLIC_URL, needed to \
                      place and receive calls)"
                .into(),
        })
    }

    /// The post-call job queue, or the error naming it (the ingest function calls this at
    /// start-up to fail fast).
    pub fn summary_queue(&self) -> Result<&str, ConfigError> {
        self.summary_queue_url.as_deref().ok_or(ConfigError {
            var: "SUMMARY_QUEUE_URL",
            problem: "is not set (the queue ended calls' post-call jobs go to)".into(),
        })
    }

    /// The live-sentiment queue, or the error naming it (the ingest function calls this at
    /// start-up to fail fast).
    pub fn live_sentiment_queue(&self) -> Result<&str, ConfigError> {
        self.live_sentiment_queue_url.as_deref().ok_or(ConfigError {
            var: "LIVE_SENTIMENT_QUEUE_URL",
            problem: "is not set (the FIFO queue live calls' sentiment updates go through)".into(),
        })
    }

    /// The leads import queue, or the error naming it (the leads function calls this at
    /// start-up to fail fast).
    pub fn lead_import_queue(&self) -> Result<&str, ConfigError> {
        self.lead_import_queue_url.as_deref().ok_or(ConfigError {
            var: "LEAD_IMPORT_QUEUE_URL",
            problem: "is not set (the queue leads imports are worked from)".into(),
        })
    }

    /// The campaign tick queue, or the error naming it (the functions that tick campaigns
    /// call this at start-up to fail fast).
    pub fn campaign_queue(&self) -> Result<&str, ConfigError> {
        self.campaign_queue_url.as_deref().ok_or(ConfigError {
            var: "CAMPAIGN_QUEUE_URL",
            problem: "is not set (the queue campaign dialer ticks go through)".into(),
        })
    }

    /// The KMS key secrets are sealed under, or the error that stops a function needing it.
    pub fn kms_key(&self) -> Result<&str, ConfigError> {
        self.kms_key_id.as_deref().ok_or(ConfigError {
            var: "KMS_KEY_ID",
            problem: "is not set (the KMS key secrets at rest are sealed under)".into(),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`, so tests can supply their own values.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |var: &'static str| {
            get(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError {
                    var,
                    problem: "is not set".into(),
                })
        };
        let or = |var: &'static str, default: &str| {
            get(var)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };

        let key = |var: &'static str, raw: String| {
            if raw.len() < 32 {
                return Err(ConfigError {
                    var,
                    problem: format!("must be at least 32 bytes (got {})", raw.len()),
                });
            }
            Ok(Secret::new(raw))
        };
        let jwt_secret = key("JWT_SECRET", required("JWT_SECRET")?)?;
        let jwt_secret_previous = get("JWT_SECRET_PREVIOUS")
            .filter(|v| !v.trim().is_empty())
            .map(|raw| key("JWT_SECRET_PREVIOUS", raw))
            .transpose()?;
        let ingest_token_secret = match get("INGEST_TOKEN_SECRET").filter(|v| !v.trim().is_empty())
        {
            Some(raw) => key("INGEST_TOKEN_SECRET", raw)?,
            None => jwt_secret.clone(),
        };
        let token_ttl_secs = or("TOKEN_TTL_SECONDS", "3600")
            .parse::<i64>()
            .ok()
            .filter(|s| (60..=86_400).contains(s))
            .ok_or(ConfigError {
                var: "TOKEN_TTL_SECONDS",
                problem: "must be a whole number of seconds from 60 to 86400".into(),
            })?;
        let mail_transport = match or("MAIL_TRANSPORT", "outbox").as_str() {
            "outbox" => MailTransport::Outbox,
            "ses" => MailTransport::Ses,
            other => {
                return Err(ConfigError {
                    var: "MAIL_TRANSPORT",
                    problem: format!("must be `outbox` or `ses`, not `{other}`"),
                });
            }
        };
        let analyzer_timeout = || {
            or("ANALYZER_TIMEOUT_MS", "30000")
                .parse::<u64>()
                .ok()
                .filter(|ms| (100..=600_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .ok_or(ConfigError {
                    var: "ANALYZER_TIMEOUT_MS",
                    problem: "must be milliseconds from 100 to 600000".into(),
                })
        };
        let analyzer = match or("ANALYZER", "builtin").as_str() {
            "builtin" => AnalyzerKind::Builtin,
            "bedrock" => AnalyzerKind::Bedrock(BedrockConfig {
                model_id: or("BEDROCK_MODEL_ID", "amazon.nova-lite-v1:0"),
                timeout: analyzer_timeout()?,
            }),
            "openai" => {
                let base_url = or("OPENAI_BASE_URL", "https://api.openai.com/v1");
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(ConfigError {
                        var: "OPENAI_BASE_URL",
                        problem: "must be an http(s) URL".into(),
                    });
                }
                AnalyzerKind::OpenAi(OpenAiConfig {
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    api_key: Secret::new(required("OPENAI_API_KEY")?),
                    model: or("OPENAI_MODEL", "gpt-4.1-mini"),
                    timeout: analyzer_timeout()?,
                })
            }
            other => {
                return Err(ConfigError {
                    var: "ANALYZER",
                    problem: format!("must be `builtin`, `openai` or `bedrock`, not `{other}`"),
                });
            }
        };
        let app_url = or("CALLPLANE_APP_URL", "http://localhost:5173");
        if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
            return Err(ConfigError {
                var: "CALLPLANE_APP_URL",
                problem: "must be an http(s) URL".into(),
            });
        }
        let ingest_url = or("INGEST_URL", "http://127.0.0.1:9000/ingest/call-events");
        if !(ingest_url.starts_with("http://") || ingest_url.starts_with("https://")) {
            return Err(ConfigError {
                var: "INGEST_URL",
                problem: "must be an http(s) URL".into(),
            });
        }
        let tool_proxy_url = or("TOOL_PROXY_URL", "http://127.0.0.1:9000/tool-proxy");
        if !(tool_proxy_url.starts_with("http://") || tool_proxy_url.starts_with("https://")) {
            return Err(ConfigError {
                var: "TOOL_PROXY_URL",
                problem: "must be an http(s) URL".into(),
            });
        }
        let tool_proxy_url = tool_proxy_url.trim_end_matches('/').to_owned();
        let telephony = telephony(&get)?;
        let summary_queue_url = get("SUMMARY_QUEUE_URL").filter(|v| !v.trim().is_empty());
        if let Some(url) = &summary_queue_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError {
                var: "SUMMARY_QUEUE_URL",
                problem: "must be an SQS queue URL".into(),
            });
        }
        let live_sentiment_queue_url =
            get("LIVE_SENTIMENT_QUEUE_URL").filter(|v| !v.trim().is_empty());
        if let Some(url) = &live_sentiment_queue_url
            && !((url.starts_with("http://") || url.starts_with("https://"))
                && url.ends_with(".fifo"))
        {
            return Err(ConfigError {
                var: "LIVE_SENTIMENT_QUEUE_URL",
                problem: "must be the URL of an SQS FIFO queue (ending in .fifo)".into(),
            });
        }
        let lead_import_queue_url = get("LEAD_IMPORT_QUEUE_URL").filter(|v| !v.trim().is_empty());
        if let Some(url) = &lead_import_queue_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError {
                var: "LEAD_IMPORT_QUEUE_URL",
                problem: "must be an SQS queue URL".into(),
            });
        }
        let campaign_queue_url = get("CAMPAIGN_QUEUE_URL").filter(|v| !v.trim().is_empty());
        if let Some(url) = &campaign_queue_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError {
                var: "CAMPAIGN_QUEUE_URL",
                problem: "must be an SQS queue URL".into(),
            });
        }
        let runtime_images = match get("RUNTIME_IMAGES").filter(|v| !v.trim().is_empty()) {
            Some(list) => list
                .split(',')
                .map(|i| i.trim().to_owned())
                .filter(|i| !i.is_empty())
                .collect(),
            None => vec![
                or("RUNTIME_IMAGE", "voice-agent-runtime:latest"),
                RUNTIME_SIM_IMAGE.to_owned(),
            ],
        };
        let api_base_path = match get("API_BASE_PATH").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(raw) => {
                let path = raw.trim().trim_end_matches('/').to_owned();
                let ok = path.starts_with('/')
                    && path.len() > 1
                    && path[1..].split('/').all(|segment| {
                        !segment.is_empty()
                            && segment
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                if !ok {
                    return Err(ConfigError {
                        var: "API_BASE_PATH",
                        problem: format!("must be a path like /prod, got `{raw}`"),
                    });
                }
                Some(path)
            }
        };
        let seconds = |var: &'static str, default: u32, range: std::ops::RangeInclusive<u32>| {
            get(var)
                .filter(|v| !v.trim().is_empty())
                .map_or(Some(default), |v| v.trim().parse().ok())
                .filter(|secs| range.contains(secs))
                .ok_or_else(|| ConfigError {
                    var,
                    problem: format!("must be seconds from {} to {}", range.start(), range.end()),
                })
        };
        let sweep = SweepConfig {
            grace_secs: seconds("SWEEP_GRACE_SECONDS", 120, 30..=3600)?,
            idle_secs: seconds("SWEEP_IDLE_SECONDS", 600, 60..=86_400)?,
        };
        let max_bytes = get("RECORDING_MAX_BYTES")
            .filter(|v| !v.trim().is_empty())
            .map_or(Some(512 * 1024 * 1024), |v| v.trim().parse::<u64>().ok())
            .filter(|n| (1024..=5 * 1024 * 1024 * 1024).contains(n))
            .ok_or(ConfigError {
                var: "RECORDING_MAX_BYTES",
                problem: "must be bytes from 1024 to 5 GiB".into(),
            })?;
        let recording_limits = crate::recordings::Limits {
            max_bytes,
            timeout: std::time::Duration::from_secs(u64::from(seconds(
                "RECORDING_TIMEOUT_SECS",
                45,
                1..=840,
            )?)),
        };
        let integrations = integrations(&get, &app_url)?;
        Ok(Self {
            integrations,
            recording_limits,
            sweep,
            analyzer,
            api_base_path,
            runtime_images,
            telephony,
            summary_queue_url,
            live_sentiment_queue_url,
            lead_import_queue_url,
            campaign_queue_url,
            kms_key_id: get("KMS_KEY_ID").filter(|v| !v.trim().is_empty()),
            ingest_url,
            tool_proxy_url,
            table_name: required("TABLE_NAME")?,
            bucket_name: required("BUCKET_NAME")?,
            jwt_secret,
            jwt_secret_previous,
            ingest_token_secret,
            jwt_issuer: or("JWT_ISSUER", "callplane"),
            token_ttl_secs,
            mail_transport,
            mail_from: or("MAIL_FROM", "no-reply@callplane.local"),
            app_url: app_url.trim_end_matches('/').to_owned(),
        })
    }
}

/// The telephony group: absent when none of its three required variables is set, an error
/// naming the first missing one when only some are.
fn telephony(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TelephonyConfig>, ConfigError> {
    let value = |var: &str| get(var).filter(|v| !v.trim().is_empty());
    let required = [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "CALLPLANE_PUBLIC_URL",
    ];
    if required.iter().all(|v| value(v).is_none()) {
        return Ok(None);
    }
    let need = |var: &'static str| {
        value(var).ok_or(ConfigError {
            var,
            problem: "is not set (the other telephony variables are)".into(),
        })
    };
    let url = |var: &'static str, raw: String| {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            Ok(raw.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError {
                var,
                problem: "must be an http(s) URL".into(),
            })
        }
    };
    let retry_base_ms = value("TWILIO_RETRY_BASE_MS")
        .unwrap_or_else(|| "250".into())
        .parse::<u64>()
        .ok()
        .filter(|ms| (1..=10_000).contains(ms))
        .ok_or(ConfigError {
            var: "TWILIO_RETRY_BASE_MS",
            problem: "must be a whole number of milliseconds from 1 to 10000".into(),
        })?;
    let timeout_ms = value("TWILIO_TIMEOUT_MS")
        .unwrap_or_else(|| "10000".into())
        .parse::<u64>()
        .ok()
        .filter(|ms| (100..=60_000).contains(ms))
        .ok_or(ConfigError {
            var: "TWILIO_TIMEOUT_MS",
            problem: "must be a whole number of milliseconds from 100 to 60000".into(),
        })?;
    Ok(Some(TelephonyConfig {
        timeout_ms,
        account_sid: need("TWILIO_ACCOUNT_SID")?,
        auth_token: Secret::new(need("TWILIO_AUTH_TOKEN")?),
        public_url: url("CALLPLANE_PUBLIC_URL", need("CALLPLANE_PUBLIC_URL")?)?,
        api_base: url(
            "TWILIO_API_BASE",
            value("TWILIO_API_BASE").unwrap_or_else(|| "https://api.twilio.com".into()),
        )?,
        retry_base_ms,
        whatsapp_verify_token: value("WHATSAPP_VERIFY_TOKEN").map(Secret::new),
        whatsapp_app_secret: value("WHATSAPP_APP_SECRET").map(Secret::new),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_names_the_variable_that_is_wrong() {
        // GIVEN an environment missing TABLE_NAME / with a short secret / a bad transport
        let secret = "s".repeat(32);
        let missing = Config::from_lookup(lookup(&[("JWT_SECRET", &secret), ("BUCKET_NAME", "b")]))
            .unwrap_err();
        let short = Config::from_lookup(lookup(&[
            ("JWT_SECRET", "short"),
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
        ]))
        .unwrap_err();
        let transport = Config::from_lookup(lookup(&[
            ("JWT_SECRET", &secret),
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("MAIL_TRANSPORT", "pigeon"),
        ]))
        .unwrap_err();
        // THEN each error is one line naming the variable
        assert_eq!(missing.to_string(), "configuration: TABLE_NAME is not set");
        assert_eq!(
            short.to_string(),
            "configuration: JWT_SECRET must be at least 32 bytes (got 5)"
        );
        assert!(
            transport
                .to_string()
                .starts_with("configuration: MAIL_TRANSPORT")
        );
        // AND a complete environment gives defaults for the rest
        let ok = Config::from_lookup(lookup(&[
            ("JWT_SECRET", &secret),
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
        ]))
        .unwrap();
        assert_eq!(ok.token_ttl_secs, 3600);
        assert_eq!(ok.mail_transport, MailTransport::Outbox);
        assert!(
            !format!("{ok:?}").contains(&secret),
            "Debug must not print the secret"
        );
        assert!(ok.telephony.is_none());
        assert!(
            ok.telephony()
                .unwrap_err()
                .to_string()
                .starts_with("configuration: TWILIO_ACCOUNT_SID is not set")
        );
    }

    #[test]
    fn the_analyzer_is_builtin_by_default_and_openai_needs_its_key() {
        // GIVEN the base environment with no analyzer, with openai but no key, with openai and
        // a key, and with an analyzer not built
        let secret = "s".repeat(32);
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("JWT_SECRET", secret.as_str()),
                ("TABLE_NAME", "t"),
                ("BUCKET_NAME", "b"),
            ];
            vars.extend_from_slice(extra);
            Config::from_lookup(lookup(&vars))
        };
        // THEN each is read as documented, naming the variable that is wrong
        assert_eq!(with(&[]).unwrap().analyzer, AnalyzerKind::Builtin);
        let keyless = with(&[("ANALYZER", "openai")]).unwrap_err().to_string();
        assert!(keyless.contains("OPENAI_API_KEY"), "{keyless}");
        let AnalyzerKind::OpenAi(openai) = with(&[
            ("ANALYZER", "openai"),
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_BASE_URL", "https://llm.example/v1/"),
        ])
        .unwrap()
        .analyzer
        else {
            panic!("not the openai analyzer");
        };
        assert_eq!(openai.base_url, "https://llm.example/v1");
        assert_eq!(openai.model, "gpt-4.1-mini");
        let AnalyzerKind::Bedrock(bedrock) = with(&[("ANALYZER", "bedrock")]).unwrap().analyzer
        else {
            panic!("not the bedrock analyzer");
        };
        assert_eq!(bedrock.model_id, "amazon.nova-lite-v1:0");
        let unknown = with(&[("ANALYZER", "gemini")]).unwrap_err().to_string();
        assert!(unknown.contains("ANALYZER"), "{unknown}");
    }

    #[test]
    fn telephony_is_all_or_nothing() {
        // GIVEN the base environment plus only part of the telephony group, then all of it
        let secret = "s".repeat(32);
        let base = [
            ("JWT_SECRET", secret.as_str()),
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
        ];
        let partial: Vec<_> = base
            .iter()
            .copied()
            .chain([("TWILIO_ACCOUNT_SID", "AC1")])
            .collect();
        let full: Vec<_> = base
            .iter()
            .copied()
            .chain([
                ("TWILIO_ACCOUNT_SID", "AC1"),
                ("TWILIO_AUTH_TOKEN", "token-123"),
                ("CALLPLANE_PUBLIC_URL", "https://hooks.example.com/"),
            ])
            .collect();
        // THEN the partial one names the missing variable and the full one has defaults
        let err = Config::from_lookup(lookup(&partial)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("configuration: TWILIO_AUTH_TOKEN is not set")
        );
        let ok = Config::from_lookup(lookup(&full)).unwrap();
        let t = ok.telephony().unwrap();
        assert_eq!(t.public_url, "https://hooks.example.com");
        assert_eq!(t.api_base, "https://api.twilio.com");
        assert!(!format!("{ok:?}").contains("token-123"));
    }

    #[test]
    fn the_ingest_secret_defaults_to_the_jwt_secret_and_must_be_long() {
        // GIVEN the base environment, then with a short or a proper INGEST_TOKEN_SECRET
        let secret = "s".repeat(32);
        let ingest = "i".repeat(32);
        let base = [
            ("JWT_SECRET", secret.as_str()),
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
        ];
        fn with<'a>(
            base: &[(&'a str, &'a str)],
            extra: (&'a str, &'a str),
        ) -> Vec<(&'a str, &'a str)> {
            base.iter().copied().chain([extra]).collect()
        }
        // THEN unset it is the JWT secret, short it is refused naming it, long it is used
        let plain = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(plain.ingest_token_secret.expose(), secret);
        let short = Config::from_lookup(lookup(&with(&base, ("INGEST_TOKEN_SECRET", "short"))))
            .unwrap_err();
        assert!(
            short
                .to_string()
                .starts_with("configuration: INGEST_TOKEN_SECRET")
        );
        let own =
            Config::from_lookup(lookup(&with(&base, ("INGEST_TOKEN_SECRET", &ingest)))).unwrap();
        assert_eq!(own.ingest_token_secret.expose(), ingest);
        assert!(!format!("{own:?}").contains(&ingest));
    }
}
