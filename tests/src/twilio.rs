//! A local stand-in for Twilio's REST API that speaks its wire format: HTTP Basic auth with the
//! account SID and auth token, form-encoded bodies, `201` call resources, the Calls list
//! (filtered by `To`/`From`, newest first), the account's IncomingPhoneNumbers (list filtered
//! by `PhoneNumber`, update of `VoiceUrl`/`StatusCallback`), and Twilio's JSON errors
//! (`{"code","message","more_info","status"}`). It records every request so tests can assert
//! what the control plane sent, and can be told to fail the next requests, before acting on
//! them or after (a 500 or a stalled answer once the call exists).

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The account the stand-in accepts.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// Its auth token (also what signs webhooks in tests).
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";

/// One request the control plane made about calls (creations and updates).
#[derive(Clone, Debug)]
pub struct Sent {
    pub path: String,
    pub params: Vec<(String, String)>,
    /// When the stand-in received it.
    pub at: std::time::Instant,
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

/// What the stand-in does with the answer to the next call creations: it creates the call,
/// then answers this instead of `201`.
#[derive(Clone, Copy, Debug)]
pub enum LostAnswer {
    /// An HTTP 500 with Twilio's error body.
    ServerError,
    /// Nothing for this long (longer than the client waits), then the `201`.
    Stall(std::time::Duration),
}

/// One of the account's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountNumber {
    pub sid: String,
    pub phone_number: String,
    pub voice_url: String,
    pub status_callback: String,
}

