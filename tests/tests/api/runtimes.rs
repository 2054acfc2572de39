//! The runtimes API and its host-agent side, driven over HTTP as a host would (no Docker
//! here; the host agent's own tests drive the real engine): provisioning, the state machine,
//! command outcomes, health, bad input, host tokens, roles and tenancy.

use callplane::hostapi::CommandMessage;
use callplane::queues::Queue;
use callplane_tests::{Reply, Stack};
use http::Method;
use serde_json::{Value, json};

const HOST: &str = "host-a";

async fn host_call(
    stack: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    stack.send(method, path, Some(token), body).await
}

/// The command messages waiting on the stack's runtime command queue.
async fn queued(stack: &Stack) -> Vec<CommandMessage> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = Queue::new(sqs, &stack.provisioned.queue_urls["runtime-commands"]);
    let mut out = Vec::new();
    loop {
        let batch = queue.receive(10, 0).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        for (receipt, body) in batch {
            out.push(serde_json::from_str(&body).unwrap());
            queue.delete(&receipt).await.unwrap();
        }
    }
}

/// Reports `outcome` for `command` of `runtime` as the host.
async fn report(
    stack: &Stack,
    host_token: &str,
    runtime: &str,
    command: &str,
    outcome: &str,
) -> Reply {
    host_call(
        stack,
        Method::POST,
        &format!("/hosts/{HOST}/commands/{command}/result"),
        host_token,
        Some(json!({ "runtime_id": runtime, "outcome": outcome, "attempt": 1 })),
    )
    .await
}

fn provision_body() -> Value {
    json!({
        "image": "callplane/runtime-sim:dev",
        "env": { "APP_PUBLIC_DOMAIN": "agent-helios.example.com", "SUPABASE_SERVICE_ROLE_KEY": "s3cr3t-value" }
    })
}

