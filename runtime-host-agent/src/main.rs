//! `runtime-host-agent`: the long-running process on each Docker host. It will pull runtime
//! lifecycle commands from its SQS queue, drive Docker through bollard, poll each runtime's
//! `/readyz` and `/info`, and report back to the control plane with its host token.
//!
//! This is the skeleton the Foundation issue asks for: configuration (fail-fast), logging and
//! graceful shutdown on SIGTERM/Ctrl-C. Command execution arrives with the Runtimes issue.

mod config;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = config::Config::from_env().context("runtime-host-agent configuration")?;
    tracing::info!(host_id = %config.host_id, queue = %config.commands_queue_url, api = %config.api_url, "runtime-host-agent started; waiting for shutdown");
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
