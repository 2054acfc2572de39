//! Test harness: a fresh, uniquely named set of resources in the emulator for each test
//! (`AWS_ENDPOINT_URL`, set by `make test`), the functions' routers called in-process the way
//! the local router table maps paths, and a counter of DynamoDB round trips.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use callplane::config::Config;
use callplane::resources::{Provisioned, ResourceNames};
use callplane::{App, AppState};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

pub mod providers;
pub mod twilio;
pub mod world;

/// The public base URL the test stacks' webhooks are signed for (`CALLPLANE_PUBLIC_URL`).
pub const PUBLIC_URL: &str = "https://hooks.callplane.test";

/// The bootstrap admin's credentials in every test stack.
pub const ADMIN_EMAIL: &str = "admin@callplane.test";
/// The bootstrap admin's password.
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// The password tests give invited users.
pub const USER_PASSWORD: &str = "user-password-123";

/// Counts HTTP attempts made by a DynamoDB client: one per round trip, retries included; and,
/// for sequential use (the benches), the time spent in them.
#[derive(Debug, Default, Clone)]
pub struct RoundTrips(
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<(Option<Instant>, Duration)>>,
);

impl RoundTrips {
    /// Attempts so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Time spent waiting for DynamoDB attempts so far (meaningful when requests do not
    /// overlap).
    pub fn busy(&self) -> Duration {
        self.1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }

    /// Attempts made while `f` ran.
    pub async fn during<T>(&self, f: impl std::future::Future<Output = T>) -> (T, usize) {
        let before = self.get();
        let out = f.await;
        (out, self.get() - before)
    }
}

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "RoundTrips"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = Some(Instant::now());
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let mut timing = self
            .1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(started) = timing.0.take() {
            timing.1 += started.elapsed();
        }
        Ok(())
    }
}

/// One test's world.
#[derive(Debug)]
pub struct Stack {
    pub app: AppState,
    pub names: ResourceNames,
    pub provisioned: Provisioned,
    pub round_trips: RoundTrips,
    pub sdk: aws_config::SdkConfig,
    /// The Twilio stand-in this stack's telephony talks to.
    pub twilio: twilio::FakeTwilio,
    /// `(path pattern, router of the function that serves it)`, from the router table.
    routes: Vec<(String, axum::Router)>,
}

/// `(path, function)` pairs of `[workspace.metadata.lambda.watch.router]` in the workspace
/// `Cargo.toml`: the map `cargo lambda watch` and these tests route by.
pub fn router_table() -> Vec<(String, String)> {
    let path = format!("{}/../Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("router table in Cargo.toml");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| {
            let (path, function) = l.split_once(" = ")?;
            Some((
                path.trim().trim_matches('"').to_owned(),
                function.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// Whether `path` matches a router-table pattern (`{name}` matches one segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(p, q)| (p.starts_with('{') && !q.is_empty()) || p == q)
}

/// SDK configuration for the emulator.
pub async fn emulator_sdk() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the emulator",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(callplane::aws::retry_config())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "callplane-tests",
        ))
        .load()
        .await
}