#[tokio::test]
async fn provision_then_lifecycle_follows_the_state_machine_as_the_host_reports() {
    // GIVEN an establishment and a registered host
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let host_token = stack.host(HOST, (18080, 18081)).await;

    // WHEN the admin provisions a runtime
    let reply = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await;
    let body = reply.expect(201).clone();
    let runtime = body["id"].as_str().unwrap().to_owned();
    // THEN it answers A.4 plus the command and the ingest token, shown once
    assert_eq!(body["establishment_id"], json!(est));
    assert_eq!(body["container_name"], json!(format!("agent_rt_{est}")));
    assert_eq!(body["base_url"], "http://127.0.0.1:18080");
    assert_eq!(body["status"], "provisioning");
    assert!(body["ingest_token"].as_str().unwrap().len() >= 40);
    // AND secrets are never echoed
    assert_eq!(body["env"]["SUPABASE_SERVICE_ROLE_KEY"], "********");
    assert_eq!(body["env"]["APP_PUBLIC_DOMAIN"], "agent-helios.example.com");
    let shown = stack
        .get(&format!("/establishments/{est}/runtime"), &admin)
        .await;
    assert_eq!(
        shown.expect(200)["env"]["SUPABASE_SERVICE_ROLE_KEY"],
        "********"
    );
    // AND the create command is on the host's queue and pending
    let create = body["command_id"].as_str().unwrap().to_owned();
    let messages = queued(&stack).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].command_id.as_str(), create);
    assert_eq!(messages[0].action.as_str(), "create");
    let cmd = stack
        .get(&format!("/runtimes/{runtime}/commands/{create}"), &admin)
        .await;
    assert_eq!(cmd.expect(200)["status"], "pending");
    // AND the host's spec carries the full environment, injected variables included
    let spec = host_call(
        &stack,
        Method::GET,
        &format!("/hosts/{HOST}/runtimes/{runtime}"),
        &host_token,
        None,
    )
    .await;
    let env = &spec.expect(200)["env"];
    assert_eq!(env["SUPABASE_SERVICE_ROLE_KEY"], "s3cr3t-value");
    assert_eq!(env["CALLPLANE_RUNTIME_ID"], json!(runtime));
    assert_eq!(env["CALLPLANE_INGEST_TOKEN"], body["ingest_token"]);
    assert_eq!(spec.body["desired"], "created");
    // AND the table holds the secret only sealed (the other variables in the clear)
    let runtime_key =
        callplane::store::keys::runtime(&callplane::ids::RuntimeId::parse(&runtime).unwrap());
    let raw = stack
        .app
        .store
        .client()
        .get_item()
        .table_name(stack.app.store.table())
        .set_key(Some(runtime_key.attrs()))
        .send()
        .await
        .unwrap();
    let raw = format!("{:?}", raw.item.unwrap());
    assert!(!raw.contains("s3cr3t-value"), "{raw}");
    assert!(raw.contains("sealed_env") && raw.contains("agent-helios.example.com"));

    // WHEN drain is asked before the host created it THEN it is a conflict
    stack
        .post_empty(&format!("/runtimes/{runtime}/drain"), &admin)
        .await
        .expect_error(409, "conflict");

    // WHEN the host reports the create succeeded (twice: reports are idempotent)
    report(&stack, &host_token, &runtime, &create, "succeeded")
        .await
        .expect(204);
    report(&stack, &host_token, &runtime, &create, "succeeded")
        .await
        .expect(204);
    // THEN the runtime is created and the command succeeded
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &admin)
        .await;
    assert_eq!(status.expect(200)["status"], "created");
    assert_eq!(status.body["ready"], false);
    let cmd = stack
        .get(&format!("/runtimes/{runtime}/commands/{create}"), &admin)
        .await;
    assert_eq!(cmd.expect(200)["status"], "succeeded");

    // WHEN it is started THEN 202 with the command, status starting, until the host reports
    let started = stack
        .post_empty(&format!("/runtimes/{runtime}/start"), &admin)
        .await;
    let started = started.expect(202).clone();
    assert_eq!(
        (
            started["status"].as_str(),
            started["desired_status"].as_str()
        ),
        (Some("starting"), Some("running"))
    );
    report(
        &stack,
        &host_token,
        &runtime,
        started["command_id"].as_str().unwrap(),
        "succeeded",
    )
    .await
    .expect(204);
    // AND a health report shows ready and agent info (A.4)
    let checked_at = callplane::time::Timestamp::now();
    let health = host_call(
        &stack,
        Method::POST,
        &format!("/hosts/{HOST}/health"),
        &host_token,
        Some(json!({ "reports": [{
            "runtime_id": runtime, "establishment_id": est, "container_state": "running", "reachable": true, "ready": true,
            "issues": [], "agent_info": { "active_calls": 1, "total_calls_handled": 42 },
            "checked_at": checked_at
        }]})),
    )
    .await;
    assert_eq!(
        health.expect(200)["results"][0]["outcome"],
        "applied",
        "{}",
        health.body
    );
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &admin)
        .await;
    assert_eq!(
        status.expect(200),
        &json!({
            "id": runtime, "status": "running", "desired_status": "running", "ready": true,
            "ready_issues": [], "last_checked_at": checked_at,
            "agent_info": { "active_calls": 1, "total_calls_handled": 42 },
            "reachable": true, "container_state": "running", "last_error": null,
            "recent_errors": []
        })
    );

    // WHEN resume is asked while running THEN it is a conflict
    stack
        .post_empty(&format!("/runtimes/{runtime}/resume"), &admin)
        .await
        .expect_error(409, "conflict");
    // AND a second provision is a conflict
    stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await
        .expect_error(409, "conflict");

    // WHEN a stop fails for good on the host
    let stop = stack
        .post_empty(&format!("/runtimes/{runtime}/stop"), &admin)
        .await;
    let stop_id = stop.expect(202)["command_id"].as_str().unwrap().to_owned();
    host_call(
        &stack,
        Method::POST,
        &format!("/hosts/{HOST}/commands/{stop_id}/result"),
        &host_token,
        Some(json!({ "runtime_id": runtime, "outcome": "failed", "error": "docker: engine unreachable", "attempt": 5, "final_attempt": true })),
    )
    .await
    .expect(204);
    // THEN the command and runtime say so, with the error
    let cmd = stack
        .get(&format!("/runtimes/{runtime}/commands/{stop_id}"), &admin)
        .await;
    assert_eq!(cmd.expect(200)["status"], "failed");
    assert_eq!(cmd.body["error"], "docker: engine unreachable");
    assert_eq!(cmd.body["attempts"], 5);
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &admin)
        .await;
    assert_eq!(status.expect(200)["status"], "failed");
    assert_eq!(status.body["last_error"], "docker: engine unreachable");

    // WHEN it is removed and the host confirms
    let removal = stack
        .send(
            Method::DELETE,
            &format!("/runtimes/{runtime}"),
            Some(&admin),
            None,
        )
        .await;
    let removal = removal.expect(202)["command_id"]
        .as_str()
        .unwrap()
        .to_owned();
    report(&stack, &host_token, &runtime, &removal, "succeeded")
        .await
        .expect(204);
    // THEN it is removed, start is refused, and the establishment can provision again on the
    // freed port
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &admin)
        .await;
    assert_eq!(status.expect(200)["status"], "removed");
    stack
        .post_empty(&format!("/runtimes/{runtime}/start"), &admin)
        .await
        .expect_error(409, "conflict");
    let again = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await;
    assert_eq!(again.expect(201)["host_port"], 18080);
    // AND the audit log recorded the lifecycle
    let actions = stack.audit_actions(&admin, &est).await;
    assert_eq!(
        actions,
        vec![
            "runtime.provisioned",
            "runtime.remove",
            "runtime.stop",
            "runtime.start",
            "runtime.provisioned"
        ]
    );
}

