//! Stand-ins for the integrations' providers, on their real wire formats: Google OAuth 2.0
//! (token endpoint with PKCE S256 checked, refresh, revoke) and Calendar v3 (primary
//! calendar, events insert, freeBusy), the WhatsApp Cloud API (phone number read, messages),
//! HubSpot CRM v3 (contacts list, search, create, update, notes, calls), and an SMTP server
//! (EHLO, AUTH PLAIN, MAIL, RCPT, DATA). Each records what it was sent so tests assert it.
//! Google's consent page is stood in for too: it grants at once and sends the browser back to
//! `redirect_uri` with a code and the state, as Google does when the user clicks Allow (`make
//! dev` serves all of it, so the connect flow can be tried end to end).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The WhatsApp token the stand-in accepts.
pub const WHATSAPP_TOKEN: &str = "EAAG-good-system-user-token";
/// The WhatsApp phone number id it knows.
pub const WHATSAPP_NUMBER_ID: &str = "106540352242922";
/// The HubSpot private-app token it accepts.
pub const HUBSPOT_TOKEN: &str = "pat-na1-good-token";
/// The SMTP login it accepts.
pub const SMTP_USER: &str = "desk@example.com";
pub const SMTP_PASSWORD: &str = "smtp-s3cret-password";

/// One request a provider received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Debug, Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Authorization codes granted, with the PKCE challenge each was granted for.
    codes: HashMap<String, String>,
    access: HashSet<String>,
    refresh: HashSet<String>,
    issued: u32,
    /// `expires_in` of the access tokens issued.
    expires_in: i64,
    /// Status answered by the next request whose path starts with the prefix.
    failures: Vec<(String, u16)>,
    busy: Vec<(String, String)>,
    mails: Vec<String>,
}

/// The HTTP stand-ins and the SMTP one.
#[derive(Clone, Debug)]
pub struct FakeProviders {
    pub base_url: String,
    pub smtp_port: u16,
    inner: Arc<Mutex<Inner>>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(
    inner: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &str,
) -> Option<u16> {
    let mut state = lock(inner);
    state.seen.push(Seen {
        method: method.to_owned(),
        path: path.to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_owned(),
    });
    let at = state
        .failures
        .iter()
        .position(|(p, _)| path.starts_with(p.as_str()))?;
    Some(state.failures.remove(at).1)
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn fail(status: u16) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({"error": {"message": format!("injected failure {status}")}})),
    )
        .into_response()
}

async fn token(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(status) = record(&inner, "POST", "/google/token", &headers, &body) {
        return fail(status);
    }
    let f = form(&body);
    let mut state = lock(&inner);
    let refused = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    let with_refresh = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some(challenge) = state.codes.remove(&code) else {
                return refused("Malformed auth code.");
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return refused("Invalid code verifier.");
            }
            true
        }
        Some("refresh_token") => {
            if !state
                .refresh
                .contains(f.get("refresh_token").map_or("", String::as_str))
            {
                return refused("Token has been expired or revoked.");
            }
            false
        }
        _ => return refused("unsupported grant_type"),
    };
    state.issued += 1;
    let access = format!("ya29.access-{}", state.issued);
    state.access.insert(access.clone());
    let mut answer = json!({"access_token": access, "expires_in": state.expires_in,
        "token_type": "Bearer", "scope": callplane::providers::GOOGLE_SCOPES});
    if with_refresh {
        let refresh = format!("1//refresh-{}", state.issued);
        state.refresh.insert(refresh.clone());
        answer["refresh_token"] = json!(refresh);
    }
    Json(answer).into_response()
}

/// Google's consent page, where the user clicks Allow at once: a code bound to the PKCE
/// challenge, and the browser sent back to `redirect_uri` with it and the state.
async fn consent_page(
    State(inner): State<Shared>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(&inner, "GET", "/google/auth", &headers, "");
    let (Some(redirect), Some(state), Some(challenge)) = (
        q.get("redirect_uri"),
        q.get("state"),
        q.get("code_challenge"),
    ) else {
        return (StatusCode::BAD_REQUEST, "Error 400: invalid_request").into_response();
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request (PKCE S256)",
        )
            .into_response();
    }
    let code = {
        let mut st = lock(&inner);
        st.issued += 1;
        let code = format!("4/0consent-{}", st.issued);
        st.codes.insert(code.clone(), challenge.clone());
        code
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state)
        .append_pair("code", &code)
        .append_pair("scope", callplane::providers::GOOGLE_SCOPES)
        .finish();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(
            axum::http::header::LOCATION,
            format!("{redirect}{sep}{query}"),
        )],
    )
        .into_response()
}

