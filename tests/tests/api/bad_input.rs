//! Bad input gets a clear 4xx envelope naming the problem, and changes nothing.

use callplane_tests::{Stack, USER_PASSWORD};
use http::{Method, Request};
use serde_json::{Value, json};

async fn establishments_count(stack: &Stack, token: &str) -> usize {
    stack.get("/establishments", token).await.expect(200)["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_field_and_store_nothing() {
    // GIVEN an admin with one establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let before = establishments_count(&stack, &admin).await;

    // WHEN bodies are malformed, mistyped, carry unknown fields or invalid values
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "name": 5, "timezone": "UTC", "locale": "en" }),
            "name",
            "invalid type",
        ),
        (
            json!({ "name": "X", "timezone": "Mars/Base", "locale": "en" }),
            "timezone",
            "unknown IANA time zone",
        ),
        (
            json!({ "name": "X", "timezone": "UTC", "locale": "english!" }),
            "locale",
            "invalid locale",
        ),
        (
            json!({ "name": "  ", "timezone": "UTC", "locale": "en" }),
            "name",
            "must not be empty",
        ),
        (
            json!({ "name": "X", "timezone": "UTC", "locale": "en", "colour": "red" }),
            "colour",
            "unknown field",
        ),
        (
            json!({ "timezone": "UTC", "locale": "en" }),
            "name",
            "missing field `name`",
        ),
        (json!([1, 2]), "body", "must be a JSON object"),
    ];
    for (body, field, says) in cases {
        let reply = stack.post("/establishments", &admin, body.clone()).await;
        let message = reply.expect_error(400, "validation_failed");
        // THEN the envelope names the field and the problem
        assert!(message.contains(says), "{body}: {message}");
        assert!(
            reply.body["error"]["details"]["field"]
                .as_str()
                .unwrap()
                .contains(field),
            "{body}: {}",
            reply.body
        );
    }

    // WHEN the JSON itself is broken
    let raw = Request::builder()
        .method(Method::POST)
        .uri("/establishments")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name": "X", "#))
        .unwrap();
    let message = stack
        .send_raw(raw)
        .await
        .expect_error(400, "validation_failed");
    assert!(message.contains("malformed JSON"), "{message}");

    // WHEN the body is not JSON at all
    let raw = Request::builder()
        .method(Method::POST)
        .uri("/establishments")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("name=X"))
        .unwrap();
    stack
        .send_raw(raw)
        .await
        .expect_error(415, "unsupported_media_type");

    // WHEN the body is over 256 KiB
    let huge = json!({ "name": "x".repeat(300 * 1024), "timezone": "UTC", "locale": "en" });
    let reply = stack.post("/establishments", &admin, huge).await;
    reply.expect_error(413, "payload_too_large");
    assert_eq!(reply.body["error"]["details"]["limit_bytes"], 262_144);

    // THEN nothing was created
    assert_eq!(establishments_count(&stack, &admin).await, before);
    assert_eq!(
        stack
            .get(&format!("/establishments/{est}"), &admin)
            .await
            .expect(200)["name"],
        "Helios"
    );
}

#[tokio::test]
async fn bad_telephony_policies_are_refused_and_leave_the_policy_unchanged() {
    // GIVEN an establishment with a handoff number
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let path = format!("/establishments/{est}/telephony");
    let good = stack
        .patch(&path, &admin, json!({ "handoff_e164": "+14155552671" }))
        .await
        .expect(200)
        .clone();

    // WHEN each bad policy is sent
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "handoff_e164": "4155552671" }),
            "handoff_e164",
            "must start with +",
        ),
        (
            json!({ "handoff_e164": "+1555" }),
            "handoff_e164",
            "invalid E.164",
        ),
        (
            json!({ "blacklist_e164": ["+14155552671", "not-a-number"] }),
            "blacklist_e164[1]",
            "invalid E.164",
        ),
        (
            json!({ "max_call_duration_seconds": 5 }),
            "max_call_duration_seconds",
            "between 60 and 14400",
        ),
        (
            json!({ "max_call_duration_seconds": -1 }),
            "max_call_duration_seconds",
            "invalid value",
        ),
        (
            json!({ "max_call_duration_seconds": "900" }),
            "max_call_duration_seconds",
            "invalid type",
        ),
        (
            json!({ "business_hours": [{ "days": ["mon"], "start": "22:00", "end": "08:00" }] }),
            "business_hours[0]",
            "must be after start",
        ),
        (
            json!({ "business_hours": [{ "days": ["mon"], "start": "09:00", "end": "09:00" }] }),
            "business_hours[0]",
            "must be after start",
        ),
        (
            json!({ "business_hours": [{ "days": ["funday"], "start": "08:00", "end": "09:00" }] }),
            "business_hours[0].days[0]",
            "funday",
        ),
        (
            json!({ "business_hours": [{ "days": ["mon"], "start": "8am", "end": "09:00" }] }),
            "business_hours[0].start",
            "HH:MM",
        ),
        (
            json!({ "business_hours": [{ "days": ["mon"], "start": "08:00", "end": "09:00", "tz": "UTC" }] }),
            "business_hours[0].tz",
            "unknown field",
        ),
        (
            json!({ "transfer_to": "+14155552671" }),
            "transfer_to",
            "unknown field",
        ),
    ];
    for (body, field, says) in cases {
        let reply = stack.patch(&path, &admin, body.clone()).await;
        let message = reply.expect_error(400, "validation_failed");
        // THEN the envelope names the field and the problem
        assert!(message.contains(says), "{body}: {message}");
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{body}: {}",
            reply.body
        );
    }
    // THEN the policy is what it was
    assert_eq!(stack.get(&path, &admin).await.expect(200), &good);
}

