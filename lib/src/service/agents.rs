//! Agents, their versions (drafts, publish, rollback) and their deployment history
//! (PRD §7.3, Appendix A.3). Viewers read; admins change.

pub use super::access::Actor;
use super::access::{member_of, require_member};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::analysis::AnalysisSection;
use crate::domain::{
    AgentStatus, Brain, BrainPolicies, ModelParams, Name, Prompt, Role, Tool, ToolSetting,
    VersionStatus, nullable,
};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, AgentVersionId, EstablishmentId, UserId};
use crate::store::records::{AgentRecord, DeploymentRecord, UserRecord, VersionRecord};
use crate::store::{Activation, ActivationError, AgentPatch, Page};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest agent description.
const MAX_DESCRIPTION_CHARS: usize = 2000;

/// How many times a write that lost a race to an unrelated change is retried.
const RETRIES: usize = 5;

/// `POST /establishments/{id}/agents` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /agents/{agentId}` body; `description: null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateAgent {
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
}

/// An agent (Appendix A.3).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub id: AgentId,
    pub establishment_id: EstablishmentId,
    pub name: String,
    pub description: Option<String>,
    pub status: AgentStatus,
    pub active_version_id: Option<AgentVersionId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<AgentRecord> for AgentView {
    fn from(a: AgentRecord) -> Self {
        Self {
            id: a.id,
            establishment_id: a.establishment_id,
            name: a.name.to_string(),
            description: a.description,
            status: a.status,
            active_version_id: a.active_version_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// `POST /agents/{agentId}/versions` body: a draft's brain (PRD §6: brain only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    /// Defaults to `v{number}`.
    pub name: Option<Name>,
    pub prompt: Prompt,
    pub model: ModelParams,
    #[serde(default)]
    pub tools: BTreeMap<Tool, ToolSetting>,
    #[serde(default)]
    pub policies: BrainPolicies,
    /// How this version's calls are analysed after they end.
    #[serde(default)]
    pub analysis: Option<AnalysisSection>,
}

/// `PATCH /agents/{agentId}/versions/{versionId}` body (drafts only; partial).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateVersion {
    pub name: Option<Name>,
    pub prompt: Option<Prompt>,
    pub model: Option<ModelParams>,
    pub tools: Option<BTreeMap<Tool, ToolSetting>>,
    pub policies: Option<BrainPolicies>,
    /// `null` removes the section.
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    pub analysis: Option<Option<AnalysisSection>>,
}

/// A version (Appendix A.3, with the brain).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub id: AgentVersionId,
    pub agent_id: AgentId,
    pub number: u32,
    pub name: String,
    pub status: VersionStatus,
    #[serde(flatten)]
    pub brain: Brain,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub published_at: Option<Timestamp>,
}

impl From<VersionRecord> for VersionView {
    fn from(v: VersionRecord) -> Self {
        Self {
            id: v.id,
            agent_id: v.agent_id,
            number: v.number,
            name: v.name.to_string(),
            status: v.status,
            brain: v.brain,
            created_by: v.created_by,
            created_at: v.created_at,
            updated_at: v.updated_at,
            published_at: v.published_at,
        }
    }
}

/// Optional body of publish and rollback: the active version the caller last saw. When
/// given, the pointer moves only if it is still there (`null`: no version was active);
/// otherwise the version active when the request is read is assumed.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub expected_active_version_id: Option<Option<AgentVersionId>>,
}

/// Publish and rollback response (Appendix A.3).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationView {
    pub agent_id: AgentId,
    pub active_version_id: AgentVersionId,
    pub previous_version_id: Option<AgentVersionId>,
}

/// One activation, for `GET /agents/{agentId}/deployments`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    pub sequence: u32,
    pub action: String,
    pub version_id: AgentVersionId,
    pub previous_version_id: Option<AgentVersionId>,
    pub activated_by: Actor,
    pub activated_at: Timestamp,
}

impl From<DeploymentRecord> for DeploymentView {
    fn from(d: DeploymentRecord) -> Self {
        Self {
            sequence: d.sequence,
            action: d.action,
            version_id: d.version_id,
            previous_version_id: d.previous_version_id,
            activated_by: Actor {
                user_id: d.actor_user_id,
                email: d.actor_email.to_string(),
            },
            activated_at: d.at,
        }
    }
}

