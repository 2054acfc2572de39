//! Integrations and the tool proxy (issue 16), against stand-ins speaking Google OAuth and
//! Calendar v3, the WhatsApp Cloud API, HubSpot CRM v3 and SMTP: Google's consent round trip
//! with PKCE and a single-use state, refresh on expiry, a revoked grant turning the
//! connection to `error`; the proxy's checks, idempotency, rate limit, provider failures and
//! built-in opt-out, each visible in the call's tool log; no token in clear in the table.

use super::ingest::{CALLER, NUMBER, world};
use callplane::domain::NumberProvider;
use callplane::domain::integration::IntegrationType;
use callplane::ids::EstablishmentId;
use callplane::store::keys;
use callplane_tests::providers::{self, FakeProviders};
use callplane_tests::world::incoming;
use callplane_tests::{Reply, Stack};
use http::{Method, Request};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A stack whose providers are the stand-ins, with `extra` settings.
async fn stack_with(extra: &[(&'static str, &str)]) -> (Stack, FakeProviders) {
    let base = Stack::new().await;
    let fake = FakeProviders::start().await;
    let env = fake.env();
    let mut changes: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    changes.extend_from_slice(extra);
    (base.redeployed(&changes), fake)
}

/// The raw stored item of `est`'s connection of `kind`, as text.
async fn raw_integration(stack: &Stack, est: &str, kind: IntegrationType) -> String {
    let est = EstablishmentId::parse(est).unwrap();
    let item = stack
        .app
        .store
        .client()
        .get_item()
        .table_name(stack.app.store.table())
        .set_key(Some(keys::integration(&est, kind).attrs()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the stored integration");
    format!("{item:?}")
}

/// Connects Google Calendar for `est` through the consent round trip (the browser following
/// the auth URL to the stand-in's consent page and back); returns the id.
async fn consent(stack: &Stack, admin: &str, est: &str) -> String {
    let body = stack
        .post(
            &format!("/establishments/{est}/integrations"),
            admin,
            json!({"type": "google_calendar", "display_name": "Front desk calendar",
                   "auth": {"mode": "oauth", "redirect_url": "http://app.test/settings/integrations"}}),
        )
        .await
        .expect(201).clone();
    // The browser goes to Google's consent page (the stand-in's allows at once) and comes
    // back to the callback with a code and the state.
    let http = callplane::web::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consented = http
        .get(body["auth_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(consented.status(), 302);
    let location = consented.headers()["location"].to_str().unwrap().to_owned();
    let query = location
        .strip_prefix("https://api.test/integrations/oauth/callback?")
        .expect("back to the callback");
    let back = callback(stack, query).await;
    assert_eq!(back.status, 302, "{:?}", back.body);
    body["integration_id"].as_str().unwrap().to_owned()
}

fn auth_query(body: &Value) -> HashMap<String, String> {
    let url = body["auth_url"].as_str().expect("auth_url");
    form_urlencoded::parse(url.split_once('?').expect("a query").1.as_bytes())
        .into_owned()
        .collect()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn callback(stack: &Stack, query: &str) -> Reply {
    stack
        .send(
            Method::GET,
            &format!("/integrations/oauth/callback?{query}"),
            None,
            None,
        )
        .await
}

#[tokio::test]
async fn google_calendar_connects_by_consent_refreshes_and_turns_error_when_revoked() {
    // GIVEN a stack whose Google is the stand-in, whose access tokens live 30 s (under the
    // refresh margin, so every use refreshes)
    let (stack, fake) = stack_with(&[]).await;
    fake.expire_in(30);
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;

    // WHEN an admin connects Google Calendar
    let body = stack
        .post(
            &format!("/establishments/{est}/integrations"),
            &admin,
            json!({"type": "google_calendar", "display_name": "Front desk calendar",
                   "auth": {"mode": "oauth", "redirect_url": "http://app.test/settings/integrations"}}),
        )
        .await
        .expect(201).clone();
    // THEN it waits for consent, with Google's URL carrying PKCE, offline access and a state
    assert_eq!(body["status"], "pending_auth");
    let id = body["integration_id"].as_str().unwrap().to_owned();
    let url = body["auth_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/google/auth?", fake.base_url)),
        "{url}"
    );
    let query = auth_query(&body);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["response_type"], "code");
    assert_eq!(
        query["redirect_uri"],
        "https://api.test/integrations/oauth/callback"
    );
    assert_eq!(
        query["client_id"],
        "callplane-test.apps.googleusercontent.com"
    );
    assert_eq!(query["code_challenge"].len(), 43);

    // WHEN the user consents and Google sends the browser back with a code
    fake.grant("4/0AX4XfWh-code", &query["code_challenge"]);
    let state = enc(&query["state"]);
    let back = callback(&stack, &format!("state={state}&code=4/0AX4XfWh-code")).await;
    // THEN the browser goes back to the frontend with the outcome, the code was exchanged
    // with the verifier (the stand-in checks S256), and the connection is connected
    assert_eq!(back.status, 302, "{:?}", back.body);
    let location = back.headers["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("http://app.test/settings/integrations?integration_id={id}&outcome=connected")
    );
    let view = stack
        .get(&format!("/integrations/{id}"), &admin)
        .await
        .expect(200)
        .clone();
    assert_eq!(view["status"], "connected");
    assert_eq!(view["type"], "google_calendar");
    let exchange = fake.seen("/google/token");
    assert_eq!(exchange.len(), 1);
    assert!(exchange[0].body.contains("grant_type=authorization_code"));
    assert!(exchange[0].body.contains("code_verifier="));
    // AND no answer and no stored item carries a token
    let list = stack
        .get(&format!("/establishments/{est}/integrations"), &admin)
        .await
        .expect(200)
        .clone();
    for text in [
        view.to_string(),
        list.to_string(),
        raw_integration(&stack, &est, IntegrationType::GoogleCalendar).await,
    ] {
        assert!(!text.contains("ya29."), "{text}");
        assert!(!text.contains("1//refresh"), "{text}");
    }

    // WHEN the same state comes back a second time (a replayed redirect)
    let replay = callback(&stack, &format!("state={state}&code=4/0AX4XfWh-code")).await;
    // THEN it is refused, naming the state
    assert_eq!(replay.status, 400, "{:?}", replay.body);
    assert_eq!(replay.body["error"]["details"]["field"], "state");
    // AND a forged state is refused the same way
    let forged = callback(&stack, "state=abc.9999999999.forged&code=x").await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.body["error"]["details"]["field"], "state");

    // WHEN the admin tests it with the access token expired
    let tested = stack
        .post_empty(&format!("/integrations/{id}/test"), &admin)
        .await
        .expect(200)
        .clone();
    // THEN the token was refreshed first, and the calendar read with the new one
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["detail"]["calendar_id"], "owner@example.com");
    let tokens = fake.seen("/google/token");
    assert_eq!(tokens.len(), 2);
    assert!(tokens[1].body.contains("grant_type=refresh_token"));
    assert!(tokens[1].body.contains("refresh_token=1%2F%2Frefresh-1"));
    let reads = fake.seen("/calendar/calendars/primary");
    assert_eq!(
        reads.last().unwrap().authorization.as_deref(),
        Some("Bearer ya29.access-2")
    );

    // WHEN the user revokes the grant at Google, then the admin tests again
    fake.revoke_all();
    let tested = stack
        .post_empty(&format!("/integrations/{id}/test"), &admin)
        .await
        .expect(200)
        .clone();
    // THEN the test says what failed and the connection is in error, saying why
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["error"]["code"], "integration_unauthorized");
    assert_eq!(tested["status"], "error");
    let view = stack
        .get(&format!("/integrations/{id}"), &admin)
        .await
        .expect(200)
        .clone();
    assert_eq!(view["status"], "error");
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{view}"
    );

    // WHEN the admin disconnects it
    let gone = stack
        .send(
            Method::DELETE,
            &format!("/integrations/{id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(200)
        .clone();
    // THEN Google was asked to revoke the refresh token and the connection is gone
    assert_eq!(gone["integration_id"], id.as_str());
    let revokes = fake.seen("/google/revoke");
    assert_eq!(revokes.len(), 1);
    assert!(revokes[0].body.contains("token=1%2F%2Frefresh-1"));
    stack
        .get(&format!("/integrations/{id}"), &admin)
        .await
        .expect(404);
    let actions = stack.audit_actions(&admin, &est).await;
    assert!(actions.contains(&"integration.connected".to_owned()));
    assert!(actions.contains(&"integration.disconnected".to_owned()));
}

/// A tool-proxy request as a runtime sends it.
async fn tool(stack: &Stack, path: &str, token: &str, key: Option<&str>, body: Value) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/tool-proxy/{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    stack
        .send_raw(req.body(axum::body::Body::from(body.to_string())).unwrap())
        .await
}

fn error_code(reply: &Reply) -> String {
    reply.body["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

#[tokio::test]
async fn the_tool_proxy_checks_sends_once_limits_and_logs_every_call() {
    // GIVEN a live call on a runtime, whose version enables email and calendar (not WhatsApp),
    // emails limited to 3 a minute
    let (stack, fake) = stack_with(&[("TOOL_RATE_LIMITS", "email=3")]).await;
    let rt = world(&stack, NUMBER).await;
    let sid = "CA7f00000000000000000000000000a001";
    incoming(&stack, sid, CALLER, NUMBER).await;
    let call_id = stack
        .app
        .store
        .call_by_sid(NumberProvider::Twilio, sid)
        .await
        .unwrap()
        .expect("the call")
        .call_id
        .to_string();
    let on = |extra: Value| {
        let mut body = json!({"call_id": call_id});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    // AND the establishment's email (SES sender with its name and reply-to) and WhatsApp
    let admin = &rt.admin;
    let email = stack
        .post(
            &format!("/establishments/{}/integrations", rt.est),
            admin,
            json!({"type": "email", "display_name": "Desk mail",
                   "auth": {"mode": "ses", "from_name": "Helios Front Desk", "reply_to": "desk@helios.example"}}),
        )
        .await
        .expect(201).clone();
    assert_eq!(email["status"], "connected");
    let email_id = email["integration_id"].as_str().unwrap().to_owned();
    let whatsapp = stack
        .post(
            &format!("/establishments/{}/integrations", rt.est),
            admin,
            json!({"type": "whatsapp_messaging", "display_name": "WhatsApp",
                   "auth": {"mode": "token", "phone_number_id": providers::WHATSAPP_NUMBER_ID,
                            "access_token": providers::WHATSAPP_TOKEN}}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(whatsapp["status"], "connected");
    // THEN the WhatsApp token was checked against the Graph API, and is stored sealed
    assert_eq!(
        fake.seen(&format!("/graph/{}", providers::WHATSAPP_NUMBER_ID))
            .len(),
        1
    );
    let raw = raw_integration(&stack, &rt.est, IntegrationType::WhatsappMessaging).await;
    assert!(!raw.contains(providers::WHATSAPP_TOKEN), "{raw}");

    // WHEN the runtime sends an email, then retries it with the same key
    let args =
        json!({"to": "guest@example.com", "subject": "Your booking", "text": "See you on Friday."});
    let first = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-email-1"),
        on(args.clone()),
    )
    .await;
    let again = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-email-1"),
        on(args.clone()),
    )
    .await;
    // THEN both get the same answer and one message went out, from the establishment's name
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["ok"], true);
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    let sent: Vec<Value> = {
        let keys = stack
            .app
            .blobs
            .list(callplane::mail::OUTBOX_PREFIX)
            .await
            .unwrap();
        let mut mails = Vec::new();
        for k in keys {
            let bytes = stack.app.blobs.get(&k).await.unwrap().unwrap();
            let mail: Value = serde_json::from_slice(&bytes).unwrap();
            if mail["to"] == "guest@example.com" {
                mails.push(mail);
            }
        }
        mails
    };
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["from_name"], "Helios Front Desk");
    assert_eq!(sent[0]["reply_to"], "desk@helios.example");

    // WHEN it calls WhatsApp (connected, but not enabled in the version) and the calendar
    // (enabled, not connected)
    let wa = tool(
        &stack,
        "whatsapp/send_message",
        &rt.token,
        None,
        on(json!({"to": CALLER, "text": "Hi"})),
    )
    .await;
    let cal = tool(&stack, "calendar/create_event", &rt.token, None, on(json!({
        "summary": "Table for 2", "start": "2026-12-04T19:00:00-05:00", "end": "2026-12-04T21:00:00-05:00"}))).await;
    // THEN each is refused with the code saying why, and nothing reached WhatsApp
    assert_eq!(
        (wa.status.as_u16(), error_code(&wa)),
        (403, "tool_not_enabled".into())
    );
    assert_eq!(
        (cal.status.as_u16(), error_code(&cal)),
        (403, "integration_missing".into())
    );
    assert!(
        fake.seen(&format!(
            "/graph/{}/messages",
            providers::WHATSAPP_NUMBER_ID
        ))
        .is_empty()
    );

    // WHEN the admin disables email and the runtime sends one
    stack
        .patch(
            &format!("/integrations/{email_id}"),
            admin,
            json!({"enabled": false}),
        )
        .await
        .expect(200);
    let off = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-email-2"),
        on(args.clone()),
    )
    .await;
    // THEN it is refused as disabled
    assert_eq!(
        (off.status.as_u16(), error_code(&off)),
        (403, "integration_disabled".into())
    );

    // WHEN another establishment's runtime names this call
    let other = world(&stack, "+14155552680").await;
    let foreign = tool(&stack, "email/send", &other.token, None, on(args.clone())).await;
    // THEN the call does not exist for it
    assert_eq!(
        (foreign.status.as_u16(), error_code(&foreign)),
        (404, "call_not_found".into())
    );

    // WHEN email is enabled again and three more are sent in the same minute
    stack
        .patch(
            &format!("/integrations/{email_id}"),
            admin,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for key in ["tc-email-2", "tc-email-3", "tc-email-4"] {
        let r = tool(&stack, "email/send", &rt.token, Some(key), on(args.clone())).await;
        if r.status == 429 {
            retry_after = r
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(error_code(&r), "rate_limited");
            assert_eq!(r.body["error"]["retryable"], true);
        }
        statuses.push(r.status.as_u16());
    }
    // THEN the limit of 3 a minute holds (the first email counted once, its retry not at
    // all; the refused disabled one not at all), the fourth told when to come back
    // (the minute may turn between the calls: then all pass)
    if statuses.contains(&429) {
        assert_eq!(statuses, vec![200, 200, 429]);
        let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&wait));
    }

    // WHEN the calendar is connected and Google fails the insert once
    let _cal_id = consent(&stack, admin, &rt.est).await;
    fake.fail_next("/calendar/calendars/primary/events", 500);
    let event = json!({"summary": "Table for 2", "start": "2026-12-04T19:00:00-05:00",
        "end": "2026-12-04T21:00:00-05:00", "time_zone": "America/New_York",
        "attendees": ["guest@example.com"]});
    let failed = tool(
        &stack,
        "calendar/create_event",
        &rt.token,
        Some("tc-cal-1"),
        on(event.clone()),
    )
    .await;
    let retried = tool(
        &stack,
        "calendar/create_event",
        &rt.token,
        Some("tc-cal-1"),
        on(event.clone()),
    )
    .await;
    // THEN the failure is mapped (never a 500 of ours) and retryable, and the retry with the
    // same key goes through
    assert_eq!(
        (failed.status.as_u16(), error_code(&failed)),
        (502, "provider_unavailable".into())
    );
    assert_eq!(failed.body["error"]["retryable"], true);
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["result"]["event_id"], "evt0001");
    let inserts = fake.seen("/calendar/calendars/primary/events");
    assert_eq!(inserts.len(), 2);
    let sent_event: Value = serde_json::from_str(&inserts[1].body).unwrap();
    assert_eq!(sent_event["attendees"][0]["email"], "guest@example.com");
    assert_eq!(sent_event["start"]["timeZone"], "America/New_York");

    // WHEN it asks for free 60-minute slots around a busy hour
    fake.set_busy(&[("2026-12-04T15:00:00Z", "2026-12-04T16:00:00Z")]);
    let slots = tool(
        &stack,
        "calendar/find_free_slots",
        &rt.token,
        None,
        on(json!({
        "start": "2026-12-04T14:00:00Z", "end": "2026-12-04T18:00:00Z", "duration_minutes": 60})),
    )
    .await;
    // THEN the busy hour is skipped
    let slots = &slots.body["result"]["slots"];
    let starts: Vec<&str> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        vec![
            "2026-12-04T14:00:00+00:00",
            "2026-12-04T16:00:00+00:00",
            "2026-12-04T17:00:00+00:00"
        ]
    );

    // WHEN the caller opts out (built-in, no integration needed)
    let dnc = tool(
        &stack,
        "dnc/add",
        &rt.token,
        Some("tc-dnc"),
        on(json!({"reason": "asked not to be called"})),
    )
    .await;
    // THEN the number is on the do-not-call list with the call, audited as the runtime's act
    assert_eq!(dnc.status, 200, "{:?}", dnc.body);
    assert_eq!(dnc.body["result"]["e164"], CALLER);
    let list = stack
        .get(&format!("/establishments/{}/do-not-call", rt.est), admin)
        .await
        .expect(200)
        .clone();
    let entry = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["e164"] == CALLER)
        .expect("the opt-out");
    assert_eq!(entry["call_id"], call_id.as_str());
    assert!(entry["added_by"].is_null());
    let audit = stack
        .get(&format!("/establishments/{}/audit-log", rt.est), admin)
        .await
        .expect(200)
        .clone();
    let opt_out = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "do_not_call.added")
        .expect("audited");
    assert_eq!(opt_out["actor_runtime_id"], rt.runtime.as_str());

    // THEN the call's tool log shows every call, refused ones included, paired with results
    let log = stack
        .get(&format!("/calls/{call_id}/tool-log?limit=100"), admin)
        .await
        .expect(200)
        .clone();
    let entries: Vec<(String, String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["tool_name"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
                e["error"]
                    .as_str()
                    .unwrap_or("")
                    .split(':')
                    .next()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let expect = |tool: &str, status: &str, code: &str| {
        assert!(
            entries.contains(&(tool.to_owned(), status.to_owned(), code.to_owned())),
            "{tool} {status} {code} missing from {entries:?}"
        );
    };
    expect("email.send", "ok", "");
    expect("whatsapp.send_message", "error", "tool_not_enabled");
    expect("calendar.create_event", "error", "integration_missing");
    expect("email.send", "error", "integration_disabled");
    expect("calendar.create_event", "error", "provider_unavailable");
    expect("calendar.create_event", "ok", "");
    expect("calendar.find_free_slots", "ok", "");
    expect("dnc.add", "ok", "");
    assert!(
        entries.iter().all(|(_, status, _)| status != "pending"),
        "{entries:?}"
    );
    // AND the foreign runtime's attempt is not on this call's log, the retried email once
    let emails_ok = entries
        .iter()
        .filter(|(t, s, _)| t == "email.send" && s == "ok")
        .count();
    assert_eq!(
        emails_ok,
        1 + statuses.iter().filter(|s| **s == 200).count()
    );
    let view = stack
        .get(&format!("/calls/{call_id}"), admin)
        .await
        .expect(200)
        .clone();
    assert_eq!(view["tool_calls"].as_u64().unwrap() as usize, entries.len());

    // WHEN the runtime asks for a handoff before the establishment has a handoff number
    let ask = json!({"reason": "wants a person"});
    let handoff = tool(&stack, "handoff", &rt.token, None, on(ask.clone())).await;
    // THEN the rule is named, never a 500
    assert_eq!(
        (handoff.status.as_u16(), error_code(&handoff)),
        (422, "no_handoff_number".into())
    );
    // WHEN the admin sets one and the runtime asks again
    stack
        .patch(
            &format!("/establishments/{}/telephony", rt.est),
            admin,
            json!({"handoff_e164": "+14155552673"}),
        )
        .await
        .expect(200);
    let handoff = tool(&stack, "handoff", &rt.token, Some("tc-handoff"), on(ask)).await;
    // THEN the call is transferred as an operator's handoff would be, audited as the runtime's
    assert_eq!(handoff.status, 200, "{:?}", handoff.body);
    assert_eq!(handoff.body["result"]["status"], "handoff_initiated");
    assert_eq!(handoff.body["result"]["handoff_e164"], "+14155552673");
    let audit = stack
        .get(&format!("/establishments/{}/audit-log", rt.est), admin)
        .await
        .expect(200)
        .clone();
    let handed = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "call.handoff")
        .expect("audited");
    assert_eq!(handed["actor_runtime_id"], rt.runtime.as_str());
    // WHEN the call ended 11 minutes ago and a tool is called
    let id = callplane::ids::CallId::parse(&call_id).unwrap();
    let ended = callplane::time::Timestamp::now()
        .plus_secs(-660)
        .to_string();
    stack
        .tamper(
            &keys::call(&id),
            &[(
                "ended_at",
                aws_sdk_dynamodb::types::AttributeValue::S(ended),
            )],
        )
        .await;
    let late = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-email-late"),
        on(args.clone()),
    )
    .await;
    // THEN it is refused: tools work until 10 minutes after the end
    assert_eq!(
        (late.status.as_u16(), error_code(&late)),
        (409, "call_ended".into())
    );
}

