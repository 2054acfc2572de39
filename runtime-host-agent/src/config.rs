//! The agent's configuration from the environment; a missing variable stops start-up with one
//! line naming it.

use anyhow::{Context, Result};

/// What the agent needs to know.
#[derive(Debug)]
pub struct Config {
    /// This host's id, as registered with the control plane (`HOST_ID`).
    pub host_id: String,
    /// Queue this host's lifecycle commands arrive on (`COMMANDS_QUEUE_URL`).
    pub commands_queue_url: String,
    /// Control-plane base URL for reports (`CALLPLANE_API_URL`).
    pub api_url: String,
    /// Secret authenticating this host to the control plane (`HOST_TOKEN`); read by the
    /// status reporter that comes with the Runtimes issue.
    #[allow(dead_code)]
    pub host_token: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("{name} is not set"))
        };
        Ok(Self {
            host_id: var("HOST_ID")?,
            commands_queue_url: var("COMMANDS_QUEUE_URL")?,
            api_url: var("CALLPLANE_API_URL")?,
            host_token: var("HOST_TOKEN")?,
        })
    }
}
