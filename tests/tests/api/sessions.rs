//! Tokens and sessions: missing, expired, tampered and `alg: none` tokens; logout; role changes
//! and removals on the next request; password resets; DynamoDB round trips of login and /me.

use callplane_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack, USER_PASSWORD};
use http::Method;
use serde_json::json;

#[tokio::test]
async fn bad_tokens_are_401() {
    // GIVEN a valid token, and forgeries of it
    let stack = Stack::new().await;
    let token = stack.admin().await;
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    let claims = json!({ "sub": callplane::ids::UserId::new().to_string(), "iss": "callplane", "iat": 1, "exp": 1000, "jti": "j" });
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret-test-secret-test-secret!"),
    )
    .unwrap();

    // WHEN /me is called with each
    let missing = stack.send(Method::GET, "/me", None, None).await;
    let replies = [
        stack.get("/me", &alg_none).await,
        stack.get("/me", &tampered).await,
        stack.get("/me", &expired).await,
        stack.get("/me", "garbage").await,
    ];
    // THEN every one is 401 with the envelope
    assert!(missing.expect_error(401, "unauthorized").contains("Bearer"));
    for reply in &replies {
        reply.expect_error(401, "unauthorized");
    }
    assert!(
        replies[2]
            .expect_error(401, "unauthorized")
            .contains("expired")
    );
    stack.get("/me", &token).await.expect(200);
}

#[tokio::test]
async fn login_refuses_wrong_passwords_and_unknown_emails_alike() {
    let stack = Stack::new().await;
    // WHEN the password is wrong, or the email unknown
    let wrong = stack
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": ADMIN_EMAIL, "password": "not-the-password" })),
        )
        .await;
    let unknown = stack
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "nobody@example.com", "password": ADMIN_PASSWORD })),
        )
        .await;
    // THEN both say the same thing
    assert_eq!(
        wrong.expect_error(401, "unauthorized"),
        unknown.expect_error(401, "unauthorized")
    );
}

#[tokio::test]
async fn logout_revokes_the_token() {
    // GIVEN two sessions of the same user
    let stack = Stack::new().await;
    let first = stack.admin().await;
    let second = stack.admin().await;
    // WHEN the first logs out
    stack
        .send(Method::POST, "/auth/logout", Some(&first), None)
        .await
        .expect(204);
    // THEN that token is refused on the next request, and the other session still works
    let message = stack
        .get("/me", &first)
        .await
        .expect_error(401, "unauthorized");
    assert!(message.contains("revoked"), "{message}");
    stack
        .get("/establishments", &first)
        .await
        .expect_error(401, "unauthorized");
    stack.get("/me", &second).await.expect(200);
}

