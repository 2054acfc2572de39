//! The one error type of the library and its single mapping to the HTTP error envelope
//! `{"error":{"code","message","details"}}`. Every handler returns `Result<_, Error>`; nothing
//! else writes an error body. 5xx bodies never carry internals: the cause chain goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Everything that can go wrong while serving a request, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or breaks a rule; `details` names the field.
    #[error("{message}")]
    Validation { message: String, details: Value },
    /// No valid credentials (missing, expired, tampered or revoked token; wrong password).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist *for this caller* (foreign tenants' resources included).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A resource a request field names does not exist for this caller; `field` names it.
    #[error("{field}: {message}")]
    NotFoundField {
        field: &'static str,
        message: String,
    },
    /// The request conflicts with current state (uniqueness, a lost race, a used token).
    #[error("{0}")]
    Conflict(String),
    /// A request field conflicts with current state; `field` names it.
    #[error("{field}: {message}")]
    ConflictField {
        field: &'static str,
        message: String,
    },
    /// The request is well-formed but cannot be carried out as asked (a number the provider
    /// refuses, a callee on the do-not-call list, no handoff number); `code` says which rule.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    /// Like [`Error::Unprocessable`], with what the client needs to see why (a campaign
    /// start with no lead to dial carries its preview).
    #[error("{message}")]
    UnprocessableWith {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// The body is larger than the API accepts.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A dependency is unavailable right now (no runtime host, a queue down); retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Something on our side failed; the source goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A validation failure that names the offending field.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Error::Validation {
            message: format!("{field}: {message}"),
            details: json!({ "field": field }),
        }
    }

    /// A conflict with current state caused by the value of `field`.
    pub fn conflict_on(field: &'static str, message: impl Into<String>) -> Self {
        Error::ConflictField {
            field,
            message: message.into(),
        }
    }

    /// A request that breaks business rule `code` (422), naming the field when there is one.
    pub fn unprocessable(
        code: &'static str,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Unprocessable {
            code,
            message: message.into(),
            field,
        }
    }

    /// Wraps any error as an internal failure.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(err.into())
    }

    /// The stable snake_case code and HTTP status of this error.
    pub fn code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Validation { .. } => (StatusCode::BAD_REQUEST, "validation_failed"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) | Error::NotFoundField { .. } => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Error::Conflict(_) | Error::ConflictField { .. } => (StatusCode::CONFLICT, "conflict"),
            Error::Unprocessable { code, .. } | Error::UnprocessableWith { code, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code)
            }
            Error::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

type DynamoResponse = aws_sdk_dynamodb::config::http::HttpResponse;

impl<E> From<aws_sdk_dynamodb::error::SdkError<E, DynamoResponse>> for Error
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    /// What DynamoDB still refuses after the retries (throttling, a conflicting transaction,
    /// its own 5xx) is a 503 the client may retry; anything else is a bug of ours.
    fn from(err: aws_sdk_dynamodb::error::SdkError<E, DynamoResponse>) -> Self {
        use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
        let busy = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ServiceError(e) => {
                e.raw().status().is_server_error()
                    || matches!(
                        err.code(),
                        Some(
                            "ThrottlingException"
                                | "ProvisionedThroughputExceededException"
                                | "RequestLimitExceeded"
                                | "TransactionConflictException"
                        )
                    )
            }
            _ => false,
        };
        if busy {
            tracing::warn!(error = ?err, "DynamoDB unavailable after retries");
            Error::Unavailable("the database is busy; retry shortly".into())
        } else {
            Error::internal(err)
        }
    }
}

impl From<serde_dynamo::Error> for Error {
    fn from(err: serde_dynamo::Error) -> Self {
        Error::internal(err)
    }
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong: a stable code, a message for people, and details for programs.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code: `validation_failed`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `method_not_allowed`,
    /// `unavailable`, `internal`, or a 422 rule's own code (`do_not_call`, …).
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    #[schema(example = "name: must not be empty")]
    pub message: String,
    /// `field` names the offending field where there is one; `limit_bytes` for 413.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl Error {
    /// The envelope's `error` object: `{"code","message","details"}`. Internal causes go to
    /// the log here, never into the object.
    pub fn envelope(&self) -> ErrorBody {
        let (_, code) = self.code();
        let details = match self {
            Error::Validation { details, .. } | Error::UnprocessableWith { details, .. } => {
                details.clone()
            }
            Error::NotFoundField { field, .. } | Error::ConflictField { field, .. } => {
                json!({ "field": field })
            }
            Error::Unprocessable {
                field: Some(field), ..
            } => json!({ "field": field }),
            Error::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            _ => json!({}),
        };
        if let Error::Internal(source) = self {
            let mut chain = source.to_string();
            let mut next = source.source();
            while let Some(cause) = next {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                next = cause.source();
            }
            tracing::error!(error = %chain, "internal error");
        }
        ErrorBody {
            code,
            message: self.to_string(),
            details,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, _) = self.code();
        let body = ErrorEnvelope {
            error: self.envelope(),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
