//! The outside services integrations talk to, on their wire formats: Google OAuth 2.0 and
//! Calendar v3, the WhatsApp Cloud API (Graph), HubSpot CRM v3. Every base URL comes from
//! [`IntegrationsConfig`]; no redirect is followed; each request is bounded by the provider
//! timeout. Failures come back as [`ProviderError`]: what the caller should be told, whether
//! retrying can help, and whether the credentials were refused.

use crate::config::IntegrationsConfig;
use serde_json::{Value, json};
use std::time::Duration;

/// A provider call that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    /// `provider_timeout`, `provider_unavailable`, `provider_rate_limited`,
    /// `provider_rejected`, `integration_unauthorized`.
    pub code: &'static str,
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
    /// Whether the request may have reached the provider (a timeout, a lost answer): a send
    /// that may have happened is not repeated.
    pub maybe_done: bool,
    /// Seconds the provider asked to wait (429 `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ProviderError {
    /// A failure that left nothing done at the provider, with no wait asked.
    pub fn new(code: &'static str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code,
            message: message.into(),
            retryable,
            maybe_done: false,
            retry_after: None,
        }
    }

    /// Whether the provider refused the credentials (the integration turns `error`).
    pub fn is_auth(&self) -> bool {
        self.code == "integration_unauthorized"
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Longest provider message passed on.
const MAX_MESSAGE: usize = 300;

/// What a provider said in an error body, in its own format (Google `error.message` or
/// `error_description`, Graph `error.message`, HubSpot `message`).
fn provider_message(body: &Value, status: u16) -> String {
    // OAuth errors: `{"error": "invalid_grant", "error_description": "…"}`.
    let oauth = match (body["error"].as_str(), body["error_description"].as_str()) {
        (Some(code), Some(description)) => Some(format!("{code}: {description}")),
        _ => None,
    };
    let text = body["error"]["message"]
        .as_str()
        .or(oauth.as_deref())
        .or_else(|| body["message"].as_str())
        .or_else(|| body["error"].as_str())
        .map_or_else(
            || format!("HTTP {status}"),
            |m| format!("HTTP {status}: {m}"),
        );
    text.chars().take(MAX_MESSAGE).collect()
}

/// Clients for every provider, sharing one connection pool.
#[derive(Clone, Debug)]
pub struct Providers {
    http: reqwest::Client,
    pub config: IntegrationsConfig,
}

impl Providers {
    pub fn new(config: IntegrationsConfig) -> Self {
        let http = crate::web::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.provider_timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self { http, config }
    }

    /// Sends `request` and reads a JSON answer; every failure mapped.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                ProviderError {
                    maybe_done: true,
                    ..ProviderError::new(
                        "provider_timeout",
                        format!(
                            "the provider did not answer within {} s",
                            self.config.provider_timeout.as_secs()
                        ),
                        true,
                    )
                }
            } else {
                ProviderError {
                    maybe_done: !e.is_connect(),
                    ..ProviderError::new(
                        "provider_unavailable",
                        "the provider could not be reached",
                        true,
                    )
                }
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let bytes = response.bytes().await.map_err(|_| ProviderError {
            maybe_done: true,
            ..ProviderError::new(
                "provider_unavailable",
                "the provider's answer was cut",
                true,
            )
        })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        match status {
            200..=299 => Ok(body),
            401 | 403 => Err(ProviderError::new(
                "integration_unauthorized",
                provider_message(&body, status),
                false,
            )),
            429 => Err(ProviderError {
                retry_after,
                ..ProviderError::new(
                    "provider_rate_limited",
                    provider_message(&body, status),
                    true,
                )
            }),
            400..=499 => Err(ProviderError::new(
                "provider_rejected",
                provider_message(&body, status),
                false,
            )),
            _ => Err(ProviderError::new(
                "provider_unavailable",
                provider_message(&body, status),
                true,
            )),
        }
    }

    // --- Google OAuth 2.0 ---

    /// Google's consent URL with PKCE (S256) and offline access.
    pub fn google_auth_url(&self, client_id: &str, state: &str, challenge: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &self.config.oauth_callback_url)
            .append_pair("scope", GOOGLE_SCOPES)
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("include_granted_scopes", "true")
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", self.config.google_auth_url)
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn google_exchange(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<GoogleTokens, ProviderError> {
        let (id, secret) = self.google_client()?;
        let body = self
            .call(self.http.post(&self.config.google_token_url).form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.config.oauth_callback_url.as_str()),
                ("client_id", id),
                ("client_secret", secret),
                ("code_verifier", verifier),
            ]))
            .await?;
        GoogleTokens::of(&body)
    }

    /// A fresh access token from a refresh token; `invalid_grant` (revoked, expired) is
    /// `integration_unauthorized`.
    pub async fn google_refresh(&self, refresh_token: &str) -> Result<GoogleTokens, ProviderError> {
        let (id, secret) = self.google_client()?;
        let result = self
            .call(self.http.post(&self.config.google_token_url).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", id),
                ("client_secret", secret),
            ]))
            .await;
        match result {
            Ok(body) => GoogleTokens::of(&body),
            // Google answers a revoked or expired grant with 400 `invalid_grant`.
            Err(e) if e.code == "provider_rejected" && e.message.contains("invalid_grant") => {
                Err(ProviderError::new(
                    "integration_unauthorized",
                    "Google refused the refresh token (invalid_grant): the grant was revoked or expired; reconnect the calendar",
                    false,
                ))
            }
            Err(e) if e.code == "provider_rejected" => Err(ProviderError::new(
                "integration_unauthorized",
                e.message,
                false,
            )),
            Err(e) => Err(e),
        }
    }

    /// Revokes a token at Google (a token already invalid counts as revoked).
    pub async fn google_revoke(&self, token: &str) -> Result<(), ProviderError> {
        match self
            .call(
                self.http
                    .post(&self.config.google_revoke_url)
                    .form(&[("token", token)]),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == "provider_rejected" => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn google_client(&self) -> Result<(&str, &str), ProviderError> {
        self.config
            .google_client
            .as_ref()
            .map(|(id, secret)| (id.as_str(), secret.expose()))
            .ok_or_else(|| {
                ProviderError::new(
                    "oauth_not_configured",
                    "no Google OAuth client is configured (GOOGLE_OAUTH_CLIENT_ID)",
                    false,
                )
            })
    }

    // --- Google Calendar v3 ---

    /// The primary calendar (a harmless read for `/test`).
    pub async fn google_calendar_check(&self, access: &str) -> Result<Value, ProviderError> {
        let body = self
            .call(
                self.http
                    .get(format!(
                        "{}/calendars/primary",
                        self.config.google_calendar_url
                    ))
                    .bearer_auth(access),
            )
            .await?;
        Ok(json!({"calendar_id": body["id"], "time_zone": body["timeZone"]}))
    }

    /// Inserts an event on the primary calendar.
    pub async fn google_insert_event(
        &self,
        access: &str,
        event: &Value,
    ) -> Result<Value, ProviderError> {
        let body = self
            .call(
                self.http
                    .post(format!(
                        "{}/calendars/primary/events",
                        self.config.google_calendar_url
                    ))
                    .bearer_auth(access)
                    .json(event),
            )
            .await?;
        Ok(json!({
            "event_id": body["id"],
            "html_link": body["htmlLink"],
            "status": body["status"],
            "start": body["start"],
            "end": body["end"],
        }))
    }

    /// Busy intervals of the primary calendar between two instants.
    pub async fn google_busy(
        &self,
        access: &str,
        time_min: &str,
        time_max: &str,
        time_zone: &str,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let body = self
            .call(
                self.http
                    .post(format!("{}/freeBusy", self.config.google_calendar_url))
                    .bearer_auth(access)
                    .json(&json!({
                        "timeMin": time_min,
                        "timeMax": time_max,
                        "timeZone": time_zone,
                        "items": [{"id": "primary"}],
                    })),
            )
            .await?;
        Ok(body["calendars"]["primary"]["busy"]
            .as_array()
            .map(|busy| {
                busy.iter()
                    .filter_map(|b| {
                        Some((
                            b["start"].as_str()?.to_owned(),
                            b["end"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    // --- WhatsApp Cloud API ---

    /// The business phone number behind `phone_number_id`, read with the token: proves both.
    pub async fn whatsapp_number(
        &self,
        token: &str,
        phone_number_id: &str,
    ) -> Result<Value, ProviderError> {
        let body = self
            .call(
                self.http
                    .get(format!(
                        "{}/{phone_number_id}",
                        self.config.whatsapp_graph_url
                    ))
                    .query(&[("fields", "display_phone_number,verified_name")])
                    .bearer_auth(token),
            )
            .await?;
        Ok(json!({
            "display_phone_number": body["display_phone_number"],
            "verified_name": body["verified_name"],
        }))
    }

    /// Sends a message (`message` is the Graph `messages` body).
    pub async fn whatsapp_send(
        &self,
        token: &str,
        phone_number_id: &str,
        message: &Value,
    ) -> Result<Value, ProviderError> {
        let body = self
            .call(
                self.http
                    .post(format!(
                        "{}/{phone_number_id}/messages",
                        self.config.whatsapp_graph_url
                    ))
                    .bearer_auth(token)
                    .json(message),
            )
            .await?;
        Ok(json!({"message_id": body["messages"][0]["id"]}))
    }

    // --- HubSpot CRM v3 ---

    /// One contact page (a harmless read that proves the token and its scope).
    pub async fn hubspot_check(&self, token: &str) -> Result<Value, ProviderError> {
        self.call(
            self.http
                .get(format!(
                    "{}/crm/v3/objects/contacts",
                    self.config.hubspot_url
                ))
                .query(&[("limit", "1")])
                .bearer_auth(token),
        )
        .await
        .map(|_| json!({"contacts_readable": true}))
    }

    /// The first contact whose `property` equals `value`.
    pub async fn hubspot_find(
        &self,
        token: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<Value>, ProviderError> {
        let body = self
            .call(
                self.http
                    .post(format!(
                        "{}/crm/v3/objects/contacts/search",
                        self.config.hubspot_url
                    ))
                    .bearer_auth(token)
                    .json(&json!({
                        "filterGroups": [{"filters": [
                            {"propertyName": property, "operator": "EQ", "value": value}
                        ]}],
                        "properties": CONTACT_PROPERTIES,
                        "limit": 1,
                    })),
            )
            .await?;
        Ok(body["results"].get(0).map(contact))
    }

    /// Creates a contact, or updates contact `id`.
    pub async fn hubspot_save_contact(
        &self,
        token: &str,
        id: Option<&str>,
        properties: &Value,
    ) -> Result<Value, ProviderError> {
        let base = format!("{}/crm/v3/objects/contacts", self.config.hubspot_url);
        let request = match id {
            Some(id) => self.http.patch(format!("{base}/{id}")),
            None => self.http.post(base),
        };
        let body = self
            .call(
                request
                    .bearer_auth(token)
                    .json(&json!({ "properties": properties })),
            )
            .await?;
        Ok(contact(&body))
    }

    /// Creates an engagement object (`notes`, `calls`) associated with a contact.
    pub async fn hubspot_engagement(
        &self,
        token: &str,
        object: &str,
        association_type: u32,
        contact_id: &str,
        properties: &Value,
    ) -> Result<Value, ProviderError> {
        let body = self
            .call(
                self.http
                    .post(format!(
                        "{}/crm/v3/objects/{object}",
                        self.config.hubspot_url
                    ))
                    .bearer_auth(token)
                    .json(&json!({
                        "properties": properties,
                        "associations": [{
                            "to": {"id": contact_id},
                            "types": [{
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": association_type,
                            }],
                        }],
                    })),
            )
            .await?;
        Ok(json!({"id": body["id"], "contact_id": contact_id}))
    }
}

/// Calendar scopes asked for: events, and free/busy for finding slots.
pub const GOOGLE_SCOPES: &str = "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.freebusy";

/// Contact properties read and shown.
const CONTACT_PROPERTIES: [&str; 6] = [
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "hs_object_id",
];

/// A HubSpot contact as the tool answers it.
fn contact(body: &Value) -> Value {
    let p = &body["properties"];
    json!({
        "contact_id": body["id"],
        "email": p["email"],
        "first_name": p["firstname"],
        "last_name": p["lastname"],
        "phone": p["phone"],
        "company": p["company"],
    })
}

/// Tokens from Google's token endpoint (`Debug` shows none of them).
#[derive(Clone)]
pub struct GoogleTokens {
    pub access_token: String,
    /// Absent on a refresh (the grant keeps its refresh token).
    pub refresh_token: Option<String>,
    pub expires_at: i64,
    pub scope: Option<String>,
}

impl std::fmt::Debug for GoogleTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleTokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl GoogleTokens {
    fn of(body: &Value) -> Result<Self, ProviderError> {
        let access_token = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::new(
                    "provider_rejected",
                    "Google's token answer has no access_token",
                    false,
                )
            })?
            .to_owned();
        let expires_in = body["expires_in"]
            .as_i64()
            .unwrap_or(3600)
            .clamp(60, 86_400);
        Ok(Self {
            access_token,
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_at: crate::time::Timestamp::now().unix() + expires_in,
            scope: body["scope"].as_str().map(str::to_owned),
        })
    }
}
