//! Configuration from the environment, read once at start-up. Fail fast: a missing or invalid
//! variable stops start-up with one line naming it.

use std::fmt;

/// How outgoing mail (invitations, password resets) leaves the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailTransport {
    /// Written to the bucket under `outbox/` and logged: the local stack and tests.
    Outbox,
    /// Sent through Amazon SES v2.
    Ses,
}

/// Everything a function needs to know about its environment.
#[derive(Clone)]
pub struct Config {
    /// The DynamoDB table holding all records (`TABLE_NAME`).
    pub table_name: String,
    /// The S3 bucket for big objects and the local mail outbox (`BUCKET_NAME`).
    pub bucket_name: String,
    /// HS256 signing key for access tokens and cursors (`JWT_SECRET`, at least 32 bytes).
    pub jwt_secret: Vec<u8>,
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
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("bucket_name", &self.bucket_name)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_issuer", &self.jwt_issuer)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("mail_transport", &self.mail_transport)
            .field("mail_from", &self.mail_from)
            .field("app_url", &self.app_url)
            .field("ingest_url", &self.ingest_url)
            .finish()
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

        let jwt_secret = required("JWT_SECRET")?.into_bytes();
        if jwt_secret.len() < 32 {
            return Err(ConfigError {
                var: "JWT_SECRET",
                problem: format!("must be at least 32 bytes (got {})", jwt_secret.len()),
            });
        }
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
        Ok(Self {
            ingest_url,
            table_name: required("TABLE_NAME")?,
            bucket_name: required("BUCKET_NAME")?,
            jwt_secret,
            jwt_issuer: or("JWT_ISSUER", "callplane"),
            token_ttl_secs,
            mail_transport,
            mail_from: or("MAIL_FROM", "no-reply@callplane.local"),
            app_url: app_url.trim_end_matches('/').to_owned(),
        })
    }
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
    }
}
