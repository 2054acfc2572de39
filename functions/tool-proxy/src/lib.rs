//! The `tool-proxy` function, behind a function URL next to ingest: runtimes call business
//! tools here during a call (PRD §7.8, §9.4), authenticated by their ingest token. Every body
//! names the call (`call_id` or `provider_call_sid`) beside the tool's arguments; every answer
//! is `{ok, result, error: {code, message, retryable}}`. Each handler calls
//! `callplane::service::tool_proxy::call`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use callplane::AppState;
use callplane::http::{Document, MAX_BODY_BYTES, finish};
use callplane::service::tool_proxy::{self, ProxyTool, ToolAnswer, ToolReply};

// The function's routes and their descriptions (PRD §7.8: the runtimes' side).
callplane::described_routes!(
    email_send,
    calendar_create_event,
    calendar_find_free_slots,
    whatsapp_send_message,
    crm_find_contact,
    crm_upsert_contact,
    crm_create_note,
    crm_log_call,
    handoff,
    dnc_add,
);

/// The function's router.
pub fn router(state: AppState) -> Router {
    finish("tool-proxy", routes(), api, Document::OwnPart, state)
}

/// Runs one tool call and answers it with its status (and `Retry-After`).
async fn serve(app: &AppState, tool: ProxyTool, headers: &HeaderMap, body: &Bytes) -> Response {
    let reply = if body.len() > MAX_BODY_BYTES {
        ToolReply::refused(
            413,
            "payload_too_large",
            "the body is larger than 256 KiB",
            false,
        )
    } else {
        match serde_json::from_slice(body) {
            Err(e) => ToolReply::refused(
                400,
                "validation_failed",
                format!("body: not JSON: {e}"),
                false,
            ),
            Ok(body) => {
                let token = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
                tool_proxy::call(app, tool, token, key, body).await
            }
        }
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Json(reply.answer)).into_response();
    if let Some(seconds) = reply.retry_after
        && let Ok(value) = header::HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// One handler per tool: the same checks and answer shape (`serve`), described for OpenAPI.
macro_rules! tool_route {
    ($name:ident, $path:literal, $tool:ident, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post, path = $path,
            request_body(content = Object, description = "`call_id` or `provider_call_sid`, and the tool's arguments"),
            params(("Idempotency-Key" = Option<String>, Header, description = "The runtime's tool-call id: a retry gets the first answer and sends nothing twice")),
            security(("ingest_token" = [])),
            responses(
                (status = 200, description = "Done", body = ToolAnswer),
                (status = 400, description = "Bad arguments (the message names the field)", body = ToolAnswer),
                (status = 401, description = "No ingest token", body = ToolAnswer),
                (status = 403, description = "`tool_not_enabled`, `integration_missing`, `integration_disabled`, `integration_not_connected`", body = ToolAnswer),
                (status = 404, description = "No call of this runtime has that id", body = ToolAnswer),
                (status = 409, description = "`call_ended`, `in_progress`, `outcome_unknown`", body = ToolAnswer),
                (status = 413, description = "The body is over 256 KiB", body = ToolAnswer),
                (status = 422, description = "The provider or a rule refused it", body = ToolAnswer),
                (status = 429, description = "`rate_limited` (see `Retry-After`)", body = ToolAnswer),
                (status = 502, description = "The provider failed or refused the credentials", body = ToolAnswer),
                (status = 503, description = "Busy; retry", body = ToolAnswer),
                (status = 504, description = "The provider did not answer in time", body = ToolAnswer),
            )
        )]
        async fn $name(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
            serve(&app, ProxyTool::$tool, &headers, &body).await
        }
    };
}

tool_route!(
    email_send,
    "/tool-proxy/email/send",
    EmailSend,
    "Send an email through the establishment's email integration (`email` tool): `{to, subject, text?, html?, reply_to?}`."
);

tool_route!(
    calendar_create_event,
    "/tool-proxy/calendar/create_event",
    CalendarCreateEvent,
    "Create a Google Calendar event (`calendar` tool): `{summary, start, end, time_zone?, attendees?, description?}` (RFC 3339 instants)."
);

tool_route!(
    calendar_find_free_slots,
    "/tool-proxy/calendar/find_free_slots",
    CalendarFindFreeSlots,
    "Free slots of the primary calendar (`calendar` tool): `{start, end, duration_minutes, time_zone?, max_slots?}`."
);

tool_route!(
    whatsapp_send_message,
    "/tool-proxy/whatsapp/send_message",
    WhatsappSendMessage,
    "Send a WhatsApp message (`whatsapp_messaging` tool): `{to, text}` or `{to, template: {name, language, components?}}`."
);

tool_route!(
    crm_find_contact,
    "/tool-proxy/crm/find_contact",
    CrmFindContact,
    "Find a HubSpot contact (`crm` tool) by `{email}` or `{phone}`."
);

tool_route!(
    crm_upsert_contact,
    "/tool-proxy/crm/upsert_contact",
    CrmUpsertContact,
    "Create or update a HubSpot contact (`crm` tool), matched by email, else phone: `{email?, phone?, first_name?, last_name?, company?}`."
);

tool_route!(
    crm_create_note,
    "/tool-proxy/crm/create_note",
    CrmCreateNote,
    "Add a note to a HubSpot contact (`crm` tool): `{contact_id, body}`."
);

tool_route!(
    crm_log_call,
    "/tool-proxy/crm/log_call",
    CrmLogCall,
    "Log this call on a HubSpot contact (`crm` tool): `{contact_id, title?, body?}`; direction, numbers, time and length come from the call."
);

tool_route!(
    handoff,
    "/tool-proxy/handoff",
    Handoff,
    "Built in, every agent: transfer the call to the establishment's handoff number, as `POST /calls/{id}/handoff` does: `{reason}`."
);

tool_route!(
    dnc_add,
    "/tool-proxy/dnc/add",
    DncAdd,
    "Built in, every agent: the caller opts out; their number joins the do-not-call list (audited as the runtime's act) and its lead turns `do_not_call`: `{reason?}`."
);
