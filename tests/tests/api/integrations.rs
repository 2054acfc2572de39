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

/// Connects Google Calendar for `est` through the consent round trip; returns the id.
async fn consent(stack: &Stack, fake: &FakeProviders, admin: &str, est: &str) -> String {
    let body = stack
        .post(
            &format!("/establishments/{est}/integrations"),
            admin,
            json!({"type": "google_calendar", "display_name": "Front desk calendar",
                   "auth": {"mode": "oauth", "redirect_url": "http://app.test/settings/integrations"}}),
        )
        .await
        .expect(201).clone();
    let query = auth_query(&body);
    fake.grant("4/0AX4XfWh-code", &query["code_challenge"]);
    let back = callback(
        stack,
        &format!("state={}&code=4/0AX4XfWh-code", enc(&query["state"])),
    )
    .await;
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
    let _cal_id = consent(&stack, &fake, admin, &rt.est).await;
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
