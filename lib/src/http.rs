//! HTTP glue shared by every API function: extractors whose rejections are the error envelope
//! (JSON bodies capped at 256 KiB, typed path ids, list queries, bearer tokens) and the
//! fallbacks for unknown routes and methods. No Lambda types here: functions wrap the router.

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::service::health;
use axum::Router;
use axum::extract::State;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON body: malformed JSON, wrong types, unknown fields and invalid values become
/// `400 validation_failed` naming the field; bodies over [`MAX_BODY_BYTES`] become `413`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let bytes = json_body(req).await?;
        object_only(&bytes)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: an empty body or `null` is `T::default()` (for actions
/// such as publish whose options are all optional); anything else is checked as [`ApiJson`]
/// checks it.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let bytes = json_body(req).await?;
        let text = bytes.trim_ascii();
        if text.is_empty() || text == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        object_only(&bytes)?;
        parse_json(&bytes).map(OptionalJson)
    }
}

/// The body of a request that claims (or does not deny) to be JSON, within the size limit.
async fn json_body(req: Request) -> Result<axum::body::Bytes, Error> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or_default().trim();
        if !(mime == "application/json" || mime.ends_with("+json")) {
            return Err(Error::UnsupportedMediaType(format!(
                "expected an application/json body, got `{mime}`"
            )));
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    // The body is already in memory (Lambda buffers it): the only failure is the limit.
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })
}

/// Every body this API takes is an object; serde would otherwise build a struct from an array.
fn object_only(bytes: &[u8]) -> Result<(), Error> {
    if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b != b'{')
    {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    Ok(())
}

pub use crate::json::{from_value, parse_json};

/// Path parameters; ids of the wrong shape are `404` (no such resource), never a 400 that
/// would tell an id format apart from a missing record.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| Error::NotFound("resource"))
    }
}

/// Query-string parameters; bad ones are `400` naming the problem.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                Error::invalid(
                    "query",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: "),
                )
            })
    }
}

/// An empty query value (`?cursor=`, what a client building its query from empty state
/// sends) is the value left out.
pub fn blank_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(value.filter(|v| !v.is_empty()))
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The previous page's `cursor`.
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

impl ListParams {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// The page size, checked.
    pub fn limit(&self) -> Result<i32, Error> {
        match self.limit.unwrap_or(Self::DEFAULT_LIMIT) {
            l @ 1..=Self::MAX_LIMIT => Ok(l as i32),
            _ => Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            )),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, or `401`.
fn bearer(parts: &Parts) -> Result<&str, Error> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing Authorization: Bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Error::Unauthorized("expected Authorization: Bearer <token>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::Unauthorized(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok(token.trim())
}

/// `Authorization: Bearer <token>`, verified (signature, algorithm, issuer, expiry). Stored
/// state (revocation, membership) is checked by the service call with `Store::session`.
impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        state.jwt.verify(bearer(parts)?)
    }
}

/// A machine's bearer token, not yet checked: a host agent's (compared with the host's stored
/// hash) or a runtime's ingest token (checked against the envelope's runtime).
#[derive(Debug)]
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        bearer(parts).map(|t| BearerToken(t.to_owned()))
    }
}

/// One log line per request: method, route template, status, latency, and the establishment
/// and call it is about when the path or query names them. No bodies, no headers (tokens),
/// no query values but those ids.
async fn log_request(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "-".to_owned(), |p| p.as_str().to_owned());
    let (establishment_id, call_id) = {
        let uri = req.uri();
        let id_with = |prefix: &str| {
            uri.path()
                .split('/')
                .chain(
                    uri.query()
                        .unwrap_or_default()
                        .split('&')
                        .filter_map(|pair| pair.split_once('=').map(|(_, v)| v)),
                )
                .find(|part| part.starts_with(prefix) && part.len() <= 64)
                .map(str::to_owned)
        };
        (id_with("est_"), id_with("call_"))
    };
    let response = next.run(req).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        establishment_id,
        call_id,
        "request"
    );
    response
}

/// The endpoints every function answers: health (`service::health`) and its description.
mod endpoints {
    use super::{AppState, Described, State, header, health};

    /// `GET /healthz`: the process is up (no I/O).
    #[utoipa::path(get, path = "/healthz", tag = "health",
        responses((status = 200, description = "The process is up", body = health::Liveness)))]
    async fn healthz() -> axum::Json<health::Liveness> {
        axum::Json(health::liveness())
    }

    /// `GET /health`: the same as `/healthz` (the product README's name).
    #[utoipa::path(get, path = "/health", tag = "health",
        responses((status = 200, description = "The process is up", body = health::Liveness)))]
    async fn health_alias() -> axum::Json<health::Liveness> {
        axum::Json(health::liveness())
    }

    /// `GET /readyz`: whether the table, bucket and queues this function uses answer (cached
    /// for a few seconds).
    #[utoipa::path(get, path = "/readyz", tag = "health", responses(
        (status = 200, description = "Every dependency answers", body = health::Readiness),
        (status = 503, description = "A dependency does not answer; `issues` names it", body = health::Readiness)))]
    async fn readyz(State(app): State<AppState>) -> axum::response::Response {
        use axum::response::IntoResponse;
        let answer = health::readiness(&app).await;
        let status = if answer.ready {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        };
        (status, axum::Json(answer)).into_response()
    }

    /// `GET /info`: what build is running.
    #[utoipa::path(get, path = "/info", tag = "health",
        responses((status = 200, description = "The function's name, version and git commit", body = health::Info)))]
    async fn info() -> axum::Json<health::Info> {
        axum::Json(health::info())
    }

    /// `GET /openapi.json`: this API's description (OpenAPI 3.1).
    #[utoipa::path(get, path = "/openapi.json", tag = "health", responses(
        (status = 200, description = "The OpenAPI 3.1 document: the whole API through API Gateway, \
         the function's own part through its function URL", content_type = "application/json")))]
    async fn openapi_json(
        axum::Extension(document): axum::Extension<Described>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        (
            [(header::CONTENT_TYPE, "application/json")],
            document.rendered(),
        )
            .into_response()
    }

    crate::described_routes!(healthz, health_alias, readyz, info, openapi_json);
}

