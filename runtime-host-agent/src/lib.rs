//! `runtime-host-agent`: the long-running process on each Docker host. It pulls runtime
//! lifecycle commands from its SQS queue and converges each runtime's container to the desired
//! state the control plane holds (so redelivered, duplicated or reordered commands all end in
//! the same place), reconciles every managed container at start and periodically, polls each
//! runtime's `/readyz` and `/info` and reports them, and stops gracefully on SIGTERM.

pub mod config;
mod contract;
mod control;
mod engine;
mod tls_front;

pub use config::Config;

use anyhow::{Context, Result};
use callplane::domain::{DesiredState, RuntimeAction};
use callplane::hostapi::{
    CommandMessage, CommandOutcome, CommandResult, RuntimeHealth, RuntimeSpec,
};
use callplane::queues::{Queue, Received};
use callplane::time::Timestamp;
use contract::Runtime;
use control::ControlPlane;
use engine::Engine;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// How long a drain or resume waits for a just-started runtime to listen.
const CONTROL_PATIENCE: Duration = Duration::from_secs(10);

/// The agent's parts.
#[derive(Debug, Clone)]
struct Agent {
    config: Config,
    engine: Engine,
    api: ControlPlane,
    queue: Queue,
    http: reqwest::Client,
}

/// `runtime-host-agent tls-front`: the host's TLS-front configuration (a Caddyfile) for the
/// runtimes the control plane says this host runs (see `tls_front`).
pub async fn tls_front(config: &Config) -> Result<String> {
    let http = callplane::web::client_builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let api = ControlPlane::new(http, &config.api_url, &config.host_id, &config.host_token);
    Ok(tls_front::caddyfile(&api.specs().await?, &config.bind_ip))
}

