//! `runtime-sim`: serves the runtime contract on `PORT` (default 8080) until SIGTERM or Ctrl-C.
//! As PID 1 in its container it must handle SIGTERM itself, or `docker stop` waits 10 s.
//! `SIM_IGNORE_SIGTERM=1` makes it ignore SIGTERM, like a runtime finishing its calls, so tests
//! can catch a `docker stop` in progress.
//!
//! `runtime-sim simulate-call …` instead drives calls against an ingest endpoint and prints a
//! JSON report (see `runtime_sim::simulate`).

use std::sync::{Arc, Mutex};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("simulate-call") {
        return simulate(&args[1..]).await;
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let port: u16 = port
        .parse()
        .map_err(|_| std::io::Error::other(format!("PORT must be a port number, got `{port}`")))?;
    let version = std::env::var("SIM_VERSION").unwrap_or_else(|_| env!("CARGO_PKG_VERSION").into());
    let not_ready = std::env::var("SIM_NOT_READY").ok();
    let ignore_term = std::env::var("SIM_IGNORE_SIGTERM").is_ok_and(|v| v == "1");
    let state = Arc::new(Mutex::new(runtime_sim::Sim::new(
        &version,
        not_ready.as_deref(),
    )));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    eprintln!("runtime-sim {version} listening on :{port}");
    axum::serve(listener, runtime_sim::router(state))
        .with_graceful_shutdown(shutdown(ignore_term))
        .await
}

async fn shutdown(ignore_term: bool) {
    let term = async {
        if ignore_term {
            return std::future::pending().await;
        }
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn simulate(args: &[String]) -> std::io::Result<()> {
    let command = runtime_sim::simulate::Command::parse(args, |k| std::env::var(k).ok())
        .map_err(|e| std::io::Error::other(e.0))?;
    let report = command.run().await;
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    if report.failed_calls > 0 {
        return Err(std::io::Error::other(format!(
            "{} of {} calls failed",
            report.failed_calls, report.calls
        )));
    }
    Ok(())
}
