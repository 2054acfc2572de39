//! Health endpoints every function answers (the product README's `/healthz`, `/readyz`,
//! `/info`, `/health`), through API Gateway and the function URLs alike: liveness with no I/O,
//! readiness from one cheap call to each dependency the function uses — the table always, the
//! bucket where mail goes to the outbox (the only S3 calls; recordings are served by presigned
//! URLs, which call nothing), the summary queue where configured (ingest) — cached for a few
//! seconds per instance so that a load balancer's polling costs nothing, and what build is
//! running.

use crate::app::App;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long a readiness answer is reused by one instance.
pub const READY_CACHE: Duration = Duration::from_secs(5);

/// `GET /healthz`, `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Liveness {
    pub status: &'static str,
}

/// `GET /readyz`: 200 when `ready`, 503 otherwise.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// What is unreachable (`table`, `bucket`, `summary queue`); empty when ready.
    pub issues: Vec<String>,
}

/// `GET /info`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Info {
    /// The function (`AWS_LAMBDA_FUNCTION_NAME`), else `callplane`.
    pub name: String,
    pub version: &'static str,
    /// The git commit the binary was built from (`unknown` outside a checkout).
    pub commit: &'static str,
}

/// The process is up; no I/O.
pub fn liveness() -> Liveness {
    Liveness { status: "ok" }
}

/// What this binary is.
pub fn info() -> Info {
    Info {
        name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "callplane".into()),
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("CALLPLANE_GIT_COMMIT"),
    }
}

/// Whether the function's dependencies answer, from the last [`READY_CACHE`] or one probe of
/// each, concurrently.
pub async fn readiness(app: &App) -> Readiness {
    if let Some((at, answer)) = app.ready_cache.lock().ok().and_then(|c| c.clone())
        && at.elapsed() < READY_CACHE
    {
        return answer;
    }
    let queues = [
        ("summary queue", &app.summary_jobs),
        ("live-sentiment queue", &app.live_sentiment),
        ("lead import queue", &app.lead_imports),
    ]
    .into_iter()
    .filter_map(|(what, queue)| queue.as_ref().map(|q| (what, q)))
    .map(|(what, queue)| async move { queue.probe().await.map_err(|e| (what, e)) });
    let (table, bucket, queues) = tokio::join!(
        async { app.store.probe().await.map_err(|e| ("table", e)) },
        async {
            match app.config.mail_transport {
                crate::config::MailTransport::Outbox => {
                    app.blobs.probe().await.map_err(|e| ("bucket", e))
                }
                crate::config::MailTransport::Ses => Ok(()),
            }
        },
        futures::future::join_all(queues)
    );
    let issues: Vec<String> = [table, bucket]
        .into_iter()
        .chain(queues)
        .filter_map(Result::err)
        .map(|(what, error)| {
            tracing::warn!(dependency = what, error = %error, "readiness check failed");
            format!("{what} unreachable")
        })
        .collect();
    let answer = Readiness {
        ready: issues.is_empty(),
        issues,
    };
    if let Ok(mut cache) = app.ready_cache.lock() {
        *cache = Some((Instant::now(), answer.clone()));
    }
    answer
}