/// Runs the agent until `shutdown` completes: a command in progress is finished and reported
/// first; nothing received is lost (an unfinished message is redelivered by SQS).
pub async fn run(mut config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let http = callplane::web::client_builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let sdk = callplane::aws::load().await;
    let agent = Agent {
        engine: Engine::new(&config),
        api: ControlPlane::new(
            http.clone(),
            &config.api_url,
            &config.host_id,
            &config.host_token,
        ),
        queue: Queue::new(aws_sdk_sqs::Client::new(&sdk), &config.commands_queue_url),
        http,
        config: config.clone(),
    };
    // The last attempt must be the one SQS dead-letters: take the count from the queue.
    match agent.queue.max_receive_count().await {
        Ok(Some(count)) => config.max_attempts = count,
        Ok(None) => tracing::warn!(
            max_attempts = config.max_attempts,
            "the command queue has no redrive policy; failing commands are retried up to MAX_COMMAND_ATTEMPTS"
        ),
        Err(e) => {
            tracing::warn!(error = %e, max_attempts = config.max_attempts, "could not read the command queue's redrive policy")
        }
    }
    let agent = Agent { config, ..agent };
    if let Err(e) = agent.engine.ping().await {
        tracing::error!(
            error = format!("{e:#}"),
            "the Docker engine is unreachable; commands will fail and be retried until it is back"
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = [
        tokio::spawn(agent.clone().commands(stop_rx.clone())),
        tokio::spawn(agent.clone().health(stop_rx.clone())),
        tokio::spawn(agent.clone().reconciler(stop_rx)),
    ];
    shutdown.await;
    tracing::info!("shutting down: finishing the command in progress");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves once `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Agent {
    /// The command loop: long-poll for one message (a batch would sit in flight, its
    /// visibility running out, while earlier ones execute), execute it while keeping it
    /// hidden, report, then delete.
    async fn commands(self, mut stop: watch::Receiver<bool>) {
        loop {
            let batch = tokio::select! {
                () = stopped(&mut stop) => return,
                batch = self.queue.receive_counted(1, 20, self.config.command_visibility_secs) => batch,
            };
            match batch {
                Ok(messages) => {
                    for message in messages {
                        self.handle(message).await;
                        if *stop.borrow() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "receiving commands failed; retrying in 5 s");
                    tokio::select! {
                        () = stopped(&mut stop) => return,
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    }

    /// Executes one message and reports its outcome. The message is deleted only once the
    /// outcome is reported; a failed attempt is retried with back-off, and after the last
    /// attempt the message is left to SQS's redrive into the dead-letter queue.
    async fn handle(&self, message: Received) {
        let command: CommandMessage = match serde_json::from_str(&message.body) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, receive_count = message.receive_count, "not a command message; handing it back so it reaches the dead-letter queue");
                if let Err(e) = self.queue.retry_in(&message.receipt_handle, 0).await {
                    tracing::warn!(error = %e, "could not hand the message back");
                }
                return;
            }
        };
        let attempt = message.receive_count;
        let span = tracing::info_span!("command", command_id = %command.command_id, runtime_id = %command.runtime_id, action = command.action.as_str(), attempt);
        let _entered = span.enter();
        let executed = {
            let work = self.execute(&command);
            tokio::pin!(work);
            // A command can outlast its visibility (pulling a large image): keep it hidden
            // while it runs, so that no other receiver starts it again meanwhile.
            let visibility = self.config.command_visibility_secs;
            let every = Duration::from_secs(u64::try_from(visibility / 2).unwrap_or(1).max(1));
            loop {
                tokio::select! {
                    result = &mut work => break result,
                    () = tokio::time::sleep(every) => {
                        if let Err(e) = self.queue.retry_in(&message.receipt_handle, visibility).await {
                            tracing::warn!(error = %e, "could not extend the command's visibility");
                        }
                    }
                }
            }
        };
        let result = match executed {
            Ok(outcome) => CommandResult {
                runtime_id: command.runtime_id.clone(),
                outcome,
                error: None,
                attempt,
                final_attempt: false,
            },
            Err(e) => CommandResult {
                runtime_id: command.runtime_id.clone(),
                outcome: CommandOutcome::Failed,
                error: Some(format!("{e:#}")),
                attempt,
                final_attempt: attempt >= self.config.max_attempts,
            },
        };
        match &result.error {
            None => tracing::info!(outcome = ?result.outcome, "command done"),
            Some(e) => {
                tracing::warn!(error = %e, final_attempt = result.final_attempt, "command failed")
            }
        }
        if let Err(e) = self.api.report(&command.command_id, &result).await {
            // Unreported: keep the message; it comes back after its visibility timeout.
            tracing::error!(
                error = format!("{e:#}"),
                "could not report the outcome; the command will be redelivered"
            );
            return;
        }
        let done = result.error.is_none();
        let outcome = if done {
            self.queue.delete(&message.receipt_handle).await
        } else if result.final_attempt {
            Ok(())
        } else {
            let backoff = 2i32.saturating_pow(attempt.min(6)).min(60);
            self.queue.retry_in(&message.receipt_handle, backoff).await
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "could not settle the message on the queue");
        }
    }

    /// Converges the command's runtime to its current desired state. A command that is not
    /// the runtime's newest any more is superseded: the runtime still converges, to the newest.
    async fn execute(&self, command: &CommandMessage) -> Result<CommandOutcome> {
        let spec = self
            .api
            .spec(&command.runtime_id)
            .await?
            .with_context(|| format!("runtime {} is not on this host", command.runtime_id))?;
        engine::check_spec(&spec)?;
        let newest = spec.last_command_id == command.command_id;
        let restart = newest && command.action == RuntimeAction::Restart;
        self.converge(&spec, restart).await?;
        Ok(if newest {
            CommandOutcome::Succeeded
        } else {
            CommandOutcome::Superseded
        })
    }

    /// Container state, then the runtime's own drain state.
    async fn converge(&self, spec: &RuntimeSpec, restart: bool) -> Result<()> {
        let fresh = self.engine.converge(spec, restart).await?;
        let runtime = self.runtime(spec);
        match spec.desired {
            DesiredState::Draining => runtime.control("drain", CONTROL_PATIENCE).await?,
            // A process started just now takes calls; one that was running may be drained.
            DesiredState::Running if !fresh => {
                let draining = runtime
                    .info()
                    .await
                    .ok()
                    .and_then(|i| i.get("draining").and_then(serde_json::Value::as_bool));
                if draining != Some(false) {
                    runtime.control("resume", CONTROL_PATIENCE).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn runtime(&self, spec: &RuntimeSpec) -> Runtime<'_> {
        Runtime {
            http: &self.http,
            base: format!("http://{}:{}", self.config.bind_ip, spec.host_port),
        }
    }

    /// Reconciles at start and then every `reconcile_interval`.
    async fn reconciler(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "reconcile failed; retrying at the next interval"
                );
            }
            tokio::select! {
                () = stopped(&mut stop) => return,
                () = tokio::time::sleep(self.config.reconcile_interval) => {}
            }
        }
    }

    /// Converges every runtime the control plane has for this host, and removes labelled
    /// containers whose runtime the control plane confirms is gone (checked one by one, so a
    /// runtime missing from an eventually consistent list is never removed by mistake).
    async fn reconcile(&self) -> Result<()> {
        let specs = self.api.specs().await?;
        let wanted: HashSet<String> = specs.iter().map(|s| s.runtime_id.to_string()).collect();
        for spec in &specs {
            if let Err(e) = self.converge(spec, false).await {
                tracing::warn!(runtime_id = %spec.runtime_id, error = format!("{e:#}"), "could not converge");
            }
        }
        for container in self.engine.managed().await? {
            if wanted.contains(&container.runtime_id) {
                continue;
            }
            let Ok(id) = callplane::ids::RuntimeId::parse(&container.runtime_id) else {
                continue;
            };
            match self.api.spec(&id).await? {
                None => {
                    tracing::warn!(container = %container.name, runtime_id = %id, "removing a container of a runtime this host does not run");
                    self.engine.remove(&container.name).await?;
                }
                Some(spec) => self.converge(&spec, false).await?,
            }
        }
        tracing::debug!(runtimes = specs.len(), "reconciled");
        Ok(())
    }

    /// Polls every runtime and reports, every `health_interval`.
    async fn health(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.report_health().await {
                tracing::warn!(error = format!("{e:#}"), "health report failed");
            }
            tokio::select! {
                () = stopped(&mut stop) => return,
                () = tokio::time::sleep(self.config.health_interval) => {}
            }
        }
    }

    async fn report_health(&self) -> Result<()> {
        let specs = self.api.specs().await?;
        let containers: HashMap<String, String> = match self.engine.managed().await {
            Ok(list) => list.into_iter().map(|m| (m.runtime_id, m.state)).collect(),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "cannot list containers");
                HashMap::new()
            }
        };
        let mut reports = Vec::new();
        for spec in specs.iter().filter(|s| s.desired != DesiredState::Removed) {
            let state = containers
                .get(spec.runtime_id.as_str())
                .cloned()
                .unwrap_or_else(|| "missing".into());
            let probe = if state == "running" {
                self.runtime(spec).probe().await
            } else {
                contract::Probe::default()
            };
            reports.push(RuntimeHealth {
                runtime_id: spec.runtime_id.clone(),
                establishment_id: spec.establishment_id.clone(),
                container_state: state,
                reachable: probe.reachable,
                ready: probe.ready,
                issues: probe.issues,
                agent_info: probe.info,
                checked_at: Timestamp::now(),
            });
        }
        if !reports.is_empty() {
            self.api.health(reports).await?;
        }
        Ok(())
    }
}
