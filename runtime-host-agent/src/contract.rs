//! The runtime contract as the host agent calls it (DESIGN.md "Runtime contract"):
//! `GET /readyz`, `GET /info`, `POST /control/drain`, `POST /control/resume`.

use anyhow::{Context, Result, bail};
use callplane::hostapi::MAX_AGENT_INFO_BYTES;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// How a runtime answered one poll.
#[derive(Debug, Default)]
pub struct Probe {
    pub reachable: bool,
    pub ready: bool,
    pub issues: Vec<String>,
    pub info: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Readyz {
    ready: bool,
    #[serde(default)]
    issues: Vec<String>,
}

/// A runtime's HTTP endpoint.
#[derive(Clone, Debug)]
pub struct Runtime<'a> {
    pub http: &'a reqwest::Client,
    pub base: String,
}

impl Runtime<'_> {
    /// Polls `/readyz` and `/info` (2 s each).
    pub async fn probe(&self) -> Probe {
        let readyz = self
            .http
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        let Ok(readyz) = readyz else {
            return Probe::default();
        };
        let status = readyz.status();
        let mut probe = match readyz.json::<Readyz>().await {
            Ok(r) => Probe {
                reachable: true,
                ready: r.ready && status.is_success(),
                issues: r.issues,
                info: None,
            },
            Err(_) => Probe {
                reachable: true,
                ready: false,
                issues: vec![format!(
                    "/readyz answered {status} without the contract's body"
                )],
                info: None,
            },
        };
        probe.info = self.info().await.ok();
        probe
    }

    /// `GET /info`, read up to [`MAX_AGENT_INFO_BYTES`]: a runtime is a tenant's code, and
    /// whatever it answers is stored for its establishment, so a larger body is refused
    /// unread rather than buffered.
    pub async fn info(&self) -> Result<Value> {
        let mut response = self
            .http
            .get(format!("{}/info", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .context("runtime /info")?;
        if !response.status().is_success() {
            bail!("runtime /info answered {}", response.status());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.context("runtime /info body")? {
            if body.len() + chunk.len() > MAX_AGENT_INFO_BYTES {
                bail!("runtime /info body is over {MAX_AGENT_INFO_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).context("runtime /info body")
    }

    /// `POST /control/{drain|resume}`, retried for up to `patience` while the runtime starts
    /// listening.
    pub async fn control(&self, action: &str, patience: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let attempt = self
                .http
                .post(format!("{}/control/{action}", self.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match attempt {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if tokio::time::Instant::now() >= deadline => {
                    bail!("runtime /control/{action} answered {}", r.status())
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e).context(format!("runtime /control/{action}"));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
