//! Agents, versions, publish/rollback, the phone-number registry, the routing resolver and the
//! audit log (PRD M4, issue 3).

use callplane::domain::E164;
use callplane_tests::{Stack, brain};
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};

const NUMBER: &str = "+14155552671";

fn e164(raw: &str) -> E164 {
    E164::parse(raw).unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn m4_publish_v1_publish_v2_roll_back_to_v1_and_calls_route_to_v1() {
    // GIVEN an establishment with an agent whose number is registered
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova GPT").await;
    stack.number(&admin, &est, NUMBER, &agent).await.expect(201);

    // WHEN v1 is created and published
    let v1 = stack.draft(&admin, &agent, "You are Nova, v1.").await;
    let published = stack.activate(&admin, &agent, &v1, "publish").await;
    // THEN the answer is Appendix A.3's
    assert_eq!(
        published.expect(200),
        &json!({ "agent_id": agent, "active_version_id": v1, "previous_version_id": null })
    );

    // WHEN v2 is created and published
    let v2_reply = stack
        .post(
            &format!("/agents/{agent}/versions"),
            &admin,
            brain("You are Nova, v2."),
        )
        .await;
    let v2_body = v2_reply.expect(201);
    assert_eq!(
        (v2_body["name"].as_str(), v2_body["number"].as_u64()),
        (Some("v2"), Some(2))
    );
    assert_eq!(v2_body["status"], "draft");
    let v2 = id(v2_body);
    let published = stack.activate(&admin, &agent, &v2, "publish").await;
    assert_eq!(published.expect(200)["previous_version_id"], json!(v1));

    // AND rolls back to v1
    let rolled = stack.activate(&admin, &agent, &v1, "rollback").await;
    assert_eq!(
        rolled.expect(200),
        &json!({ "agent_id": agent, "active_version_id": v1, "previous_version_id": v2 })
    );

    // THEN the agent's active version is v1, v1 is published and v2 archived
    let shown = stack.get(&format!("/agents/{agent}"), &admin).await;
    assert_eq!(shown.expect(200)["active_version_id"], json!(v1));
    let versions = stack
        .get(&format!("/agents/{agent}/versions"), &admin)
        .await;
    let statuses: Vec<(String, String)> = versions.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (id(v), v["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (v1.clone(), "published".into()),
            (v2.clone(), "archived".into())
        ]
    );
    // AND the resolver answers v1 for the agent's number, in exactly one DynamoDB read
    let (route, reads) = stack
        .round_trips
        .during(stack.app.store.resolve_route(&e164(NUMBER)))
        .await;
    let route = route.unwrap().unwrap();
    assert_eq!(reads, 1);
    assert_eq!(route.establishment_id.as_str(), est);
    assert_eq!(route.agent_id.as_str(), agent);
    assert_eq!(route.active_version_id.unwrap().as_str(), v1);
    assert!(route.enabled);
    // AND the deployment history says who activated what, newest first
    let history = stack
        .get(&format!("/agents/{agent}/deployments"), &admin)
        .await;
    let history: Vec<(String, String)> = history.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["activated_by"]["email"], "admin@callplane.test");
            (
                d["action"].as_str().unwrap().to_owned(),
                d["version_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("rollback".into(), v1.clone()),
            ("publish".into(), v2.clone()),
            ("publish".into(), v1.clone())
        ]
    );
    // AND the audit log holds the three activations and the number's creation, newest first
    let actions = stack.audit_actions(&admin, &est).await;
    assert_eq!(
        actions,
        vec![
            "agent_version.rolled_back",
            "agent_version.published",
            "agent_version.published",
            "phone_number.created"
        ]
    );
    let newest = stack
        .get(&format!("/establishments/{est}/audit-log?limit=1"), &admin)
        .await;
    let newest = &newest.expect(200)["items"][0];
    assert_eq!(newest["before"], json!({ "active_version_id": v2 }));
    assert_eq!(newest["actor"]["email"], "admin@callplane.test");
}