#[tokio::test]
async fn bad_invitations_and_list_parameters_are_refused() {
    // GIVEN an establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let users = format!("/establishments/{est}/users");

    // WHEN invitations carry a bad email or role
    let email = stack
        .post(
            &users,
            &admin,
            json!({ "email": "not-an-email", "role": "operator" }),
        )
        .await;
    let role = stack
        .post(
            &users,
            &admin,
            json!({ "email": "a@example.com", "role": "superuser" }),
        )
        .await;
    // THEN both are 400 naming the field, and no mail went out
    assert!(
        email
            .expect_error(400, "validation_failed")
            .contains("invalid email address")
    );
    assert_eq!(email.body["error"]["details"]["field"], "email");
    assert!(
        role.expect_error(400, "validation_failed")
            .contains("superuser")
    );
    assert!(stack.last_mail("a@example.com").await.is_none());

    // WHEN list parameters are out of range or the cursor is forged
    stack
        .get(&format!("{users}?limit=0"), &admin)
        .await
        .expect_error(400, "validation_failed");
    stack
        .get(&format!("{users}?limit=abc"), &admin)
        .await
        .expect_error(400, "validation_failed");
    stack
        .get(&format!("{users}?cursor=forged"), &admin)
        .await
        .expect_error(400, "validation_failed");
    stack
        .get(&format!("{users}?sort=name"), &admin)
        .await
        .expect_error(400, "validation_failed");
    // AND an unknown route or method gets the envelope too
    stack
        .get("/nowhere", &admin)
        .await
        .expect_error(404, "not_found");
    stack
        .send(Method::PUT, "/establishments", Some(&admin), None)
        .await
        .expect_error(405, "method_not_allowed");
    // AND a malformed id is simply not found
    stack
        .get("/establishments/est_nope", &admin)
        .await
        .expect_error(404, "not_found");

    // WHEN accepting with a weak password or an empty display name
    stack
        .post(
            &users,
            &admin,
            json!({ "email": "b@example.com", "role": "viewer" }),
        )
        .await
        .expect(201);
    let token = stack.mailed_token("b@example.com").await;
    let weak = stack
        .accept(json!({ "token": token, "password": "short", "display_name": "B" }))
        .await;
    let nameless = stack
        .accept(json!({ "token": token, "password": USER_PASSWORD, "display_name": "" }))
        .await;
    // THEN both are refused and the token still works afterwards
    let message = weak.expect_error(400, "validation_failed");
    assert!(message.contains("password must be 10 to 128"), "{message}");
    nameless.expect_error(400, "validation_failed");
    stack
        .accept(json!({ "token": token, "password": USER_PASSWORD, "display_name": "B" }))
        .await
        .expect(200);
}