async fn revoke(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    record(&inner, "POST", "/google/revoke", &headers, &body);
    let token = form(&body).remove("token").unwrap_or_default();
    let mut state = lock(&inner);
    let known = state.refresh.remove(&token) | state.access.remove(&token);
    if known {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response()
    }
}

fn google_auth(inner: &Shared, headers: &HeaderMap) -> Option<Response> {
    if lock(inner).access.contains(&bearer(headers)) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials."}})),
            )
                .into_response(),
        )
    }
}

async fn primary(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(status) = record(&inner, "GET", "/calendar/calendars/primary", &headers, "") {
        return fail(status);
    }
    if let Some(r) = google_auth(&inner, &headers) {
        return r;
    }
    Json(json!({"kind": "calendar#calendar", "id": "owner@example.com", "timeZone": "America/New_York"})).into_response()
}

async fn insert_event(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(status) = record(
        &inner,
        "POST",
        "/calendar/calendars/primary/events",
        &headers,
        &body,
    ) {
        return fail(status);
    }
    if let Some(r) = google_auth(&inner, &headers) {
        return r;
    }
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    Json(
        json!({"kind": "calendar#event", "id": "evt0001", "status": "confirmed",
        "htmlLink": "https://calendar.google.com/event?eid=evt0001",
        "start": event["start"], "end": event["end"]}),
    )
    .into_response()
}

async fn free_busy(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(status) = record(&inner, "POST", "/calendar/freeBusy", &headers, &body) {
        return fail(status);
    }
    if let Some(r) = google_auth(&inner, &headers) {
        return r;
    }
    let busy: Vec<Value> = lock(&inner)
        .busy
        .iter()
        .map(|(s, e)| json!({"start": s, "end": e}))
        .collect();
    Json(json!({"kind": "calendar#freeBusy", "calendars": {"primary": {"busy": busy}}}))
        .into_response()
}

fn graph_auth(headers: &HeaderMap) -> Option<Response> {
    (bearer(headers) != WHATSAPP_TOKEN).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException", "code": 190}})),
        )
            .into_response()
    })
}

async fn graph_number(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(status) = record(&inner, "GET", &format!("/graph/{id}"), &headers, "") {
        return fail(status);
    }
    if let Some(r) = graph_auth(&headers) {
        return r;
    }
    if id != WHATSAPP_NUMBER_ID {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Unsupported get request.", "code": 100}})),
        )
            .into_response();
    }
    Json(json!({"id": id, "display_phone_number": "+1 415-555-2671", "verified_name": "Helios Hotel"})).into_response()
}

async fn graph_messages(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(status) = record(
        &inner,
        "POST",
        &format!("/graph/{id}/messages"),
        &headers,
        &body,
    ) {
        return fail(status);
    }
    if let Some(r) = graph_auth(&headers) {
        return r;
    }
    let message: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    Json(json!({"messaging_product": "whatsapp",
        "contacts": [{"input": message["to"], "wa_id": message["to"]}],
        "messages": [{"id": "wamid.HBgLMTQxNTU1NTI2NzIVAgARGBI"}]}))
    .into_response()
}

fn hubspot_auth(headers: &HeaderMap) -> Option<Response> {
    (bearer(headers) != HUBSPOT_TOKEN).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"status": "error", "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION"}),
            ),
        )
            .into_response()
    })
}

async fn hubspot(
    State(inner): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = uri.path().to_owned();
    if let Some(status) = record(&inner, method.as_str(), &path, &headers, &body) {
        return fail(status);
    }
    if let Some(r) = hubspot_auth(&headers) {
        return r;
    }
    let sent: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let rest = path.trim_start_matches("/hubspot/crm/v3/objects/");
    match (method.as_str(), rest) {
        ("GET", "contacts") => Json(json!({"results": []})).into_response(),
        ("POST", "contacts/search") => {
            let value = sent["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap_or("");
            let results = if value == "known@example.com" {
                vec![json!({"id": "501", "properties": {"email": value, "firstname": "Ada"}})]
            } else {
                vec![]
            };
            Json(json!({"total": results.len(), "results": results})).into_response()
        }
        ("POST", "contacts") => (
            StatusCode::CREATED,
            Json(json!({"id": "777", "properties": sent["properties"]})),
        )
            .into_response(),
        ("PATCH", r) if r.starts_with("contacts/") => {
            Json(json!({"id": r.trim_start_matches("contacts/"), "properties": sent["properties"]}))
                .into_response()
        }
        ("POST", "notes" | "calls") => (
            StatusCode::CREATED,
            Json(json!({"id": "9001", "properties": sent["properties"]})),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))).into_response(),
    }
}