#[tokio::test]
async fn smtp_email_is_checked_by_test_and_sent_through_the_server() {
    // GIVEN an establishment whose email goes through its own SMTP server (the stand-in)
    let (stack, fake) = stack_with(&[]).await;
    let rt = world(&stack, NUMBER).await;
    let port = fake.smtp_port.to_string();
    let smtp = |password: &str| {
        json!({"type": "email", "display_name": "Own SMTP", "auth": {"mode": "smtp",
            "host": "127.0.0.1", "port": fake.smtp_port, "security": "none",
            "username": providers::SMTP_USER, "password": password, "from": "desk@helios.example"}})
    };
    let created = stack
        .post(
            &format!("/establishments/{}/integrations", rt.est),
            &rt.admin,
            smtp(providers::SMTP_PASSWORD),
        )
        .await
        .expect(201)
        .clone();
    let id = created["integration_id"].as_str().unwrap().to_owned();
    // THEN the password is not stored in clear nor shown
    let raw = raw_integration(&stack, &rt.est, IntegrationType::Email).await;
    assert!(!raw.contains(providers::SMTP_PASSWORD));
    let view = stack
        .get(&format!("/integrations/{id}"), &rt.admin)
        .await
        .expect(200)
        .clone();
    assert_eq!(view["settings"]["port"].to_string(), port);
    assert!(!view.to_string().contains(providers::SMTP_PASSWORD));
    // WHEN the admin tests it
    let tested = stack
        .post_empty(&format!("/integrations/{id}/test"), &rt.admin)
        .await
        .expect(200)
        .clone();
    // THEN the server accepted the login
    assert_eq!(tested["ok"], true, "{tested}");
    // WHEN a runtime sends an email during a call
    let sid = "CA7f00000000000000000000000000b001";
    incoming(&stack, sid, CALLER, NUMBER).await;
    let sent = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-smtp-1"),
        json!({
        "provider_call_sid": sid, "to": "guest@example.com", "subject": "Réservation confirmée",
        "text": "Merci.\n.Until Friday", "html": "<p>Merci.</p>"}),
    )
    .await;
    // THEN the server got one multipart message with the encoded subject and stuffed dots
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let mails = fake.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: =?UTF-8?B?"), "{}", mails[0]);
    assert!(mails[0].contains("multipart/alternative"));
    assert!(mails[0].contains("To: guest@example.com"));

    // WHEN another establishment connects with a wrong password and tests it
    let other = world(&stack, "+14155552680").await;
    let created = stack
        .post(
            &format!("/establishments/{}/integrations", other.est),
            &other.admin,
            smtp("wrong"),
        )
        .await
        .expect(201)
        .clone();
    let tested = stack
        .post_empty(
            &format!(
                "/integrations/{}/test",
                created["integration_id"].as_str().unwrap()
            ),
            &other.admin,
        )
        .await
        .expect(200)
        .clone();
    // THEN the test says the login was refused and the connection is in error
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["error"]["code"], "integration_unauthorized");
    assert_eq!(tested["status"], "error");
}