#[tokio::test]
async fn expired_invitation_and_reset_tokens_are_refused() {
    // GIVEN an invitation and a reset token whose expiry has passed
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    stack
        .invite(
            &admin,
            &est,
            json!({ "email": "late@example.com", "role": "viewer" }),
        )
        .await
        .expect(201);
    let invite = stack.mailed_token("late@example.com").await;
    stack
        .send(
            Method::POST,
            "/auth/forgot-password",
            None,
            Some(json!({ "email": callplane_tests::ADMIN_EMAIL })),
        )
        .await
        .expect(202);
    let reset = stack.mailed_token(callplane_tests::ADMIN_EMAIL).await;
    let hash = callplane::auth::secret_token::hash;
    for key in [
        callplane::store::keys::invite_token(&hash(&invite)),
        callplane::store::keys::reset_token(&hash(&reset)),
    ] {
        stack
            .tamper(
                &key,
                &[(
                    "expires_at",
                    aws_sdk_dynamodb::types::AttributeValue::N("1000".into()),
                )],
            )
            .await;
    }

    // WHEN they are used
    let accept = stack
        .accept(json!({ "token": invite, "password": USER_PASSWORD, "display_name": "Late" }))
        .await;
    let reset = stack
        .send(
            Method::POST,
            "/auth/reset-password",
            None,
            Some(json!({ "token": reset, "password": "brand-new-password" })),
        )
        .await;

    // THEN both are 400 naming the token, no account exists, and the old password still works
    assert!(
        accept
            .expect_error(400, "validation_failed")
            .contains("token")
    );
    assert!(
        reset
            .expect_error(400, "validation_failed")
            .contains("token")
    );
    stack
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "late@example.com", "password": USER_PASSWORD })),
        )
        .await
        .expect_error(401, "unauthorized");
    stack.admin().await;
}

#[tokio::test]
async fn ids_too_long_for_a_key_are_refused_at_the_edge() {
    // GIVEN a stack with a registered host, a number and a call
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    stack.published(&admin, &agent, "v1").await;
    stack
        .number(&admin, &est, "+14155552671", &agent)
        .await
        .expect(201);
    let host_token = stack.host("host-a", (20000, 20010)).await;
    let long = "A".repeat(2100);

    // WHEN Twilio-signed webhooks carry a 2 KB CallSid (a DynamoDB key holds at most 2 KB)
    let incoming = stack
        .twilio_hook(
            "/webhooks/twilio/incoming-call",
            &[
                ("CallSid", &format!("CA{long}")),
                ("To", "+14155552671"),
                ("From", "+14155550100"),
            ],
            None,
        )
        .await;
    let status = stack
        .twilio_hook(
            "/webhooks/twilio/call-status",
            &[("CallSid", &format!("CA{long}")), ("CallStatus", "ringing")],
            None,
        )
        .await;
    // THEN each is a 400 naming CallSid, not a 5xx nor an apology to the caller
    assert!(
        incoming
            .expect_error(400, "validation_failed")
            .contains("CallSid")
    );
    assert!(
        status
            .expect_error(400, "validation_failed")
            .contains("CallSid")
    );

    // WHEN a host path carries a 2 KB host id THEN it is no such host (404), not a 5xx
    stack
        .send(
            Method::GET,
            &format!("/hosts/{long}/runtimes"),
            Some(&host_token),
            None,
        )
        .await
        .expect_error(404, "not_found");

    // WHEN a transcript poll names a 2 KB segment THEN 400 naming since_segment_id
    let call_id = callplane::ids::CallId::new();
    let reply = stack
        .get(
            &format!("/calls/{call_id}/transcript?since_segment_id={long}"),
            &admin,
        )
        .await;
    assert!(reply.status.as_u16() < 500, "{}", reply.body);
}

#[tokio::test]
async fn what_the_description_allows_is_accepted_a_null_options_body_an_integral_float_an_empty_cursor()
 {
    // GIVEN an agent with a draft (schemathesis found these three, all valid per docs/openapi.json)
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Concierge").await;
    let mut body = callplane_tests::brain("Be brief.");
    body["model"]["max_tokens"] = json!(1024.0);
    // WHEN a version's max_tokens is written as an integral float
    let created = stack
        .post(&format!("/agents/{agent}/versions"), &admin, body)
        .await;
    // THEN it is the integer it denotes
    let version = created.expect(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["model"]["max_tokens"], json!(1024));
    // AND a fraction is still refused, naming the field
    let mut fraction = callplane_tests::brain("Be brief.");
    fraction["model"]["max_tokens"] = json!(1024.5);
    let refused = stack
        .post(&format!("/agents/{agent}/versions"), &admin, fraction)
        .await;
    assert!(
        refused
            .expect_error(400, "validation_failed")
            .contains("max_tokens")
    );

    // WHEN the publish options body is JSON `null`
    let published = stack
        .send(
            Method::POST,
            &format!("/agents/{agent}/versions/{version}/publish"),
            Some(&admin),
            Some(Value::Null),
        )
        .await;
    // THEN it is the options left out
    assert_eq!(published.expect(200)["active_version_id"], json!(version));

    // WHEN a list is asked for with an empty cursor
    let first = stack
        .get(&format!("/agents/{agent}/versions?cursor="), &admin)
        .await;
    // THEN it is the first page
    assert_eq!(first.expect(200)["items"].as_array().unwrap().len(), 1);
}
