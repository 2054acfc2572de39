//! The Twilio webhook edge: [`TwilioWebhook`] reads a form POST and refuses it (403, before any
//! handler runs) unless its `X-Twilio-Signature` matches the public URL Twilio sent it to;
//! [`Twiml`] answers with a TwiML document.

use super::signature;
use crate::AppState;
use crate::error::Error;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Largest webhook body we read (Twilio's are a few KiB).
const MAX_BODY: usize = 64 * 1024;

/// A signed Twilio webhook: its form parameters and its query parameters.
#[derive(Debug)]
pub struct TwilioWebhook {
    /// The form-encoded body, in order.
    pub params: Vec<(String, String)>,
    /// The query string (ours: we put `call_id` in the callback URLs we give Twilio).
    pub query: Vec<(String, String)>,
}

impl TwilioWebhook {
    /// The first value of form parameter `name`, if present and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        first(&self.params, name)
    }

    /// The first value of query parameter `name`, if present and not empty.
    pub fn query(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

impl FromRequest<AppState> for TwilioWebhook {
    type Rejection = Error;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Error> {
        let telephony = app.telephony()?;
        let (parts, body) = req.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path_and_query}", telephony.public_url);
        let signature = parts
            .headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Forbidden("missing X-Twilio-Signature".into()))?
            .to_owned();
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| Error::PayloadTooLarge { limit: MAX_BODY })?;
        let params: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        if !signature::is_valid(telephony.auth_token.expose(), &url, &params, &signature) {
            tracing::warn!(%url, "Twilio webhook with a signature that does not match");
            return Err(Error::Forbidden(
                "X-Twilio-Signature does not match this request".into(),
            ));
        }
        let query = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ok(Self { params, query })
    }
}

/// A TwiML document as a 200 `text/xml` response.
#[derive(Debug)]
pub struct Twiml(pub String);

impl IntoResponse for Twiml {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], self.0).into_response()
    }
}
