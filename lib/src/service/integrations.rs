//! Connections to outside services (PRD §7.8, A.7): connect, read, enable or rename, test,
//! disconnect, and Google's OAuth consent round trip. Admins manage, members read; no answer
//! carries a token or secret: credentials are sealed (`secrets`, context `integration` of the
//! connection) and opened only to call the provider. An establishment has at most one
//! connection per type, so the tool proxy finds it by type.

use super::access::{member_of, require_member};
use crate::app::App;
use crate::auth::Principal;
use crate::auth::secret_token;
use crate::domain::Role;
use crate::domain::integration::{
    AuthInput, Connect, ConnectRequest, Credentials, IntegrationStatus, IntegrationType,
};
use crate::error::{Error, Result};
use crate::ids::{EstablishmentId, IntegrationId};
use crate::providers::ProviderError;
use crate::store::records::{IntegrationRecord, OAuthStateRecord};
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a consent may take, from connect to callback.
pub const STATE_TTL_SECS: i64 = 600;
/// An access token this close to its expiry is refreshed before use.
const REFRESH_MARGIN_SECS: i64 = 60;
/// Purpose string of signed OAuth states.
const STATE_PURPOSE: &str = "callplane oauth state v1";

impl super::access::Owned for IntegrationRecord {
    const WHAT: &'static str = "integration";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

/// A connection as the API shows it: never a token or secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationView {
    pub integration_id: IntegrationId,
    pub establishment_id: EstablishmentId,
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    pub display_name: String,
    /// `oauth`, `ses`, `smtp` or `token`.
    pub mode: String,
    /// `disabled` while `enabled` is false, else what the provider last said.
    pub status: IntegrationStatus,
    pub enabled: bool,
    /// What the provider said when it last refused (status `error`).
    pub last_error: Option<String>,
    /// What may be shown (SMTP host and user, SES from-name, the WhatsApp number id, granted
    /// scopes).
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub connected_at: Option<Timestamp>,
}

impl From<IntegrationRecord> for IntegrationView {
    fn from(r: IntegrationRecord) -> Self {
        Self {
            integration_id: r.id,
            establishment_id: r.establishment_id,
            kind: r.kind,
            display_name: r.display_name,
            mode: r.mode,
            status: if r.enabled {
                r.status
            } else {
                IntegrationStatus::Disabled
            },
            enabled: r.enabled,
            last_error: r.last_error,
            settings: r.settings,
            created_at: r.created_at,
            updated_at: r.updated_at,
            connected_at: r.connected_at,
        }
    }
}

/// `POST /establishments/{id}/integrations` answer (A.7).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Connected {
    pub integration_id: IntegrationId,
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    pub status: IntegrationStatus,
    /// Where to send the browser for consent (OAuth only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
}

/// `PATCH /integrations/{id}` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPatch {
    pub enabled: Option<bool>,
    pub display_name: Option<String>,
}

/// `POST /integrations/{id}/test` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    pub ok: bool,
    /// The connection's status after the test.
    pub status: IntegrationStatus,
    /// What the provider answered (a harmless read), when it worked.
    #[schema(value_type = Option<Object>)]
    pub detail: Value,
    /// What failed: `{code, message, retryable}`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub checked_at: Timestamp,
}

/// `DELETE /integrations/{id}` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Disconnected {
    pub integration_id: IntegrationId,
    /// Whether the provider revoked the grant (`null`: it has no revocation endpoint).
    pub revoked_at_provider: Option<bool>,
}

/// `GET /integrations/oauth/callback` query (what Google appends).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub scope: Option<String>,
}

/// Where a sealed credential of `record` belongs.
fn context(est: &EstablishmentId, id: &IntegrationId) -> crate::secrets::Context {
    crate::secrets::Context::new(est.as_str(), "integration", id.as_str())
}

async fn seal(
    app: &App,
    est: &EstablishmentId,
    id: &IntegrationId,
    credentials: &Credentials,
) -> Result<crate::secrets::Sealed> {
    let plain = serde_json::to_vec(credentials).map_err(Error::internal)?;
    app.envelope()?.seal(&context(est, id), &plain).await
}

/// The credentials of a connection, opened.
pub(crate) async fn open(app: &App, record: &IntegrationRecord) -> Result<Option<Credentials>> {
    let Some(sealed) = &record.sealed else {
        return Ok(None);
    };
    let plain = app
        .envelope()?
        .open(&context(&record.establishment_id, &record.id), sealed)
        .await?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(Error::internal)
}

