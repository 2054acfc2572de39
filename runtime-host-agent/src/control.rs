//! The control plane as the host agent sees it: the host-token-authenticated endpoints of the
//! `runtimes` function (`/hosts/{host}/…`), with the wire types of `callplane::hostapi`.

use anyhow::{Context, Result, bail};
use callplane::hostapi::{
    CommandResult, HealthOutcome, HealthReport, HealthResults, MAX_HEALTH_REPORTS, RuntimeHealth,
    RuntimeSpec, RuntimeSpecs,
};
use callplane::ids::{CommandId, RuntimeId};
use std::time::Duration;

/// Client of the control plane for one host.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    http: reqwest::Client,
    base: String,
    host: String,
    token: String,
}

impl ControlPlane {
    /// A client for host `host` at `base` (no trailing slash).
    pub fn new(http: reqwest::Client, base: &str, host: &str, token: &str) -> Self {
        Self {
            http,
            base: base.to_owned(),
            host: host.to_owned(),
            token: token.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/hosts/{}{path}", self.base, self.host)
    }

    async fn check(response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        bail!("control plane answered {status} to {what}: {body}")
    }

    /// Every runtime this host should run or remove.
    pub async fn specs(&self) -> Result<Vec<RuntimeSpec>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = self
                .http
                .get(self.url("/runtimes"))
                .query(&[("limit", "100")])
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(10));
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c)]);
            }
            let response = request
                .send()
                .await
                .context("fetching desired runtime states")?;
            let page: RuntimeSpecs = Self::check(response, "GET runtimes")
                .await?
                .json()
                .await
                .context("decoding runtime specs")?;
            all.extend(page.items);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One runtime's spec; `None` if it is not on this host.
    pub async fn spec(&self, id: &RuntimeId) -> Result<Option<RuntimeSpec>> {
        let response = self
            .http
            .get(self.url(&format!("/runtimes/{id}")))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("fetching the spec of {id}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let spec = Self::check(response, "GET runtime")
            .await?
            .json()
            .await
            .context("decoding a runtime spec")?;
        Ok(Some(spec))
    }

    /// Reports a command's outcome.
    pub async fn report(&self, command: &CommandId, result: &CommandResult) -> Result<()> {
        let response = self
            .http
            .post(self.url(&format!("/commands/{command}/result")))
            .bearer_auth(&self.token)
            .json(result)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("reporting {command}"))?;
        Self::check(response, "POST command result").await?;
        Ok(())
    }

    /// Reports what the host saw of its runtimes.
    pub async fn health(&self, reports: Vec<RuntimeHealth>) -> Result<()> {
        for chunk in reports.chunks(MAX_HEALTH_REPORTS) {
            let response = self
                .http
                .post(self.url("/health"))
                .bearer_auth(&self.token)
                .json(&HealthReport {
                    reports: chunk.to_vec(),
                })
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .context("reporting health")?;
            let results: HealthResults = Self::check(response, "POST health")
                .await?
                .json()
                .await
                .context("health results")?;
            for refused in results
                .results
                .iter()
                .filter(|r| r.outcome == HealthOutcome::Rejected)
            {
                tracing::warn!(runtime_id = ?refused.runtime_id, error = ?refused.error, "the control plane refused a runtime's health report");
            }
        }
        Ok(())
    }
}
