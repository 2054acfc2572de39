//! WhatsApp's webhooks (Meta Cloud API): the subscription check and signed event
//! notifications. Calls arriving this way are logged; the WhatsApp calling adapter that will
//! act on them is not built yet (docs/decisions.md).

use crate::app::App;
use crate::error::{Error, Result};
use crate::telephony::whatsapp;

/// Meta's subscription check (`GET /webhooks/whatsapp`).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WhatsappVerify {
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: echoes the challenge for our verify token, else 403. 404 while
/// WhatsApp is not configured.
pub fn whatsapp_verify(app: &App, q: &WhatsappVerify) -> Result<String> {
    let expected = app
        .telephony()?
        .whatsapp_verify_token
        .as_ref()
        .ok_or(Error::NotFound("route"))?
        .expose();
    whatsapp::verify_subscription(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
        expected,
    )
    .map(str::to_owned)
    .ok_or_else(|| Error::Forbidden("hub.verify_token does not match".into()))
}

/// `POST /webhooks/whatsapp`: accepts a signed event notification. Calls are logged; the
/// WhatsApp calling adapter that will act on them is not built yet (docs/decisions.md).
pub fn whatsapp_event(app: &App, signature: Option<&str>, body: &[u8]) -> Result<()> {
    let secret = app
        .telephony()?
        .whatsapp_app_secret
        .as_ref()
        .ok_or(Error::NotFound("route"))?
        .expose();
    let signature =
        signature.ok_or_else(|| Error::Forbidden("missing X-Hub-Signature-256".into()))?;
    if !whatsapp::signature_is_valid(secret, body, signature) {
        tracing::warn!("WhatsApp webhook with a signature that does not match");
        return Err(Error::Forbidden(
            "X-Hub-Signature-256 does not match the body".into(),
        ));
    }
    let event: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("not JSON: {e}")))?;
    let calls = event["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
        .flat_map(|c| c["value"]["calls"].as_array().into_iter().flatten())
        .count();
    tracing::info!(calls, "WhatsApp event received");
    Ok(())
}
