//! Integrations as values: the types an establishment can connect, how each authenticates
//! (`auth.mode`), the settings shown back (never a secret), the credentials that are sealed
//! (`secrets`), and the status a connection is in. A connect request is checked here, whole,
//! before anything is stored or sent.

use crate::domain::{E164, Email, Tool};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What an establishment can connect.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationType {
    /// Google Calendar through OAuth (events, free/busy).
    GoogleCalendar,
    /// Sending email: the platform's SES sender or the establishment's SMTP server.
    Email,
    /// WhatsApp Cloud API messages from the establishment's business number.
    WhatsappMessaging,
    /// HubSpot CRM through a private-app token.
    Crm,
}

impl IntegrationType {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::GoogleCalendar => "google_calendar",
            IntegrationType::Email => "email",
            IntegrationType::WhatsappMessaging => "whatsapp_messaging",
            IntegrationType::Crm => "crm",
        }
    }

    /// The brain tool that uses this integration.
    pub fn tool(self) -> Tool {
        match self {
            IntegrationType::GoogleCalendar => Tool::Calendar,
            IntegrationType::Email => Tool::Email,
            IntegrationType::WhatsappMessaging => Tool::WhatsappMessaging,
            IntegrationType::Crm => Tool::Crm,
        }
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a connection stands. `disabled` is an admin's switch (`enabled: false`) and wins
/// over the others in views; the stored status keeps what the provider last said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Waiting for the OAuth consent to come back.
    PendingAuth,
    /// Usable.
    Connected,
    /// The provider refused the credentials (a revoked grant, a bad token): `last_error` says
    /// what it said; reconnecting fixes it.
    Error,
    /// Switched off by an admin.
    Disabled,
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on a private network only).
    None,
}

/// `POST /establishments/{id}/integrations` body (A.7).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    pub display_name: String,
    /// `{mode, …}`: `oauth` + `redirect_url` (google_calendar); `ses` + `from_name?`,
    /// `reply_to?` or `smtp` + `host, port, security, username, password, from` (email);
    /// `token` + `phone_number_id, access_token` (whatsapp_messaging); `token` +
    /// `access_token` (crm, a HubSpot private-app token).
    #[schema(value_type = Object)]
    pub auth: Value,
}

/// A checked connect request.
#[derive(Debug)]
pub struct Connect {
    pub kind: IntegrationType,
    pub display_name: String,
    pub auth: AuthInput,
}

/// What `auth` holds, checked for its type.
#[derive(Debug)]
pub enum AuthInput {
    /// Google OAuth: where to send the browser once consent is given or refused.
    Oauth { redirect_url: String },
    /// The platform's SES sender with this establishment's name and reply-to.
    Ses {
        from_name: Option<String>,
        reply_to: Option<Email>,
    },
    /// The establishment's SMTP server.
    Smtp {
        settings: SmtpSettings,
        password: String,
    },
    /// WhatsApp Cloud API: the business phone number's id and a system-user token.
    Whatsapp {
        phone_number_id: String,
        access_token: String,
    },
    /// HubSpot private-app token.
    Hubspot { access_token: String },
}

impl AuthInput {
    pub fn mode(&self) -> &'static str {
        match self {
            AuthInput::Oauth { .. } => "oauth",
            AuthInput::Ses { .. } => "ses",
            AuthInput::Smtp { .. } => "smtp",
            AuthInput::Whatsapp { .. } | AuthInput::Hubspot { .. } => "token",
        }
    }
}

/// An SMTP server's settings as shown back (the password is sealed apart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: String,
    pub from: Email,
}