fn description(raw: Option<String>) -> Result<Option<String>> {
    match raw.map(|d| d.trim().to_owned()) {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(Error::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(d) if d.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn check_brain(brain: &Brain) -> Result<()> {
    brain
        .check()
        .map_err(|(field, message)| Error::invalid(field, message))
}

/// The agent `id` if the caller's role in its establishment allows `role`. An agent of an
/// establishment the caller is not a member of does not exist for them (404).
pub(crate) async fn agent_access(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    role: Role,
) -> Result<(UserRecord, AgentRecord)> {
    member_of(app, principal, app.store.agent(id).await?, role).await
}

/// An establishment's agents (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: ListParams,
) -> Result<Page<AgentView>> {
    let limit = params.limit()?;
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    Ok(app
        .store
        .agents_of(est, limit, params.cursor.as_deref())
        .await?
        .map(AgentView::from))
}

/// Creates an agent with no version yet (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn create(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: CreateAgent,
) -> Result<AgentView> {
    let description = description(req.description)?;
    require_member(app, principal, est, Role::Admin, "establishment").await?;
    let id = AgentId::new();
    let now = Timestamp::now();
    let agent = AgentRecord {
        gsi1pk: crate::store::keys::agents_index(est),
        gsi1sk: id.to_string(),
        id,
        establishment_id: est.clone(),
        name: req.name,
        description,
        status: AgentStatus::Active,
        active_version_id: None,
        created_at: now,
        updated_at: now,
        version_count: 0,
        deployment_count: 0,
        numbers: BTreeMap::new(),
        revision: 0,
    };
    app.store.create_agent(&agent).await?;
    Ok(agent.into())
}

/// One agent (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &AgentId) -> Result<AgentView> {
    let (_, agent) = agent_access(app, principal, id, Role::Viewer).await?;
    Ok(agent.into())
}

/// Renames or re-describes an agent (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn update(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    req: UpdateAgent,
) -> Result<AgentView> {
    if req.name.is_none() && req.description.is_none() {
        return Err(Error::invalid(
            "body",
            "give at least one of name, description",
        ));
    }
    let patch = AgentPatch {
        name: req.name,
        description: req.description.map(description).transpose()?,
    };
    agent_access(app, principal, id, Role::Admin).await?;
    Ok(app.store.update_agent(id, patch).await?.into())
}

/// Archives an agent (admins); refused while any number routes to it.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn archive(app: &App, principal: &Principal, id: &AgentId) -> Result<()> {
    let (user, agent) = agent_access(app, principal, id, Role::Admin).await?;
    if agent.status == AgentStatus::Archived {
        return Err(Error::Conflict("this agent is already archived".into()));
    }
    if !agent.numbers.is_empty() {
        let numbers: Vec<&str> = agent.numbers.keys().map(String::as_str).collect();
        return Err(Error::Conflict(format!(
            "numbers still route to this agent ({}); route them elsewhere or delete them first",
            numbers.join(", ")
        )));
    }
    app.store.archive_agent(&agent, &user).await
}

/// An agent's versions, oldest first (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn list_versions(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    params: ListParams,
) -> Result<Page<VersionView>> {
    let limit = params.limit()?;
    agent_access(app, principal, id, Role::Viewer).await?;
    Ok(app
        .store
        .versions(id, limit, params.cursor.as_deref())
        .await?
        .map(VersionView::from))
}

/// One version (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id, version_id = %version))]
pub async fn get_version(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    version: &AgentVersionId,
) -> Result<VersionView> {
    agent_access(app, principal, id, Role::Viewer).await?;
    let v = app
        .store
        .version(id, version)
        .await?
        .ok_or(Error::NotFound("version"))?;
    Ok(v.into())
}

/// Creates a draft numbered after the agent's last version (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn create_version(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    req: CreateVersion,
) -> Result<VersionView> {
    let brain = Brain {
        prompt: req.prompt,
        model: req.model,
        tools: req.tools,
        policies: req.policies,
        analysis: req.analysis,
    };
    check_brain(&brain)?;
    let (user, mut agent) = agent_access(app, principal, id, Role::Admin).await?;
    for _ in 0..RETRIES {
        if agent.status == AgentStatus::Archived {
            return Err(Error::Conflict("this agent is archived".into()));
        }
        let number = agent.version_count + 1;
        let name = match &req.name {
            Some(name) => name.clone(),
            None => Name::parse(&format!("v{number}")).map_err(Error::internal)?,
        };
        let now = Timestamp::now();
        let version = VersionRecord {
            id: AgentVersionId::new(),
            agent_id: agent.id.clone(),
            establishment_id: agent.establishment_id.clone(),
            number,
            name,
            status: VersionStatus::Draft,
            brain: brain.clone(),
            created_by: user.id.clone(),
            created_at: now,
            updated_at: now,
            published_at: None,
        };
        if app.store.create_version(&agent, &version).await? {
            return Ok(version.into());
        }
        agent = app.store.agent(id).await?.ok_or(Error::NotFound("agent"))?;
    }
    Err(Error::Conflict(
        "versions of this agent are being created concurrently; retry".into(),
    ))
}