#[tokio::test]
async fn ports_are_unique_per_host_and_a_full_host_is_refused() {
    // GIVEN a host with two ports and three establishments
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    stack.host(HOST, (19000, 19001)).await;
    let mut ports = Vec::new();
    for name in ["A", "B"] {
        let est = stack.establishment(&admin, name).await;
        // WHEN each provisions
        let reply = stack
            .post(
                &format!("/establishments/{est}/runtime"),
                &admin,
                provision_body(),
            )
            .await;
        ports.push(reply.expect(201)["host_port"].as_u64().unwrap());
    }
    // THEN each got its own port
    assert_eq!(ports, vec![19000, 19001]);
    // AND the third is told the host is full, and nothing is stored for it
    let est = stack.establishment(&admin, "C").await;
    stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await
        .expect_error(503, "unavailable");
    stack
        .get(&format!("/establishments/{est}/runtime"), &admin)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn bad_provisioning_input_is_refused_and_stores_nothing() {
    // GIVEN an establishment and a host
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    stack.host(HOST, (18080, 18089)).await;
    let path = format!("/establishments/{est}/runtime");
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("K{i}"), json!("v"))).collect();

    // WHEN bad bodies are posted THEN each is a 400 naming the problem
    for (body, expect) in [
        (
            json!({ "image": "img", "env": { "CALLPLANE_INGEST_TOKEN": "x" } }),
            "reserved",
        ),
        (
            json!({ "image": "img", "env": { "CALLPLANE_RUNTIME_ID": "x" } }),
            "reserved",
        ),
        (
            json!({ "image": "img", "env": { "BIG": "x".repeat(4097) } }),
            "BIG",
        ),
        (json!({ "image": "img", "env": many }), "at most 100"),
        (json!({ "image": "Not An Image!" }), "image"),
        (json!({ "env": {} }), "image"),
    ] {
        let reply = stack.post(&path, &admin, body).await;
        let message = reply.expect_error(400, "validation_failed");
        assert!(message.contains(expect), "{expect}: {message}");
    }
    // THEN no runtime exists and the queue is empty
    stack
        .get(&path, &admin)
        .await
        .expect_error(404, "not_found");
    assert!(queued(&stack).await.is_empty());
}