#[tokio::test]
async fn bad_integration_input_is_a_4xx_naming_the_problem() {
    // GIVEN an establishment with an admin and a viewer, and another establishment
    let (stack, _fake) = stack_with(&[]).await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let other = stack.establishment(&admin, "Elsewhere").await;
    let other_admin = stack
        .member(&admin, &other, "outsider@example.com", "admin")
        .await;
    let path = format!("/establishments/{est}/integrations");
    let cases = [
        (
            json!({"type": "fax", "display_name": "x", "auth": {"mode": "token"}}),
            "type",
        ),
        (
            json!({"type": "email", "display_name": "x", "auth": {"mode": "oauth", "redirect_url": "http://app.test/x"}}),
            "auth.mode",
        ),
        (
            json!({"type": "google_calendar", "display_name": "x", "auth": {"mode": "oauth", "redirect_url": "https://evil.example/cb"}}),
            "auth.redirect_url",
        ),
        (
            json!({"type": "email", "display_name": "x", "auth": {"mode": "smtp", "host": "smtp.example.com", "port": 587,
            "security": "starttls", "username": "u", "password": "p".repeat(300), "from": "a@example.com"}}),
            "auth.password",
        ),
        (
            json!({"type": "crm", "display_name": "x", "auth": {"mode": "token", "access_token": 42}}),
            "auth.access_token",
        ),
        (
            json!({"type": "email", "display_name": "", "auth": {"mode": "ses"}}),
            "display_name",
        ),
    ];
    for (body, field) in cases {
        // WHEN an admin sends it
        let reply = stack.post(&path, &admin, body.clone()).await;
        // THEN it is a 400 naming the field, and nothing was connected
        assert_eq!(reply.status, 400, "{body} → {:?}", reply.body);
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{body} → {:?}",
            reply.body
        );
    }
    let list = stack.get(&path, &admin).await.expect(200).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // WHEN the WhatsApp token is refused by the Graph API
    let refused = stack
        .post(&path, &admin, json!({"type": "whatsapp_messaging", "display_name": "WA",
            "auth": {"mode": "token", "phone_number_id": providers::WHATSAPP_NUMBER_ID, "access_token": "bad"}}))
        .await;
    // THEN it is a 422 carrying what the provider said
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.code(), "provider_check_failed");
    // WHEN a viewer connects, or anyone reaches another establishment's integration
    let ses = json!({"type": "email", "display_name": "Mail", "auth": {"mode": "ses"}});
    assert_eq!(stack.post(&path, &viewer, ses.clone()).await.status, 403);
    let id = stack.post(&path, &admin, ses.clone()).await.expect(201)["integration_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stack.post(&path, &admin, ses).await.status, 409);
    // WHEN an admin starts Google's consent twice (the first never finished)
    let google = json!({"type": "google_calendar", "display_name": "Cal",
        "auth": {"mode": "oauth", "redirect_url": "http://app.test/settings"}});
    let first = stack
        .post(&path, &admin, google.clone())
        .await
        .expect(201)
        .clone();
    let second = stack.post(&path, &admin, google).await.expect(201).clone();
    // THEN the second replaces the first, whose state no longer connects anything
    assert_ne!(first["integration_id"], second["integration_id"]);
    assert_eq!(
        stack
            .get(
                &format!(
                    "/integrations/{}",
                    first["integration_id"].as_str().unwrap()
                ),
                &admin
            )
            .await
            .status,
        404
    );
    // THEN members read, foreign ones are 404
    stack
        .get(&format!("/integrations/{id}"), &viewer)
        .await
        .expect(200);
    assert_eq!(
        stack
            .get(&format!("/integrations/{id}"), &other_admin)
            .await
            .status,
        404
    );
    assert_eq!(
        stack
            .patch(
                &format!("/integrations/{id}"),
                &other_admin,
                json!({"enabled": false})
            )
            .await
            .status,
        404
    );
    assert_eq!(
        stack
            .patch(
                &format!("/integrations/{id}"),
                &viewer,
                json!({"enabled": false})
            )
            .await
            .status,
        403
    );
    assert_eq!(
        stack
            .patch(
                &format!("/integrations/{id}"),
                &admin,
                json!({"enabled": "no"})
            )
            .await
            .body["error"]["details"]["field"],
        "enabled"
    );
    assert_eq!(
        stack
            .get(&format!("/establishments/{est}/integrations"), &other_admin)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn runtime_sim_makes_its_tool_call_through_the_proxy() {
    // GIVEN the API served over HTTP and a runtime whose simulated calls opt the caller out
    // through the tool proxy mid-call
    let stack = Stack::new().await;
    let rt = world(&stack, NUMBER).await;
    let base = stack.serve_api().await;
    let runtime = runtime_sim::simulate::Runtime {
        ingest_url: format!("{base}/ingest/call-events"),
        token: rt.token.clone(),
        runtime_id: rt.runtime.clone(),
        establishment_id: rt.est.clone(),
        agent_id: rt.agent.clone(),
        agent_version_id: rt.version.clone(),
    };
    let command = runtime_sim::simulate::Command::parse(
        &[
            "--runtime-id",
            &rt.runtime,
            "--establishment-id",
            &rt.est,
            "--agent-id",
            &rt.agent,
            "--agent-version-id",
            &rt.version,
            "--segments",
            "4",
            "--pace-ms",
            "0",
            "--tool",
            "dnc/add",
            "--tool-args",
            r#"{"reason": "asked on the call"}"#,
        ]
        .map(str::to_owned),
        |var| match var {
            "CALLPLANE_INGEST_URL" => Some(runtime.ingest_url.clone()),
            "CALLPLANE_INGEST_TOKEN" => Some(runtime.token.clone()),
            "CALLPLANE_TOOL_PROXY_URL" => Some(format!("{base}/tool-proxy")),
            _ => None,
        },
    )
    .unwrap();
    let shape = runtime_sim::simulate::CallShape {
        from_e164: CALLER.into(),
        to_e164: NUMBER.into(),
        ..command.shape.clone()
    };
    // WHEN two calls run
    let report = runtime_sim::simulate::load(&runtime, &shape, 2, 1, "CA_tool").await;
    // THEN both made their tool call through the proxy, and it worked
    assert_eq!(report.failed_calls, 0, "{report:?}");
    assert_eq!(
        (report.tool_calls, report.tool_failures),
        (2, 0),
        "{report:?}"
    );
    // AND each call's tool log shows the proxy's dnc.add, and the caller is on the list
    let history = stack
        .get(&format!("/calls?establishment_id={}", rt.est), &rt.admin)
        .await
        .expect(200)
        .clone();
    for call in history["items"].as_array().unwrap() {
        let id = call["call_id"].as_str().unwrap();
        let log = stack
            .get(&format!("/calls/{id}/tool-log"), &rt.admin)
            .await
            .expect(200)
            .clone();
        let items = log["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{log}");
        assert_eq!(items[0]["tool_name"], "dnc.add");
        assert_eq!(items[0]["status"], "ok");
        assert_eq!(items[0]["arguments"]["reason"], "asked on the call");
    }
    let list = stack
        .get(
            &format!("/establishments/{}/do-not-call", rt.est),
            &rt.admin,
        )
        .await
        .expect(200)
        .clone();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["e164"] == CALLER),
        "{list}"
    );
}