/// The provider's refusal as an error field the API can show.
fn provider_error_json(e: &ProviderError) -> Value {
    json!({"code": e.code, "message": e.message, "retryable": e.retryable})
}

/// A connect request's provider check failed: a 422 saying what the provider said.
fn connect_refused(e: &ProviderError) -> Error {
    Error::UnprocessableWith {
        code: "provider_check_failed",
        message: format!("the provider refused the credentials: {}", e.message),
        details: json!({"field": "auth", "provider_error": provider_error_json(e)}),
    }
}

/// `GET /establishments/{id}/integrations` (members): every connection, by type (at most
/// one per type, so one page).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
) -> Result<crate::store::Page<IntegrationView>> {
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    Ok(crate::store::Page {
        items: app
            .store
            .integrations(est)
            .await?
            .into_iter()
            .map(IntegrationView::from)
            .collect(),
        cursor: None,
    })
}

/// `POST /establishments/{id}/integrations` (admins): checks the request, checks token
/// credentials against the provider, seals them, and for OAuth answers the consent URL.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn connect(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: ConnectRequest,
) -> Result<Connected> {
    let origins = &app.config.integrations.redirect_origins;
    let connect = Connect::parse(req, |url| {
        crate::config::origin_of(url).is_some_and(|o| origins.contains(&o))
    })?;
    let user = require_member(app, principal, est, Role::Admin, "establishment").await?;
    match app.store.integration(est, connect.kind).await? {
        // A consent never finished, or credentials the provider refused: connecting again
        // replaces it (the admin retrying "Connect" should not have to disconnect first).
        Some(existing)
            if matches!(
                existing.status,
                IntegrationStatus::PendingAuth | IntegrationStatus::Error
            ) =>
        {
            app.store.delete_integration(&existing, &user).await?;
        }
        Some(existing) => {
            return Err(Error::Conflict(format!(
                "the establishment has a connected {} integration already ({}); disconnect it first",
                connect.kind, existing.id
            )));
        }
        None => {}
    }
    let providers = app.providers();
    let id = IntegrationId::new();
    let now = Timestamp::now();
    let mode = connect.auth.mode().to_owned();
    let (status, settings, credentials, state, auth_url) = match connect.auth {
        AuthInput::Oauth { redirect_url } => {
            let (client_id, _) = app.config.integrations.google_client.as_ref().ok_or_else(|| {
                Error::unprocessable(
                    "oauth_not_configured",
                    Some("type"),
                    "Google Calendar cannot be connected: no OAuth client is configured (GOOGLE_OAUTH_CLIENT_ID)",
                )
            })?;
            let verifier = random_token()?;
            let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
            let expires_at = now.unix() + STATE_TTL_SECS;
            let (state, hash) = new_state(app, expires_at)?;
            let record = OAuthStateRecord {
                establishment_id: est.clone(),
                integration_id: id.clone(),
                redirect_url,
                code_verifier: verifier,
                expires_at,
            };
            let url = providers.google_auth_url(client_id, &state, &challenge);
            (
                IntegrationStatus::PendingAuth,
                json!({}),
                None,
                Some((hash, record)),
                Some(url),
            )
        }
        AuthInput::Ses {
            from_name,
            reply_to,
        } => (
            IntegrationStatus::Connected,
            json!({"from_name": from_name, "reply_to": reply_to, "from": app.config.mail_from}),
            None,
            None,
            None,
        ),
        AuthInput::Smtp { settings, password } => (
            // Stored as given; `/test` talks to the server.
            IntegrationStatus::Connected,
            serde_json::to_value(&settings).map_err(Error::internal)?,
            Some(Credentials::Password { password }),
            None,
            None,
        ),
        AuthInput::Whatsapp {
            phone_number_id,
            access_token,
        } => {
            let number = providers
                .whatsapp_number(&access_token, &phone_number_id)
                .await
                .map_err(|e| connect_refused(&e))?;
            let mut settings = json!({"phone_number_id": phone_number_id});
            settings["display_phone_number"] = number["display_phone_number"].clone();
            settings["verified_name"] = number["verified_name"].clone();
            (
                IntegrationStatus::Connected,
                settings,
                Some(Credentials::Token { access_token }),
                None,
                None,
            )
        }
        AuthInput::Hubspot { access_token } => {
            providers
                .hubspot_check(&access_token)
                .await
                .map_err(|e| connect_refused(&e))?;
            (
                IntegrationStatus::Connected,
                json!({"provider": "hubspot"}),
                Some(Credentials::Token { access_token }),
                None,
                None,
            )
        }
    };
    let sealed = match &credentials {
        Some(c) => Some(seal(app, est, &id, c).await?),
        None => None,
    };
    let record = IntegrationRecord {
        id: id.clone(),
        establishment_id: est.clone(),
        kind: connect.kind,
        display_name: connect.display_name,
        mode,
        status,
        enabled: true,
        last_error: None,
        settings,
        sealed,
        created_by: user.id.clone(),
        created_at: now,
        updated_at: now,
        connected_at: (status == IntegrationStatus::Connected).then_some(now),
        seq: 1,
    };
    let state_ref = state.as_ref().map(|(h, r)| (h.as_str(), r));
    if !app
        .store
        .create_integration(&record, state_ref, &user)
        .await?
    {
        return Err(Error::Conflict(format!(
            "the establishment has a {} integration already; disconnect it first",
            connect.kind
        )));
    }
    tracing::info!(integration_id = %id, kind = %connect.kind, "integration connected");
    Ok(Connected {
        integration_id: id,
        kind: connect.kind,
        status,
        auth_url,
    })
}

