//! A local stand-in for Twilio's REST API that speaks its wire format: HTTP Basic auth with the
//! account SID and auth token, form-encoded bodies, `201` call resources, and Twilio's JSON
//! errors (`{"code","message","more_info","status"}`). It records every request so tests can
//! assert what the control plane sent, and can be told to fail the next requests.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The account the stand-in accepts.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// Its auth token (also what signs webhooks in tests).
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";

/// One request the control plane made.
#[derive(Clone, Debug)]
pub struct Sent {
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Sent {
    /// The first value of form parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of form parameter `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A scripted failure for the next request: HTTP status and Twilio error code.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    pub status: u16,
    pub code: u32,
}

#[derive(Debug, Default)]
struct Inner {
    sent: Vec<Sent>,
    failures: VecDeque<Failure>,
    calls_created: u32,
}

/// A running stand-in.
#[derive(Clone, Debug)]
pub struct FakeTwilio {
    /// Its base URL (`TWILIO_API_BASE`).
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeTwilio {
    /// Serves on a free 127.0.0.1 port until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Mutex::new(Inner::default()));
        let router = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create))
            .route("/2010-04-01/Accounts/{account}/Calls/{sid}", post(update))
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self { base_url, inner }
    }

    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().expect("lock").sent.clone()
    }

    /// Makes the next requests fail, in order.
    pub fn fail_next(&self, failures: &[Failure]) {
        self.inner
            .lock()
            .expect("lock")
            .failures
            .extend(failures.iter().copied());
    }
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(body),
    )
        .into_response()
}

/// Checks Basic auth, the account in the path, and the form content type; records the request.
fn accept(
    inner: &Arc<Mutex<Inner>>,
    account: &str,
    headers: &HeaderMap,
    path: String,
    body: &[u8],
) -> Result<Vec<(String, String)>, Box<Response>> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(expected.as_str()) || account != ACCOUNT_SID {
        return Err(Box::new(error(401, 20003, "Authenticate")));
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Box::new(error(
            400,
            20001,
            "Content-Type must be form-encoded",
        )));
    }
    let params: Vec<(String, String)> = url_pairs(body);
    let mut inner = inner.lock().expect("lock");
    inner.sent.push(Sent {
        path,
        params: params.clone(),
    });
    if let Some(f) = inner.failures.pop_front() {
        let message = match f.code {
            21211 => "The 'To' number is not a valid phone number.",
            20429 => "Too Many Requests",
            _ => "Service unavailable",
        };
        return Err(Box::new(error(f.status, f.code, message)));
    }
    Ok(params)
}

fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn create(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let params = match accept(&inner, &account, &headers, path, &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(to), Some(from)) = (get("To"), get("From")) else {
        return error(400, 21201, "No 'To' number is specified");
    };
    if get("Url").is_none() && get("Twiml").is_none() && get("ApplicationSid").is_none() {
        return error(400, 21205, "Url parameter is required");
    }
    let n = {
        let mut inner = inner.lock().expect("lock");
        inner.calls_created += 1;
        inner.calls_created
    };
    let sid = format!("CA{n:032x}");
    let body = json!({
        "sid": sid,
        "account_sid": account,
        "to": to,
        "from": from,
        "status": "queued",
        "direction": "outbound-api",
        "date_created": "Tue, 10 Jan 2026 00:00:00 +0000",
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn update(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{sid}");
    if let Err(r) = accept(&inner, &account, &headers, path, &body) {
        return *r;
    }
    let sid = sid.trim_end_matches(".json");
    let body = json!({ "sid": sid, "account_sid": account, "status": "in-progress" });
    (StatusCode::OK, axum::Json(body)).into_response()
}
