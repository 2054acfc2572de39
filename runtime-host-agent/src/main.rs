//! Entry point: logging, configuration (fail-fast), then the agent until SIGTERM or Ctrl-C;
//! `runtime-host-agent tls-front` prints the host's TLS-front configuration instead.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config =
        runtime_host_agent::Config::from_env().context("runtime-host-agent configuration")?;
    if std::env::args().nth(1).as_deref() == Some("tls-front") {
        print!("{}", runtime_host_agent::tls_front(&config).await?);
        return Ok(());
    }
    tracing::info!(?config, "runtime-host-agent starting");
    runtime_host_agent::run(config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = term => {} }
}