/// Longest secret accepted (tokens, passwords): Google and Meta tokens are a few hundred
/// characters; anything far longer is not a credential.
pub const MAX_SECRET_CHARS: usize = 2048;
/// Longest SMTP password accepted.
pub const MAX_SMTP_PASSWORD_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OauthAuth {
    redirect_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SesAuth {
    #[serde(default)]
    from_name: Option<String>,
    #[serde(default)]
    reply_to: Option<Email>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpAuth {
    host: String,
    port: u16,
    security: SmtpSecurity,
    username: String,
    password: String,
    from: Email,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhatsappAuth {
    phone_number_id: String,
    access_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrmAuth {
    #[serde(default)]
    provider: Option<String>,
    access_token: String,
}

/// `auth` split into its mode, checked against the modes `kind` takes, and the rest.
fn mode_of(kind: IntegrationType, auth: Value, modes: &[&str]) -> Result<(String, Value)> {
    let Value::Object(mut map) = auth else {
        return Err(Error::invalid("auth", "must be an object with a `mode`"));
    };
    let expected = modes
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    let mode = match map.remove("mode") {
        Some(Value::String(m)) if modes.contains(&m.as_str()) => m,
        _ => {
            return Err(Error::invalid(
                "auth.mode",
                format!("must be {expected} for {kind}"),
            ));
        }
    };
    Ok((mode, Value::Object(map)))
}

/// The rest of `auth` as `T`, errors named under `auth.`.
fn fields<T: serde::de::DeserializeOwned>(rest: Value) -> Result<T> {
    crate::json::from_value::<T>(rest).map_err(|e| match e {
        Error::Validation { message, details } => {
            let field = details["field"].as_str().unwrap_or_default();
            let text = message
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&message)
                .to_owned();
            if field.is_empty() || field == "body" {
                Error::invalid("auth", text)
            } else {
                Error::invalid(format!("auth.{field}"), text)
            }
        }
        other => other,
    })
}

/// A name, user name or credential: trimmed, 1 to `max` characters, no control characters.
fn text(field: &str, raw: String, max: usize) -> Result<String> {
    let raw = raw.trim().to_owned();
    if raw.is_empty() || raw.chars().count() > max || raw.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(raw)
}

/// A host name or address: letters, digits, `.`, `-`, `:` (IPv6), at most 253.
fn host(raw: String) -> Result<String> {
    let raw = raw.trim().to_ascii_lowercase();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':');
    if raw.is_empty() || raw.len() > 253 || !raw.chars().all(ok) {
        return Err(Error::invalid(
            "auth.host",
            "must be a host name or address",
        ));
    }
    Ok(raw)
}

impl Connect {
    /// Checks a connect request; `redirect_allowed` says whether a redirect URL's origin is
    /// one of the frontend's.
    pub fn parse(req: ConnectRequest, redirect_allowed: impl Fn(&str) -> bool) -> Result<Self> {
        let display_name = text("display_name", req.display_name, 100)?;
        let auth = match req.kind {
            IntegrationType::GoogleCalendar => {
                let (_, rest) = mode_of(req.kind, req.auth, &["oauth"])?;
                let OauthAuth { redirect_url } = fields(rest)?;
                let redirect_url = redirect_url.trim().to_owned();
                if redirect_url.len() > 2000
                    || !(redirect_url.starts_with("https://")
                        || redirect_url.starts_with("http://"))
                    || redirect_url.contains('#')
                {
                    return Err(Error::invalid(
                        "auth.redirect_url",
                        "must be an http(s) URL of at most 2000 characters without a fragment",
                    ));
                }
                if !redirect_allowed(&redirect_url) {
                    return Err(Error::invalid(
                        "auth.redirect_url",
                        "is not on the frontend's allowed origins (INTEGRATION_REDIRECT_ORIGINS)",
                    ));
                }
                AuthInput::Oauth { redirect_url }
            }
            IntegrationType::Email => match mode_of(req.kind, req.auth, &["ses", "smtp"])? {
                (mode, rest) if mode == "ses" => {
                    let SesAuth {
                        from_name,
                        reply_to,
                    } = fields(rest)?;
                    AuthInput::Ses {
                        from_name: from_name
                            .map(|n| text("auth.from_name", n, 100))
                            .transpose()?,
                        reply_to,
                    }
                }
                (_, rest) => {
                    let SmtpAuth {
                        host: h,
                        port,
                        security,
                        username,
                        password,
                        from,
                    } = fields(rest)?;
                    if port == 0 {
                        return Err(Error::invalid("auth.port", "must be 1 to 65535"));
                    }
                    AuthInput::Smtp {
                        settings: SmtpSettings {
                            host: host(h)?,
                            port,
                            security,
                            username: text("auth.username", username, 256)?,
                            from,
                        },
                        password: text("auth.password", password, MAX_SMTP_PASSWORD_CHARS)?,
                    }
                }
            },
            IntegrationType::WhatsappMessaging => {
                let (_, rest) = mode_of(req.kind, req.auth, &["token"])?;
                let WhatsappAuth {
                    phone_number_id,
                    access_token,
                } = fields(rest)?;
                let phone_number_id = phone_number_id.trim().to_owned();
                if phone_number_id.is_empty()
                    || phone_number_id.len() > 32
                    || !phone_number_id.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(Error::invalid(
                        "auth.phone_number_id",
                        "must be the WhatsApp phone number id (1 to 32 digits)",
                    ));
                }
                AuthInput::Whatsapp {
                    phone_number_id,
                    access_token: text("auth.access_token", access_token, MAX_SECRET_CHARS)?,
                }
            }
            IntegrationType::Crm => {
                let (_, rest) = mode_of(req.kind, req.auth, &["token"])?;
                let CrmAuth {
                    provider,
                    access_token,
                } = fields(rest)?;
                if provider.as_deref().is_some_and(|p| p != "hubspot") {
                    return Err(Error::invalid(
                        "auth.provider",
                        "must be `hubspot` (the one CRM supported)",
                    ));
                }
                AuthInput::Hubspot {
                    access_token: text("auth.access_token", access_token, MAX_SECRET_CHARS)?,
                }
            }
        };
        Ok(Self {
            kind: req.kind,
            display_name,
            auth,
        })
    }
}

/// What is sealed for a connection: never shown, opened only to call the provider.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// Google: the refresh token and the current access token.
    Oauth {
        access_token: String,
        refresh_token: Option<String>,
        /// When the access token expires (epoch seconds).
        expires_at: i64,
    },
    /// An SMTP password.
    Password { password: String },
    /// A bearer token (WhatsApp system user, HubSpot private app).
    Token { access_token: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<sealed>)")
    }
}