#[tokio::test]
async fn ses_email_goes_out_through_the_emulators_ses_once_its_sender_is_verified() {
    // GIVEN a stack sending mail through SES (the emulator's), its sender not verified yet, and
    // an establishment whose email integration is the platform's SES sender under its own name
    // (a sender of its own: SES identities are shared by everything using the emulator)
    let sender = format!(
        "no-reply-{}@callplane.test",
        callplane::ids::CallId::new().as_str().to_ascii_lowercase()
    );
    let (stack, _fake) = stack_with(&[("MAIL_TRANSPORT", "ses"), ("MAIL_FROM", &sender)]).await;
    let callplane::mail::Mailer::Ses { client, from } = &stack.app.mailer else {
        panic!("MAIL_TRANSPORT=ses gives the SES mailer");
    };
    let rt = world(&stack, NUMBER).await;
    let connected = stack
        .post(
            &format!("/establishments/{}/integrations", rt.est),
            &rt.admin,
            json!({"type": "email", "display_name": "Desk mail",
                   "auth": {"mode": "ses", "from_name": "Helios Front Desk"}}),
        )
        .await
        .expect(201)
        .clone();
    let sid = "CA7f00000000000000000000000000c001";
    incoming(&stack, sid, CALLER, NUMBER).await;
    let email = json!({"provider_call_sid": sid, "to": "guest@example.com",
        "subject": "Your booking", "text": "See you on Friday.", "html": "<p>See you on Friday.</p>"});
    // WHEN the runtime sends an email while SES refuses the unverified sender
    let refused = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-ses-1"),
        email.clone(),
    )
    .await;
    // THEN the runtime is told the mail service did not take it, and may retry
    assert_eq!(
        (refused.status.as_u16(), error_code(&refused)),
        (502, "provider_unavailable".into())
    );
    assert_eq!(refused.body["error"]["retryable"], true);
    // WHEN the sender is verified and the runtime retries with the same key
    client
        .create_email_identity()
        .email_identity(from)
        .send()
        .await
        .unwrap();
    let sent = tool(
        &stack,
        "email/send",
        &rt.token,
        Some("tc-ses-1"),
        email.clone(),
    )
    .await;
    // THEN SES took it, and a further retry gets the same answer without sending again
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(sent.body["result"]["transport"], "ses");
    let again = tool(&stack, "email/send", &rt.token, Some("tc-ses-1"), email).await;
    assert_eq!(again.body, sent.body);
    // AND /test says the SES sender is usable
    let tested = stack
        .post_empty(
            &format!(
                "/integrations/{}/test",
                connected["integration_id"].as_str().unwrap()
            ),
            &rt.admin,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(tested["ok"], true);
    assert_eq!(tested["detail"]["transport"], "ses");
}