#[tokio::test]
async fn role_changes_and_removals_take_effect_on_the_next_request() {
    // GIVEN an operator in an establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let operator = stack
        .member(&admin, &est, "op@example.com", "operator")
        .await;
    let op_id = stack.get("/me", &operator).await.expect(200)["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invite = |token: &str, email: &str| {
        let (token, path, email) = (
            token.to_owned(),
            format!("/establishments/{est}/users"),
            email.to_owned(),
        );
        let stack = &stack;
        async move {
            stack
                .post(&path, &token, json!({ "email": email, "role": "viewer" }))
                .await
        }
    };
    invite(&operator, "x1@example.com")
        .await
        .expect_error(403, "forbidden");

    // WHEN the admin promotes them to admin
    let promoted = stack
        .patch(
            &format!("/users/{op_id}"),
            &admin,
            json!({ "establishment_id": est, "role": "admin" }),
        )
        .await;
    assert_eq!(promoted.expect(200)["role"], "admin");
    // THEN their very next request with the same token may invite
    invite(&operator, "x2@example.com").await.expect(201);

    // WHEN they are demoted to viewer
    stack
        .patch(
            &format!("/users/{op_id}"),
            &admin,
            json!({ "establishment_id": est, "role": "viewer" }),
        )
        .await
        .expect(200);
    // THEN the next request is 403 again, and /me shows the new role
    invite(&operator, "x3@example.com")
        .await
        .expect_error(403, "forbidden");
    assert_eq!(
        stack.get("/me", &operator).await.expect(200)["memberships"][0]["role"],
        "viewer"
    );

    // WHEN they are removed
    stack
        .send(
            Method::DELETE,
            &format!("/establishments/{est}/users/{op_id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    // THEN the establishment no longer exists for them
    stack
        .get(&format!("/establishments/{est}"), &operator)
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        stack.get("/me", &operator).await.expect(200)["memberships"],
        json!([])
    );
    assert_eq!(
        stack.get("/establishments", &operator).await.expect(200)["items"],
        json!([])
    );
    // AND removing them again is 404
    stack
        .send(
            Method::DELETE,
            &format!("/establishments/{est}/users/{op_id}"),
            Some(&admin),
            None,
        )
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_removed() {
    // GIVEN an establishment whose only admin is its creator
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let me = stack.get("/me", &admin).await.expect(200)["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // WHEN they demote or remove themselves
    let demote = stack
        .patch(
            &format!("/users/{me}"),
            &admin,
            json!({ "establishment_id": est, "role": "operator" }),
        )
        .await;
    let remove = stack
        .send(
            Method::DELETE,
            &format!("/establishments/{est}/users/{me}"),
            Some(&admin),
            None,
        )
        .await;
    // THEN both are 409 and they are still admin
    assert!(
        demote
            .expect_error(409, "conflict")
            .contains("at least one admin")
    );
    remove.expect_error(409, "conflict");
    assert_eq!(
        stack.get("/me", &admin).await.expect(200)["memberships"][0]["role"],
        "admin"
    );
    // AND once a second admin exists, the first may step down
    stack
        .member(&admin, &est, "second@example.com", "admin")
        .await;
    stack
        .patch(
            &format!("/users/{me}"),
            &admin,
            json!({ "establishment_id": est, "role": "operator" }),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn password_reset_is_single_use_and_ends_older_sessions() {
    // GIVEN a member with a session
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let old_session = stack
        .member(&admin, &est, "forgetful@example.com", "viewer")
        .await;

    // WHEN they ask for a reset, and someone asks for an unknown email
    let known = stack
        .send(
            Method::POST,
            "/auth/forgot-password",
            None,
            Some(json!({ "email": "Forgetful@example.com" })),
        )
        .await;
    let unknown = stack
        .send(
            Method::POST,
            "/auth/forgot-password",
            None,
            Some(json!({ "email": "ghost@example.com" })),
        )
        .await;
    // THEN both get the same 202, and only the real account gets mail
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    known.expect(202);
    assert!(stack.last_mail("ghost@example.com").await.is_none());
    let token = stack.mailed_token("forgetful@example.com").await;

    // WHEN they reset with the mailed token
    stack
        .send(
            Method::POST,
            "/auth/reset-password",
            None,
            Some(json!({ "token": token, "password": "a-new-password-456" })),
        )
        .await
        .expect(204);
    // THEN the new password works, the old one and the old session do not, and the token is spent
    stack
        .login("forgetful@example.com", "a-new-password-456")
        .await;
    stack
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "forgetful@example.com", "password": USER_PASSWORD })),
        )
        .await
        .expect_error(401, "unauthorized");
    assert!(
        stack
            .get("/me", &old_session)
            .await
            .expect_error(401, "unauthorized")
            .contains("reset")
    );
    let again = stack
        .send(
            Method::POST,
            "/auth/reset-password",
            None,
            Some(json!({ "token": token, "password": "third-password-789" })),
        )
        .await;
    again.expect_error(400, "validation_failed");
}

#[tokio::test]
async fn login_reads_once_before_the_password_check_and_me_takes_two_round_trips() {
    // GIVEN a member of an establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    stack.establishment(&admin, "Helios").await;
    let login = |password: &'static str| {
        stack.send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": ADMIN_EMAIL, "password": password })),
        )
    };

    // WHEN a login fails the password check
    let (reply, before_check) = stack.round_trips.during(login("wrong-password!")).await;
    reply.expect(401);
    // THEN exactly one DynamoDB round trip happened before it
    assert_eq!(before_check, 1);
    // AND a successful login takes two (email; profile and memberships in one Query), /me two
    let (reply, total) = stack.round_trips.during(login(ADMIN_PASSWORD)).await;
    let token = reply.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(total, 2);
    let (reply, me) = stack.round_trips.during(stack.get("/me", &token)).await;
    reply.expect(200);
    assert_eq!(me, 2);
}