/// `GET /integrations/{id}` (members).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, integration_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &IntegrationId) -> Result<IntegrationView> {
    let found = app.store.integration_by_id(id).await?;
    let (_, record) = member_of(app, principal, found, Role::Viewer).await?;
    Ok(record.into())
}

/// `PATCH /integrations/{id}` (admins): `enabled`, `display_name`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, integration_id = %id))]
pub async fn patch(
    app: &App,
    principal: &Principal,
    id: &IntegrationId,
    patch: IntegrationPatch,
) -> Result<IntegrationView> {
    let display_name = patch
        .display_name
        .map(|n| {
            let n = n.trim().to_owned();
            if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
                Err(Error::invalid(
                    "display_name",
                    "must be 1 to 100 characters without control characters",
                ))
            } else {
                Ok(n)
            }
        })
        .transpose()?;
    let found = app.store.integration_by_id(id).await?;
    let (user, mut record) = member_of(app, principal, found, Role::Admin).await?;
    let before = json!({"enabled": record.enabled, "display_name": record.display_name});
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
    }
    if let Some(name) = display_name {
        record.display_name = name;
    }
    let after = json!({"enabled": record.enabled, "display_name": record.display_name});
    if before == after {
        return Ok(record.into());
    }
    record.updated_at = Timestamp::now();
    record.seq += 1;
    if !app
        .store
        .save_integration(&record, Some((&user, "integration.updated", before, after)))
        .await?
    {
        return Err(Error::Conflict(
            "the integration changed meanwhile; read it again".into(),
        ));
    }
    Ok(record.into())
}

/// `DELETE /integrations/{id}` (admins): revokes the grant where the provider can (Google),
/// then deletes the connection and its sealed credentials.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, integration_id = %id))]
pub async fn disconnect(
    app: &App,
    principal: &Principal,
    id: &IntegrationId,
) -> Result<Disconnected> {
    let found = app.store.integration_by_id(id).await?;
    let (user, record) = member_of(app, principal, found, Role::Admin).await?;
    let revoked = match (record.kind, open(app, &record).await?) {
        (
            IntegrationType::GoogleCalendar,
            Some(Credentials::Oauth {
                refresh_token,
                access_token,
                ..
            }),
        ) => {
            let token = refresh_token.unwrap_or(access_token);
            match app.providers().google_revoke(&token).await {
                Ok(()) => Some(true),
                Err(e) => {
                    tracing::warn!(error = %e, "Google did not confirm the revocation");
                    Some(false)
                }
            }
        }
        _ => None,
    };
    app.store.delete_integration(&record, &user).await?;
    Ok(Disconnected {
        integration_id: record.id,
        revoked_at_provider: revoked,
    })
}

