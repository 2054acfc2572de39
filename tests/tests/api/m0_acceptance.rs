//! PRD Appendix C, M0: an admin creates an establishment and invites an operator; the operator
//! accepts, logs in and sees it; a viewer cannot create anything.

use callplane_tests::{ADMIN_EMAIL, Stack, USER_PASSWORD};
use http::Method;
use serde_json::json;

#[tokio::test]
async fn admin_creates_establishment_invites_operator_who_logs_in_and_sees_it() {
    // GIVEN the bootstrap admin, logged in
    let stack = Stack::new().await;
    let admin = stack.admin().await;

    // WHEN the admin creates an establishment
    let created = stack.post("/establishments", &admin, json!({ "name": "Helios Energy HQ", "timezone": "America/Sao_Paulo", "locale": "pt-BR" })).await;
    let est = created.expect(201).clone();
    let est_id = est["id"].as_str().unwrap();
    // THEN it comes back as Appendix A.2 shows it
    assert!(est_id.starts_with("est_"));
    assert_eq!(est["name"], "Helios Energy HQ");
    assert_eq!(est["timezone"], "America/Sao_Paulo");
    assert_eq!(est["locale"], "pt-BR");
    assert!(est["created_at"].as_str().unwrap().ends_with('Z'));

    // WHEN the admin invites an operator
    let invited = stack
        .invite(
            &admin,
            est_id,
            json!({ "email": "Operator@Example.com", "role": "operator" }),
        )
        .await;
    let invitation = invited.expect(201);
    assert!(
        invitation["invitation_id"]
            .as_str()
            .unwrap()
            .starts_with("inv_")
    );
    assert_eq!(invitation["status"], "sent");
    // THEN the people list shows the pending invitation, and the outbox holds the mail
    let people = stack
        .get(&format!("/establishments/{est_id}/users"), &admin)
        .await;
    let items = people.expect(200)["items"].as_array().unwrap().clone();
    assert!(
        items.iter().any(|p| p["email"] == "operator@example.com"
            && p["status"] == "pending"
            && p["role"] == "operator"),
        "{items:?}"
    );
    assert!(
        items
            .iter()
            .any(|p| p["email"] == ADMIN_EMAIL && p["role"] == "admin" && p["user_id"].is_string())
    );
    let mail = stack
        .last_mail("operator@example.com")
        .await
        .expect("invitation mail");
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .contains("Helios Energy HQ")
    );
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("http://app.test/accept-invitation?token=")
    );

    // WHEN the operator accepts with a password and a display name
    let token = stack.mailed_token("operator@example.com").await;
    let accepted = stack
        .accept(
            json!({ "token": token, "password": USER_PASSWORD, "display_name": "Olga Operator" }),
        )
        .await;
    accepted.expect(200);
    assert_eq!(accepted.body["user"]["default_establishment_id"], est_id);

    // AND logs in
    let login = stack
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "operator@example.com", "password": USER_PASSWORD })),
        )
        .await;
    let body = login.expect(200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["user"]["email"], "operator@example.com");
    assert_eq!(body["user"]["display_name"], "Olga Operator");
    assert_eq!(body["user"]["default_establishment_id"], est_id);
    let operator = body["access_token"].as_str().unwrap().to_owned();

    // THEN the operator sees the establishment, in the list and by id, and their role in /me
    let list = stack.get("/establishments", &operator).await;
    assert_eq!(
        list.expect(200)["items"],
        json!([{ "id": est_id, "name": "Helios Energy HQ", "timezone": "America/Sao_Paulo", "locale": "pt-BR" }])
    );
    assert_eq!(list.body["cursor"], json!(null));
    stack
        .get(&format!("/establishments/{est_id}"), &operator)
        .await
        .expect(200);
    let me = stack.get("/me", &operator).await;
    assert_eq!(
        me.expect(200)["memberships"],
        json!([{ "establishment_id": est_id, "role": "operator" }])
    );
    assert_eq!(me.body["user"]["email"], "operator@example.com");
    // AND the invitation is no longer pending: the operator is a member
    let people = stack
        .get(&format!("/establishments/{est_id}/users"), &admin)
        .await;
    let items = people.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(|p| p.get("status").is_none()));
    // AND the invitation token cannot be used again
    let again = stack
        .accept(json!({ "token": token, "password": USER_PASSWORD, "display_name": "Olga" }))
        .await;
    again.expect_error(400, "validation_failed");
}

