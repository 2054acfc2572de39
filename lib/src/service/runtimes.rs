//! Runtimes as the admin API sees them (PRD §7.4, Appendix A.4): provisioning, lifecycle
//! commands, status. Viewers read; admins change lifecycle. The host agents' side is
//! `service::hosts`; whether a runtime takes calls, `service::readiness`.

use super::access::{member_of, require_member};
use crate::app::App;
use crate::auth::{Principal, secret_token};
use crate::domain::{
    DesiredState, ImageRef, PublicUrl, Role, RuntimeAction, RuntimeEnv, RuntimeStatus,
};
use crate::error::{Error, Result};
use crate::hostapi::{self, CommandMessage};
use crate::ids::{CommandId, EstablishmentId, RuntimeId};
use crate::queues::Queue;
use crate::store::ProvisionError;
use crate::store::records::{
    CommandRecord, CommandStatus, HostRecord, RuntimeErrorRecord, RuntimeRecord, UserRecord,
};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many ports a provision tries before giving up on a busy host.
const PORT_ATTEMPTS: usize = 5;

/// `POST /establishments/{id}/runtime` body (Appendix A.4).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
            env: r
                .env
                .masked()
                .into_iter()
                .chain(
                    r.sealed_env
                        .keys()
                        .map(|k| (k.clone(), "********".to_owned())),
                )
                .collect(),
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvisionView {
    #[serde(flatten)]
    pub runtime: RuntimeView,
    pub command_id: CommandId,
    pub ingest_token: String,
}

/// A lifecycle request's answer (202).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandAccepted {
    pub runtime_id: RuntimeId,
    pub command_id: CommandId,
    pub action: RuntimeAction,
    pub status: RuntimeStatus,
    pub desired_status: DesiredState,
}

/// `GET /runtimes/{id}/status` (Appendix A.4, plus what the host saw).
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// The context a runtime's secret variables are sealed in.
pub fn env_context(est: &EstablishmentId, id: &RuntimeId) -> crate::secrets::Context {
    crate::secrets::Context::new(est.as_str(), "runtime_env", id.as_str())
}

/// `env` split into the variables kept in the clear and the secret-looking ones, sealed.
async fn seal_env(
    app: &App,
    est: &EstablishmentId,
    id: &RuntimeId,
    env: &RuntimeEnv,
) -> Result<(RuntimeEnv, BTreeMap<String, crate::secrets::Sealed>)> {
    let context = env_context(est, id);
    let (mut clear, mut sealed) = (BTreeMap::new(), BTreeMap::new());
    for (key, value) in env.vars() {
        if crate::domain::is_secret(key) {
            let value = app.envelope()?.seal(&context, value.as_bytes()).await?;
            sealed.insert(key.clone(), value);
        } else {
            clear.insert(key.clone(), value.clone());
        }
    }
    let clear = RuntimeEnv::try_from(clear).map_err(|e| Error::invalid("env", e))?;
    Ok((clear, sealed))
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
    let (env, sealed_env) = seal_env(app, est, &id, &req.env).await?;
    let token = crate::auth::secret_token::ingest_token(&app.config, &id)?;
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
            env: env.clone(),
            sealed_env: sealed_env.clone(),
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
    member_of(app, principal, app.store.runtime(id).await?, role).await
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
    let stale = age > super::readiness::HEALTH_STALE_SECS;
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
