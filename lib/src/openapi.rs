//! The API's description (OpenAPI 3.1). Operations are declared beside their handlers with
//! utoipa-axum's `routes!`, which registers the route and its description together, so a
//! route cannot be served undescribed. This module owns what every function's part shares:
//! the document's info and security schemes, the error envelope and the error answers of each
//! kind of route, the schemas of values parsed from text (ids, E.164 numbers, emails), the
//! merge of the parts into the whole document, and serving a document at `GET /openapi.json`.

use std::collections::BTreeMap;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, OpenApiBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

/// Security scheme names, as operations name them in `security(...)`.
pub mod scheme {
    /// A user's session token (`POST /auth/login`): `Authorization: Bearer <jwt>`.
    pub const USER: &str = "user_token";
    /// A runtime's ingest token: `Authorization: Bearer <token>`.
    pub const INGEST: &str = "ingest_token";
    /// A runtime host agent's token: `Authorization: Bearer <token>`.
    pub const HOST: &str = "host_token";
    /// Twilio's `X-Twilio-Signature` over the public URL and the form parameters.
    pub const TWILIO: &str = "twilio_signature";
    /// Meta's `X-Hub-Signature-256` over the body (WhatsApp Cloud API webhooks).
    pub const WHATSAPP: &str = "whatsapp_signature";
}

/// The shared frame of every part: info, security schemes, the error envelope schema.
fn frame() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Callplane API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The control plane of AI voice-agent runtimes. Every error answers \
                     `{\"error\":{\"code\",\"message\",\"details\"}}`; docs/api.md has the \
                     decisions and state machines behind the shapes described here.",
                ))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |format: &str, about: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .description(Some(about))
                .build(),
        )
    };
    components.add_security_scheme(
        scheme::USER,
        bearer("JWT", "A user's session token from POST /auth/login."),
    );
    components.add_security_scheme(
        scheme::INGEST,
        bearer(
            "opaque",
            "A runtime's ingest token (RUNTIME_INGEST_TOKEN in its environment).",
        ),
    );
    components.add_security_scheme(
        scheme::HOST,
        bearer(
            "opaque",
            "A runtime host agent's token, issued at registration.",
        ),
    );
    components.add_security_scheme(
        scheme::TWILIO,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Twilio-Signature",
            "HMAC-SHA1 of the public URL Twilio called and the sorted form parameters, \
             keyed by the account's auth token.",
        ))),
    );
    components.add_security_scheme(
        scheme::WHATSAPP,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Hub-Signature-256",
            "sha256= HMAC of the body keyed by the Meta app secret.",
        ))),
    );
    let mut schemas = Vec::new();
    <crate::error::ErrorEnvelope as ToSchema>::schemas(&mut schemas);
    schemas.push(named::<crate::error::ErrorEnvelope>());
    // Path parameters refer to these by name, and utoipa collects only the schemas of bodies.
    {
        use crate::ids::*;
        schemas.extend([
            named::<EstablishmentId>(),
            named::<UserId>(),
            named::<InvitationId>(),
            named::<AgentId>(),
            named::<AgentVersionId>(),
            named::<PhoneNumberId>(),
            named::<AuditId>(),
            named::<RuntimeId>(),
            named::<CommandId>(),
            named::<CallId>(),
            named::<crate::domain::HostId>(),
            named::<crate::domain::E164>(),
            named::<crate::time::Timestamp>(),
        ]);
    }
    components.schemas.extend(schemas);
    components.responses.extend(error_responses());
    doc
}

fn named<T: ToSchema>() -> (String, RefOr<utoipa::openapi::schema::Schema>) {
    (T::name().into_owned(), T::schema())
}

/// One function's part: the frame with its operations, each tagged with the function's name
/// (how the frontend groups them). Served by the function at `GET /openapi.json`.
pub fn part(function: &str, operations: OpenApi) -> OpenApi {
    let mut doc = frame();
    let mut operations = operations;
    for item in operations.paths.paths.values_mut() {
        for operation in operations_of(item) {
            let tags = operation.tags.get_or_insert_with(Vec::new);
            if tags.is_empty() {
                tags.push(function.to_owned());
            }
        }
    }
    doc.merge(operations);
    doc
}

/// The whole API: every function's part merged (`make openapi` writes it to
/// docs/openapi.json; the auth function serves it through API Gateway).
pub fn whole(parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut doc = frame();
    for part in parts {
        doc.merge(part);
    }
    doc
}

