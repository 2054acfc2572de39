//! The `twilio-webhooks` function (a function URL Twilio calls): the incoming-call webhook that
//! answers with TwiML, the status, AMD and recording callbacks, and WhatsApp's webhook checks.
//! Every Twilio request is signature-checked by the `TwilioWebhook` extractor before a handler
//! runs. Each handler calls one `callplane::service` function.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use callplane::http::{Document, Query, finish};
use callplane::openapi::WebhookErrors;
use callplane::service::webhooks;
use callplane::service::whatsapp::{self, WhatsappVerify};
use callplane::telephony::twilio::{TwilioWebhook, Twiml};
use callplane::{AppState, Result};

// The function's routes and their descriptions (reference/twilio.md; served through the function URL Twilio and Meta call).
callplane::described_routes!(
    incoming_call,
    call_status,
    amd_callback,
    recording_status,
    whatsapp_verify,
    whatsapp_event,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("twilio-webhooks", routes(), api, Document::OwnPart, state)
}

/// Twilio: a call to one of our numbers.
#[utoipa::path(
    post, path = "/webhooks/twilio/incoming-call",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's form parameters (CallSid, AccountSid, From, To, CallStatus, …), as signed"),
    security(("twilio_signature" = [])),
    responses((status = 200, description = "TwiML: connect the call to the establishment's runtime, or say why not and hang up", content_type = "text/xml", body = String), WebhookErrors)
)]
async fn incoming_call(State(app): State<AppState>, hook: TwilioWebhook) -> Result<Twiml> {
    webhooks::incoming_call(&app, &hook).await
}

/// Twilio: a call's status changed.
#[utoipa::path(
    post, path = "/webhooks/twilio/call-status",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's form parameters (CallSid, AccountSid, From, To, CallStatus, …), as signed"),
    security(("twilio_signature" = [])),
    responses((status = 204, description = "Applied (a repeated or late callback changes nothing)"), WebhookErrors)
)]
async fn call_status(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::call_status(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Twilio: answering machine detection's result for an outbound call.
#[utoipa::path(
    post, path = "/webhooks/twilio/amd-callback",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's form parameters (CallSid, AccountSid, From, To, CallStatus, …), as signed"),
    security(("twilio_signature" = [])),
    responses((status = 204, description = "Recorded"), WebhookErrors)
)]
async fn amd_callback(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::amd_result(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Twilio: a recording is ready.
#[utoipa::path(
    post, path = "/webhooks/twilio/recording-status",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's form parameters (CallSid, AccountSid, From, To, CallStatus, …), as signed"),
    security(("twilio_signature" = [])),
    responses((status = 204, description = "Recorded"), WebhookErrors)
)]
async fn recording_status(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::recording_status(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

/// Meta: subscription check of the WhatsApp webhook.
#[utoipa::path(
    get, path = "/webhooks/whatsapp",
    params(WhatsappVerify),
    responses((status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String), WebhookErrors)
)]
async fn whatsapp_verify(
    State(app): State<AppState>,
    Query(q): Query<WhatsappVerify>,
) -> Result<String> {
    whatsapp::whatsapp_verify(&app, &q)
}

/// Meta: a WhatsApp notification.
#[utoipa::path(
    post, path = "/webhooks/whatsapp",
    request_body(content = serde_json::Value, content_type = "application/json", description = "A WhatsApp Cloud API notification"),
    security(("whatsapp_signature" = [])),
    responses((status = 200, description = "Received"), WebhookErrors)
)]
async fn whatsapp_event(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    whatsapp::whatsapp_event(&app, signature, &body).map(|()| StatusCode::OK)
}
