//! Runtimes (PRD §7.4, Appendix A.4): provisioning, lifecycle commands, status; and the
//! host-agent side (runtime specs, command outcomes, health reports) authenticated by host
//! tokens. Viewers read; admins change lifecycle.

use super::agents::require_member;
use crate::app::App;
use crate::auth::{Principal, secret_token};
use crate::domain::{
    DesiredState, ImageRef, PublicUrl, Role, RuntimeAction, RuntimeEnv, RuntimeStatus,
};
use crate::error::{Error, Result};
use crate::hostapi::{
    self, CommandMessage, CommandResult, HealthOutcome, HealthReportIn, HealthResult,
    HealthResults, MAX_AGENT_INFO_BYTES, MAX_HEALTH_REPORTS, MAX_ISSUE_CHARS, MAX_ISSUES,
    RuntimeHealth, RuntimeSpec, RuntimeSpecs,
};
use crate::ids::{CommandId, EstablishmentId, RuntimeId};
use crate::queues::Queue;
use crate::store::ProvisionError;
use crate::store::records::{
    CommandRecord, CommandStatus, HostRecord, RuntimeErrorRecord, RuntimeRecord, UserRecord,
};
use crate::time::Timestamp;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A host report older than this makes the status say so.
pub const HEALTH_STALE_SECS: i64 = 30;

/// How many ports a provision tries before giving up on a busy host.
const PORT_ATTEMPTS: usize = 5;

/// Purpose string of derived ingest tokens.
const INGEST_TOKEN_PURPOSE: &str = "callplane runtime ingest token v1";

/// `POST /establishments/{id}/runtime` body (Appendix A.4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    pub image: ImageRef,
    #[serde(default)]
    pub env: RuntimeEnv,
    /// Where Twilio reaches the runtime over TLS; else the env's `APP_PUBLIC_DOMAIN`.
    #[serde(default)]
    pub public_url: Option<PublicUrl>,
    /// Start it once created (one command: the host converges straight to running).
    #[serde(default)]
    pub start: bool,
}