fn operations_of(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The methods a path item describes.
pub fn methods_of(item: &utoipa::openapi::PathItem) -> Vec<HttpMethod> {
    [
        (item.get.is_some(), HttpMethod::Get),
        (item.put.is_some(), HttpMethod::Put),
        (item.post.is_some(), HttpMethod::Post),
        (item.delete.is_some(), HttpMethod::Delete),
        (item.patch.is_some(), HttpMethod::Patch),
    ]
    .into_iter()
    .filter_map(|(has, method)| has.then_some(method))
    .collect()
}

/// The document as served: pretty JSON with a trailing newline, byte for byte what
/// `make openapi` commits.
pub fn render(doc: &OpenApi) -> String {
    let mut text = doc.to_pretty_json().unwrap_or_else(|e| {
        // Serialising a tree of strings and maps cannot fail; say so loudly if it ever does.
        tracing::error!(error = %e, "the API description did not serialise");
        "{}".to_owned()
    });
    text.push('\n');
    text
}

// --- Error answers -----------------------------------------------------------------------------

/// The error answers, each a named response of the document's components that operations
/// refer to (`#/components/responses/...`).
fn error_answers(answers: &[ErrorAnswer]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|(status, name, _)| {
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// The named error responses, for the components.
fn error_responses() -> Vec<(String, RefOr<Response>)> {
    EVERY_ERROR_ANSWER
        .iter()
        .map(|(_, name, when)| {
            let response = ResponseBuilder::new()
                .description(*when)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name(
                        <crate::error::ErrorEnvelope as ToSchema>::name(),
                    ))),
                )
                .build();
            ((*name).to_owned(), RefOr::T(response))
        })
        .collect()
}

/// Status, component name, when it is answered.
type ErrorAnswer = (u16, &'static str, &'static str);

/// Every error answer an operation may list.
const EVERY_ERROR_ANSWER: [ErrorAnswer; 10] = [
    BAD_INPUT,
    NO_TOKEN,
    FORBIDDEN,
    BAD_SIGNATURE,
    NOT_FOUND,
    CONFLICT,
    TOO_LARGE,
    NOT_JSON,
    UNPROCESSABLE,
    BUSY,
];

const BAD_INPUT: ErrorAnswer = (
    400,
    "BadInput",
    "validation_failed: a parameter or field is malformed or breaks a rule; details.field names it",
);
const NO_TOKEN: ErrorAnswer = (
    401,
    "Unauthorized",
    "unauthorized: the token is missing, malformed, expired or revoked",
);
const FORBIDDEN: ErrorAnswer = (
    403,
    "Forbidden",
    "forbidden: the caller's role does not allow this",
);
const BAD_SIGNATURE: ErrorAnswer = (
    403,
    "BadSignature",
    "forbidden: the provider's signature is missing or wrong",
);
const NOT_FOUND: ErrorAnswer = (
    404,
    "NotFound",
    "not_found: no such resource for this caller (another tenant's resources included)",
);
const CONFLICT: ErrorAnswer = (
    409,
    "Conflict",
    "conflict: the request conflicts with current state",
);
const TOO_LARGE: ErrorAnswer = (
    413,
    "PayloadTooLarge",
    "payload_too_large: the body is over 256 KiB",
);
const NOT_JSON: ErrorAnswer = (
    415,
    "UnsupportedMediaType",
    "unsupported_media_type: the body is not JSON",
);
const UNPROCESSABLE: ErrorAnswer = (
    422,
    "Unprocessable",
    "a business rule refuses the request; the code names the rule",
);
const BUSY: ErrorAnswer = (
    503,
    "Unavailable",
    "unavailable: a dependency is busy or down (the database after its retries, the \
     telephony provider, no runtime host); retry later",
);

/// The error answers of a read by a signed-in user.
#[derive(Debug)]
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers(&[BAD_INPUT, NO_TOKEN, FORBIDDEN, NOT_FOUND, BUSY])
    }
}

/// The error answers of a change by a signed-in user, a runtime or a host agent.
#[derive(Debug)]
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers(&[
            BAD_INPUT,
            NO_TOKEN,
            FORBIDDEN,
            NOT_FOUND,
            CONFLICT,
            TOO_LARGE,
            NOT_JSON,
            UNPROCESSABLE,
            BUSY,
        ])
    }
}

/// The error answers of the unauthenticated account routes (login, password reset,
/// invitations).
#[derive(Debug)]
pub struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers(&[BAD_INPUT, NO_TOKEN, CONFLICT, TOO_LARGE, NOT_JSON, BUSY])
    }
}

/// The error answers of a provider's webhook (Twilio, WhatsApp): a bad signature is 403.
#[derive(Debug)]
pub struct WebhookErrors;

impl IntoResponses for WebhookErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_answers(&[BAD_INPUT, BAD_SIGNATURE, NOT_FOUND, TOO_LARGE, BUSY])
    }
}

// --- Schemas of parsed values ------------------------------------------------------------------

/// Text with something besides white space and no control characters (names, labels).
pub const PRINTABLE_TEXT: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// A string schema with a pattern and a description, for values that `parse` builds.
pub(crate) fn text(
    pattern: Option<&str>,
    format: Option<&str>,
    about: &str,
) -> RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let mut builder = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(about));
    if let Some(pattern) = pattern {
        builder = builder.pattern(Some(pattern));
    }
    if let Some(format) = format {
        let format = match format {
            "email" => SchemaFormat::KnownFormat(KnownFormat::Email),
            "date-time" => SchemaFormat::KnownFormat(KnownFormat::DateTime),
            other => SchemaFormat::Custom(other.to_owned()),
        };
        builder = builder.format(Some(format));
    }
    RefOr::T(builder.into())
}

/// Implements `ToSchema` for a type serialised as a string, with a pattern and format.
macro_rules! text_schema {
    ($ty:ty, $name:expr, $pattern:expr, $format:expr, $about:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::openapi::text($pattern, $format, $about)
            }
        }
        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}
pub(crate) use text_schema;