/// A response as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error envelope>")
    }

    /// Asserts the status and, for errors, a well-formed envelope; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        if status >= 400 {
            let e = &self.body["error"];
            assert!(
                e["code"].is_string() && e["message"].is_string() && e["details"].is_object(),
                "not an error envelope: {}",
                self.body
            );
        }
        &self.body
    }

    /// Asserts an error status and code; returns the message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        self.expect(status);
        assert_eq!(self.code(), code, "body: {}", self.body);
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Stack {
    /// New resources with unique names, state over them, and a bootstrapped admin.
    pub async fn new() -> Stack {
        let sdk = emulator_sdk().await;
        let prefix = format!("t{}", ulid::Ulid::new().to_string().to_lowercase());
        let names = ResourceNames::with_prefix(&prefix);
        let provisioned = callplane::resources::ensure(&sdk, &names)
            .await
            .expect("creating test resources");
        let twilio = twilio::FakeTwilio::start().await;
        let stack = Self::over(sdk, names, provisioned, twilio, &[]);
        let email = callplane::domain::Email::parse(ADMIN_EMAIL).expect("admin email");
        let password = callplane::auth::Password::parse(ADMIN_PASSWORD).expect("admin password");
        callplane::service::auth::bootstrap_admin(&stack.app, email, password)
            .await
            .expect("bootstrap admin");
        stack
    }

    /// Sets attributes of a stored item behind the API's back (`SET a = :a, …`), the way a
    /// test ages a record; retried on a transaction conflict like the store's own writes, so
    /// it holds under the emulator's fault mode.
    pub async fn tamper(&self, key: &callplane::store::keys::Key, set: &[(&str, AttributeValue)]) {
        let expression = set
            .iter()
            .map(|(name, _)| format!("#{name} = :{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let store = &self.app.store;
        callplane::store::on_conflict(|| {
            let mut update = store
                .client()
                .update_item()
                .table_name(store.table())
                .set_key(Some(key.attrs()))
                .condition_expression("attribute_exists(pk)")
                .update_expression(format!("SET {expression}"));
            for (name, value) in set {
                update = update
                    .expression_attribute_names(format!("#{name}"), *name)
                    .expression_attribute_values(format!(":{name}"), value.clone());
            }
            update.send()
        })
        .await
        .expect("tampering with a stored item");
    }

    /// The same resources and Twilio stand-in served by functions started again with
    /// `changes` to their environment (a redeploy: rotated secrets, other settings).
    pub fn redeployed(&self, changes: &[(&str, &str)]) -> Stack {
        Self::over(
            self.sdk.clone(),
            self.names.clone(),
            self.provisioned.clone(),
            self.twilio.clone(),
            changes,
        )
    }

    /// State and routers over existing resources; `changes` override the test environment.
    fn over(
        sdk: aws_config::SdkConfig,
        names: ResourceNames,
        provisioned: Provisioned,
        twilio: twilio::FakeTwilio,
        changes: &[(&str, &str)],
    ) -> Stack {
        let mut env: std::collections::HashMap<String, String> = [
            ("TABLE_NAME", names.table.as_str()),
            ("BUCKET_NAME", names.bucket.as_str()),
            ("JWT_SECRET", "test-secret-test-secret-test-secret!"),
            ("CALLPLANE_APP_URL", "http://app.test"),
            ("TWILIO_ACCOUNT_SID", twilio::ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN),
            ("TWILIO_API_BASE", twilio.base_url.as_str()),
            ("TWILIO_RETRY_BASE_MS", "5"),
            ("TWILIO_TIMEOUT_MS", "2000"),
            ("CALLPLANE_PUBLIC_URL", PUBLIC_URL),
            ("WHATSAPP_VERIFY_TOKEN", "wa-verify-token"),
            ("WHATSAPP_APP_SECRET", "TEST_APP_SECRET"),
            (
                "SUMMARY_QUEUE_URL",
                provisioned.queue_urls["summary-jobs"].as_str(),
            ),
            (
                "LIVE_SENTIMENT_QUEUE_URL",
                provisioned.queue_urls["live-sentiment"].as_str(),
            ),
            (
                "LEAD_IMPORT_QUEUE_URL",
                provisioned.queue_urls["lead-import-jobs"].as_str(),
            ),
            (
                "CAMPAIGN_QUEUE_URL",
                provisioned.queue_urls["campaign-jobs"].as_str(),
            ),
            ("KMS_KEY_ID", provisioned.kms_key_id.as_str()),
            // No test reaches a real provider: unless a test points them at its stand-ins
            // (`providers::FakeProviders::env`), they are a closed local port.
            ("GOOGLE_AUTH_URL", "http://127.0.0.1:9/google/auth"),
            ("GOOGLE_TOKEN_URL", "http://127.0.0.1:9/google/token"),
            ("GOOGLE_REVOKE_URL", "http://127.0.0.1:9/google/revoke"),
            ("GOOGLE_CALENDAR_API_URL", "http://127.0.0.1:9/calendar"),
            ("WHATSAPP_GRAPH_API_URL", "http://127.0.0.1:9/graph"),
            ("HUBSPOT_API_URL", "http://127.0.0.1:9/hubspot"),
        ]
        .into_iter()
        .chain(changes.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.retain(|_, v| !v.is_empty());
        let config = Config::from_lookup(move |k| env.get(k).cloned()).expect("test config");
        let round_trips = RoundTrips::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(round_trips.clone())
                .build(),
        );
        let app: AppState = Arc::new(App::with_dynamo(config, &sdk, dynamo));
        let routers = functions(&app);
        let routes = router_table()
            .into_iter()
            .map(|(path, function)| {
                let router = routers
                    .iter()
                    .find(|(name, _)| *name == function)
                    .map(|(_, router)| router.clone())
                    .unwrap_or_else(|| {
                        panic!("the test harness does not know function {function}")
                    });
                (path, router)
            })
            .collect();
        Stack {
            twilio,
            routes,
            app,
            names,
            provisioned,
            round_trips,
            sdk,
        }
    }

    /// Sends a request to the function that serves `path` (as `[workspace.metadata.lambda.watch.router]` maps it).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).expect("json"))
            }
            None => Body::empty(),
        };
        self.send_raw(req.body(body).expect("request")).await
    }

    /// Sends a prepared request.
    pub async fn send_raw(&self, req: Request<Body>) -> Reply {
        let path = req.uri().path();
        let router = self
            .routes
            .iter()
            .find(|(pattern, _)| path_matches(pattern, path))
            .map_or(&self.routes[0].1, |(_, router)| router);
        call(router.clone(), req).await
    }

    /// Every function's router, by name, over this stack's state.
    pub fn functions(&self) -> Vec<(&'static str, axum::Router)> {
        functions(&self.app)
    }

    /// POSTs a form to a Twilio webhook `path_and_query`, signed as Twilio signs it for
    /// [`PUBLIC_URL`] (`signature: None` signs correctly; `Some(s)` sends `s` instead).
    pub async fn twilio_hook(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> Reply {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signed = callplane::telephony::twilio::signature::sign(
            twilio::AUTH_TOKEN,
            &format!("{PUBLIC_URL}{path_and_query}"),
            &params,
        );
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            body.append_pair(k, v);
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path_and_query)
            .header("content-type", "application/x-www-form-urlencoded");
        if signature != Some("") {
            req = req.header("x-twilio-signature", signature.unwrap_or(&signed));
        }
        self.send_raw(req.body(Body::from(body.finish())).expect("request"))
            .await
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    /// POST JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    /// POST with a token and no body (actions: publish, start, …).
    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.send(Method::POST, path, Some(token), None).await
    }

    /// PATCH JSON with a token.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// `POST /establishments/{est}/users` (an invitation) as `token`.
    pub async fn invite(&self, token: &str, est: &str, body: Value) -> Reply {
        self.post(&format!("/establishments/{est}/users"), token, body)
            .await
    }

    /// `POST /auth/accept-invitation` (no token: the invitee has none yet).
    pub async fn accept(&self, body: Value) -> Reply {
        self.send(Method::POST, "/auth/accept-invitation", None, Some(body))
            .await
    }

    /// Logs in; panics unless it works. Returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "email": email, "password": password })),
            )
            .await;
        reply.expect(200)["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The bootstrap admin's token.
    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates an establishment in São Paulo (pt-BR) as `token`; returns its id.
    pub async fn establishment(&self, token: &str, name: &str) -> String {
        self.establishment_in(token, name, "America/Sao_Paulo", "pt-BR")
            .await
    }

    /// Creates an establishment with its time zone and locale as `token`; returns its id.
    pub async fn establishment_in(
        &self,
        token: &str,
        name: &str,
        timezone: &str,
        locale: &str,
    ) -> String {
        let reply = self
            .post(
                "/establishments",
                token,
                json!({ "name": name, "timezone": timezone, "locale": locale }),
            )
            .await;
        reply.expect(201)["id"].as_str().expect("id").to_owned()
    }

    /// The newest mail in the outbox addressed to `to`.
    pub async fn last_mail(&self, to: &str) -> Option<Value> {
        let keys = self
            .app
            .blobs
            .list(callplane::mail::OUTBOX_PREFIX)
            .await
            .expect("list outbox");
        for key in keys.iter().rev() {
            let bytes = self.app.blobs.get(key).await.expect("read mail")?;
            let mail: Value = serde_json::from_slice(&bytes).expect("mail json");
            if mail["to"] == to {
                return Some(mail);
            }
        }
        None
    }

    /// The token in the newest mail to `to`.
    pub async fn mailed_token(&self, to: &str) -> String {
        let mail = self
            .last_mail(to)
            .await
            .unwrap_or_else(|| panic!("no mail to {to} in the outbox"));
        let text = mail["text"].as_str().expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("Token: "))
            .expect("token line")
            .trim()
            .to_owned()
    }

    /// Invites `email` as `role` into `est` and accepts; returns the new member's token.
    pub async fn member(&self, admin: &str, est: &str, email: &str, role: &str) -> String {
        self.invite(admin, est, json!({ "email": email, "role": role }))
            .await
            .expect(201);
        let token = self.mailed_token(email).await;
        let body = json!({ "token": token, "password": USER_PASSWORD, "display_name": "Member" });
        let reply = self.accept(body).await;
        reply.expect(200)["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates an agent in `est` as `token`; returns its id.
    pub async fn agent(&self, token: &str, est: &str, name: &str) -> String {
        let reply = self
            .post(
                &format!("/establishments/{est}/agents"),
                token,
                json!({ "name": name, "description": "Concierge and support agent" }),
            )
            .await;
        reply.expect(201)["id"].as_str().expect("id").to_owned()
    }

    /// Creates a draft of `agent` with [`brain`]`(prompt)`; returns its id.
    pub async fn draft(&self, token: &str, agent: &str, prompt: &str) -> String {
        let reply = self
            .post(&format!("/agents/{agent}/versions"), token, brain(prompt))
            .await;
        reply.expect(201)["id"].as_str().expect("id").to_owned()
    }

    /// Creates a draft of `agent` and publishes it; returns the version id.
    pub async fn published(&self, token: &str, agent: &str, prompt: &str) -> String {
        let version = self.draft(token, agent, prompt).await;
        self.activate(token, agent, &version, "publish")
            .await
            .expect(200);
        version
    }

    /// The actions of `est`'s audit log, newest first (first page).
    pub async fn audit_actions(&self, token: &str, est: &str) -> Vec<String> {
        let reply = self
            .get(&format!("/establishments/{est}/audit-log"), token)
            .await;
        reply.expect(200)["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["action"].as_str().expect("action").to_owned())
            .collect()
    }

    /// `POST /agents/{agent}/versions/{version}/{action}` (publish or rollback), no body.
    pub async fn activate(&self, token: &str, agent: &str, version: &str, action: &str) -> Reply {
        self.post_empty(
            &format!("/agents/{agent}/versions/{version}/{action}"),
            token,
        )
        .await
    }

    /// Registers `e164` in `est` routed to `agent`.
    /// Registers `e164` (made one of the Twilio stand-in's account numbers first).
    pub async fn number(&self, token: &str, est: &str, e164: &str, agent: &str) -> Reply {
        self.twilio.own_number(e164);
        self.post(
            &format!("/establishments/{est}/phone-numbers"),
            token,
            json!({ "provider": "twilio", "e164": e164, "routing_agent_id": agent }),
        )
        .await
    }

    /// Serves the `runtimes` function over real HTTP on a free 127.0.0.1 port (for a host
    /// agent process); returns its base URL. Served until the test's runtime ends.
    pub async fn serve_runtimes(&self) -> String {
        serve(runtimes::router(self.app.clone())).await
    }

    /// Serves every function over real HTTP on one port, each path going to its function as
    /// the router table maps it (what API Gateway and `make dev` do); returns the base URL.
    pub async fn serve_api(&self) -> String {
        let routes = self.routes.clone();
        let dispatch = tower::service_fn(move |req: Request<Body>| {
            let router = routes
                .iter()
                .find(|(pattern, _)| path_matches(pattern, req.uri().path()))
                .map_or_else(|| routes[0].1.clone(), |(_, router)| router.clone());
            router.oneshot(req)
        });
        serve(axum::Router::new().fallback_service(dispatch)).await
    }

    /// Serves the `ingest` function over real HTTP (for `runtime-sim simulate-call`); returns
    /// the URL of `POST /ingest/call-events`.
    pub async fn serve_ingest(&self) -> String {
        let base = serve(ingest::router(self.app.clone())).await;
        format!("{base}/ingest/call-events")
    }

    /// Registers runtime host `host_id` on this stack's command queue with the ports
    /// `from..=to` on 127.0.0.1; returns its host token.
    pub async fn host(&self, host_id: &str, ports: (u16, u16)) -> String {
        callplane::service::hosts::register_host(
            &self.app,
            host_id,
            &self.provisioned.queue_urls["runtime-commands"],
            "127.0.0.1",
            ports,
        )
        .await
        .expect("register host")
    }
}

/// Serves `router` over real HTTP on a free 127.0.0.1 port until the test's runtime ends;
/// returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}

/// A valid version body (Appendix A.3) with `prompt`.
pub fn brain(prompt: &str) -> Value {
    json!({
        "prompt": prompt,
        "model": { "provider": "openai", "model": "gpt-4.1-mini", "temperature": 0.7, "max_tokens": 1024 },
        "tools": {
            "email": { "enabled": true },
            "calendar": { "enabled": true },
            "whatsapp_messaging": { "enabled": false }
        }
    })
}

/// GETs an `http://` URL (a presigned S3 URL of the emulator) with a bare HTTP/1.1 request;
/// returns the status code and the body.
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = raw[split + 4..].to_vec();
    // Chunked bodies are not de-chunked: callers compare small bodies with `contains`.
    (status, body)
}

/// PUTs `body` to an `http://` URL (a presigned S3 upload URL of the emulator) with a bare
/// HTTP/1.1 request, as a browser would; returns the status code.
pub async fn http_put(url: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

/// Every function's router, by name, over `app`.
pub fn functions(app: &AppState) -> Vec<(&'static str, axum::Router)> {
    vec![
        ("auth", auth::router(app.clone())),
        ("establishments", establishments::router(app.clone())),
        ("agents", agents::router(app.clone())),
        ("runtimes", runtimes::router(app.clone())),
        ("calls", calls::router(app.clone())),
        ("twilio-webhooks", twilio_webhooks::router(app.clone())),
        ("ingest", ingest::router(app.clone())),
        ("leads", leads::router(app.clone())),
        ("campaigns", campaigns::router(app.clone())),
        ("reports", reports::router(app.clone())),
        ("integrations", integrations::router(app.clone())),
        ("tool-proxy", tool_proxy::router(app.clone())),
    ]
}

/// Every function's described routes, by name: what the API description is made of.
pub fn described() -> Vec<(&'static str, utoipa_axum::router::OpenApiRouter<AppState>)> {
    vec![
        ("auth", auth::api()),
        ("establishments", establishments::api()),
        ("agents", agents::api()),
        ("runtimes", runtimes::api()),
        ("calls", calls::api()),
        ("twilio-webhooks", twilio_webhooks::api()),
        ("ingest", ingest::api()),
        ("leads", leads::api()),
        ("campaigns", campaigns::api()),
        ("reports", reports::api()),
        ("integrations", integrations::api()),
        ("tool-proxy", tool_proxy::api()),
    ]
}

/// The whole API description as the code declares it: what `make openapi` writes to
/// docs/openapi.json.
pub fn openapi_document() -> String {
    callplane::openapi::render(&callplane::openapi::whole(
        described()
            .into_iter()
            .map(|(name, api)| callplane::http::describe(name, api)),
    ))
}

/// Where the committed description lives.
pub fn openapi_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// Sends `req` to `router` and reads the answer as a client sees it.
pub async fn call(router: axum::Router, req: Request<Body>) -> Reply {
    let response = router.oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
    };
    Reply {
        status,
        headers,
        body,
    }
}