/// A runtime as the API shows it (secret env values masked).
#[derive(Debug, Serialize)]
pub struct RuntimeView {
    pub id: RuntimeId,
    pub establishment_id: EstablishmentId,
    pub status: RuntimeStatus,
    pub desired_status: DesiredState,
    pub container_name: String,
    pub image: ImageRef,
    pub env: BTreeMap<String, String>,
    pub host_id: String,
    pub host_port: u16,
    pub base_url: String,
    /// Where Twilio reaches it over TLS (calls stream to `wss://…/media-stream` there).
    pub public_url: Option<PublicUrl>,
    pub last_command_id: CommandId,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&RuntimeRecord> for RuntimeView {
    fn from(r: &RuntimeRecord) -> Self {
        Self {
            id: r.id.clone(),
            establishment_id: r.establishment_id.clone(),
            status: r.status,
            desired_status: r.desired,
            container_name: r.container_name.clone(),
            image: r.image.clone(),
            env: r.env.masked(),
            host_id: r.host_id.clone(),
            host_port: r.host_port,
            base_url: r.base_url.clone(),
            public_url: r.public_url.clone(),
            last_command_id: r.last_command_id.clone(),
            last_error: r.last_error.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `POST /establishments/{id}/runtime` response (201): the runtime, the `create` command, and
/// the ingest token, shown this once.
#[derive(Debug, Serialize)]
pub struct ProvisionView {
    #[serde(flatten)]
    pub runtime: RuntimeView,
    pub command_id: CommandId,
    pub ingest_token: String,
}

/// A lifecycle request's answer (202).
#[derive(Debug, Serialize)]
pub struct CommandAccepted {
    pub runtime_id: RuntimeId,
    pub command_id: CommandId,
    pub action: RuntimeAction,
    pub status: RuntimeStatus,
    pub desired_status: DesiredState,
}

/// `GET /runtimes/{id}/status` (Appendix A.4, plus what the host saw).
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub id: RuntimeId,
    pub status: RuntimeStatus,
    pub desired_status: DesiredState,
    pub ready: bool,
    pub ready_issues: Vec<String>,
    pub last_checked_at: Option<Timestamp>,
    pub agent_info: Option<serde_json::Value>,
    pub reachable: bool,
    pub container_state: Option<String>,
    pub last_error: Option<String>,
    /// The latest error the runtime reported per component (`runtime_error` events); those
    /// of the last [`RECENT_ERROR_SECS`] are also among `ready_issues`.
    pub recent_errors: Vec<RuntimeErrorRecord>,
}

/// How long a reported runtime error counts as a current issue.
pub const RECENT_ERROR_SECS: i64 = 15 * 60;

/// `GET /runtimes/{id}/commands/{commandId}`.
#[derive(Debug, Serialize)]
pub struct CommandView {
    pub id: CommandId,
    pub runtime_id: RuntimeId,
    pub action: RuntimeAction,
    pub status: CommandStatus,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl From<CommandRecord> for CommandView {
    fn from(c: CommandRecord) -> Self {
        Self {
            id: c.id,
            runtime_id: c.runtime_id,
            action: c.action,
            status: c.status,
            error: c.error,
            attempts: c.attempts,
            created_at: c.created_at,
            completed_at: c.completed_at,
        }
    }
}

/// The runtime's ingest token: derived from the server secret, so the control plane can hand
/// it to the host again (to re-create the container) without storing it.
pub(crate) fn ingest_token(app: &App, runtime: &RuntimeId) -> Result<String> {
    secret_token::derived(
        app.config.ingest_token_secret.expose().as_bytes(),
        INGEST_TOKEN_PURPOSE,
        runtime.as_str(),
    )
}

fn command(runtime: &RuntimeRecord, action: RuntimeAction, by: &UserRecord) -> CommandRecord {
    CommandRecord {
        id: CommandId::new(),
        runtime_id: runtime.id.clone(),
        establishment_id: runtime.establishment_id.clone(),
        action,
        status: CommandStatus::Pending,
        error: None,
        attempts: 0,
        requested_by: by.id.clone(),
        created_at: Timestamp::now(),
        completed_at: None,
    }
}

/// Sends the command to the host's queue. If it cannot be queued, the command and runtime are
/// marked failed (the desired state stays recorded: the host's next reconcile converges to it).
async fn enqueue(
    app: &App,
    host: &HostRecord,
    runtime: &RuntimeRecord,
    cmd: &CommandRecord,
) -> Result<()> {
    let message = CommandMessage {
        command_id: cmd.id.clone(),
        runtime_id: runtime.id.clone(),
        action: cmd.action,
    };
    if let Err(e) = Queue::new(app.sqs.clone(), &host.queue_url)
        .send(&message)
        .await
    {
        tracing::error!(error = %e, host_id = %host.host_id, "could not queue a runtime command");
        let mut settled = runtime.clone();
        settled.last_command_id = cmd.id.clone();
        app.store
            .fail_unqueued(&settled, cmd, "the command could not be queued to the host")
            .await?;
        return Err(Error::Unavailable(format!(
            "the command queue of host {} is unavailable; the desired state is recorded and the host converges to it at its next reconcile",
            host.host_id
        )));
    }
    Ok(())
}

/// Picks the host with the fewest runtimes.
async fn place(app: &App) -> Result<HostRecord> {
    app.store
        .hosts()
        .await?
        .into_iter()
        .min_by_key(|h| (h.runtime_count, h.host_id.clone()))
        .ok_or_else(|| Error::Unavailable("no runtime host is registered".into()))
}

/// The lowest free port of a host's range.
async fn free_port(app: &App, host: &HostRecord) -> Result<u16> {
    let used = app.store.used_ports(&host.host_id).await?;
    (host.port_from..=host.port_to)
        .find(|p| !used.contains(p))
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "host {} has no free port in {}-{}",
                host.host_id, host.port_from, host.port_to
            ))
        })
}