/// `POST /integrations/{id}/test` (admins): a harmless provider call with the stored
/// credentials; the connection's status follows the outcome.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, integration_id = %id))]
pub async fn test(app: &App, principal: &Principal, id: &IntegrationId) -> Result<TestOutcome> {
    let found = app.store.integration_by_id(id).await?;
    let (_, record) = member_of(app, principal, found, Role::Admin).await?;
    // `usable` answers the record as it saved it (a refreshed token bumps `seq`); when the
    // refresh was refused it has marked the record failed itself, and the save below loses
    // its condition harmlessly.
    let (mut record, outcome) = match usable(app, record.clone()).await {
        Ok((fresh, credentials)) => {
            let outcome = probe(app, &fresh, credentials.as_ref()).await;
            (fresh, outcome)
        }
        Err(e) => (record, Err(e)),
    };
    let now = Timestamp::now();
    let (ok, detail, error) = match outcome {
        Ok(detail) => (true, detail, None),
        Err(e) => (false, Value::Null, Some(e)),
    };
    let next = match &error {
        None => IntegrationStatus::Connected,
        Some(e) if e.is_auth() => IntegrationStatus::Error,
        Some(_) => record.status,
    };
    if record.status != IntegrationStatus::PendingAuth && next != record.status {
        record.status = next;
        record.last_error = error.as_ref().map(|e| e.message.clone());
        record.updated_at = now;
        record.seq += 1;
        app.store.save_integration(&record, None).await?;
    }
    Ok(TestOutcome {
        ok,
        status: if record.enabled {
            record.status
        } else {
            IntegrationStatus::Disabled
        },
        detail,
        error: error.as_ref().map(provider_error_json),
        checked_at: now,
    })
}

/// The harmless call `/test` makes for each type.
async fn probe(
    app: &App,
    record: &IntegrationRecord,
    credentials: Option<&Credentials>,
) -> std::result::Result<Value, ProviderError> {
    let providers = app.providers();
    match (record.kind, credentials) {
        (IntegrationType::GoogleCalendar, Some(Credentials::Oauth { access_token, .. })) => {
            providers.google_calendar_check(access_token).await
        }
        (IntegrationType::WhatsappMessaging, Some(Credentials::Token { access_token })) => {
            let id = record.settings["phone_number_id"].as_str().unwrap_or("");
            providers.whatsapp_number(access_token, id).await
        }
        (IntegrationType::Crm, Some(Credentials::Token { access_token })) => {
            providers.hubspot_check(access_token).await
        }
        (IntegrationType::Email, None) if record.mode == "ses" => Ok(json!({
            "transport": "ses",
            "from": app.config.mail_from,
        })),
        (IntegrationType::Email, Some(Credentials::Password { password })) => {
            let settings = serde_json::from_value(record.settings.clone())
                .map_err(|_| not_usable("the stored SMTP settings cannot be read; reconnect"))?;
            crate::smtp::check(&settings, password, providers.config.provider_timeout).await
        }
        _ => Err(not_usable(
            "the integration has no usable credentials; reconnect it",
        )),
    }
}

fn not_usable(message: &str) -> ProviderError {
    ProviderError::new("integration_unauthorized", message, false)
}

/// A connection's credentials ready for a provider call: an OAuth access token near its
/// expiry is refreshed first (and the new one sealed and saved); a refused refresh turns the
/// connection to `error`.
pub(crate) async fn usable(
    app: &App,
    mut record: IntegrationRecord,
) -> std::result::Result<(IntegrationRecord, Option<Credentials>), ProviderError> {
    let opened = open(app, &record)
        .await
        .map_err(|_| not_usable("the stored credentials cannot be opened; reconnect"))?;
    let Some(Credentials::Oauth {
        refresh_token: Some(refresh),
        expires_at,
        ..
    }) = &opened
    else {
        return Ok((record, opened));
    };
    if *expires_at > Timestamp::now().unix() + REFRESH_MARGIN_SECS {
        return Ok((record, opened));
    }
    let refresh = refresh.clone();
    match app.providers().google_refresh(&refresh).await {
        Ok(tokens) => {
            let credentials = Credentials::Oauth {
                access_token: tokens.access_token,
                refresh_token: Some(tokens.refresh_token.unwrap_or(refresh)),
                expires_at: tokens.expires_at,
            };
            let sealed = seal(app, &record.establishment_id, &record.id, &credentials)
                .await
                .map_err(|_| not_usable("the refreshed token could not be sealed"))?;
            record.sealed = Some(sealed);
            record.updated_at = Timestamp::now();
            record.seq += 1;
            // A concurrent refresh may have won; either token works.
            if let Err(e) = app.store.save_integration(&record, None).await {
                tracing::warn!(error = %e, "refreshed token not saved");
            }
            Ok((record, Some(credentials)))
        }
        Err(e) => {
            if e.is_auth()
                && let Err(store) = app.store.integration_failed(&record, &e.message).await
            {
                tracing::warn!(error = %store, "integration not marked failed");
            }
            Err(e)
        }
    }
}

/// 256 random bits, base64url.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(e.to_string()))?;
    Ok(B64.encode(bytes))
}

