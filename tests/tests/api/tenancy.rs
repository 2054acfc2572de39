//! Establishment scoping: another establishment's resources are 404 on every route, and
//! nothing changes.

use callplane_tests::Stack;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn another_establishments_resources_are_not_found_on_every_route() {
    // GIVEN two establishments, each with its own admin
    let stack = Stack::new().await;
    let root = stack.admin().await;
    let a = stack.establishment(&root, "Alpha").await;
    let b = stack.establishment(&root, "Beta").await;
    let alpha_admin = stack.member(&root, &a, "alpha@example.com", "admin").await;
    let beta_admin = stack.member(&root, &b, "beta@example.com", "admin").await;
    let alpha_user = stack.get("/me", &alpha_admin).await.expect(200)["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy_before = stack
        .get(&format!("/establishments/{a}/telephony"), &alpha_admin)
        .await
        .expect(200)
        .clone();

    // WHEN Beta's admin tries every route on Alpha
    let replies = vec![
        stack
            .get(&format!("/establishments/{a}"), &beta_admin)
            .await,
        stack
            .patch(
                &format!("/establishments/{a}"),
                &beta_admin,
                json!({ "name": "Pwned" }),
            )
            .await,
        stack
            .get(&format!("/establishments/{a}/telephony"), &beta_admin)
            .await,
        stack
            .patch(
                &format!("/establishments/{a}/telephony"),
                &beta_admin,
                json!({ "handoff_e164": "+14155552671" }),
            )
            .await,
        stack
            .get(&format!("/establishments/{a}/users"), &beta_admin)
            .await,
        stack
            .invite(
                &beta_admin,
                &a,
                json!({ "email": "spy@example.com", "role": "admin" }),
            )
            .await,
        stack
            .send(
                Method::DELETE,
                &format!("/establishments/{a}/users/{alpha_user}"),
                Some(&beta_admin),
                None,
            )
            .await,
        stack
            .patch(
                &format!("/users/{alpha_user}"),
                &beta_admin,
                json!({ "establishment_id": a, "role": "viewer" }),
            )
            .await,
        stack
            .get(&format!("/establishments/{a}/do-not-call"), &beta_admin)
            .await,
        stack
            .post(
                &format!("/establishments/{a}/do-not-call"),
                &beta_admin,
                json!({ "e164": "+14155552671" }),
            )
            .await,
        stack
            .send(
                Method::DELETE,
                &format!("/establishments/{a}/do-not-call/%2B14155552671"),
                Some(&beta_admin),
                None,
            )
            .await,
        stack
            .post(
                "/calls/outbound",
                &beta_admin,
                json!({ "establishment_id": a, "agent_id": callplane::ids::AgentId::new(), "to_e164": "+14155552672" }),
            )
            .await,
    ];
    // THEN every one is 404 not_found (existence does not leak)
    for reply in &replies {
        reply.expect_error(404, "not_found");
    }
    // AND Beta's own list shows only Beta
    let list = stack.get("/establishments", &beta_admin).await;
    assert_eq!(
        list.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![b.as_str()]
    );
    // AND nothing on Alpha changed
    assert_eq!(
        stack
            .get(&format!("/establishments/{a}"), &alpha_admin)
            .await
            .expect(200)["name"],
        "Alpha"
    );
    assert_eq!(
        stack
            .get(&format!("/establishments/{a}/telephony"), &alpha_admin)
            .await
            .expect(200),
        &policy_before
    );
    let me = stack.get("/me", &alpha_admin).await;
    assert_eq!(
        me.expect(200)["memberships"],
        json!([{ "establishment_id": a, "role": "admin" }])
    );
    assert!(stack.last_mail("spy@example.com").await.is_none());
    let people = stack
        .get(&format!("/establishments/{a}/users"), &alpha_admin)
        .await;
    assert_eq!(people.expect(200)["items"].as_array().unwrap().len(), 2);

    // AND a cursor from Alpha's list is refused on Beta's
    let page = stack
        .get(&format!("/establishments/{a}/users?limit=1"), &root)
        .await;
    let cursor = page.expect(200)["cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    stack
        .get(
            &format!("/establishments/{b}/users?limit=1&cursor={cursor}"),
            &root,
        )
        .await
        .expect_error(400, "validation_failed");
    let second = stack
        .get(
            &format!("/establishments/{a}/users?limit=1&cursor={cursor}"),
            &root,
        )
        .await;
    assert_eq!(second.expect(200)["items"].as_array().unwrap().len(), 1);
}