/// Provisions the establishment's runtime (admins): allocates a host port, records the
/// runtime and queues its `create` command. A second one (while one exists) is `409`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn provision(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: ProvisionRequest,
) -> Result<ProvisionView> {
    let user = require_member(app, principal, est, Role::Admin, "establishment").await?;
    if let Some(existing) = app.store.establishment_runtime(est).await? {
        return Err(already(&existing));
    }
    let public_url = match (&req.public_url, req.env.vars().get("APP_PUBLIC_DOMAIN")) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(domain)) => {
            Some(PublicUrl::parse(domain).map_err(|e| Error::invalid("env.APP_PUBLIC_DOMAIN", e))?)
        }
        (None, None) => None,
    };
    if !app.config.image_allowed(req.image.as_str()) {
        return Err(Error::unprocessable(
            "image_not_allowed",
            Some("image"),
            format!(
                "image: {} is not one of the runtime images this deployment allows",
                req.image.as_str()
            ),
        ));
    }
    let host = place(app).await?;
    let id = RuntimeId::new();
    let token = ingest_token(app, &id)?;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port(app, &host).await?;
        let now = Timestamp::now();
        let placeholder = CommandId::new();
        let mut runtime = RuntimeRecord {
            id: id.clone(),
            establishment_id: est.clone(),
            host_id: host.host_id.clone(),
            container_name: hostapi::container_name(est),
            image: req.image.clone(),
            env: req.env.clone(),
            host_port: port,
            base_url: format!("http://{}:{port}", host.public_host),
            public_url: public_url.clone(),
            status: RuntimeStatus::Provisioning,
            desired: if req.start {
                DesiredState::Running
            } else {
                DesiredState::Created
            },
            last_command_id: placeholder,
            last_action: RuntimeAction::Create,
            last_error: None,
            ingest_token_hash: secret_token::hash(&token),
            health: None,
            created_at: now,
            updated_at: now,
            revision: 0,
            gsi1pk: Some(crate::store::keys::host_runtimes_index(&host.host_id)),
            gsi1sk: Some(id.to_string()),
        };
        let cmd = command(&runtime, RuntimeAction::Create, &user);
        runtime.last_command_id = cmd.id.clone();
        match app.store.provision(&runtime, &cmd, &user).await {
            Ok(()) => {
                enqueue(app, &host, &runtime, &cmd).await?;
                return Ok(ProvisionView {
                    runtime: RuntimeView::from(&runtime),
                    command_id: cmd.id,
                    ingest_token: token,
                });
            }
            Err(ProvisionError::PortTaken) => continue,
            Err(ProvisionError::AlreadyProvisioned) => {
                let existing = app.store.establishment_runtime(est).await?;
                return Err(existing.as_ref().map_or_else(
                    || Error::Conflict("this establishment already has a runtime".into()),
                    already,
                ));
            }
            Err(ProvisionError::Other(e)) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "ports on the runtime host are being taken concurrently; retry".into(),
    ))
}

fn already(existing: &RuntimeRecord) -> Error {
    Error::Conflict(format!(
        "this establishment already has runtime {} ({}); remove it first",
        existing.id,
        existing.status.as_str()
    ))
}

/// The establishment's runtime (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn get(app: &App, principal: &Principal, est: &EstablishmentId) -> Result<RuntimeView> {
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    let runtime = app
        .store
        .establishment_runtime(est)
        .await?
        .ok_or(Error::NotFound("runtime"))?;
    Ok(RuntimeView::from(&runtime))
}

/// The runtime `id` if the caller's role in its establishment allows `role` (404 otherwise).
async fn runtime_access(
    app: &App,
    principal: &Principal,
    id: &RuntimeId,
    role: Role,
) -> Result<(UserRecord, RuntimeRecord)> {
    let runtime = app
        .store
        .runtime(id)
        .await?
        .ok_or(Error::NotFound("runtime"))?;
    let user = require_member(app, principal, &runtime.establishment_id, role, "runtime").await?;
    Ok((user, runtime))
}

/// Asks for a lifecycle action (admins): records the desired state, queues the command and
/// answers with its id. An action the current status does not allow is `409`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, runtime_id = %id, action = action.as_str()))]
pub async fn act(
    app: &App,
    principal: &Principal,
    id: &RuntimeId,
    action: RuntimeAction,
) -> Result<CommandAccepted> {
    let (user, mut runtime) = runtime_access(app, principal, id, Role::Admin).await?;
    for _ in 0..3 {
        let status = action.begin(runtime.status).map_err(Error::Conflict)?;
        let cmd = command(&runtime, action, &user);
        if app
            .store
            .request_action(&runtime, status, &cmd, &user)
            .await?
        {
            let host = app.store.host(&runtime.host_id).await?.ok_or_else(|| {
                Error::Unavailable(format!("host {} is not registered", runtime.host_id))
            })?;
            let mut updated = runtime.clone();
            updated.status = status;
            updated.desired = action.desired();
            enqueue(app, &host, &updated, &cmd).await?;
            return Ok(CommandAccepted {
                runtime_id: runtime.id,
                command_id: cmd.id,
                action,
                status,
                desired_status: action.desired(),
            });
        }
        runtime = app
            .store
            .runtime(id)
            .await?
            .ok_or(Error::NotFound("runtime"))?;
    }
    Err(Error::Conflict(
        "the runtime is being changed concurrently; reload and retry".into(),
    ))
}