impl FakeProviders {
    /// Serves the HTTP providers and the SMTP server on free local ports.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0", "127.0.0.1:0").await
    }

    /// Serves the HTTP providers on `http` and the SMTP server on `smtp`.
    pub async fn start_on(http: &str, smtp: &str) -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            expires_in: 3600,
            ..Inner::default()
        }));
        let router = Router::new()
            .route("/google/auth", get(consent_page))
            .route("/google/token", post(token))
            .route("/google/revoke", post(revoke))
            .route("/calendar/calendars/primary", get(primary))
            .route("/calendar/calendars/primary/events", post(insert_event))
            .route("/calendar/freeBusy", post(free_busy))
            .route("/graph/{id}", get(graph_number))
            .route("/graph/{id}/messages", post(graph_messages))
            .route("/hubspot/{*rest}", axum::routing::any(hubspot))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(http).await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        let smtp = tokio::net::TcpListener::bind(smtp).await.expect("bind");
        let smtp_port = smtp.local_addr().expect("addr").port();
        let mail_inner = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = smtp.accept().await {
                tokio::spawn(smtp_session(stream, mail_inner.clone()));
            }
        });
        Self {
            base_url,
            smtp_port,
            inner,
        }
    }

    /// The environment that points a stack at these stand-ins.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let b = &self.base_url;
        vec![
            (
                "GOOGLE_OAUTH_CLIENT_ID",
                "callplane-test.apps.googleusercontent.com".into(),
            ),
            ("GOOGLE_OAUTH_CLIENT_SECRET", "GOCSPX-test-secret".into()),
            ("GOOGLE_AUTH_URL", format!("{b}/google/auth")),
            ("GOOGLE_TOKEN_URL", format!("{b}/google/token")),
            ("GOOGLE_REVOKE_URL", format!("{b}/google/revoke")),
            ("GOOGLE_CALENDAR_API_URL", format!("{b}/calendar")),
            ("WHATSAPP_GRAPH_API_URL", format!("{b}/graph")),
            ("HUBSPOT_API_URL", format!("{b}/hubspot")),
            (
                "OAUTH_CALLBACK_URL",
                "https://api.test/integrations/oauth/callback".into(),
            ),
            ("INTEGRATION_REDIRECT_ORIGINS", "http://app.test".into()),
            ("TOOL_TIMEOUT_SECS", "2".into()),
        ]
    }

    /// Google grants `code` to whoever proves the verifier of `challenge` (the consent step).
    pub fn grant(&self, code: &str, challenge: &str) {
        lock(&self.inner)
            .codes
            .insert(code.to_owned(), challenge.to_owned());
    }

    /// Access tokens issued from now on expire after `seconds`.
    pub fn expire_in(&self, seconds: i64) {
        lock(&self.inner).expires_in = seconds;
    }

    /// The user revokes every grant (as from their Google account page).
    pub fn revoke_all(&self) {
        let mut state = lock(&self.inner);
        state.refresh.clear();
        state.access.clear();
    }

    /// The next request to a path starting with `prefix` is answered `status`.
    pub fn fail_next(&self, prefix: &str, status: u16) {
        lock(&self.inner).failures.push((prefix.to_owned(), status));
    }

    /// Busy intervals freeBusy answers.
    pub fn set_busy(&self, busy: &[(&str, &str)]) {
        lock(&self.inner).busy = busy
            .iter()
            .map(|(s, e)| ((*s).to_owned(), (*e).to_owned()))
            .collect();
    }

    /// Requests received on paths starting with `prefix`.
    pub fn seen(&self, prefix: &str) -> Vec<Seen> {
        lock(&self.inner)
            .seen
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Messages the SMTP server accepted (their DATA).
    pub fn mails(&self) -> Vec<String> {
        lock(&self.inner).mails.clone()
    }
}

/// One SMTP session: greeting, EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
async fn smtp_session(stream: tokio::net::TcpStream, inner: Shared) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 mail.test ESMTP ready\r\n").await;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-mail.test\r\n250-AUTH PLAIN\r\n250 8BITMIME".to_owned()
        } else if let Some(token) = command.strip_prefix("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap_or_default();
            let expected = format!("\0{SMTP_USER}\0{SMTP_PASSWORD}");
            if decoded == expected.as_bytes() {
                "235 2.7.0 Authentication successful".to_owned()
            } else {
                "535 5.7.8 Authentication credentials invalid".to_owned()
            }
        } else if upper.starts_with("MAIL FROM") || upper.starts_with("RCPT TO") {
            "250 2.1.0 OK".to_owned()
        } else if upper == "DATA" {
            let _ = write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            lock(&inner).mails.push(data);
            "250 2.0.0 Ok: queued as 4F2A1".to_owned()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognized".to_owned()
        };
        let _ = write.write_all(format!("{answer}\r\n").as_bytes()).await;
    }
}
