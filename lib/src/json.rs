//! Reading JSON documents into typed values with errors that name the field: a missing field
//! is named itself (`event.idempotency_key`), a wrong type or value by its path. Used by the
//! HTTP extractors and by domain parsers that read nested documents (runtime events).

use crate::error::Error;
use serde::de::DeserializeOwned;

/// Parses a JSON document, naming the failing field path in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("body", "a JSON body is required"));
    }
    // Syntax first, then shape: deserialising straight from bytes reports a wrong type where
    // an enum is expected as a syntax error ("expected value"), which names no field.
    let document: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("body", format!("malformed JSON: {e}")))?;
    from_value(document)
}

/// Deserialises a parsed JSON document, naming the failing field path in the error.
pub fn from_value<T: DeserializeOwned>(document: serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(document).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        Error::invalid(missing_field_path(&path, &message), message)
    })
}

/// The dotted path of the field a serde error is about. A missing field is reported at the
/// object that lacks it; the path then names the field itself (`event.idempotency_key`).
pub fn missing_field_path(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(field)) => field.to_owned(),
        (_, Some(field)) => format!("{path}.{field}"),
        (".", None) => "body".to_owned(),
        (_, None) => path.to_owned(),
    }
}
