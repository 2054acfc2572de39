//! Docker, through bollard: converging one runtime's container to its desired state
//! (idempotently: a repeated call changes nothing and never makes a second container), and
//! listing the containers this agent manages (labelled with their runtime id).

use crate::config::{Limits, Registry};
use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use callplane::domain::DesiredState;
use callplane::hostapi::{self, RuntimeSpec};
use std::collections::HashMap;

/// What Docker has under a container name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Container {
    Missing,
    Present {
        /// Docker's state (`created`, `running`, `exited`, …).
        state: String,
        /// The runtime id label.
        runtime_id: Option<String>,
    },
}

impl Container {
    fn running(&self) -> bool {
        matches!(self, Container::Present { state, .. } if state == "running")
    }
}

/// A container this agent manages.
#[derive(Clone, Debug)]
pub struct Managed {
    pub runtime_id: String,
    pub name: String,
    pub state: String,
}

/// The local Docker engine, as seen by the agent of one host.
#[derive(Clone, Debug)]
pub struct Engine {
    host_id: String,
    limits: Limits,
    registry: Option<Registry>,
    /// Connected on first use and kept; while the engine cannot be reached every use fails
    /// (and is reported and retried) instead of the agent exiting.
    client: std::sync::Arc<std::sync::Mutex<Option<Docker>>>,
    bind_ip: String,
    stop_timeout_secs: i32,
}

fn mib(n: u64) -> i64 {
    i64::try_from(n * 1024 * 1024).unwrap_or(i64::MAX)
}

