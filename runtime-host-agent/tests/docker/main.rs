//! The host agent end to end against the real Docker engine, the emulator's SQS and the
//! `runtimes` function served over HTTP: the agent runs as its own process (so it can be
//! killed and restarted), runtimes are the locally built `callplane/runtime-sim:dev` image.
//! PRD M1 acceptance and the faults of issue 4.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use callplane_tests::{Reply, Stack};
use http::Method;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "callplane/runtime-sim:dev";

/// Runs `docker args…`; its trimmed stdout, or `None` if it failed.
fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Docker's state of a container, or `missing`.
fn container_state(name: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", name]).unwrap_or_else(|| "missing".into())
}

/// How many containers carry this runtime's label.
fn containers_of(runtime: &str) -> usize {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=callplane.runtime_id={runtime}"),
    ])
    .unwrap()
    .lines()
    .count()
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the establishment's container when the test ends, passed or not.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// A host agent process; killed (SIGKILL) when dropped.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl AgentProcess {
    /// Sends SIGTERM and waits for the exit, up to `limit`.
    fn terminate(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// One test's world: the stack, the control plane on HTTP, a host with one port.
struct World {
    stack: Stack,
    /// This test's host id: agents of concurrent tests share the engine, each its own host.
    host: String,
    admin: String,
    est: String,
    api: String,
    host_token: String,
    port: u16,
    _guard: ContainerGuard,
}

impl World {
    async fn new() -> World {
        assert!(
            docker(&["image", "inspect", IMAGE]).is_some(),
            "{IMAGE} is missing: `make runtime-sim-image` builds it (make test does)"
        );
        let stack = Stack::new().await;
        let admin = stack.admin().await;
        let est = stack.establishment(&admin, "Helios").await;
        let port = free_port();
        let host = format!("host-{}", stack.names.queue_prefix.trim_end_matches('-'));
        let host_token = stack.host(&host, (port, port)).await;
        let api = stack.serve_runtimes().await;
        let guard = ContainerGuard(format!("agent_rt_{est}"));
        World {
            stack,
            host,
            admin,
            est,
            api,
            host_token,
            port,
            _guard: guard,
        }
    }

    /// Starts a host agent process with fast intervals; `extra` overrides variables.
    fn agent(&self, extra: &[(&str, &str)]) -> AgentProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runtime-host-agent"));
        cmd.env("HOST_ID", &self.host)
            .env(
                "COMMANDS_QUEUE_URL",
                &self.stack.provisioned.queue_urls["runtime-commands"],
            )
            .env("CALLPLANE_API_URL", &self.api)
            .env("HOST_TOKEN", &self.host_token)
            .env("HEALTH_INTERVAL_SECONDS", "1")
            .env("RECONCILE_INTERVAL_SECONDS", "2")
            .env("COMMAND_VISIBILITY_SECONDS", "3")
            .env("STOP_TIMEOUT_SECONDS", "2")
            .env("RUST_LOG", "runtime_host_agent=debug,info")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("AGENT_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in extra {
            cmd.env(k, v);
        }
        AgentProcess(cmd.spawn().expect("spawn runtime-host-agent"))
    }

    fn container(&self) -> String {
        format!("agent_rt_{}", self.est)
    }

    async fn provision(&self) -> (String, String) {
        self.provision_with(json!({ "APP_PUBLIC_DOMAIN": "helios.example.com" }))
            .await
    }

    async fn provision_with(&self, env: Value) -> (String, String) {
        let body = self
            .stack
            .post(
                &format!("/establishments/{}/runtime", self.est),
                &self.admin,
                json!({ "image": IMAGE, "env": env }),
            )
            .await
            .expect(201)
            .clone();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["command_id"].as_str().unwrap().to_owned(),
        )
    }

    async fn act(&self, runtime: &str, action: &str) -> String {
        let (method, path) = if action == "remove" {
            (Method::DELETE, format!("/runtimes/{runtime}"))
        } else {
            (Method::POST, format!("/runtimes/{runtime}/{action}"))
        };
        let reply = self
            .stack
            .send(method, &path, Some(&self.admin), None)
            .await;
        reply.expect(202)["command_id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, runtime: &str) -> Value {
        let reply = self
            .stack
            .get(&format!("/runtimes/{runtime}/status"), &self.admin)
            .await;
        reply.expect(200).clone()
    }

    async fn command(&self, runtime: &str, command: &str) -> Reply {
        self.stack
            .get(
                &format!("/runtimes/{runtime}/commands/{command}"),
                &self.admin,
            )
            .await
    }

    /// Waits until the command settles; returns its body.
    async fn settled(&self, runtime: &str, command: &str) -> Value {
        wait(&format!("command {command} to settle"), || async {
            let reply = self.command(runtime, command).await;
            (reply.body["status"] != "pending").then(|| reply.body.clone())
        })
        .await
    }

    /// Waits until the status satisfies `check`; returns it.
    async fn status_until(
        &self,
        runtime: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait(what, || async {
            let status = self.status(runtime).await;
            check(&status).then_some(status)
        })
        .await
    }

    /// The runtime-sim's own answer to `GET /info`.
    async fn sim_info(&self) -> Value {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/info", self.port)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

/// Polls `probe` every 100 ms for up to 60 s.
async fn wait<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(s: &Value) -> bool {
    s["status"] == "running" && s["ready"] == true
}

#[tokio::test]
async fn m1_provision_start_drain_resume_restart_stop_remove() {
    // GIVEN a host agent on the local engine
    let world = World::new().await;
    let _agent = world.agent(&[]);

    // WHEN the admin provisions THEN the container exists, created, and so does the status
    let (runtime, create) = world.provision().await;
    assert_eq!(
        world.settled(&runtime, &create).await["status"],
        "succeeded"
    );
    assert_eq!(world.status(&runtime).await["status"], "created");
    assert_eq!(container_state(&world.container()), "created");
    // AND it is confined: memory (swap included), CPU and processes capped, unprivileged,
    // every capability dropped, no privilege gain
    let confinement = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} \
         {{.HostConfig.PidsLimit}} {{.HostConfig.Privileged}} {{.HostConfig.CapDrop}} \
         {{.HostConfig.SecurityOpt}}",
        &world.container(),
    ])
    .unwrap();
    assert_eq!(
        confinement.trim(),
        "1073741824 1073741824 1000000000 512 false [ALL] [no-new-privileges:true]"
    );

    // WHEN it is started THEN it runs and reports ready with agent info
    let start = world.act(&runtime, "start").await;
    assert_eq!(world.settled(&runtime, &start).await["status"], "succeeded");
    assert_eq!(container_state(&world.container()), "running");
    let status = world.status_until(&runtime, "ready", ready).await;
    assert_eq!(status["ready_issues"], json!([]));
    assert_eq!(status["agent_info"]["total_calls_handled"], 0);
    assert_eq!(status["container_state"], "running");

    // WHEN it is drained THEN status and the runtime itself say draining
    let drain = world.act(&runtime, "drain").await;
    assert_eq!(world.settled(&runtime, &drain).await["status"], "succeeded");
    assert_eq!(world.status(&runtime).await["status"], "draining");
    assert_eq!(world.sim_info().await["draining"], true);
    world
        .status_until(&runtime, "agent_info to show draining", |s| {
            s["agent_info"]["draining"] == true
        })
        .await;

    // WHEN it is resumed THEN it takes calls again
    let resume = world.act(&runtime, "resume").await;
    assert_eq!(
        world.settled(&runtime, &resume).await["status"],
        "succeeded"
    );
    assert_eq!(world.status(&runtime).await["status"], "running");
    assert_eq!(world.sim_info().await["draining"], false);

    // WHEN it is restarted THEN the container really restarted and is ready again
    let started_at =
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &world.container()]).unwrap();
    let restart = world.act(&runtime, "restart").await;
    assert_eq!(
        world.settled(&runtime, &restart).await["status"],
        "succeeded"
    );
    let restarted_at =
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &world.container()]).unwrap();
    assert_ne!(started_at, restarted_at);
    world
        .status_until(&runtime, "ready after restart", ready)
        .await;

    // WHEN it is stopped THEN the container is exited and the status says unreachable
    let stop = world.act(&runtime, "stop").await;
    assert_eq!(world.settled(&runtime, &stop).await["status"], "succeeded");
    assert_eq!(container_state(&world.container()), "exited");
    let status = world
        .status_until(&runtime, "stopped and unreachable", |s| {
            s["status"] == "stopped" && s["reachable"] == false
        })
        .await;
    assert_eq!(status["ready"], false);

    // WHEN it is removed THEN the container is gone and the status is removed
    let remove = world.act(&runtime, "remove").await;
    assert_eq!(
        world.settled(&runtime, &remove).await["status"],
        "succeeded"
    );
    assert_eq!(container_state(&world.container()), "missing");
    assert_eq!(world.status(&runtime).await["status"], "removed");
}