#[derive(Debug, Default)]
struct Inner {
    sent: Vec<Sent>,
    failures: VecDeque<Failure>,
    lost: VecDeque<LostAnswer>,
    calls_created: u32,
    /// `(sid, to, from, date_created)` of every call created, oldest first.
    calls: Vec<(String, String, String, String)>,
    numbers: Vec<AccountNumber>,
    /// While set, the Calls list lags: it shows no call yet.
    list_lags: bool,
    /// The account owns every number it is asked about (`make dev`'s stand-in).
    owns_all: bool,
    /// Recording media requests answered (authorized ones).
    recording_fetches: u32,
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
        Self::start_on("127.0.0.1:0", false).await
    }

    /// Serves on `addr` until the runtime ends; with `owns_all`, every number looked up is
    /// one of the account's (how `make dev` stands in for a real account).
    pub async fn start_on(addr: &str, owns_all: bool) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Mutex::new(Inner {
            owns_all,
            ..Inner::default()
        }));
        let router = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create).get(list_calls),
            )
            .route("/2010-04-01/Accounts/{account}/Calls/{sid}", post(update))
            .route(
                "/2010-04-01/Accounts/{account}/Recordings/{sid}",
                get(recording_media),
            )
            .route(
                "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json",
                get(list_numbers),
            )
            .route(
                "/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}",
                post(update_number),
            )
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self { base_url, inner }
    }

    /// How many recording media requests it answered with the account's credentials.
    pub fn recording_fetches(&self) -> u32 {
        self.inner.lock().expect("lock").recording_fetches
    }

    /// The media of recording `sid` as [`FakeTwilio`] serves it (`RE_big…`: 9 MiB, more than
    /// one multipart part; others: 64 KiB), deterministic bytes.
    pub fn recording_body(sid: &str) -> Vec<u8> {
        let len = if sid.starts_with("RE_big") {
            9 * 1024 * 1024 + 123
        } else {
            64 * 1024
        };
        (0..len).map(|i: usize| (i % 251) as u8).collect()
    }

    /// Every call request sent so far (number updates are seen through [`FakeTwilio::number`]).
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().expect("lock").sent.clone()
    }

    /// How many calls the account has created.
    pub fn calls_created(&self) -> u32 {
        self.inner.lock().expect("lock").calls_created
    }

    /// Makes the next call creations create the call but lose the answer, in order.
    pub fn lose_next_answers(&self, lost: &[LostAnswer]) {
        self.inner
            .lock()
            .expect("lock")
            .lost
            .extend(lost.iter().copied());
    }

    /// Makes the Calls list show no call (a list lagging behind creations) until unset.
    pub fn lag_call_list(&self, lags: bool) {
        self.inner.lock().expect("lock").list_lags = lags;
    }

    /// Adds `e164` to the account's numbers (no webhooks set).
    pub fn own_number(&self, e164: &str) {
        let mut inner = self.inner.lock().expect("lock");
        if inner.numbers.iter().any(|n| n.phone_number == e164) {
            return;
        }
        let sid = format!("PN{:032x}", inner.numbers.len() + 1);
        inner.numbers.push(AccountNumber {
            sid,
            phone_number: e164.to_owned(),
            voice_url: String::new(),
            status_callback: String::new(),
        });
    }

    /// The account's number `e164`, as Twilio holds it.
    pub fn number(&self, e164: &str) -> Option<AccountNumber> {
        self.inner
            .lock()
            .expect("lock")
            .numbers
            .iter()
            .find(|n| n.phone_number == e164)
            .cloned()
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

/// Checks Basic auth and the account in the path.
fn authorized(account: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(expected.as_str()) || account != ACCOUNT_SID {
        return Err(Box::new(error(401, 20003, "Authenticate")));
    }
    Ok(())
}

/// Checks Basic auth, the account in the path, and the form content type; records the request.
fn accept(
    inner: &Arc<Mutex<Inner>>,
    account: &str,
    headers: &HeaderMap,
    path: String,
    body: &[u8],
) -> Result<Vec<(String, String)>, Box<Response>> {
    authorized(account, headers)?;
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
        at: std::time::Instant::now(),
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
    let created = chrono::Utc::now().to_rfc2822();
    let (sid, lost) = {
        let mut inner = inner.lock().expect("lock");
        inner.calls_created += 1;
        let sid = format!("CA{:032x}", inner.calls_created);
        inner
            .calls
            .push((sid.clone(), to.clone(), from.clone(), created.clone()));
        (sid, inner.lost.pop_front())
    };
    let body = call_json(&account, &sid, &to, &from, &created);
    match lost {
        None => (StatusCode::CREATED, axum::Json(body)).into_response(),
        Some(LostAnswer::ServerError) => error(500, 20500, "Internal Server Error"),
        Some(LostAnswer::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
    }
}

fn call_json(account: &str, sid: &str, to: &str, from: &str, created: &str) -> serde_json::Value {
    json!({
        "sid": sid,
        "account_sid": account,
        "to": to,
        "from": from,
        "status": "queued",
        "direction": "outbound-api",
        "date_created": created,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    })
}

/// `GET …/Calls.json?To=&From=&PageSize=`: the account's calls, newest first.
async fn list_calls(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = authorized(&account, &headers) {
        return *r;
    }
    let filter = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (to, from) = (filter("To"), filter("From"));
    let inner = inner.lock().expect("lock");
    let shown = if inner.list_lags {
        &[][..]
    } else {
        &inner.calls[..]
    };
    let calls: Vec<_> = shown
        .iter()
        .rev()
        .filter(|(_, t, f, _)| {
            to.as_ref().is_none_or(|x| x == t) && from.as_ref().is_none_or(|x| x == f)
        })
        .map(|(sid, t, f, created)| call_json(&account, sid, t, f, created))
        .collect();
    axum::Json(json!({ "calls": calls, "next_page_uri": null, "page": 0 })).into_response()
}

fn number_json(account: &str, n: &AccountNumber) -> serde_json::Value {
    json!({
        "sid": n.sid,
        "account_sid": account,
        "phone_number": n.phone_number,
        "voice_url": n.voice_url,
        "voice_method": "POST",
        "status_callback": n.status_callback,
        "status_callback_method": "POST",
        "capabilities": { "voice": true, "sms": true, "mms": false, "fax": false },
    })
}

/// `GET …/IncomingPhoneNumbers.json?PhoneNumber=`: the account's numbers containing the filter.
async fn list_numbers(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = authorized(&account, &headers) {
        return *r;
    }
    let wanted = query
        .iter()
        .find(|(k, _)| k == "PhoneNumber")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut inner = inner.lock().expect("lock");
    if inner.owns_all
        && wanted.starts_with('+')
        && !inner.numbers.iter().any(|n| n.phone_number == wanted)
    {
        let sid = format!("PN{:032x}", inner.numbers.len() + 1);
        inner.numbers.push(AccountNumber {
            sid,
            phone_number: wanted.clone(),
            voice_url: String::new(),
            status_callback: String::new(),
        });
    }
    let numbers: Vec<_> = inner
        .numbers
        .iter()
        .filter(|n| n.phone_number.contains(wanted.trim_start_matches('+')))
        .map(|n| number_json(&account, n))
        .collect();
    axum::Json(json!({ "incoming_phone_numbers": numbers, "next_page_uri": null, "page": 0 }))
        .into_response()
}

/// `POST …/IncomingPhoneNumbers/{sid}.json`: updates `VoiceUrl` and `StatusCallback`.
async fn update_number(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Number updates are not recorded in `sent` (calls are) and take no scripted failure.
    if let Err(r) = authorized(&account, &headers) {
        return *r;
    }
    let params = url_pairs(&body);
    let sid = sid.trim_end_matches(".json");
    let mut inner = inner.lock().expect("lock");
    let Some(number) = inner.numbers.iter_mut().find(|n| n.sid == sid) else {
        return error(404, 20404, "The requested resource was not found");
    };
    for (k, v) in params {
        match k.as_str() {
            "VoiceUrl" => number.voice_url = v,
            "StatusCallback" => number.status_callback = v,
            _ => {}
        }
    }
    let body = number_json(&account, number);
    axum::Json(body).into_response()
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

/// `GET /2010-04-01/Accounts/{account}/Recordings/{sid}`: the recording's media (WAV, as Twilio
/// answers a RecordingUrl without an extension), with the account's Basic auth.
/// `RE_redirect_private…` redirects to a loopback address, as a hostile or broken origin might;
/// `RE_missing…` is 404; `RE_unavailable…` is 503.
async fn recording_media(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&account, &headers) {
        return *r;
    }
    inner.lock().expect("lock").recording_fetches += 1;
    if sid.starts_with("RE_redirect_private") {
        return (
            StatusCode::FOUND,
            [("location", "http://169.254.169.254/latest/meta-data/")],
        )
            .into_response();
    }
    if sid.starts_with("RE_unavailable") {
        return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
    }
    if sid.starts_with("RE_missing") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 20404, "message": "not found", "status": 404})),
        )
            .into_response();
    }
    (
        [("content-type", "audio/x-wav")],
        FakeTwilio::recording_body(&sid),
    )
        .into_response()
}