/// `(name, tag or digest)` of an image reference, for a pull.
fn split_reference(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name, digest);
    }
    match image.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl Engine {
    /// The engine `DOCKER_HOST` names, or the local socket. Connecting is lazy: an unreachable
    /// engine shows up as errors on use, which are reported and retried.
    pub fn new(config: &crate::Config) -> Self {
        Self {
            host_id: config.host_id.clone(),
            limits: config.limits,
            registry: config.registry.clone(),
            client: std::sync::Arc::default(),
            bind_ip: config.bind_ip.clone(),
            stop_timeout_secs: config.stop_timeout_secs,
        }
    }

    /// The client, connecting if not yet connected.
    fn docker(&self) -> Result<Docker> {
        let mut client = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(docker) = client.as_ref() {
            return Ok(docker.clone());
        }
        let docker = Docker::connect_with_defaults().context("docker: connecting to the engine")?;
        *client = Some(docker.clone());
        Ok(docker)
    }

    /// What exists under `name`.
    pub async fn inspect(&self, name: &str) -> Result<Container> {
        match self.docker()?.inspect_container(name, None).await {
            Ok(c) => Ok(Container::Present {
                state: c
                    .state
                    .and_then(|s| s.status)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                runtime_id: c
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|mut l| l.remove(hostapi::LABEL_RUNTIME_ID)),
            }),
            Err(e) if status_of(&e) == Some(404) => Ok(Container::Missing),
            Err(e) => Err(e).with_context(|| format!("docker: inspecting {name}")),
        }
    }

    /// Brings the runtime's container to `spec.desired`; with `restart`, a running container
    /// is restarted. Safe to repeat. Returns whether the runtime process was (re)started now
    /// (a fresh process is never draining).
    pub async fn converge(&self, spec: &RuntimeSpec, restart: bool) -> Result<bool> {
        let name = &spec.container_name;
        let mut current = self.inspect(name).await?;
        if let Container::Present { runtime_id, .. } = &current
            && runtime_id.as_deref() != Some(spec.runtime_id.as_str())
        {
            // The name is the establishment's; the control plane gave it to this runtime,
            // so a container left by an earlier runtime of the establishment goes.
            tracing::warn!(container = %name, previous = ?runtime_id, "replacing a container of an earlier runtime");
            self.remove(name).await?;
            current = Container::Missing;
        }
        if spec.desired == DesiredState::Removed {
            return self.remove(name).await.map(|()| false);
        }
        if current == Container::Missing {
            self.create(spec).await?;
            current = self.inspect(name).await?;
        }
        match (spec.desired.runs(), current.running()) {
            (true, true) if restart => self
                .docker()?
                .restart_container(
                    name,
                    Some(
                        RestartContainerOptionsBuilder::default()
                            .t(self.stop_timeout_secs)
                            .build(),
                    ),
                )
                .await
                .map(|()| true)
                .with_context(|| format!("docker: restarting {name}")),
            (true, false) => match self.docker()?.start_container(name, None).await {
                Ok(()) => Ok(true),
                Err(e) if status_of(&e) == Some(304) => Ok(false),
                Err(e) => Err(e).with_context(|| format!("docker: starting {name}")),
            },
            (false, true) => self.stop(name).await.map(|()| false),
            _ => Ok(false),
        }
    }

    async fn create(&self, spec: &RuntimeSpec) -> Result<()> {
        let port_key = format!("{}/tcp", hostapi::CONTAINER_PORT);
        let labels = HashMap::from([
            (
                hostapi::LABEL_RUNTIME_ID.to_owned(),
                spec.runtime_id.to_string(),
            ),
            (
                hostapi::LABEL_ESTABLISHMENT_ID.to_owned(),
                spec.establishment_id.to_string(),
            ),
            (hostapi::LABEL_HOST_ID.to_owned(), self.host_id.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    port_key,
                    Some(vec![PortBinding {
                        host_ip: Some(self.bind_ip.clone()),
                        host_port: Some(spec.host_port.to_string()),
                    }]),
                )])),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                // A tenant's runtime gets its share of the host and nothing more: memory
                // (swap included), CPU and processes are capped, it runs unprivileged with
                // every capability dropped and cannot gain privileges.
                memory: Some(mib(self.limits.memory_mb)),
                memory_swap: Some(mib(self.limits.memory_mb)),
                nano_cpus: Some(
                    i64::try_from(self.limits.milli_cpus * 1_000_000).unwrap_or(i64::MAX),
                ),
                pids_limit: Some(i64::try_from(self.limits.pids).unwrap_or(i64::MAX)),
                privileged: Some(false),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.container_name)
            .build();
        let mut created = self
            .docker()?
            .create_container(Some(options.clone()), body.clone())
            .await;
        // The image is not on this host yet: pull it, then create.
        if created.as_ref().err().and_then(status_of) == Some(404) {
            self.pull(&spec.image).await?;
            created = self.docker()?.create_container(Some(options), body).await;
        }
        match created {
            Ok(_) => Ok(()),
            // Created concurrently (a redelivered command racing this one): converged.
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "docker: creating {} from image {}",
                    spec.container_name, spec.image
                )
            }),
        }
    }

    /// Pulls `image` (`name:tag` or `name@digest`; `latest` when it says neither) with the
    /// configured registry credentials.
    async fn pull(&self, image: &str) -> Result<()> {
        use futures::StreamExt as _;
        let (name, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(name)
            .tag(tag)
            .build();
        let credentials = self.registry.as_ref().map(|r| DockerCredentials {
            username: Some(r.username.clone()),
            password: Some(r.password.clone()),
            serveraddress: Some(r.server.clone()),
            ..Default::default()
        });
        tracing::info!(image, "pulling an image that is not on this host");
        let mut progress = self
            .docker()?
            .create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            step.with_context(|| format!("docker: pulling {image}"))?;
        }
        Ok(())
    }

    async fn stop(&self, name: &str) -> Result<()> {
        let options = StopContainerOptionsBuilder::default()
            .t(self.stop_timeout_secs)
            .build();
        match self.docker()?.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_of(&e), Some(304 | 404)) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("docker: stopping {name}")),
        }
    }

    /// Removes the container (forcefully); a missing one is fine.
    pub async fn remove(&self, name: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker()?.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_of(&e), Some(404)) => Ok(()),
            // Already being removed.
            Err(e) if matches!(status_of(&e), Some(409)) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("docker: removing {name}")),
        }
    }

    /// Every container of this host labelled with a runtime id, running or not.
    pub async fn managed(&self) -> Result<Vec<Managed>> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                hostapi::LABEL_RUNTIME_ID.to_owned(),
                format!("{}={}", hostapi::LABEL_HOST_ID, self.host_id),
            ],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker()?
            .list_containers(Some(options))
            .await
            .context("docker: listing managed containers")?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let runtime_id = c.labels?.remove(hostapi::LABEL_RUNTIME_ID)?;
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                Some(Managed {
                    runtime_id,
                    name,
                    state,
                })
            })
            .collect())
    }

    /// Fails unless the engine answers.
    pub async fn ping(&self) -> Result<()> {
        self.docker()?.ping().await.context("docker: ping")?;
        Ok(())
    }
}

/// Refuses a spec the engine could not run safely.
pub fn check_spec(spec: &RuntimeSpec) -> Result<()> {
    if !spec.container_name.starts_with("agent_rt_") {
        bail!(
            "refusing to manage container {}: not a runtime container name",
            spec.container_name
        );
    }
    Ok(())
}