#[tokio::test]
async fn redelivered_commands_and_a_killed_agent_converge_to_one_container() {
    // GIVEN a started runtime that ignores SIGTERM
    let world = World::new().await;
    let agent = world.agent(&[("STOP_TIMEOUT_SECONDS", "3")]);
    let (runtime, create) = world
        .provision_with(json!({ "SIM_IGNORE_SIGTERM": "1" }))
        .await;
    world.settled(&runtime, &create).await;
    let start = world.act(&runtime, "start").await;
    world.settled(&runtime, &start).await;

    // WHEN the start command is delivered again (as SQS may)
    let sqs = aws_sdk_sqs::Client::new(&world.stack.sdk);
    let queue =
        callplane::queues::Queue::new(sqs, &world.stack.provisioned.queue_urls["runtime-commands"]);
    queue
        .send(&json!({ "command_id": start, "runtime_id": runtime, "action": "start" }))
        .await
        .unwrap();
    // AND a create for it too
    queue
        .send(&json!({ "command_id": create, "runtime_id": runtime, "action": "create" }))
        .await
        .unwrap();
    // THEN once the agent has worked through them there is still one running container
    wait("the queue to drain", || async {
        let attrs = aws_sdk_sqs::Client::new(&world.stack.sdk)
            .get_queue_attributes()
            .queue_url(&world.stack.provisioned.queue_urls["runtime-commands"])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let a = attrs.attributes.unwrap();
        let n = |k: aws_sdk_sqs::types::QueueAttributeName| {
            a.get(&k).and_then(|v| v.parse::<u32>().ok()).unwrap_or(1)
        };
        (n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            == 0)
            .then_some(())
    })
    .await;
    assert_eq!(containers_of(&runtime), 1);
    assert_eq!(container_state(&world.container()), "running");
    assert_eq!(
        world.command(&runtime, &start).await.body["status"],
        "succeeded"
    );

    // WHEN the agent is killed in the middle of executing a stop (the runtime ignores SIGTERM,
    // so `docker stop` takes its 3 s timeout), and started again
    let stop = world.act(&runtime, "stop").await;
    wait("the agent to be executing the stop", || async {
        (in_flight(&world).await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        world.command(&runtime, &stop).await.body["status"],
        "pending"
    );
    drop(agent);
    let _agent = world.agent(&[("STOP_TIMEOUT_SECONDS", "3")]);
    // THEN the redelivered stop completes, with still one container
    assert_eq!(world.settled(&runtime, &stop).await["status"], "succeeded");
    assert_eq!(container_state(&world.container()), "exited");
    assert_eq!(containers_of(&runtime), 1);
}

/// Messages on the test's command queue that a receiver holds right now.
async fn in_flight(world: &World) -> u32 {
    let attrs = aws_sdk_sqs::Client::new(&world.stack.sdk)
        .get_queue_attributes()
        .queue_url(&world.stack.provisioned.queue_urls["runtime-commands"])
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    attrs
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn containers_changed_behind_our_back_show_in_status_and_reconcile_restores_what_is_desired()
{
    // GIVEN a running, ready runtime; reconciles 12 s apart, so the damage shows first
    let world = World::new().await;
    let _agent = world.agent(&[("RECONCILE_INTERVAL_SECONDS", "12")]);
    let (runtime, create) = world.provision().await;
    world.settled(&runtime, &create).await;
    let start = world.act(&runtime, "start").await;
    world.settled(&runtime, &start).await;
    world.status_until(&runtime, "ready", ready).await;

    // WHEN its container is removed behind our back
    docker(&["rm", "-f", &world.container()]).unwrap();
    // THEN the status shows it missing and unreachable
    let status = world
        .status_until(&runtime, "the missing container to show", |s| {
            s["reachable"] == false
        })
        .await;
    assert_eq!(status["container_state"], "missing");
    assert_eq!(status["ready"], false);
    assert_eq!(
        status["ready_issues"][0],
        "unreachable: the container does not exist"
    );
    // AND the reconcile re-creates and starts it, as desired
    world.status_until(&runtime, "ready again", ready).await;
    assert_eq!(container_state(&world.container()), "running");
    assert_eq!(containers_of(&runtime), 1);

    // WHEN it is stopped through the API, and the container started behind our back
    let stop = world.act(&runtime, "stop").await;
    world.settled(&runtime, &stop).await;
    docker(&["start", &world.container()]).unwrap();
    // THEN the reconcile stops it again: only what is desired is restored
    wait("the reconcile to stop it", || async {
        (container_state(&world.container()) == "exited").then_some(())
    })
    .await;
    assert_eq!(world.status(&runtime).await["status"], "stopped");
}

#[tokio::test]
async fn a_runtime_reporting_not_ready_shows_its_issues() {
    // GIVEN a running runtime
    let world = World::new().await;
    let _agent = world.agent(&[]);
    let (runtime, create) = world.provision().await;
    world.settled(&runtime, &create).await;
    let start = world.act(&runtime, "start").await;
    world.settled(&runtime, &start).await;
    world.status_until(&runtime, "ready", ready).await;

    // WHEN the runtime starts reporting not ready with issues
    let out = Command::new("curl")
        .args([
            "-s",
            "-XPOST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"ready":false,"issues":["llm: OPENAI_API_KEY missing"]}"#,
            &format!("http://127.0.0.1:{}/control/sim/readiness", world.port),
        ])
        .status()
        .unwrap();
    assert!(out.success());
    // THEN the status shows not ready with that issue, reachable (how soon: `make bench`)
    let status = world
        .status_until(&runtime, "not ready", |s| s["ready"] == false)
        .await;
    assert_eq!(
        status["ready_issues"],
        json!(["llm: OPENAI_API_KEY missing"])
    );
    assert_eq!(status["reachable"], true);
    assert_eq!(status["status"], "running");
}

#[tokio::test]
async fn an_unreachable_engine_is_reported_retried_and_nothing_is_lost() {
    // GIVEN an agent whose Docker engine is unreachable
    let world = World::new().await;
    let broken = world.agent(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);

    // WHEN a runtime is provisioned
    let (runtime, create) = world.provision().await;
    // THEN the command stays pending with a clear error and its attempts counted
    let cmd = wait("a failed attempt to be reported", || async {
        let reply = world.command(&runtime, &create).await;
        (reply.body["attempts"].as_u64() >= Some(1)).then(|| reply.body.clone())
    })
    .await;
    assert_eq!(cmd["status"], "pending");
    assert!(cmd["error"].as_str().unwrap().contains("docker"), "{cmd}");

    // WHEN the engine is back (an agent that reaches it)
    drop(broken);
    let _agent = world.agent(&[]);
    // THEN the same command completes: nothing was lost
    assert_eq!(
        world.settled(&runtime, &create).await["status"],
        "succeeded"
    );
    assert_eq!(container_state(&world.container()), "created");
}

#[tokio::test]
async fn poison_messages_end_in_the_dead_letter_queue_and_sigterm_stops_gracefully() {
    // GIVEN an agent
    let world = World::new().await;
    let agent = world.agent(&[]);
    let sqs = aws_sdk_sqs::Client::new(&world.stack.sdk);
    let queue_url = world.stack.provisioned.queue_urls["runtime-commands"].clone();

    // WHEN a message that is not a command arrives
    callplane::queues::Queue::new(sqs.clone(), &queue_url)
        .send(&json!({ "hello": "world" }))
        .await
        .unwrap();
    // THEN after its receives run out it is in the dead-letter queue
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(format!(
            "{}runtime-commands-dlq",
            world.stack.names.queue_prefix
        ))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq = callplane::queues::Queue::new(sqs, &dlq_url);
    let dead = wait("the poison message in the DLQ", || async {
        let got = dlq.receive(1, 1).await.unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&dead[0].1).unwrap(),
        json!({ "hello": "world" })
    );

    // WHEN the agent gets SIGTERM THEN it exits cleanly, promptly
    let status = agent.terminate(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}");
}