/// Edits a draft (admins); a published or archived version is immutable (409).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id, version_id = %version))]
pub async fn update_version(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    version: &AgentVersionId,
    req: UpdateVersion,
) -> Result<VersionView> {
    agent_access(app, principal, id, Role::Admin).await?;
    let mut v = app
        .store
        .version(id, version)
        .await?
        .ok_or(Error::NotFound("version"))?;
    if v.status != VersionStatus::Draft {
        return Err(immutable(&v));
    }
    if let Some(name) = req.name {
        v.name = name;
    }
    if let Some(prompt) = req.prompt {
        v.brain.prompt = prompt;
    }
    if let Some(model) = req.model {
        v.brain.model = model;
    }
    if let Some(tools) = req.tools {
        v.brain.tools = tools;
    }
    if let Some(policies) = req.policies {
        v.brain.policies = policies;
    }
    if let Some(analysis) = req.analysis {
        v.brain.analysis = analysis;
    }
    check_brain(&v.brain)?;
    v.updated_at = Timestamp::now();
    if !app.store.save_draft(&v).await? {
        return Err(immutable(&v));
    }
    Ok(v.into())
}

fn immutable(v: &VersionRecord) -> Error {
    Error::Conflict(format!(
        "version {} (v{}) is no longer a draft and cannot be edited; create a new version",
        v.id, v.number
    ))
}

/// Publishes a draft (admins): it becomes the active version, the one it replaces is archived.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id, version_id = %version))]
pub async fn publish(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    version: &AgentVersionId,
    req: ActivateRequest,
) -> Result<ActivationView> {
    activate(app, principal, id, version, req, Activation::Publish).await
}

/// Re-activates a version that was published before (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id, version_id = %version))]
pub async fn rollback(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    version: &AgentVersionId,
    req: ActivateRequest,
) -> Result<ActivationView> {
    activate(app, principal, id, version, req, Activation::Rollback).await
}

async fn activate(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    version: &AgentVersionId,
    req: ActivateRequest,
    how: Activation,
) -> Result<ActivationView> {
    let mut expected = req.expected_active_version_id;
    let mut actor = None;
    for _ in 0..RETRIES {
        let (agent, target) = app.store.agent_and_version(id, version).await?;
        let agent = agent.ok_or(Error::NotFound("agent"))?;
        let user = match actor.take() {
            Some(user) => user,
            None => {
                require_member(
                    app,
                    principal,
                    &agent.establishment_id,
                    Role::Admin,
                    "agent",
                )
                .await?
            }
        };
        let target = target.ok_or(Error::NotFound("version"))?;
        if agent.status == AgentStatus::Archived {
            return Err(Error::Conflict("this agent is archived".into()));
        }
        // The pointer the caller saw; on a retry, the one this request saw first.
        let seen = expected.get_or_insert_with(|| agent.active_version_id.clone());
        if *seen != agent.active_version_id {
            return Err(Error::Conflict(format!(
                "the active version changed (now {}) since it was read; reload and retry",
                agent
                    .active_version_id
                    .as_ref()
                    .map_or("none", |v| v.as_str())
            )));
        }
        check_transition(&target, how)?;
        match app.store.activate(&agent, &target, how, &user).await {
            Ok(deployment) => {
                return Ok(ActivationView {
                    agent_id: agent.id,
                    active_version_id: deployment.version_id,
                    previous_version_id: deployment.previous_version_id,
                });
            }
            Err(ActivationError::AgentChanged) => actor = Some(user),
            Err(ActivationError::Other(e)) => return Err(e),
        }
    }
    Err(Error::Conflict(
        "the agent kept changing while activating; retry".into(),
    ))
}

fn check_transition(target: &VersionRecord, how: Activation) -> Result<()> {
    let v = format!("version {} (v{})", target.id, target.number);
    let why = match (how, target.status) {
        (Activation::Publish, VersionStatus::Draft)
        | (Activation::Rollback, VersionStatus::Archived) => return Ok(()),
        (_, VersionStatus::Published) => format!("{v} is already the active version"),
        (Activation::Publish, VersionStatus::Archived) => {
            format!("{v} was published before; roll back to it instead")
        }
        (Activation::Rollback, VersionStatus::Draft) => format!(
            "{v} was never published; only a previously published version can be rolled back to"
        ),
    };
    Err(Error::conflict_on("version_id", why))
}

/// Who activated which version, when, newest first (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, agent_id = %id))]
pub async fn deployments(
    app: &App,
    principal: &Principal,
    id: &AgentId,
    params: ListParams,
) -> Result<Page<DeploymentView>> {
    let limit = params.limit()?;
    agent_access(app, principal, id, Role::Viewer).await?;
    Ok(app
        .store
        .deployments(id, limit, params.cursor.as_deref())
        .await?
        .map(DeploymentView::from))
}