/// Which description a function serves at `GET /openapi.json`.
#[derive(Clone, Copy, Debug)]
pub enum Document {
    /// Its own part: its operations and the health endpoints (what its function URL serves).
    OwnPart,
    /// The whole API, as committed in docs/openapi.json (the function API Gateway routes
    /// `/openapi.json` to).
    Whole(&'static str),
}

/// The description a function serves, rendered once, on the first request.
#[derive(Clone)]
struct Described {
    text: std::sync::Arc<std::sync::OnceLock<axum::body::Bytes>>,
    source: std::sync::Arc<DescribedSource>,
}

enum DescribedSource {
    /// The function's name and its described routes.
    Part(&'static str, fn() -> OpenApiRouter<AppState>),
    Whole(&'static str),
}

impl std::fmt::Debug for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Described").finish_non_exhaustive()
    }
}

impl Described {
    fn rendered(&self) -> axum::body::Bytes {
        self.text
            .get_or_init(|| match &*self.source {
                DescribedSource::Whole(text) => axum::body::Bytes::from_static(text.as_bytes()),
                DescribedSource::Part(function, api) => {
                    crate::openapi::render(&describe(function, api())).into()
                }
            })
            .clone()
    }
}

/// Routes a handler at the path and methods of its `#[utoipa::path]` annotation, reading
/// nothing else of it: building the operation and its schemas is left to [`describe`], so a
/// cold start does not pay for the description (see [`described_routes!`]).
pub fn route_of<P, H, T>(router: Router<AppState>, handler: H) -> Router<AppState>
where
    P: utoipa::Path,
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    use utoipa_axum::PathItemExt;
    let methods = P::methods()
        .iter()
        .fold(axum::routing::MethodRouter::new(), |methods, method| {
            methods.on(method.to_method_filter(), handler.clone())
        });
    router.route(&P::path(), methods)
}

/// Declares a module's routes once, from its handlers' `#[utoipa::path]` annotations, as two
/// functions: `routes()`, the axum routes (paths and methods only: what a cold start pays),
/// and `api()`, the same routes with their descriptions (utoipa-axum), built only when the
/// document is asked for. Both come from the one list, so a route cannot be served
/// undescribed.
#[macro_export]
macro_rules! described_routes {
    ($($handler:ident),+ $(,)?) => {
        /// The routes, from the handlers' annotations.
        pub fn routes() -> ::axum::Router<$crate::AppState> {
            let router = ::axum::Router::new();
            $(
                let router = ::utoipa_axum::paste! {
                    $crate::http::route_of::<[<__path_ $handler>], _, _>(router, $handler)
                };
            )+
            router
        }

        /// The same routes, described.
        pub fn api() -> ::utoipa_axum::router::OpenApiRouter<$crate::AppState> {
            ::utoipa_axum::router::OpenApiRouter::new()
                $(.routes(::utoipa_axum::routes!($handler)))+
        }
    };
}

/// One function's part of the description: its operations (tagged with its name) and the
/// endpoints every function answers.
pub fn describe(function: &str, api: OpenApiRouter<AppState>) -> utoipa::openapi::OpenApi {
    crate::openapi::part(function, api.merge(endpoints::api()).into_openapi())
}

/// Turns a function's routes into its router: adds the health endpoints and `/openapi.json`
/// (serving `document`; a function's own part is built from `api` on the first request), the
/// request log, the envelope fallbacks (unknown route `404`, wrong method `405`) and the
/// state; with `API_BASE_PATH`, the routes answer under that prefix too.
pub fn finish(
    function: &'static str,
    routes: Router<AppState>,
    api: fn() -> OpenApiRouter<AppState>,
    document: Document,
    state: AppState,
) -> Router {
    let base_path = state.config.api_base_path.clone();
    let source = match document {
        Document::Whole(text) => DescribedSource::Whole(text),
        Document::OwnPart => DescribedSource::Part(function, api),
    };
    let described = Described {
        text: Default::default(),
        source: std::sync::Arc::new(source),
    };
    let routes = routes
        .route_layer(axum::middleware::from_fn(log_request))
        .merge(endpoints::routes())
        .layer(axum::Extension(described))
        .fallback(|uri: axum::http::Uri| async move {
            tracing::info!(route = "-", path = uri.path(), status = 404u16, "request");
            Error::NotFound("route")
        })
        .method_not_allowed_fallback(|uri: axum::http::Uri| async move {
            tracing::info!(route = "-", path = uri.path(), status = 405u16, "request");
            Error::MethodNotAllowed
        })
        .with_state(state);
    match base_path {
        Some(prefix) => Router::new()
            .nest(&prefix, routes.clone())
            .fallback_service(routes),
        None => routes,
    }
}