/// `GET /runtimes/{id}/status` (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, runtime_id = %id))]
pub async fn status(app: &App, principal: &Principal, id: &RuntimeId) -> Result<StatusView> {
    let (runtime, mut errors) = app.store.runtime_with_errors(id).await?;
    let runtime = runtime.ok_or(Error::NotFound("runtime"))?;
    require_member(
        app,
        principal,
        &runtime.establishment_id,
        Role::Viewer,
        "runtime",
    )
    .await?;
    let now = Timestamp::now();
    let mut view = status_view(runtime, now);
    errors.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
    for e in errors
        .iter()
        .filter(|e| now.unix() - e.occurred_at.unix() <= RECENT_ERROR_SECS)
    {
        let age = (now.unix() - e.occurred_at.unix()).max(0);
        let fatal = if e.fatal { "fatal " } else { "" };
        view.ready_issues.push(format!(
            "{} {fatal}error {age} s ago (call {}): {}",
            e.component.as_str(),
            e.call_id,
            e.message
        ));
    }
    view.recent_errors = errors;
    Ok(view)
}

/// Whether a runtime in `status` whose host last reported `health` takes a new call at `now`;
/// `Err` says why not (the inbound webhook logs it; outbound calls answer it).
pub fn takes_calls(
    status: RuntimeStatus,
    health: Option<&hostapi::RuntimeHealth>,
    now: Timestamp,
) -> Result<(), String> {
    if status != RuntimeStatus::Running {
        return Err(format!("the runtime is {}", status.as_str()));
    }
    let Some(health) = health else {
        return Err("the runtime's host has not reported on it yet".into());
    };
    if !health.reachable {
        return Err(format!(
            "the runtime is unreachable ({})",
            health.container_state
        ));
    }
    if !health.ready {
        return Err(format!(
            "the runtime is not ready: {}",
            health.issues.join("; ")
        ));
    }
    let age = now.unix() - health.checked_at.unix();
    if age > HEALTH_STALE_SECS {
        return Err(format!("the runtime's last health report is {age} s old"));
    }
    let draining = health
        .agent_info
        .as_ref()
        .and_then(|info| info.get("draining"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if draining {
        return Err("the runtime is draining".into());
    }
    Ok(())
}

/// What the status shows: the lifecycle status and the host's latest view of the runtime,
/// with issues for what is wrong (never checked, unreachable, a stale report).
pub fn status_view(r: RuntimeRecord, now: Timestamp) -> StatusView {
    let health = r.health.filter(|_| r.status != RuntimeStatus::Removed);
    let Some(health) = health else {
        let issue = if r.status == RuntimeStatus::Removed {
            "removed: this runtime no longer exists on its host"
        } else {
            "not checked yet: the host has not reported on this runtime"
        };
        return StatusView {
            id: r.id,
            status: r.status,
            desired_status: r.desired,
            ready: false,
            ready_issues: vec![issue.into()],
            last_checked_at: None,
            agent_info: None,
            reachable: false,
            container_state: None,
            last_error: r.last_error,
            recent_errors: Vec::new(),
        };
    };
    let mut issues = health.issues.clone();
    if !health.reachable {
        let why = if health.container_state == "missing" {
            "unreachable: the container does not exist".to_owned()
        } else {
            format!("unreachable: the container is {}", health.container_state)
        };
        issues.insert(0, why);
    }
    let age = now.unix() - health.checked_at.unix();
    let stale = age > HEALTH_STALE_SECS;
    if stale {
        issues.push(format!("stale: the host last reported {age} s ago"));
    }
    StatusView {
        id: r.id,
        status: r.status,
        desired_status: r.desired,
        ready: health.ready && health.reachable && !stale,
        ready_issues: issues,
        last_checked_at: Some(health.checked_at),
        agent_info: health.agent_info,
        reachable: health.reachable,
        container_state: Some(health.container_state),
        last_error: r.last_error,
        recent_errors: Vec::new(),
    }
}

/// One command of a runtime (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, runtime_id = %id, command_id = %cmd))]
pub async fn command_status(
    app: &App,
    principal: &Principal,
    id: &RuntimeId,
    cmd: &CommandId,
) -> Result<CommandView> {
    runtime_access(app, principal, id, Role::Viewer).await?;
    let command = app
        .store
        .command(id, cmd)
        .await?
        .ok_or(Error::NotFound("command"))?;
    Ok(command.into())
}

/// The host `id` if `token` is its token; `401` otherwise (an unknown host looks the same).
async fn host_access(app: &App, id: &str, token: &str) -> Result<HostRecord> {
    let host = app.store.host(id).await?;
    match host {
        Some(h) if secret_token::matches(token, &h.token_hash) => Ok(h),
        _ => Err(Error::Unauthorized("invalid host token".into())),
    }
}

fn spec(app: &App, r: &RuntimeRecord) -> Result<RuntimeSpec> {
    let mut env = r.env.vars().clone();
    env.insert(hostapi::ENV_RUNTIME_ID.into(), r.id.to_string());
    env.insert(
        hostapi::ENV_ESTABLISHMENT_ID.into(),
        r.establishment_id.to_string(),
    );
    env.insert(
        hostapi::ENV_INGEST_URL.into(),
        app.config.ingest_url.clone(),
    );
    env.insert(hostapi::ENV_INGEST_TOKEN.into(), ingest_token(app, &r.id)?);
    env.insert(
        hostapi::ENV_PORT.into(),
        hostapi::CONTAINER_PORT.to_string(),
    );
    Ok(RuntimeSpec {
        runtime_id: r.id.clone(),
        establishment_id: r.establishment_id.clone(),
        container_name: r.container_name.clone(),
        image: r.image.as_str().to_owned(),
        env,
        host_port: r.host_port,
        public_url: r.public_url.as_ref().map(|u| u.as_str().to_owned()),
        desired: r.desired,
        last_command_id: r.last_command_id.clone(),
        last_action: r.last_action,
    })
}

/// `GET /hosts/{host}/runtimes`: what the host should run (for reconciliation).
#[tracing::instrument(skip_all, fields(host_id = host))]
pub async fn host_specs(
    app: &App,
    host: &str,
    token: &str,
    params: crate::http::ListParams,
) -> Result<RuntimeSpecs> {
    let limit = params.limit()?;
    host_access(app, host, token).await?;
    let page = app
        .store
        .host_runtimes_page(host, limit, params.cursor.as_deref())
        .await?;
    let items = page
        .items
        .iter()
        .map(|r| spec(app, r))
        .collect::<Result<_>>()?;
    Ok(RuntimeSpecs {
        items,
        cursor: page.cursor,
    })
}

/// The host's runtime `id`, or `404` when it is not on this host.
async fn host_runtime(app: &App, host: &str, id: &RuntimeId) -> Result<RuntimeRecord> {
    app.store
        .runtime(id)
        .await?
        .filter(|r| r.host_id == host)
        .ok_or(Error::NotFound("runtime"))
}

/// `GET /hosts/{host}/runtimes/{id}`: one runtime's spec (before executing a command).
#[tracing::instrument(skip_all, fields(host_id = host, runtime_id = %id))]
pub async fn host_spec(app: &App, host: &str, token: &str, id: &RuntimeId) -> Result<RuntimeSpec> {
    host_access(app, host, token).await?;
    spec(app, &host_runtime(app, host, id).await?)
}

/// `POST /hosts/{host}/commands/{command}/result`: a command's outcome (idempotent).
#[tracing::instrument(skip_all, fields(host_id = host, command_id = %cmd))]
pub async fn host_command_result(
    app: &App,
    host: &str,
    token: &str,
    cmd: &CommandId,
    result: CommandResult,
) -> Result<()> {
    host_access(app, host, token).await?;
    let (runtime, command) = app
        .store
        .runtime_and_command(&result.runtime_id, cmd)
        .await?;
    let runtime = runtime
        .filter(|r| r.host_id == host)
        .ok_or(Error::NotFound("runtime"))?;
    let command = command.ok_or(Error::NotFound("command"))?;
    app.store
        .record_command_result(&runtime, &command, &result)
        .await
}

/// `POST /hosts/{host}/health`: what the host saw of its runtimes.
#[tracing::instrument(skip_all, fields(host_id = host, reports = report.reports.len()))]
pub async fn host_health(
    app: &App,
    host: &str,
    token: &str,
    report: HealthReportIn,
) -> Result<HealthResults> {
    host_access(app, host, token).await?;
    if report.reports.len() > MAX_HEALTH_REPORTS {
        return Err(Error::invalid(
            "reports",
            format!("at most {MAX_HEALTH_REPORTS} per request; send several"),
        ));
    }
    let results = futures::stream::iter(report.reports.into_iter().enumerate())
        .map(|(index, raw)| async move {
            let runtime_id = raw
                .get("runtime_id")
                .and_then(|v| serde_json::from_value::<RuntimeId>(v.clone()).ok());
            let outcome = match runtime_health(raw) {
                Ok(health) => match app.store.record_health(host, &health).await {
                    Ok(true) => Ok(HealthOutcome::Applied),
                    Ok(false) => {
                        tracing::warn!(host, runtime_id = %health.runtime_id, "health report for a runtime not on this host or not current");
                        Ok(HealthOutcome::Ignored)
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(outcome) => Ok(HealthResult {
                    index,
                    runtime_id,
                    outcome,
                    error: None,
                }),
                // Our own failures fail the request (the host reports again); the report's
                // own faults are answered for it alone.
                Err(e) if e.code().0.is_server_error() => Err(e),
                Err(e) => Ok(HealthResult {
                    index,
                    runtime_id,
                    outcome: HealthOutcome::Rejected,
                    error: Some(e.envelope()),
                }),
            }
        })
        .buffered(HEALTH_WRITES_AT_ONCE)
        .collect::<Vec<Result<HealthResult>>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(HealthResults { results })
}

/// Runtime reports of one health report written at once.
const HEALTH_WRITES_AT_ONCE: usize = 8;

/// One runtime's report, checked: its shape, and sizes DynamoDB and the status API can carry.
fn runtime_health(raw: serde_json::Value) -> Result<RuntimeHealth> {
    let mut health: RuntimeHealth = crate::http::from_value(raw)?;
    if health.container_state.is_empty() || health.container_state.len() > 64 {
        return Err(Error::invalid(
            "container_state",
            "must be 1 to 64 characters",
        ));
    }
    if health.issues.len() > MAX_ISSUES
        || health
            .issues
            .iter()
            .any(|i| i.chars().count() > MAX_ISSUE_CHARS)
    {
        return Err(Error::invalid(
            "issues",
            format!("at most {MAX_ISSUES} of at most {MAX_ISSUE_CHARS} characters"),
        ));
    }
    if let Some(info) = &health.agent_info {
        let size = info.to_string().len();
        if size > MAX_AGENT_INFO_BYTES {
            return Err(Error::invalid(
                "agent_info",
                format!("is {size} bytes; at most {MAX_AGENT_INFO_BYTES}"),
            ));
        }
        crate::domain::storable("agent_info", info, 0)?;
    }
    health.issues.dedup();
    Ok(health)
}

/// Registers (or re-registers, rotating its token) a runtime host; returns the token, shown
/// this once. Used by `callplane-admin register-host` and the tests.
pub async fn register_host(
    app: &App,
    host_id: &str,
    queue_url: &str,
    public_host: &str,
    ports: (u16, u16),
) -> Result<String> {
    let valid_id = !host_id.is_empty()
        && host_id.len() <= 64
        && host_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_id {
        return Err(Error::invalid(
            "host_id",
            "1-64 of letters, digits, - and _",
        ));
    }
    if ports.0 == 0 || ports.0 > ports.1 {
        return Err(Error::invalid("ports", "need 1 <= from <= to"));
    }
    let (token, token_hash) = secret_token::generate()?;
    app.store
        .register_host(&HostRecord {
            host_id: host_id.to_owned(),
            queue_url: queue_url.to_owned(),
            public_host: public_host.to_owned(),
            port_from: ports.0,
            port_to: ports.1,
            token_hash,
            runtime_count: 0,
            created_at: Timestamp::now(),
            gsi1pk: crate::store::keys::HOSTS_INDEX.to_owned(),
            gsi1sk: host_id.to_owned(),
        })
        .await?;
    Ok(token)
}