#[tokio::test]
async fn a_viewer_cannot_create_anything() {
    // GIVEN an establishment with a viewer and an operator
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let operator = stack
        .member(&admin, &est, "operator@example.com", "operator")
        .await;

    for (who, token) in [("viewer", &viewer), ("operator", &operator)] {
        // WHEN they try to create an establishment, invite someone, change policy or rename
        let create = stack
            .post(
                "/establishments",
                token,
                json!({ "name": "Mine", "timezone": "UTC", "locale": "en" }),
            )
            .await;
        let invite = stack
            .post(
                &format!("/establishments/{est}/users"),
                token,
                json!({ "email": "x@example.com", "role": "viewer" }),
            )
            .await;
        let policy = stack
            .patch(
                &format!("/establishments/{est}/telephony"),
                token,
                json!({ "max_call_duration_seconds": 600 }),
            )
            .await;
        let rename = stack
            .patch(
                &format!("/establishments/{est}"),
                token,
                json!({ "name": "Renamed" }),
            )
            .await;
        // THEN each is 403 with the envelope, and nothing changed
        for reply in [create, invite, policy, rename] {
            let message = reply.expect_error(403, "forbidden");
            assert!(message.contains("admin"), "{who}: {message}");
        }
    }
    assert_eq!(
        stack.get("/establishments", &admin).await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(stack.last_mail("x@example.com").await.is_none());
    let policy = stack
        .get(&format!("/establishments/{est}/telephony"), &viewer)
        .await;
    assert_eq!(policy.expect(200)["max_call_duration_seconds"], 900);
    assert_eq!(
        stack
            .get(&format!("/establishments/{est}"), &viewer)
            .await
            .expect(200)["name"],
        "Helios"
    );
}

#[tokio::test]
async fn telephony_policy_round_trips_and_patches_partially() {
    // GIVEN an establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let path = format!("/establishments/{est}/telephony");

    // WHEN the admin sets the whole policy
    let full = json!({
        "handoff_e164": "+1 415 555 2671",
        "max_call_duration_seconds": 900,
        "business_hours": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "22:00" }],
        "blacklist_e164": ["+5511987654321", "+5511987654321"]
    });
    let set = stack.patch(&path, &admin, full).await;
    // THEN the answer has Appendix A.2's shape, numbers canonical and the blacklist deduplicated
    assert_eq!(
        set.expect(200).clone(),
        json!({
            "establishment_id": est,
            "inbound_numbers": [],
            "handoff_e164": "+14155552671",
            "max_call_duration_seconds": 900,
            "business_hours": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "22:00" }],
            "blacklist_e164": ["+5511987654321"],
            "max_concurrent_calls": 10
        })
    );
    // AND the campaign concurrency limit is bounded
    let over = stack
        .patch(&path, &admin, json!({ "max_concurrent_calls": 101 }))
        .await;
    assert_eq!(over.status.as_u16(), 400);
    assert_eq!(
        over.body["error"]["details"]["field"],
        "max_concurrent_calls"
    );

    // WHEN only the duration changes, and then the handoff number is cleared with null
    stack
        .patch(&path, &admin, json!({ "max_call_duration_seconds": 600 }))
        .await
        .expect(200);
    let cleared = stack
        .patch(&path, &admin, json!({ "handoff_e164": null }))
        .await;
    // THEN the other fields are untouched
    let body = cleared.expect(200);
    assert_eq!(body["max_call_duration_seconds"], 600);
    assert_eq!(body["handoff_e164"], json!(null));
    assert_eq!(body["blacklist_e164"], json!(["+5511987654321"]));
    assert_eq!(stack.get(&path, &admin).await.expect(200), body);
}
