//! Races: uniqueness holds under concurrent requests.

use callplane_tests::{Stack, USER_PASSWORD};
use futures::future::join_all;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn concurrent_acceptances_for_one_email_create_exactly_one_user() {
    // GIVEN one email invited to five establishments
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let mut tokens = Vec::new();
    let mut ests = Vec::new();
    for i in 0..5 {
        let est = stack.establishment(&admin, &format!("Site {i}")).await;
        stack
            .invite(
                &admin,
                &est,
                json!({ "email": "many@example.com", "role": "operator" }),
            )
            .await
            .expect(201);
        tokens.push(stack.mailed_token("many@example.com").await);
        ests.push(est);
    }

    // WHEN all five invitations are accepted at once, with the same password
    let replies = join_all(tokens.iter().map(|t| {
        stack.accept(json!({ "token": t, "password": USER_PASSWORD, "display_name": "Many" }))
    }))
    .await;

    // THEN every acceptance succeeds, all for the same user id
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| r.expect(200)["user"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    // AND that one account is a member of all five
    let token = stack.login("many@example.com", USER_PASSWORD).await;
    let mut member_of: Vec<String> = stack.get("/me", &token).await.expect(200)["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["establishment_id"].as_str().unwrap().to_owned())
        .collect();
    member_of.sort();
    ests.sort();
    assert_eq!(member_of, ests);
    // AND the table holds exactly one profile for the email
    let profiles = stack
        .app
        .store
        .client()
        .scan()
        .table_name(stack.app.store.table())
        .filter_expression("sk = :p AND email = :e")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()),
        )
        .expression_attribute_values(
            ":e",
            aws_sdk_dynamodb::types::AttributeValue::S("many@example.com".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(profiles.count, 1);
}

#[tokio::test]
async fn concurrent_duplicate_invites_leave_one_pending_invitation() {
    // GIVEN an establishment
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let path = format!("/establishments/{est}/users");

    // WHEN the same email is invited ten times at once
    let replies = join_all((0..10).map(|_| {
        stack.post(
            &path,
            &admin,
            json!({ "email": "dup@example.com", "role": "viewer" }),
        )
    }))
    .await;

    // THEN exactly one is 201 and the others 409
    let created = replies.iter().filter(|r| r.status == 201).count();
    let conflicts = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "conflict")
        .count();
    assert_eq!((created, conflicts), (1, 9), "{replies:?}");
    // AND the list shows one pending invitation
    let people = stack.get(&path, &admin).await;
    let pending: Vec<_> = people.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["email"] == "dup@example.com")
        .cloned()
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["status"], "pending");
}

#[tokio::test]
async fn one_invitation_token_accepted_twice_at_once_admits_once() {
    // GIVEN one invitation
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    stack
        .invite(
            &admin,
            &est,
            json!({ "email": "twice@example.com", "role": "viewer" }),
        )
        .await
        .expect(201);
    let token = stack.mailed_token("twice@example.com").await;

    // WHEN its token is accepted twice concurrently
    let body = json!({ "token": token, "password": USER_PASSWORD, "display_name": "Twice" });
    let replies = join_all((0..2).map(|_| {
        stack.send(
            Method::POST,
            "/auth/accept-invitation",
            None,
            Some(body.clone()),
        )
    }))
    .await;

    // THEN one succeeds and the other is refused
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 400], "{replies:?}");
    let people = stack
        .get(&format!("/establishments/{est}/users"), &admin)
        .await;
    assert_eq!(people.expect(200)["items"].as_array().unwrap().len(), 2);
}