#[tokio::test]
async fn a_wrong_host_token_is_401_and_records_nothing() {
    // GIVEN a provisioned runtime on host A and another host B
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    stack.host(HOST, (18080, 18081)).await;
    let other_token = stack.host("host-b", (18090, 18091)).await;
    let body = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await
        .expect(201)
        .clone();
    let (runtime, create) = (
        body["id"].as_str().unwrap(),
        body["command_id"].as_str().unwrap(),
    );

    // WHEN host A's endpoints are called with a wrong token, another host's token, or none
    for token in ["not-the-token", other_token.as_str()] {
        report(&stack, token, runtime, create, "succeeded")
            .await
            .expect_error(401, "unauthorized");
        host_call(
            &stack,
            Method::GET,
            &format!("/hosts/{HOST}/runtimes"),
            token,
            None,
        )
        .await
        .expect_error(401, "unauthorized");
        host_call(
            &stack,
            Method::POST,
            &format!("/hosts/{HOST}/health"),
            token,
            Some(json!({ "reports": [{ "runtime_id": runtime, "establishment_id": est, "container_state": "running", "reachable": true, "ready": true, "issues": [], "agent_info": null, "checked_at": "2026-01-10T00:00:00Z" }] })),
        )
        .await
        .expect_error(401, "unauthorized");
    }
    stack
        .send(Method::GET, &format!("/hosts/{HOST}/runtimes"), None, None)
        .await
        .expect_error(401, "unauthorized");
    // AND host B cannot report on host A's runtime through its own path either
    host_call(
        &stack,
        Method::POST,
        &format!("/hosts/host-b/commands/{create}/result"),
        &other_token,
        Some(json!({ "runtime_id": runtime, "outcome": "succeeded", "attempt": 1 })),
    )
    .await
    .expect_error(404, "not_found");

    // THEN nothing was recorded
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &admin)
        .await;
    assert_eq!(status.expect(200)["status"], "provisioning");
    assert_eq!(status.body["last_checked_at"], Value::Null);
    let cmd = stack
        .get(&format!("/runtimes/{runtime}/commands/{create}"), &admin)
        .await;
    assert_eq!(cmd.expect(200)["status"], "pending");
}

#[tokio::test]
async fn only_admins_change_lifecycle_and_other_tenants_see_nothing() {
    // GIVEN Alpha with a created runtime, its viewer and operator, and Beta's admin
    let stack = Stack::new().await;
    let root = stack.admin().await;
    let a = stack.establishment(&root, "Alpha").await;
    let b = stack.establishment(&root, "Beta").await;
    let host_token = stack.host(HOST, (18080, 18089)).await;
    let body = stack
        .post(
            &format!("/establishments/{a}/runtime"),
            &root,
            provision_body(),
        )
        .await
        .expect(201)
        .clone();
    let runtime = body["id"].as_str().unwrap().to_owned();
    let create = body["command_id"].as_str().unwrap().to_owned();
    report(&stack, &host_token, &runtime, &create, "succeeded")
        .await
        .expect(204);
    let viewer = stack
        .member(&root, &a, "viewer@example.com", "viewer")
        .await;
    let operator = stack
        .member(&root, &a, "operator@example.com", "operator")
        .await;
    let beta = stack.member(&root, &b, "beta@example.com", "admin").await;
    let actions = ["start", "stop", "restart", "drain", "resume"];

    // WHEN viewers and operators read THEN they can; WHEN they act THEN 403
    for token in [&viewer, &operator] {
        stack
            .get(&format!("/establishments/{a}/runtime"), token)
            .await
            .expect(200);
        stack
            .get(&format!("/runtimes/{runtime}/status"), token)
            .await
            .expect(200);
        stack
            .get(&format!("/runtimes/{runtime}/commands/{create}"), token)
            .await
            .expect(200);
        stack
            .post(
                &format!("/establishments/{a}/runtime"),
                token,
                provision_body(),
            )
            .await
            .expect_error(403, "forbidden");
        for action in actions {
            stack
                .post_empty(&format!("/runtimes/{runtime}/{action}"), token)
                .await
                .expect_error(403, "forbidden");
        }
        stack
            .send(
                Method::DELETE,
                &format!("/runtimes/{runtime}"),
                Some(token),
                None,
            )
            .await
            .expect_error(403, "forbidden");
    }
    // WHEN Beta's admin tries every route on Alpha's runtime THEN 404
    let mut replies = vec![
        stack
            .get(&format!("/establishments/{a}/runtime"), &beta)
            .await,
        stack
            .post(
                &format!("/establishments/{a}/runtime"),
                &beta,
                provision_body(),
            )
            .await,
        stack
            .get(&format!("/runtimes/{runtime}/status"), &beta)
            .await,
        stack
            .get(&format!("/runtimes/{runtime}/commands/{create}"), &beta)
            .await,
        stack
            .send(
                Method::DELETE,
                &format!("/runtimes/{runtime}"),
                Some(&beta),
                None,
            )
            .await,
    ];
    for action in actions {
        replies.push(
            stack
                .post_empty(&format!("/runtimes/{runtime}/{action}"), &beta)
                .await,
        );
    }
    for reply in &replies {
        reply.expect_error(404, "not_found");
    }
    // THEN the runtime is untouched and only the create command was ever queued
    let status = stack
        .get(&format!("/runtimes/{runtime}/status"), &root)
        .await;
    assert_eq!(status.expect(200)["status"], "created");
    assert_eq!(queued(&stack).await.len(), 1);
}