/// The values tool calls send that are checked before anything leaves: an email address, a
/// phone number.
pub fn recipient_phone(field: &str, raw: &str) -> Result<E164> {
    E164::parse(raw).map_err(|e| Error::invalid(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Connect> {
        let req: ConnectRequest = serde_json::from_value(body).unwrap();
        Connect::parse(req, |url| url.starts_with("https://app.example.com/"))
    }

    #[test]
    fn a_mode_that_does_not_fit_the_type_is_named() {
        // GIVEN an email integration asked with the OAuth mode
        let err = parse(json!({"type": "email", "display_name": "Mail",
            "auth": {"mode": "oauth", "redirect_url": "https://app.example.com/x"}}))
        .unwrap_err();
        // THEN the error names auth.mode
        assert!(
            err.to_string()
                .starts_with("auth.mode: must be `ses` or `smtp`"),
            "{err}"
        );
    }

    #[test]
    fn a_redirect_off_the_allowed_origins_is_refused() {
        let err = parse(json!({"type": "google_calendar", "display_name": "Cal",
            "auth": {"mode": "oauth", "redirect_url": "https://evil.example.net/cb"}}))
        .unwrap_err();
        assert!(err.to_string().starts_with("auth.redirect_url"), "{err}");
        let ok = parse(json!({"type": "google_calendar", "display_name": "Cal",
            "auth": {"mode": "oauth", "redirect_url": "https://app.example.com/settings"}}))
        .unwrap();
        assert_eq!(ok.auth.mode(), "oauth");
    }

    #[test]
    fn an_smtp_password_over_the_limit_is_refused() {
        let err = parse(json!({"type": "email", "display_name": "Mail", "auth": {
            "mode": "smtp", "host": "smtp.example.com", "port": 587, "security": "starttls",
            "username": "u", "password": "x".repeat(257), "from": "desk@example.com"}}))
        .unwrap_err();
        assert!(err.to_string().starts_with("auth.password"), "{err}");
    }
}
