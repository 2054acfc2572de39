//! The `twilio-webhooks` function (a function URL Twilio calls): the incoming-call webhook that
//! answers with TwiML, the status, AMD and recording callbacks, and WhatsApp's webhook checks.
//! Every Twilio request is signature-checked by the `TwilioWebhook` extractor before a handler
//! runs. Each handler calls one `callplane::service` function.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use callplane::http::{Query, finish};
use callplane::service::webhooks;
use callplane::service::whatsapp::{self, WhatsappVerify};
use callplane::telephony::twilio::{TwilioWebhook, Twiml};
use callplane::{AppState, Result};

/// The function's routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/webhooks/twilio/incoming-call", post(incoming_call))
        .route("/webhooks/twilio/call-status", post(call_status))
        .route("/webhooks/twilio/amd-callback", post(amd_callback))
        .route("/webhooks/twilio/recording-status", post(recording_status))
        .route(
            "/webhooks/whatsapp",
            axum::routing::get(whatsapp_verify).post(whatsapp_event),
        );
    finish(routes, state)
}

async fn incoming_call(State(app): State<AppState>, hook: TwilioWebhook) -> Result<Twiml> {
    webhooks::incoming_call(&app, &hook).await
}

async fn call_status(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::call_status(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn amd_callback(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::amd_result(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn recording_status(State(app): State<AppState>, hook: TwilioWebhook) -> Result<StatusCode> {
    webhooks::recording_status(&app, &hook)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn whatsapp_verify(
    State(app): State<AppState>,
    Query(q): Query<WhatsappVerify>,
) -> Result<String> {
    whatsapp::whatsapp_verify(&app, &q)
}

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
