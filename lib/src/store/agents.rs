//! Agents, their versions and their deployment history. Owns the transactions that keep the
//! active-version pointer, the version statuses, the deployment log, the audit log and the
//! routing copies on number items consistent with each other.

use super::records::{AgentRecord, AuditRecord, DeploymentRecord, UserRecord, VersionRecord};
use super::{Item, ListQuery, Page, Store, Tx, TxError, keys, n, retry, s};
use crate::domain::{AgentStatus, VersionStatus};
use crate::error::{Error, Result};
use crate::ids::{AgentId, AgentVersionId, EstablishmentId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::collections::HashMap;

/// Most numbers one agent can carry: publish rewrites each in its transaction (limit 100).
pub const MAX_NUMBERS_PER_AGENT: usize = 50;

/// Publishing a draft or rolling back to a version that was published before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Publish,
    Rollback,
}

impl Activation {
    fn as_str(self) -> &'static str {
        match self {
            Activation::Publish => "publish",
            Activation::Rollback => "rollback",
        }
    }

    /// The status a version must have to be activated this way.
    pub fn from_status(self) -> VersionStatus {
        match self {
            Activation::Publish => VersionStatus::Draft,
            Activation::Rollback => VersionStatus::Archived,
        }
    }
}

/// Why an activation did not apply.
#[derive(Debug)]
pub enum ActivationError {
    /// The agent changed since it was read (another activation or a routing change): read
    /// again and decide whether to retry.
    AgentChanged,
    /// Anything else, already an API error.
    Other(Error),
}

/// What an agent edit changes (`None`: leave as is).
#[derive(Debug, Default)]
pub struct AgentPatch {
    pub name: Option<crate::domain::Name>,
    pub description: Option<Option<String>>,
}

impl Store {
    /// Creates an agent (conditional put).
    pub async fn create_agent(&self, agent: &AgentRecord) -> Result<()> {
        let created = self
            .put_if(
                &keys::agent(&agent.id),
                agent,
                "attribute_not_exists(pk)",
                HashMap::new(),
                Item::new(),
            )
            .await?;
        if created {
            Ok(())
        } else {
            Err(Error::Conflict("an agent with this id exists".into()))
        }
    }

    /// An agent by id, if it exists.
    pub async fn agent(&self, id: &AgentId) -> Result<Option<AgentRecord>> {
        self.get(&keys::agent(id)).await
    }

    /// An establishment's agents, in creation order.
    pub async fn agents_of(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<AgentRecord>> {
        let pk = keys::agents_index(est);
        self.list_page(&ListQuery::gsi1(&pk), limit, cursor).await
    }

    /// Renames or re-describes an active agent; returns the agent as stored.
    pub async fn update_agent(&self, id: &AgentId, patch: AgentPatch) -> Result<AgentRecord> {
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut removes = Vec::new();
        let mut names = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut values: Item = HashMap::from([
            (":now".to_owned(), s(Timestamp::now().to_string())),
            (":active".to_owned(), s(AgentStatus::Active.as_str())),
        ]);
        if let Some(name) = patch.name {
            names.insert("#name".into(), "name".into());
            values.insert(":name".into(), s(name.as_str()));
            sets.push("#name = :name".into());
        }
        match patch.description {
            Some(Some(d)) => {
                values.insert(":desc".into(), s(d));
                sets.push("description = :desc".into());
            }
            Some(None) => removes.push("description"),
            None => {}
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::agent(id).attrs()))
            .update_expression(expr)
            .condition_expression("attribute_exists(pk) AND #status = :active")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let out = retry::on_conflict(|| request.clone().send()).await;
        match out {
            Ok(out) => Self::record(out.attributes.unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict("this agent is archived".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Archives an agent no number routes to, with its audit entry.
    pub async fn archive_agent(&self, agent: &AgentRecord, actor: &UserRecord) -> Result<()> {
        let values = HashMap::from([
            (":archived".to_owned(), s(AgentStatus::Archived.as_str())),
            (":active".to_owned(), s(AgentStatus::Active.as_str())),
            (":zero".to_owned(), n(0)),
            (":one".to_owned(), n(1)),
            (":now".to_owned(), s(Timestamp::now().to_string())),
        ]);
        let items = Tx::new()
            .with(
                "agent",
                self.update(
                    &keys::agent(&agent.id),
                    "SET #status = :archived, updated_at = :now ADD revision :one",
                    Some("#status = :active AND size(numbers) = :zero"),
                    HashMap::from([("#status".to_owned(), "status".to_owned())]),
                    values,
                )?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &agent.establishment_id,
                    actor,
                    "agent.archived",
                    ("agent", agent.id.as_str()),
                    json!({ "status": "active" }),
                    json!({ "status": "archived" }),
                ))?,
            );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => Error::Conflict(
                "this agent is archived already, or numbers were routed to it meanwhile; reload"
                    .into(),
            ),
            TxError::Other(e) => e,
        })
    }