/// A signed state `{nonce}.{expires}.{signature}` and the hash its record is stored under.
fn new_state(app: &App, expires_at: i64) -> Result<(String, String)> {
    let nonce = random_token()?;
    let signed = format!("{nonce}.{expires_at}");
    let signature = secret_token::derived(
        app.config.jwt_secret.expose().as_bytes(),
        STATE_PURPOSE,
        &signed,
    )?;
    Ok((format!("{signed}.{signature}"), secret_token::hash(&nonce)))
}

/// The stored hash of a state whose signature and expiry hold.
fn check_state(app: &App, state: &str) -> Result<String> {
    let bad = || Error::invalid("state", "is not a state this service issued");
    let mut parts = state.split('.');
    let (Some(nonce), Some(expires), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let expected = secret_token::derived(
        app.config.jwt_secret.expose().as_bytes(),
        STATE_PURPOSE,
        &format!("{nonce}.{expires}"),
    )?;
    if !secret_token::matches(signature, &secret_token::hash(&expected)) {
        return Err(bad());
    }
    let expires: i64 = expires.parse().map_err(|_| bad())?;
    if expires < Timestamp::now().unix() {
        return Err(Error::invalid(
            "state",
            "has expired: start the connection again",
        ));
    }
    Ok(secret_token::hash(nonce))
}

/// `redirect_url` with the outcome appended as query parameters.
fn back_to(redirect_url: &str, id: &IntegrationId, outcome: &str, error: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("integration_id", id.as_str());
    query.append_pair("outcome", outcome);
    if let Some(e) = error {
        query.append_pair("error", e);
    }
    let sep = if redirect_url.contains('?') { '&' } else { '?' };
    format!("{redirect_url}{sep}{}", query.finish())
}

/// `GET /integrations/oauth/callback`: uses the state (once), exchanges the code, seals the
/// tokens, and answers where to send the browser: the `redirect_url` given at connect time,
/// with `integration_id`, `outcome` (`connected` or `error`) and `error`.
#[tracing::instrument(skip_all)]
pub async fn oauth_callback(app: &App, params: CallbackParams) -> Result<String> {
    let state = params
        .state
        .as_deref()
        .ok_or_else(|| Error::invalid("state", "is required"))?;
    if state.len() > 200 {
        return Err(Error::invalid(
            "state",
            "is not a state this service issued",
        ));
    }
    let hash = check_state(app, state)?;
    let pending = app.store.take_oauth_state(&hash).await?.ok_or_else(|| {
        Error::invalid(
            "state",
            "was used already or is unknown: start the connection again",
        )
    })?;
    // Its expiry is the signed one `check_state` held to.
    let Some(mut record) = app
        .store
        .integration_by_id(&pending.integration_id)
        .await?
        .filter(|r| r.establishment_id == pending.establishment_id)
    else {
        return Ok(back_to(
            &pending.redirect_url,
            &pending.integration_id,
            "error",
            Some("integration_deleted"),
        ));
    };
    let outcome = match (&params.error, &params.code) {
        (Some(error), _) => Err(format!("Google answered `{}`", truncate(error))),
        (None, None) => Err("Google sent no code".to_owned()),
        (None, Some(code)) if code.len() > 2048 => Err("Google's code is too long".to_owned()),
        (None, Some(code)) => app
            .providers()
            .google_exchange(code, &pending.code_verifier)
            .await
            .map_err(|e| e.message),
    };
    let now = Timestamp::now();
    record.updated_at = now;
    record.seq += 1;
    let (answer, error) = match outcome {
        Ok(tokens) => {
            let credentials = Credentials::Oauth {
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                expires_at: tokens.expires_at,
            };
            record.sealed =
                Some(seal(app, &record.establishment_id, &record.id, &credentials).await?);
            record.status = IntegrationStatus::Connected;
            record.last_error = None;
            record.connected_at = Some(now);
            record.settings = json!({"scopes": tokens.scope});
            ("connected", None)
        }
        Err(why) => {
            record.status = IntegrationStatus::Error;
            record.last_error = Some(why);
            (
                "error",
                Some(
                    params
                        .error
                        .as_deref()
                        .map_or("token_exchange_failed", truncate),
                ),
            )
        }
    };
    if !app.store.save_integration(&record, None).await? {
        return Err(Error::Conflict(
            "the integration changed meanwhile; start the connection again".into(),
        ));
    }
    Ok(back_to(&pending.redirect_url, &record.id, answer, error))
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(64).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
