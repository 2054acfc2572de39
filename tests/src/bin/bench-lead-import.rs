//! `make bench` part: a leads import of 10,000 and of 100,000 rows against the emulator, run by
//! the real `lead-import` binary (`LEAD_IMPORT_BIN`, the release build) behind a stand-in
//! Lambda Runtime API that hands it the import queue's message as Lambda's SQS event source
//! does: rows per second (from the invocation to its answer), DynamoDB requests per row (the
//! emulator counts every request it answers, retries included), and the worker process's peak
//! resident memory (`VmHWM`).
//!
//! The rows are realistic: a number in national or international form, names, an email, a
//! company and a free-text note; 2 % repeat an earlier number (rejected as duplicates).

#![allow(clippy::unwrap_used)] // bench code: a panic is the failure report

use axum::extract::State;
use axum::routing::{get, post};
use callplane_tests::Stack;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// The CSV of `rows` rows.
fn file(rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 120);
    out.push_str("phone,first_name,last_name,email,company,notes\n");
    for i in 0..rows {
        // Every 50th row repeats the number of the row before it.
        let n = if i % 50 == 49 { i - 1 } else { i };
        let (area, line) = (201 + (n / 10_000) % 700, n % 10_000);
        let phone = if i % 2 == 0 {
            format!("({area}) 555-{line:04}")
        } else {
            format!("+1{area}555{line:04}")
        };
        out.push_str(&format!(
            "{phone},Ana {i},Souza {i},ana.{i}@example.com,Clinic {},\"Prefers mornings, asked about {i}\"\n",
            i % 97
        ));
    }
    out.into_bytes()
}

/// A `/proc/{pid}/status` figure in KiB (`VmHWM:`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// DynamoDB requests the emulator has answered so far.
async fn emulator_requests() -> u64 {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let (_, body) = callplane_tests::http_get(&format!("{endpoint}/_callplane/stats")).await;
    let stats: Value = serde_json::from_slice(&body).expect("emulator stats");
    stats["dynamodb_requests"]
        .as_object()
        .map_or(0, |ops| ops.values().filter_map(Value::as_u64).sum())
}

/// The stand-in Runtime API's state: the one event to hand out, and the answer.
#[derive(Default)]
struct Invocation {
    event: Mutex<Option<Value>>,
    answer: Mutex<Option<Value>>,
    answered: Notify,
}

async fn next(State(inv): State<Arc<Invocation>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let event = inv.event.lock().unwrap().take();
    match event {
        Some(event) => (
            [
                ("lambda-runtime-aws-request-id", "bench-1"),
                ("lambda-runtime-deadline-ms", "9999999999999"),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:lead-import",
                ),
            ],
            axum::Json(event),
        )
            .into_response(),
        // One invocation only: later polls wait, as Lambda's do between events.
        None => std::future::pending().await,
    }
}

async fn answer(State(inv): State<Arc<Invocation>>, body: axum::body::Bytes) -> &'static str {
    *inv.answer.lock().unwrap() = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
    inv.answered.notify_one();
    ""
}

#[tokio::main]
async fn main() {
    let binary = std::env::var("LEAD_IMPORT_BIN")
        .expect("LEAD_IMPORT_BIN: the lead-import release binary (make bench builds it)");
    // BENCH_IMPORT_ROWS=10000 for a quick look.
    let sizes: Vec<usize> = std::env::var("BENCH_IMPORT_ROWS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!(
        "| leads import (lead-import binary, emulator) | rows | seconds | rows/s | DynamoDB requests | requests per row | created | rejected | worker peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for rows in sizes {
        // GIVEN an establishment, its file in the bucket and an accepted import of it
        let stack = Stack::new().await;
        let admin = stack.admin().await;
        let est = stack
            .establishment_in(&admin, "Bench", "America/New_York", "en-US")
            .await;
        let key = format!("uploads/{est}/leads/bench/leads.csv");
        stack
            .app
            .blobs
            .put(&key, file(rows), "text/csv")
            .await
            .unwrap();
        let accepted = stack
            .post(
                "/leads/import",
                &admin,
                json!({ "establishment_id": est, "s3_key": key }),
            )
            .await;
        let job = accepted.expect(202)["job_id"].as_str().unwrap().to_owned();
        let event = callplane_tests::world::queue_batch(&stack, "lead-import-jobs").await;

        // WHEN the lead-import binary is invoked with the queue's message
        let inv = Arc::new(Invocation::default());
        *inv.event.lock().unwrap() = Some(event);
        let api = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
            .with_state(inv.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runtime_api = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
        let before = emulator_requests().await;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "lead-import")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("RUST_LOG", "warn")
            .env("TABLE_NAME", &stack.names.table)
            .env("BUCKET_NAME", &stack.names.bucket)
            .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the lead-import binary");
        let pid = child.id().unwrap();
        inv.answered.notified().await;
        let elapsed = started.elapsed();
        let peak = status_kib(pid, "VmHWM:");
        child.kill().await.unwrap();
        let requests = emulator_requests().await - before;

        // THEN the job is complete; the figures are reported
        let response = inv.answer.lock().unwrap().take().unwrap();
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
        let done = stack.get(&format!("/leads/import/{job}"), &admin).await;
        let done = done.expect(200);
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["processed_rows"], rows);
        println!(
            "| leads import | {rows} | {:.1} | {:.0} | {requests} | {:.4} | {} | {} | {:.1} |",
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64(),
            requests as f64 / rows as f64,
            done["created"],
            done["rejected"],
            peak as f64 / 1024.0,
        );
    }
}