#[tokio::test]
async fn whatsapp_and_crm_tools_send_what_the_providers_expect() {
    // GIVEN a version enabling WhatsApp messages and the CRM, published, with both connected
    let (stack, fake) = stack_with(&[]).await;
    let rt = world(&stack, NUMBER).await;
    let mut brain = callplane_tests::brain("You book tables.");
    brain["tools"]["whatsapp_messaging"] = json!({"enabled": true});
    brain["tools"]["crm"] = json!({"enabled": true});
    let version = stack
        .post(&format!("/agents/{}/versions", rt.agent), &rt.admin, brain)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack
        .activate(&rt.admin, &rt.agent, &version, "publish")
        .await
        .expect(200);
    let path = format!("/establishments/{}/integrations", rt.est);
    stack
        .post(
            &path,
            &rt.admin,
            json!({"type": "whatsapp_messaging", "display_name": "WhatsApp",
                   "auth": {"mode": "token", "phone_number_id": providers::WHATSAPP_NUMBER_ID,
                            "access_token": providers::WHATSAPP_TOKEN}}),
        )
        .await
        .expect(201);
    let crm = stack
        .post(
            &path,
            &rt.admin,
            json!({"type": "crm", "display_name": "HubSpot",
                   "auth": {"mode": "token", "access_token": providers::HUBSPOT_TOKEN}}),
        )
        .await
        .expect(201)
        .clone();
    let sid = "CA7f00000000000000000000000000d001";
    incoming(&stack, sid, CALLER, NUMBER).await;
    let on = |extra: Value| {
        let mut body = json!({"provider_call_sid": sid});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let messages = format!("/graph/{}/messages", providers::WHATSAPP_NUMBER_ID);

    // WHEN the runtime sends a WhatsApp text and a template
    let text = tool(
        &stack,
        "whatsapp/send_message",
        &rt.token,
        Some("wa-1"),
        on(json!({"to": CALLER, "text": "Your table is booked."})),
    )
    .await;
    let template = tool(
        &stack,
        "whatsapp/send_message",
        &rt.token,
        Some("wa-2"),
        on(
            json!({"to": CALLER, "template": {"name": "booking_confirmation", "language": "en_US",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Friday"}]}]}}),
        ),
    )
    .await;
    // THEN Graph got the Cloud API bodies with the sealed token, and answered message ids
    assert_eq!(text.status, 200, "{:?}", text.body);
    assert_eq!(template.status, 200, "{:?}", template.body);
    assert!(
        text.body["result"]["message_id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );
    let sent = fake.seen(&messages);
    assert_eq!(sent.len(), 2);
    let first: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(first["messaging_product"], "whatsapp");
    assert_eq!(first["to"], CALLER.trim_start_matches('+'));
    assert_eq!(first["type"], "text");
    assert_eq!(first["text"]["body"], "Your table is booked.");
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(&*format!("Bearer {}", providers::WHATSAPP_TOKEN))
    );
    let second: Value = serde_json::from_str(&sent[1].body).unwrap();
    assert_eq!(second["type"], "template");
    assert_eq!(second["template"]["name"], "booking_confirmation");
    assert_eq!(second["template"]["language"]["code"], "en_US");
    assert_eq!(
        second["template"]["components"][0]["parameters"][0]["text"],
        "Friday"
    );

    // WHEN Graph refuses a message (a bad recipient: 400)
    fake.fail_next(&messages, 400);
    let refused = tool(
        &stack,
        "whatsapp/send_message",
        &rt.token,
        Some("wa-3"),
        on(json!({"to": CALLER, "text": "Hello"})),
    )
    .await;
    // THEN it is the provider's refusal, not retryable
    assert_eq!(
        (refused.status.as_u16(), error_code(&refused)),
        (422, "provider_rejected".into())
    );
    assert_eq!(refused.body["error"]["retryable"], false);

    // WHEN the runtime looks up, creates and updates contacts, adds a note and logs the call
    let found = tool(
        &stack,
        "crm/find_contact",
        &rt.token,
        None,
        on(json!({"email": "known@example.com"})),
    )
    .await;
    let created = tool(
        &stack,
        "crm/upsert_contact",
        &rt.token,
        Some("crm-1"),
        on(json!({"email": "new@example.com", "first_name": "Grace", "phone": CALLER})),
    )
    .await;
    let updated = tool(
        &stack,
        "crm/upsert_contact",
        &rt.token,
        Some("crm-2"),
        on(json!({"email": "known@example.com", "company": "Helios"})),
    )
    .await;
    let note = tool(
        &stack,
        "crm/create_note",
        &rt.token,
        Some("crm-3"),
        on(json!({"contact_id": "501", "body": "Prefers a window table."})),
    )
    .await;
    let logged = tool(
        &stack,
        "crm/log_call",
        &rt.token,
        Some("crm-4"),
        on(json!({"contact_id": "501", "title": "Booking call"})),
    )
    .await;
    // THEN each answered as HubSpot did, and HubSpot got CRM v3 bodies
    assert_eq!(found.body["result"]["found"], true, "{:?}", found.body);
    assert_eq!(found.body["result"]["contact"]["contact_id"], "501");
    assert_eq!(
        created.body["result"]["created"], true,
        "{:?}",
        created.body
    );
    assert_eq!(created.body["result"]["contact"]["contact_id"], "777");
    assert_eq!(updated.body["result"]["created"], false);
    assert_eq!(note.status, 200, "{:?}", note.body);
    assert_eq!(logged.status, 200, "{:?}", logged.body);
    let posted = |path: &str, method: &str| -> Vec<Value> {
        fake.seen(path)
            .into_iter()
            .filter(|s| s.method == method && s.path == path)
            .map(|s| serde_json::from_str(&s.body).unwrap())
            .collect()
    };
    let creates = posted("/hubspot/crm/v3/objects/contacts", "POST");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0]["properties"]["email"], "new@example.com");
    assert_eq!(creates[0]["properties"]["firstname"], "Grace");
    assert_eq!(creates[0]["properties"]["phone"], CALLER);
    let patches = posted("/hubspot/crm/v3/objects/contacts/501", "PATCH");
    assert_eq!(patches[0]["properties"]["company"], "Helios");
    let notes = posted("/hubspot/crm/v3/objects/notes", "POST");
    assert_eq!(
        notes[0]["properties"]["hs_note_body"],
        "Prefers a window table."
    );
    assert_eq!(notes[0]["associations"][0]["to"]["id"], "501");
    assert_eq!(
        notes[0]["associations"][0]["types"][0]["associationTypeId"],
        202
    );
    let calls = posted("/hubspot/crm/v3/objects/calls", "POST");
    assert_eq!(calls[0]["properties"]["hs_call_direction"], "INBOUND");
    assert_eq!(calls[0]["properties"]["hs_call_from_number"], CALLER);
    assert_eq!(calls[0]["properties"]["hs_call_title"], "Booking call");
    assert_eq!(
        calls[0]["associations"][0]["types"][0]["associationTypeId"],
        194
    );

    // WHEN HubSpot refuses the token (revoked in HubSpot: 401)
    fake.fail_next("/hubspot/crm/v3/objects/notes", 401);
    let unauthorized = tool(
        &stack,
        "crm/create_note",
        &rt.token,
        Some("crm-5"),
        on(json!({"contact_id": "501", "body": "Second note."})),
    )
    .await;
    // THEN the runtime is told, and the connection shows the error until reconnected
    assert_eq!(
        (unauthorized.status.as_u16(), error_code(&unauthorized)),
        (502, "integration_unauthorized".into())
    );
    let view = stack
        .get(
            &format!("/integrations/{}", crm["integration_id"].as_str().unwrap()),
            &rt.admin,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(view["status"], "error");
    let after = tool(
        &stack,
        "crm/find_contact",
        &rt.token,
        None,
        on(json!({"email": "known@example.com"})),
    )
    .await;
    assert_eq!(
        (after.status.as_u16(), error_code(&after)),
        (403, "integration_not_connected".into())
    );
}