#[tokio::test]
async fn publish_is_one_transaction_and_the_resolver_one_read() {
    // GIVEN an agent with a routed number and a draft
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    stack.number(&admin, &est, NUMBER, &agent).await.expect(201);
    let v1 = stack.draft(&admin, &agent, "v1").await;

    // WHEN it is published
    let (reply, trips) = stack
        .round_trips
        .during(stack.activate(&admin, &agent, &v1, "publish"))
        .await;
    reply.expect(200);
    // THEN it took one read of agent and version, one session check and one transaction
    assert_eq!(trips, 3);
}

#[tokio::test]
async fn twenty_concurrent_publishes_never_lose_an_update_and_leave_one_active_version() {
    // GIVEN an agent with a routed number and twenty drafts
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    stack.number(&admin, &est, NUMBER, &agent).await.expect(201);
    let mut drafts = Vec::new();
    for i in 0..20 {
        drafts.push(stack.draft(&admin, &agent, &format!("draft {i}")).await);
    }

    // WHEN all twenty are published at once
    let replies = join_all(
        drafts
            .iter()
            .map(|v| stack.activate(&admin, &agent, v, "publish")),
    )
    .await;

    // THEN every publish either won or was told it lost the race. A publish that read the
    // agent after an earlier one committed may win too, but only on top of it: the winners form
    // one chain (no two winners built on the same read: no lost update)
    let winners: Vec<&Value> = replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| &r.body)
        .collect();
    let lost = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "conflict")
        .count();
    assert!(!winners.is_empty(), "{replies:?}");
    assert_eq!(winners.len() + lost, 20, "{replies:?}");
    let mut chain: Vec<String> = Vec::new();
    while chain.len() < winners.len() {
        let previous = chain.last().map_or(Value::Null, |v| json!(v));
        let next: Vec<&&Value> = winners
            .iter()
            .filter(|w| w["previous_version_id"] == previous)
            .collect();
        assert_eq!(next.len(), 1, "winners must chain: {winners:?}");
        chain.push(next[0]["active_version_id"].as_str().unwrap().to_owned());
    }
    let winner = chain.last().unwrap().clone();
    // AND exactly one version is published, the last winner; the earlier winners are archived
    let versions = stack
        .get(&format!("/agents/{agent}/versions?limit=100"), &admin)
        .await;
    let versions = versions.expect(200)["items"].as_array().unwrap().clone();
    let with_status = |status: &str| -> Vec<String> {
        versions
            .iter()
            .filter(|v| v["status"] == status)
            .map(id)
            .collect()
    };
    assert_eq!(with_status("published"), vec![winner.clone()]);
    let mut archived = with_status("archived");
    let mut earlier = chain[..chain.len() - 1].to_vec();
    archived.sort();
    earlier.sort();
    assert_eq!(archived, earlier);
    let shown = stack.get(&format!("/agents/{agent}"), &admin).await;
    assert_eq!(shown.expect(200)["active_version_id"], json!(winner));
    // AND the deployment history has exactly those activations, the last winner first
    let history = stack
        .get(&format!("/agents/{agent}/deployments"), &admin)
        .await;
    let history = history.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(history.len(), chain.len());
    assert_eq!(history[0]["version_id"], json!(winner));
    // AND calls to the number go to the last winner
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(route.active_version_id.unwrap().as_str(), winner);
}

#[tokio::test]
async fn a_stale_expected_active_version_is_a_conflict() {
    // GIVEN an agent whose v1 is active, and a v2 draft
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    let v1 = stack.published(&admin, &agent, "v1").await;
    let v2 = stack.draft(&admin, &agent, "v2").await;

    // WHEN v2 is published by someone who still believes no version is active
    let reply = stack
        .post(
            &format!("/agents/{agent}/versions/{v2}/publish"),
            &admin,
            json!({ "expected_active_version_id": null }),
        )
        .await;
    // THEN it is a conflict and v1 stays active
    reply.expect_error(409, "conflict");
    let shown = stack.get(&format!("/agents/{agent}"), &admin).await;
    assert_eq!(shown.expect(200)["active_version_id"], json!(v1));
    // AND with the right expectation it goes through
    let reply = stack
        .post(
            &format!("/agents/{agent}/versions/{v2}/publish"),
            &admin,
            json!({ "expected_active_version_id": v1 }),
        )
        .await;
    reply.expect(200);
}

