//! `make bench` part: runtime command latency and host-agent memory, against the real Docker
//! engine and the emulator. For each of `BENCH_RUNTIME_RUNS` (default 5) runtimes: provision,
//! wait until created, then time `POST /runtimes/{id}/start` until the command has succeeded
//! (polled every 10 ms) and subtract Docker's own start time for that container (its
//! `State.StartedAt` minus the moment the agent asked, approximated by `docker start` of a twin
//! container). Then how soon a runtime turning not-ready shows in the status, and the agent's
//! resident memory after 10 s idle. Needs `HOST_AGENT_BIN` (the
//! release binary) and the runtime-sim image.

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use callplane_tests::Stack;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNTIME_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let agent_bin =
        std::env::var("HOST_AGENT_BIN").expect("HOST_AGENT_BIN: the runtime-host-agent binary");
    let stack = Stack::new().await;
    let admin = stack.admin().await;
    let api = stack.serve_runtimes().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("bench-{}", stack.names.queue_prefix.trim_end_matches('-'));
    let token = stack.host(&host, (port, port + runs as u16)).await;
    let mut agent = Command::new(agent_bin)
        .env("HOST_ID", &host)
        .env(
            "COMMANDS_QUEUE_URL",
            &stack.provisioned.queue_urls["runtime-commands"],
        )
        .env("CALLPLANE_API_URL", &api)
        .env("HOST_TOKEN", &token)
        .env("STOP_TIMEOUT_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let (mut total, mut docker_own) = (Vec::new(), Vec::new());
    let mut names = Vec::new();
    let (mut last_runtime, mut last_port) = (String::new(), 0);
    for i in 0..runs {
        let est = stack.establishment(&admin, &format!("Bench {i}")).await;
        names.push(format!("agent_rt_{est}"));
        let body = stack
            .post(
                &format!("/establishments/{est}/runtime"),
                &admin,
                json!({ "image": "callplane/runtime-sim:dev" }),
            )
            .await;
        let runtime = body.expect(201)["id"].as_str().unwrap().to_owned();
        last_port = body.body["host_port"].as_u64().unwrap();
        last_runtime = runtime.clone();
        let create = body.body["command_id"].as_str().unwrap().to_owned();
        wait_settled(&stack, &admin, &runtime, &create).await;

        let asked = Instant::now();
        let reply = stack
            .post_empty(&format!("/runtimes/{runtime}/start"), &admin)
            .await;
        let start = reply.expect(202)["command_id"].as_str().unwrap().to_owned();
        wait_settled(&stack, &admin, &runtime, &start).await;
        total.push(asked.elapsed().as_secs_f64() * 1000.0);

        // Docker's own share: start a stopped twin of the same image and time it.
        let twin = format!("{}-twin", names[i]);
        docker(&["create", "--name", &twin, "callplane/runtime-sim:dev"]);
        let t = Instant::now();
        docker(&["start", &twin]);
        docker_own.push(t.elapsed().as_secs_f64() * 1000.0);
        docker(&["rm", "-f", &twin]);
    }
    // Readiness: how long until a runtime's readiness change shows in GET …/status, with the
    // default 5 s health interval (the promise: within two intervals). Toggled `runs` times.
    let mut readiness = Vec::new();
    for flip in 0..runs {
        let ready = flip % 2 == 1;
        let body = format!(
            r#"{{"ready":{ready},"issues":{}}}"#,
            if ready { "[]" } else { r#"["bench"]"# }
        );
        let flipped = Instant::now();
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-XPOST",
                "-H",
                "content-type: application/json",
                "-d",
                &body,
            ])
            .arg(format!(
                "http://127.0.0.1:{last_port}/control/sim/readiness"
            ))
            .status()
            .unwrap();
        loop {
            let s = stack
                .get(&format!("/runtimes/{last_runtime}/status"), &admin)
                .await;
            if s.body["ready"] == ready {
                break;
            }
            assert!(
                flipped.elapsed() < Duration::from_secs(30),
                "status never followed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        readiness.push(flipped.elapsed().as_secs_f64() * 1000.0);
    }
    let readiness_max = readiness.iter().copied().fold(0.0, f64::max);
    let readiness_ms = median(readiness);

    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", agent.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let _ = agent.kill();
    let _ = agent.wait();
    for name in &names {
        docker(&["rm", "-f", name]);
    }
    let (t, d) = (median(total), median(docker_own));
    println!("| runtime measure ({runs} runs, median) | value |\n|---|---|");
    println!("| POST start → command succeeded | {t:.0} ms |");
    println!("| of which Docker's own `docker start` (twin container) | {d:.0} ms |");
    println!("| control-plane + agent overhead | {:.0} ms |", t - d);
    println!(
        "| readiness change → GET status shows it (health interval 5 s; each change right after a report, the worst phase): median / max | {readiness_ms:.0} / {readiness_max:.0} ms |"
    );
    println!(
        "| host agent RSS, idle with {runs} runtimes | {:.1} MB |",
        rss_kb as f64 / 1024.0
    );
}

async fn wait_settled(stack: &Stack, token: &str, runtime: &str, command: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = stack
            .get(&format!("/runtimes/{runtime}/commands/{command}"), token)
            .await;
        if reply.body["status"] == "succeeded" {
            return;
        }
        assert!(reply.body["status"] == "pending", "{}", reply.body);
        assert!(
            Instant::now() < deadline,
            "command {command} did not settle"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
