//! The agent's configuration from the environment; a missing or invalid variable stops
//! start-up with one line naming it.

use anyhow::{Context, Result, bail};
use std::time::Duration;

/// What the agent needs to know.
#[derive(Clone)]
pub struct Config {
    /// This host's id, as registered with the control plane (`HOST_ID`).
    pub host_id: String,
    /// Queue this host's lifecycle commands arrive on (`COMMANDS_QUEUE_URL`).
    pub commands_queue_url: String,
    /// Control-plane base URL (`CALLPLANE_API_URL`).
    pub api_url: String,
    /// Secret authenticating this host to the control plane (`HOST_TOKEN`).
    pub host_token: String,
    /// How often runtimes' `/readyz` and `/info` are polled and reported
    /// (`HEALTH_INTERVAL_SECONDS`, default 5).
    pub health_interval: Duration,
    /// How often containers are reconciled with the desired states
    /// (`RECONCILE_INTERVAL_SECONDS`, default 30; also once at start).
    pub reconcile_interval: Duration,
    /// How long a received command stays hidden from other receivers while it runs
    /// (`COMMAND_VISIBILITY_SECONDS`, default 60).
    pub command_visibility_secs: i32,
    /// Deliveries after which a failing command is reported failed for good: the queue's
    /// `maxReceiveCount`, read from its redrive policy at start (so the last attempt is the one
    /// SQS then moves to the DLQ); `MAX_COMMAND_ATTEMPTS` (default 5) only for a queue
    /// without one.
    pub max_attempts: u32,
    /// Host address runtime ports are bound to and runtimes are polled at
    /// (`RUNTIME_BIND_IP`, default 127.0.0.1).
    pub bind_ip: String,
    /// Seconds `docker stop` waits before killing (`STOP_TIMEOUT_SECONDS`, default 10).
    pub stop_timeout_secs: i32,
    /// What one runtime container may use: one tenant's runtime must not starve the others
    /// on the host.
    pub limits: Limits,
    /// Credentials for pulling runtime images that are not on the host yet
    /// (`REGISTRY_SERVER`, `REGISTRY_USERNAME`, `REGISTRY_PASSWORD`); none: anonymous pulls.
    pub registry: Option<Registry>,
}

/// Resource limits of every runtime container.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// `RUNTIME_MEMORY_MB`, default 1024 (the container is killed past it, swap included).
    pub memory_mb: u64,
    /// `RUNTIME_MILLI_CPUS`, default 1000 (one core).
    pub milli_cpus: u64,
    /// `RUNTIME_PIDS`, default 512 (no fork bombs).
    pub pids: u64,
}

/// A registry's credentials.
#[derive(Clone)]
pub struct Registry {
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host_id", &self.host_id)
            .field("commands_queue_url", &self.commands_queue_url)
            .field("api_url", &self.api_url)
            .field("host_token", &"<redacted>")
            .field("health_interval", &self.health_interval)
            .field("reconcile_interval", &self.reconcile_interval)
            .field("max_attempts", &self.max_attempts)
            .field("bind_ip", &self.bind_ip)
            .field("limits", &self.limits)
            .field("registry", &self.registry)
            .finish()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .with_context(|| format!("{name} is not set"))
        };
        let number =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64> {
                let raw = get(name).filter(|v| !v.trim().is_empty());
                let Some(raw) = raw else { return Ok(default) };
                match raw.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => bail!(
                        "{name} must be a whole number from {} to {}, got `{raw}`",
                        range.start(),
                        range.end()
                    ),
                }
            };
        let api_url = var("CALLPLANE_API_URL")?;
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            bail!("CALLPLANE_API_URL must be an http(s) URL, got `{api_url}`");
        }
        Ok(Self {
            host_id: var("HOST_ID")?,
            commands_queue_url: var("COMMANDS_QUEUE_URL")?,
            api_url: api_url.trim_end_matches('/').to_owned(),
            host_token: var("HOST_TOKEN")?,
            health_interval: Duration::from_secs(number("HEALTH_INTERVAL_SECONDS", 5, 1..=300)?),
            reconcile_interval: Duration::from_secs(number(
                "RECONCILE_INTERVAL_SECONDS",
                30,
                1..=3600,
            )?),
            command_visibility_secs: number("COMMAND_VISIBILITY_SECONDS", 60, 1..=43_200)? as i32,
            max_attempts: number("MAX_COMMAND_ATTEMPTS", 5, 1..=1000)? as u32,
            bind_ip: get("RUNTIME_BIND_IP")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "127.0.0.1".into()),
            stop_timeout_secs: number("STOP_TIMEOUT_SECONDS", 10, 0..=300)? as i32,
            limits: Limits {
                memory_mb: number("RUNTIME_MEMORY_MB", 1024, 64..=65_536)?,
                milli_cpus: number("RUNTIME_MILLI_CPUS", 1000, 100..=64_000)?,
                pids: number("RUNTIME_PIDS", 512, 16..=32_768)?,
            },
            registry: match (
                get("REGISTRY_SERVER").filter(|v| !v.trim().is_empty()),
                get("REGISTRY_USERNAME").filter(|v| !v.trim().is_empty()),
            ) {
                (Some(server), Some(username)) => Some(Registry {
                    server,
                    username,
                    password: var("REGISTRY_PASSWORD")?,
                }),
                (None, None) => None,
                _ => bail!("REGISTRY_SERVER and REGISTRY_USERNAME go together"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn missing_or_invalid_variables_are_named() {
        // GIVEN a complete environment
        let full = HashMap::from([
            ("HOST_ID", "host-1"),
            ("COMMANDS_QUEUE_URL", "http://q"),
            ("CALLPLANE_API_URL", "http://api/"),
            ("HOST_TOKEN", "t"),
        ]);
        let with = |k: &str, v: Option<&str>| {
            let mut env: HashMap<String, String> = full
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            match v {
                Some(v) => env.insert(k.to_owned(), v.to_owned()),
                None => env.remove(k),
            };
            Config::from_lookup(move |name| env.get(name).cloned())
        };
        // WHEN it is read THEN defaults apply
        let config = with("X", None).unwrap();
        assert_eq!(config.api_url, "http://api");
        assert_eq!(config.health_interval, Duration::from_secs(5));
        // AND each missing or invalid variable is named
        let err = |k, v| format!("{:#}", with(k, v).unwrap_err());
        assert!(err("HOST_TOKEN", None).contains("HOST_TOKEN"));
        assert!(err("HEALTH_INTERVAL_SECONDS", Some("0")).contains("HEALTH_INTERVAL_SECONDS"));
        assert!(err("CALLPLANE_API_URL", Some("ftp://x")).contains("CALLPLANE_API_URL"));
    }
}