#[tokio::test]
async fn start_stop_and_restart_are_accepted_while_the_host_is_busy_and_the_host_converges() {
    // GIVEN an establishment and a registered host
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let host_token = stack.host(HOST, (18080, 18081)).await;

    // WHEN the admin provisions and at once asks to start, as a new user does
    let provisioned = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            provision_body(),
        )
        .await;
    let provisioned = provisioned.expect(201).clone();
    let runtime = provisioned["id"].as_str().unwrap().to_owned();
    let create = provisioned["command_id"].as_str().unwrap().to_owned();
    let start = stack
        .post_empty(&format!("/runtimes/{runtime}/start"), &admin)
        .await;
    // THEN the start is accepted, the desired state is running, and both commands are queued
    let start = start.expect(202).clone();
    assert_eq!(start["desired_status"], "running", "{start}");
    assert_eq!(start["status"], "starting");
    let actions: Vec<String> = queued(&stack)
        .await
        .iter()
        .map(|m| m.action.as_str().to_owned())
        .collect();
    assert_eq!(actions, ["create", "start"]);
    // WHEN the host converges (the create is superseded, the start succeeds)
    report(&stack, &host_token, &runtime, &create, "superseded")
        .await
        .expect(204);
    let start_id = start["command_id"].as_str().unwrap();
    report(&stack, &host_token, &runtime, start_id, "succeeded")
        .await
        .expect(204);
    // THEN the runtime is running
    let shown = stack
        .get(&format!("/establishments/{est}/runtime"), &admin)
        .await;
    assert_eq!(shown.expect(200)["status"], "running");

    // WHEN it is stopped and, while stopping, started again
    stack
        .post_empty(&format!("/runtimes/{runtime}/stop"), &admin)
        .await
        .expect(202);
    let again = stack
        .post_empty(&format!("/runtimes/{runtime}/start"), &admin)
        .await;
    // THEN the last word wins: running is desired
    assert_eq!(again.expect(202)["desired_status"], "running");
}