#[tokio::test]
async fn routing_follows_reroutes_disables_and_deletes() {
    // GIVEN two published agents and a number routed to the first
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let nova = stack.agent(&admin, &est, "Nova").await;
    let orion = stack.agent(&admin, &est, "Orion").await;
    let nova_v1 = stack.published(&admin, &nova, "nova").await;
    let orion_v1 = stack.published(&admin, &orion, "orion").await;
    let created = stack.number(&admin, &est, NUMBER, &nova).await;
    let number = id(created.expect(201));
    assert_eq!(created.body["active_version_id"], json!(nova_v1));

    // WHEN the number is re-routed to Orion
    let moved = stack
        .patch(
            &format!("/phone-numbers/{number}"),
            &admin,
            json!({ "routing_agent_id": orion }),
        )
        .await;
    // THEN it carries Orion's active version, and the resolver agrees
    assert_eq!(moved.expect(200)["active_version_id"], json!(orion_v1));
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            route.agent_id.as_str(),
            route.active_version_id.unwrap().as_str()
        ),
        (orion.as_str(), orion_v1.as_str())
    );
    // AND Nova, no longer routed to, can be archived, while Orion cannot
    stack
        .send(
            Method::DELETE,
            &format!("/agents/{orion}"),
            Some(&admin),
            None,
        )
        .await
        .expect_error(409, "conflict");
    stack
        .send(
            Method::DELETE,
            &format!("/agents/{nova}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    let shown = stack.get(&format!("/agents/{nova}"), &admin).await;
    assert_eq!(shown.expect(200)["status"], "archived");

    // WHEN the number is disabled
    stack
        .patch(
            &format!("/phone-numbers/{number}"),
            &admin,
            json!({ "enabled": false }),
        )
        .await
        .expect(200);
    // THEN the resolver says so
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert!(!route.enabled);
    // AND the telephony view lists it (Appendix A.2)
    let telephony = stack
        .get(&format!("/establishments/{est}/telephony"), &admin)
        .await;
    assert_eq!(
        telephony.expect(200)["inbound_numbers"],
        json!([{ "id": number, "provider": "twilio", "e164": NUMBER, "routing_agent_id": orion, "enabled": false }])
    );

    // WHEN the number is deleted
    stack
        .send(
            Method::DELETE,
            &format!("/phone-numbers/{number}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    // THEN nothing routes, and Orion can be archived
    assert!(
        stack
            .app
            .store
            .resolve_route(&e164(NUMBER))
            .await
            .unwrap()
            .is_none()
    );
    stack
        .send(
            Method::DELETE,
            &format!("/agents/{orion}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    // AND the audit log recorded the routing changes
    let mut actions = stack.audit_actions(&admin, &est).await;
    actions.truncate(5);
    assert_eq!(
        actions,
        vec![
            "agent.archived",
            "phone_number.deleted",
            "phone_number.routing_changed",
            "agent.archived",
            "phone_number.routing_changed"
        ]
    );
}

#[tokio::test]
async fn one_number_attached_by_two_establishments_at_once_goes_to_one() {
    // GIVEN two establishments with an agent each
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let a = stack.establishment(&admin, "Alpha").await;
    let b = stack.establishment(&admin, "Beta").await;
    let agent_a = stack.agent(&admin, &a, "A").await;
    let agent_b = stack.agent(&admin, &b, "B").await;

    // WHEN both register the same number at once
    let (ra, rb) = tokio::join!(
        stack.number(&admin, &a, NUMBER, &agent_a),
        stack.number(&admin, &b, NUMBER, &agent_b)
    );

    // THEN one wins, the other is a conflict naming the field
    let mut statuses = vec![ra.status.as_u16(), rb.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "{ra:?} {rb:?}");
    let loser = if ra.status == 409 { &ra } else { &rb };
    assert_eq!(loser.body["error"]["details"]["field"], "e164");
    // AND the number routes to the winner's establishment and agent
    let winner_est = if ra.status == 201 { &a } else { &b };
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(route.establishment_id.as_str(), winner_est);
}

#[tokio::test]
async fn bad_versions_and_routes_are_refused_and_change_nothing() {
    // GIVEN two establishments; Helios has an agent with a published v1
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let other_est = stack.establishment(&admin, "Other").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    let other_agent = stack.agent(&admin, &est, "Orion").await;
    let foreign_agent = stack.agent(&admin, &other_est, "Foreign").await;
    let v1 = stack.published(&admin, &agent, "v1").await;
    let orion_draft = stack.draft(&admin, &other_agent, "orion").await;
    let versions = format!("/agents/{agent}/versions");

    // WHEN bad brains are posted THEN each is a 400 naming the field
    for (path, bad, field) in [
        (
            "/tools",
            json!({ "teleport": { "enabled": true } }),
            "tools",
        ),
        ("/model/temperature", json!(2.5), "model.temperature"),
        // a number DynamoDB cannot store (below 1e-130) used to pass and fail the write
        ("/model/temperature", json!(1e-131), "model.temperature"),
        ("/model/max_tokens", json!(0), "model.max_tokens"),
        ("/model/max_tokens", json!(40000), "model.max_tokens"),
        ("/prompt", json!("   "), "prompt"),
    ] {
        let mut body = brain("x");
        *body.pointer_mut(path).unwrap() = bad;
        let reply = stack.post(&versions, &admin, body).await;
        let message = reply.expect_error(400, "validation_failed");
        assert!(message.contains(field), "{field}: {message}");
    }
    // AND editing the published v1 is a conflict
    stack
        .patch(
            &format!("{versions}/{v1}"),
            &admin,
            json!({ "prompt": "changed" }),
        )
        .await
        .expect_error(409, "conflict");
    // AND publishing another agent's version through this agent is not found
    stack
        .activate(&admin, &agent, &orion_draft, "publish")
        .await
        .expect_error(404, "not_found");
    // AND rolling back to a never-published version is a conflict naming it
    let v2 = stack.draft(&admin, &agent, "v2").await;
    let reply = stack.activate(&admin, &agent, &v2, "rollback").await;
    reply.expect_error(409, "conflict");
    assert_eq!(reply.body["error"]["details"]["field"], "version_id");
    // AND routing a number to an agent of another establishment is not found (field named)
    let reply = stack.number(&admin, &est, NUMBER, &foreign_agent).await;
    reply.expect_error(404, "not_found");
    assert_eq!(reply.body["error"]["details"]["field"], "routing_agent_id");
    // AND routing to an archived agent is a conflict naming the field
    stack
        .send(
            Method::DELETE,
            &format!("/agents/{other_agent}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);
    let reply = stack.number(&admin, &est, NUMBER, &other_agent).await;
    reply.expect_error(409, "conflict");
    assert_eq!(reply.body["error"]["details"]["field"], "routing_agent_id");

    // THEN nothing was stored: v1 unchanged and active, only v1 and v2 exist, no number
    let v1_now = stack.get(&format!("{versions}/{v1}"), &admin).await;
    assert_eq!(v1_now.expect(200)["prompt"], "v1");
    let listed = stack.get(&versions, &admin).await;
    assert_eq!(listed.expect(200)["items"].as_array().unwrap().len(), 2);
    let shown = stack.get(&format!("/agents/{agent}"), &admin).await;
    assert_eq!(shown.expect(200)["active_version_id"], json!(v1));
    let numbers = stack
        .get(&format!("/establishments/{est}/phone-numbers"), &admin)
        .await;
    assert_eq!(numbers.expect(200)["items"], json!([]));
    assert!(
        stack
            .app
            .store
            .resolve_route(&e164(NUMBER))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn viewers_and_operators_read_but_cannot_change_agents_or_numbers() {
    // GIVEN an agent with a published v1, a draft v2 and a number; a viewer and an operator
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    let v1 = stack.published(&admin, &agent, "v1").await;
    let v2 = stack.draft(&admin, &agent, "v2").await;
    let number = id(stack.number(&admin, &est, NUMBER, &agent).await.expect(201));
    let viewer = stack
        .member(&admin, &est, "viewer@example.com", "viewer")
        .await;
    let operator = stack
        .member(&admin, &est, "operator@example.com", "operator")
        .await;

    for token in [&viewer, &operator] {
        // WHEN they read THEN it works
        for path in [
            format!("/establishments/{est}/agents"),
            format!("/agents/{agent}"),
            format!("/agents/{agent}/versions"),
            format!("/agents/{agent}/versions/{v1}"),
            format!("/agents/{agent}/deployments"),
            format!("/establishments/{est}/phone-numbers"),
            format!("/phone-numbers/{number}"),
        ] {
            stack.get(&path, token).await.expect(200);
        }
        // AND the audit log is for admins only
        stack
            .get(&format!("/establishments/{est}/audit-log"), token)
            .await
            .expect_error(403, "forbidden");
        // WHEN they try every change THEN each is 403
        let replies = vec![
            stack
                .post(
                    &format!("/establishments/{est}/agents"),
                    token,
                    json!({ "name": "X" }),
                )
                .await,
            stack
                .patch(&format!("/agents/{agent}"), token, json!({ "name": "X" }))
                .await,
            stack
                .send(
                    Method::DELETE,
                    &format!("/agents/{agent}"),
                    Some(token),
                    None,
                )
                .await,
            stack
                .post(&format!("/agents/{agent}/versions"), token, brain("x"))
                .await,
            stack
                .patch(
                    &format!("/agents/{agent}/versions/{v2}"),
                    token,
                    json!({ "prompt": "x" }),
                )
                .await,
            stack.activate(token, &agent, &v2, "publish").await,
            stack.activate(token, &agent, &v1, "rollback").await,
            stack.number(token, &est, "+14155552672", &agent).await,
            stack
                .patch(
                    &format!("/phone-numbers/{number}"),
                    token,
                    json!({ "enabled": false }),
                )
                .await,
            stack
                .send(
                    Method::DELETE,
                    &format!("/phone-numbers/{number}"),
                    Some(token),
                    None,
                )
                .await,
        ];
        for reply in &replies {
            reply.expect_error(403, "forbidden");
        }
    }
    // THEN nothing changed
    let shown = stack.get(&format!("/agents/{agent}"), &admin).await;
    assert_eq!(shown.expect(200)["active_version_id"], json!(v1));
    assert_eq!(shown.body["name"], "Nova");
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert!(route.enabled);
}

#[tokio::test]
async fn another_establishments_agents_and_numbers_are_not_found() {
    // GIVEN Alpha with an agent, versions and a number; Beta's admin
    let stack = Stack::new().await;
    let root = stack.admin().await;
    let a = stack.establishment(&root, "Alpha").await;
    let b = stack.establishment(&root, "Beta").await;
    let beta_admin = stack.member(&root, &b, "beta@example.com", "admin").await;
    let agent = stack.agent(&root, &a, "Nova").await;
    let v1 = stack.published(&root, &agent, "v1").await;
    let v2 = stack.draft(&root, &agent, "v2").await;
    let number = id(stack.number(&root, &a, NUMBER, &agent).await.expect(201));
    let beta_agent = stack.agent(&beta_admin, &b, "Mine").await;

    // WHEN Beta's admin tries every route on Alpha's resources
    let replies = vec![
        stack
            .get(&format!("/establishments/{a}/agents"), &beta_admin)
            .await,
        stack
            .post(
                &format!("/establishments/{a}/agents"),
                &beta_admin,
                json!({ "name": "X" }),
            )
            .await,
        stack.get(&format!("/agents/{agent}"), &beta_admin).await,
        stack
            .patch(
                &format!("/agents/{agent}"),
                &beta_admin,
                json!({ "name": "X" }),
            )
            .await,
        stack
            .send(
                Method::DELETE,
                &format!("/agents/{agent}"),
                Some(&beta_admin),
                None,
            )
            .await,
        stack
            .get(&format!("/agents/{agent}/versions"), &beta_admin)
            .await,
        stack
            .post(
                &format!("/agents/{agent}/versions"),
                &beta_admin,
                brain("x"),
            )
            .await,
        stack
            .get(&format!("/agents/{agent}/versions/{v1}"), &beta_admin)
            .await,
        stack
            .patch(
                &format!("/agents/{agent}/versions/{v2}"),
                &beta_admin,
                json!({ "prompt": "x" }),
            )
            .await,
        stack.activate(&beta_admin, &agent, &v2, "publish").await,
        stack.activate(&beta_admin, &agent, &v1, "rollback").await,
        stack
            .get(&format!("/agents/{agent}/deployments"), &beta_admin)
            .await,
        stack
            .get(&format!("/establishments/{a}/phone-numbers"), &beta_admin)
            .await,
        stack.number(&beta_admin, &a, "+14155552672", &agent).await,
        stack
            .get(&format!("/phone-numbers/{number}"), &beta_admin)
            .await,
        stack
            .patch(
                &format!("/phone-numbers/{number}"),
                &beta_admin,
                json!({ "routing_agent_id": beta_agent }),
            )
            .await,
        stack
            .send(
                Method::DELETE,
                &format!("/phone-numbers/{number}"),
                Some(&beta_admin),
                None,
            )
            .await,
        stack
            .get(&format!("/establishments/{a}/audit-log"), &beta_admin)
            .await,
        // Beta routing its own number to Alpha's agent
        stack.number(&beta_admin, &b, "+14155552673", &agent).await,
    ];
    // THEN every one is 404
    for reply in &replies {
        reply.expect_error(404, "not_found");
    }
    // AND nothing changed on Alpha
    let route = stack
        .app
        .store
        .resolve_route(&e164(NUMBER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(route.agent_id.as_str(), agent);
    assert_eq!(route.active_version_id.unwrap().as_str(), v1);
    assert!(
        stack
            .app
            .store
            .resolve_route(&e164("+14155552673"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn role_changes_and_removals_are_audited_and_the_log_pages_newest_first() {
    // GIVEN an establishment with two members
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    stack
        .member(&admin, &est, "op@example.com", "operator")
        .await;
    let viewer = stack.member(&admin, &est, "v@example.com", "viewer").await;
    let viewer_id = stack.get("/me", &viewer).await.expect(200)["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // WHEN the viewer is promoted and then removed
    stack
        .patch(
            &format!("/users/{viewer_id}"),
            &admin,
            json!({ "establishment_id": est, "role": "operator" }),
        )
        .await
        .expect(200);
    stack
        .send(
            Method::DELETE,
            &format!("/establishments/{est}/users/{viewer_id}"),
            Some(&admin),
            None,
        )
        .await
        .expect(204);

    // THEN the log shows the removal, then the role change, one per page
    let page1 = stack
        .get(&format!("/establishments/{est}/audit-log?limit=1"), &admin)
        .await;
    let first = page1.expect(200)["items"][0].clone();
    assert_eq!(first["action"], "member.removed");
    assert_eq!(first["target"], json!({ "type": "user", "id": viewer_id }));
    assert_eq!(first["before"]["role"], "operator");
    let cursor = page1.body["cursor"].as_str().unwrap();
    let page2 = stack
        .get(
            &format!("/establishments/{est}/audit-log?limit=1&cursor={cursor}"),
            &admin,
        )
        .await;
    let second = page2.expect(200)["items"][0].clone();
    assert_eq!(second["action"], "member.role_changed");
    assert_eq!(
        (second["before"].clone(), second["after"].clone()),
        (json!({ "role": "viewer" }), json!({ "role": "operator" }))
    );
    // AND a cursor from another establishment's log is refused
    let other = stack.establishment(&admin, "Other").await;
    stack
        .get(
            &format!("/establishments/{other}/audit-log?cursor={cursor}"),
            &admin,
        )
        .await
        .expect_error(400, "validation_failed");
}

#[tokio::test]
async fn a_draft_is_edited_and_reads_back_as_edited() {
    // GIVEN an agent with a draft
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let agent = stack.agent(&admin, &est, "Nova").await;
    let draft = stack.draft(&admin, &agent, "first prompt").await;
    let path = format!("/agents/{agent}/versions/{draft}");

    // WHEN the admin edits its prompt, then its model
    let edited = stack
        .patch(&path, &admin, json!({ "prompt": "changed" }))
        .await;
    let body = edited.expect(200).clone();
    let tuned = stack
        .patch(
            &path,
            &admin,
            json!({ "model": { "provider": "openai", "model": "gpt-4.1-mini", "temperature": 0.2, "max_tokens": 512 } }),
        )
        .await;

    // THEN each answer shows the edit, and a read shows both (the prompt edit was kept)
    assert_eq!(body["prompt"], "changed", "{body}");
    assert_eq!(tuned.expect(200)["model"]["temperature"], 0.2);
    let read = stack.get(&path, &admin).await;
    let read = read.expect(200);
    assert_eq!(read["prompt"], "changed");
    assert_eq!(read["model"]["max_tokens"], 512);
    assert_eq!(read["status"], "draft");
}