    /// Stores a new draft numbered `version_count + 1`, bumping the agent's counter in the same
    /// transaction. `Ok(false)`: the counter moved (a concurrent draft); read again and retry.
    pub async fn create_version(
        &self,
        agent: &AgentRecord,
        version: &VersionRecord,
    ) -> Result<bool> {
        let values = HashMap::from([
            (":seen".to_owned(), n(agent.version_count)),
            (":next".to_owned(), n(version.number)),
            (":active".to_owned(), s(AgentStatus::Active.as_str())),
        ]);
        let items = Tx::new()
            .with(
                "agent",
                self.update(
                    &keys::agent(&agent.id),
                    "SET version_count = :next",
                    Some("version_count = :seen AND #status = :active"),
                    HashMap::from([("#status".to_owned(), "status".to_owned())]),
                    values,
                )?,
            )
            .with(
                "version",
                self.create(&keys::agent_version(&agent.id, &version.id), version)?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Conditions(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// A version of an agent.
    pub async fn version(
        &self,
        agent: &AgentId,
        version: &AgentVersionId,
    ) -> Result<Option<VersionRecord>> {
        self.get(&keys::agent_version(agent, version)).await
    }

    /// An agent and one of its versions, in one round trip.
    pub async fn agent_and_version(
        &self,
        agent: &AgentId,
        version: &AgentVersionId,
    ) -> Result<(Option<AgentRecord>, Option<VersionRecord>)> {
        let agent_key = keys::agent(agent);
        let (mut a, mut v) = (None, None);
        for (key, item) in self
            .batch_get(&[agent_key.clone(), keys::agent_version(agent, version)])
            .await?
        {
            if key == agent_key {
                a = Some(Self::record(item)?);
            } else {
                v = Some(Self::record(item)?);
            }
        }
        Ok((a, v))
    }

    /// An agent's versions, oldest first.
    pub async fn versions(
        &self,
        agent: &AgentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<VersionRecord>> {
        let pk = keys::agent_partition(agent);
        let upper = format!("{}\u{10FFFF}", keys::VERSION_PREFIX);
        let q = ListQuery::table(&pk).between(keys::VERSION_PREFIX, &upper);
        self.list_page(&q, limit, cursor).await
    }

    /// Replaces a draft; refused (`Ok(false)`) once it is no longer a draft.
    pub async fn save_draft(&self, version: &VersionRecord) -> Result<bool> {
        self.put_if(
            &keys::agent_version(&version.agent_id, &version.id),
            version,
            "attribute_exists(pk) AND #status = :draft",
            HashMap::from([("#status".to_owned(), "status".to_owned())]),
            HashMap::from([(":draft".to_owned(), s(VersionStatus::Draft.as_str()))]),
        )
        .await
    }

    /// An agent's activations, newest first.
    pub async fn deployments(
        &self,
        agent: &AgentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentRecord>> {
        let pk = keys::agent_partition(agent);
        let upper = format!("{}\u{10FFFF}", keys::DEPLOYMENT_PREFIX);
        let q = ListQuery::table(&pk)
            .between(keys::DEPLOYMENT_PREFIX, &upper)
            .newest_first();
        self.list_page(&q, limit, cursor).await
    }

    /// Makes `target` the agent's active version, in one transaction: the pointer moves only
    /// if the agent is still exactly as read (`revision`); the target moves from the status
    /// `how` requires to `published`; the version it replaces becomes `archived`; the
    /// deployment and audit entries are written; and every number routed to the agent gets
    /// the new version id.
    pub async fn activate(
        &self,
        agent: &AgentRecord,
        target: &VersionRecord,
        how: Activation,
        actor: &UserRecord,
    ) -> Result<DeploymentRecord, ActivationError> {
        let now = Timestamp::now();
        let deployment = DeploymentRecord {
            sequence: agent.deployment_count + 1,
            agent_id: agent.id.clone(),
            version_id: target.id.clone(),
            previous_version_id: agent.active_version_id.clone(),
            action: how.as_str().to_owned(),
            actor_user_id: actor.id.clone(),
            actor_email: actor.email.clone(),
            at: now,
        };
        let status = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut items = Tx::new()
            .with("agent", self.update(
                &keys::agent(&agent.id),
                "SET active_version_id = :new, deployment_count = :seq, updated_at = :now ADD revision :one",
                Some("revision = :rev AND #status = :active"),
                status.clone(),
                HashMap::from([
                    (":new".to_owned(), s(target.id.as_str())),
                    (":seq".to_owned(), n(deployment.sequence)),
                    (":now".to_owned(), s(now.to_string())),
                    (":one".to_owned(), n(1)),
                    (":rev".to_owned(), n(agent.revision)),
                    (":active".to_owned(), s(AgentStatus::Active.as_str())),
                ]),
            )
            .map_err(ActivationError::Other)?)
            .with("target", self.update(
                &keys::agent_version(&agent.id, &target.id),
                "SET #status = :published, updated_at = :now, published_at = if_not_exists(published_at, :now)",
                Some("#status = :from"),
                status.clone(),
                HashMap::from([
                    (":published".to_owned(), s(VersionStatus::Published.as_str())),
                    (":from".to_owned(), s(how.from_status().as_str())),
                    (":now".to_owned(), s(now.to_string())),
                ]),
            )
            .map_err(ActivationError::Other)?);
        if let Some(previous) = &agent.active_version_id {
            items.add(
                "previous",
                self.update(
                    &keys::agent_version(&agent.id, previous),
                    "SET #status = :archived, updated_at = :now",
                    Some("#status = :published"),
                    status,
                    HashMap::from([
                        (":archived".to_owned(), s(VersionStatus::Archived.as_str())),
                        (
                            ":published".to_owned(),
                            s(VersionStatus::Published.as_str()),
                        ),
                        (":now".to_owned(), s(now.to_string())),
                    ]),
                )
                .map_err(ActivationError::Other)?,
            );
        }
        items.add(
            "deployment",
            self.create(
                &keys::deployment(&agent.id, deployment.sequence),
                &deployment,
            )
            .map_err(ActivationError::Other)?,
        );
        let action = match how {
            Activation::Publish => "agent_version.published",
            Activation::Rollback => "agent_version.rolled_back",
        };
        items.add(
            "audit",
            self.audit_item(&AuditRecord::new(
                &agent.establishment_id,
                actor,
                action,
                ("agent", agent.id.as_str()),
                json!({ "active_version_id": agent.active_version_id }),
                json!({ "active_version_id": target.id, "version_number": target.number }),
            ))
            .map_err(ActivationError::Other)?,
        );
        for e164 in agent.numbers.keys() {
            items.add(
                "route",
                self.route_copy(e164, &agent.id, Some(&target.id))
                    .map_err(ActivationError::Other)?,
            );
        }
        match self.transact(items).await {
            Ok(()) => Ok(deployment),
            Err(TxError::Conditions(failed)) if failed.only("target") => {
                Err(ActivationError::Other(Error::Conflict(format!(
                    "version {} is no longer {}; reload",
                    target.id,
                    how.from_status().as_str()
                ))))
            }
            Err(TxError::Conditions(_)) => Err(ActivationError::AgentChanged),
            Err(TxError::Other(e)) => Err(ActivationError::Other(e)),
        }
    }

    /// Sets the routing copy of the active version on a number routed to `agent`.
    fn route_copy(
        &self,
        e164: &str,
        agent: &AgentId,
        version: Option<&AgentVersionId>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let e164 = crate::domain::E164::parse(e164).map_err(Error::internal)?;
        let version = version.map_or(AttributeValue::Null(true), |v| s(v.as_str()));
        self.update(
            &keys::phone(&e164),
            "SET active_version_id = :v",
            Some("routing_agent_id = :agent"),
            HashMap::new(),
            HashMap::from([
                (":v".to_owned(), version),
                (":agent".to_owned(), s(agent.as_str())),
            ]),
        )
    }
}