#[tokio::test]
async fn a_runtime_provisioned_to_start_with_a_public_url_is_reached_there_over_tls() {
    // GIVEN an establishment and a registered host
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let est = stack.establishment(&admin, "Helios").await;
    let host_token = stack.host(HOST, (18080, 18081)).await;

    // WHEN the admin provisions with start: true and a public URL
    let reply = stack
        .post(
            &format!("/establishments/{est}/runtime"),
            &admin,
            json!({ "image": "callplane/runtime-sim:dev", "start": true,
                    "public_url": "https://RT-Helios.example.com/" }),
        )
        .await;
    let body = reply.expect(201).clone();
    let runtime = body["id"].as_str().unwrap().to_owned();
    // THEN one command is queued and it converges straight to running
    assert_eq!(body["desired_status"], "running", "{body}");
    assert_eq!(body["public_url"], "https://rt-helios.example.com");
    assert_eq!(queued(&stack).await.len(), 1);
    // AND the host's spec carries the public address for its TLS front
    let spec = host_call(
        &stack,
        Method::GET,
        &format!("/hosts/{HOST}/runtimes/{runtime}"),
        &host_token,
        None,
    )
    .await;
    assert_eq!(
        spec.expect(200)["public_url"],
        "https://rt-helios.example.com"
    );
    assert_eq!(spec.body["desired"], "running");

    // WHEN the public URL is not https, or APP_PUBLIC_DOMAIN is not a name
    let other = stack.establishment(&admin, "Other").await;
    for (body, field) in [
        (
            json!({ "image": "img", "public_url": "http://rt.example.com" }),
            "public_url",
        ),
        (
            json!({ "image": "img", "env": { "APP_PUBLIC_DOMAIN": "not a domain" } }),
            "APP_PUBLIC_DOMAIN",
        ),
    ] {
        let reply = stack
            .post(&format!("/establishments/{other}/runtime"), &admin, body)
            .await;
        // THEN 400 naming it, and no runtime
        assert!(reply.expect_error(400, "validation_failed").contains(field));
    }
    stack
        .get(&format!("/establishments/{other}/runtime"), &admin)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn one_bad_runtime_report_is_refused_alone_and_the_host_s_other_runtimes_are_recorded() {
    // GIVEN two establishments with runtimes on one host
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let host_token = stack.host(HOST, (18080, 18081)).await;
    let mut runtimes = Vec::new();
    for name in ["Helios", "Borealis"] {
        let est = stack.establishment(&admin, name).await;
        let reply = stack
            .post(
                &format!("/establishments/{est}/runtime"),
                &admin,
                provision_body(),
            )
            .await;
        runtimes.push((est, reply.expect(201)["id"].as_str().unwrap().to_owned()));
    }
    let report = |(est, rt): &(String, String), info: Value| {
        json!({ "runtime_id": rt, "establishment_id": est, "container_state": "running",
                "reachable": true, "ready": true, "issues": [], "agent_info": info,
                "checked_at": callplane::time::Timestamp::now() })
    };
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }

    // WHEN the host reports: a good one, an oversized /info, an unstorable /info, junk
    let reply = host_call(
        &stack,
        Method::POST,
        &format!("/hosts/{HOST}/health"),
        &host_token,
        Some(json!({ "reports": [
            report(&runtimes[0], json!({ "active_calls": 2 })),
            report(&runtimes[1], json!({ "blob": "x".repeat(20_000) })),
            report(&runtimes[1], deep),
            { "runtime_id": 7 },
        ]})),
    )
    .await;
    // THEN the good report is applied and each bad one is refused on its own, naming why
    let results = reply.expect(200)["results"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["applied", "rejected", "rejected", "rejected"],
        "{results:?}"
    );
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agent_info")
    );
    assert!(
        results[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agent_info")
    );
    // AND the good runtime's status shows its report
    let status = stack
        .get(&format!("/runtimes/{}/status", runtimes[0].1), &admin)
        .await;
    assert_eq!(
        status.expect(200)["agent_info"]["active_calls"],
        2,
        "{}",
        status.body
    );

    // AND the host reads its runtimes a page at a time
    let first = host_call(
        &stack,
        Method::GET,
        &format!("/hosts/{HOST}/runtimes?limit=1"),
        &host_token,
        None,
    )
    .await;
    let first = first.expect(200).clone();
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let next = format!(
        "/hosts/{HOST}/runtimes?limit=1&cursor={}",
        first["cursor"].as_str().unwrap()
    );
    let second = host_call(&stack, Method::GET, &next, &host_token, None).await;
    let second = second.expect(200).clone();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_ne!(
        second["items"][0]["runtime_id"],
        first["items"][0]["runtime_id"]
    );

    // WHEN a report has more runtimes than a request may carry THEN 400, nothing recorded
    let many: Vec<Value> = (0..101).map(|_| report(&runtimes[0], json!({}))).collect();
    host_call(
        &stack,
        Method::POST,
        &format!("/hosts/{HOST}/health"),
        &host_token,
        Some(json!({ "reports": many })),
    )
    .await
    .expect_error(400, "validation_failed");
}

#[tokio::test]
async fn only_allowed_images_are_provisioned() {
    // GIVEN a deployment allowing its runtime images by prefix, and the default one
    let default = Stack::new().await;
    let admin = default.admin().await;
    let est = default.establishment(&admin, "Helios").await;
    default.host(HOST, (18080, 18081)).await;
    let path = format!("/establishments/{est}/runtime");
    // WHEN an admin provisions any other image (their own code on a shared host)
    let refused = default
        .post(&path, &admin, json!({ "image": "someone/miner:latest" }))
        .await;
    // THEN 422 image_not_allowed, naming the image, and no runtime
    assert!(
        refused
            .expect_error(422, "image_not_allowed")
            .contains("someone/miner:latest")
    );
    default
        .get(&format!("/establishments/{est}/runtime"), &admin)
        .await
        .expect_error(404, "not_found");

    // WHEN the deployment allows a registry prefix THEN its images are provisioned
    let prefixed = default.redeployed(&[("RUNTIME_IMAGES", "registry.example.com/voice-*")]);
    prefixed
        .post(
            &path,
            &admin,
            json!({ "image": "registry.example.com/voice-agent:2.1" }),
        )
        .await
        .expect(201);
}
