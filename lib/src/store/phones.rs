//! The phone-number registry and the inbound routing resolver. A number item (`PHONE#{e164}`)
//! is unique across tenants and carries everything routing needs (establishment, agent, the
//! agent's active version, enabled), so resolving an inbound call is exactly one GetItem. The
//! transactions here and in `agents` keep that copy right.

use super::records::{AgentRecord, AuditRecord, PhoneIdRecord, PhoneRecord, UserRecord};
use super::{Item, ListQuery, Page, Store, Tx, TxError, keys, n, s};
use crate::domain::{AgentStatus, E164, NumberProvider};
use crate::error::{Error, Result};
use crate::ids::{AgentId, AgentVersionId, EstablishmentId, PhoneNumberId};
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// Where an inbound call to a number goes (PRD E.4 (3): `to_e164 → establishment_id +
/// agent_id + active_version_id`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    pub phone_number_id: PhoneNumberId,
    pub e164: E164,
    pub provider: NumberProvider,
    pub establishment_id: EstablishmentId,
    pub agent_id: AgentId,
    /// `None` while the agent has never been published.
    pub active_version_id: Option<AgentVersionId>,
    /// A disabled number takes no calls.
    pub enabled: bool,
}

/// Why a routing change did not apply.
#[derive(Debug)]
pub enum RoutingError {
    /// An agent involved changed since it was read (publish, rollback, another routing
    /// change): read again and retry.
    AgentChanged,
    /// Anything else, already an API error.
    Other(Error),
}

impl From<Error> for RoutingError {
    fn from(e: Error) -> Self {
        RoutingError::Other(e)
    }
}

impl Store {
    /// Resolves an inbound call's called number, in one GetItem.
    pub async fn resolve_route(&self, to: &E164) -> Result<Option<Route>> {
        let phone: Option<PhoneRecord> = self.get(&keys::phone(to)).await?;
        Ok(phone.map(|p| Route {
            phone_number_id: p.id,
            e164: p.e164,
            provider: p.provider,
            establishment_id: p.establishment_id,
            agent_id: p.routing_agent_id,
            active_version_id: p.active_version_id,
            enabled: p.enabled,
        }))
    }

    /// Registers a number routed to `agent` (as read; its `revision` guards the copy of the
    /// active version), with the id pointer, the agent's number map and the audit entry.
    pub async fn create_phone(
        &self,
        phone: &PhoneRecord,
        agent: &AgentRecord,
        actor: &UserRecord,
    ) -> Result<(), RoutingError> {
        let items = Tx::new()
            .with("phone", self.create(&keys::phone(&phone.e164), phone)?)
            .with(
                "phone_id",
                self.create(
                    &keys::phone_id(&phone.id),
                    &PhoneIdRecord {
                        e164: phone.e164.clone(),
                        establishment_id: phone.establishment_id.clone(),
                    },
                )?,
            )
            .with("agent", self.attach_number(agent, phone)?)
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &phone.establishment_id,
                    actor,
                    "phone_number.created",
                    ("phone_number", phone.id.as_str()),
                    serde_json::Value::Null,
                    routing_json(phone),
                ))?,
            );
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(failed)) if failed.any(&["phone", "phone_id"]) => {
                Err(RoutingError::Other(Error::conflict_on(
                    "e164",
                    format!("{} is already registered", phone.e164),
                )))
            }
            Err(TxError::Conditions(_)) => Err(RoutingError::AgentChanged),
            Err(TxError::Other(e)) => Err(RoutingError::Other(e)),
        }
    }

    /// A number by id.
    pub async fn phone(&self, id: &PhoneNumberId) -> Result<Option<PhoneRecord>> {
        let Some(pointer) = self.get::<PhoneIdRecord>(&keys::phone_id(id)).await? else {
            return Ok(None);
        };
        Ok(self
            .get::<PhoneRecord>(&keys::phone(&pointer.e164))
            .await?
            .filter(|p| &p.id == id))
    }

    /// An establishment's numbers, by E.164 (read from `gsi1`, so eventually consistent).
    pub async fn phones_of(
        &self,
        est: &EstablishmentId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<PhoneRecord>> {
        let pk = keys::phones_index(est);
        self.list_page(&ListQuery::gsi1(&pk), limit, cursor).await
    }

    /// Every number of an establishment (follows pages).
    pub async fn all_phones_of(&self, est: &EstablishmentId) -> Result<Vec<PhoneRecord>> {
        self.gsi1_all(&keys::phones_index(est)).await
    }

    /// Changes a number's routing agent and/or enabled flag. `agents` are the old and the new
    /// routing agent as read, when the agent changes; the new agent's active version is copied
    /// onto the number under its `revision` guard.
    pub async fn update_phone(
        &self,
        old: &PhoneRecord,
        new: &PhoneRecord,
        agents: Option<(&AgentRecord, &AgentRecord)>,
        actor: &UserRecord,
    ) -> Result<(), RoutingError> {
        let now = Timestamp::now();
        let mut items = Tx::new();
        match agents {
            Some((from, to)) => {
                let version = new
                    .active_version_id
                    .as_ref()
                    .map_or(AttributeValue::Null(true), |v| s(v.as_str()));
                items.add("phone", self.update(
                    &keys::phone(&old.e164),
                    "SET routing_agent_id = :to, active_version_id = :v, enabled = :en, updated_at = :now",
                    Some("routing_agent_id = :from"),
                    HashMap::new(),
                    HashMap::from([
                        (":to".to_owned(), s(to.id.as_str())),
                        (":from".to_owned(), s(from.id.as_str())),
                        (":v".to_owned(), version),
                        (":en".to_owned(), AttributeValue::Bool(new.enabled)),
                        (":now".to_owned(), s(now.to_string())),
                    ]),
                )?);
                items.add("from_agent", self.detach_number(&from.id, &old.e164)?);
                items.add("to_agent", self.attach_number(to, new)?);
            }
            None => items.add(
                "phone",
                self.update(
                    &keys::phone(&old.e164),
                    "SET enabled = :en, updated_at = :now",
                    Some("routing_agent_id = :agent"),
                    HashMap::new(),
                    HashMap::from([
                        (":en".to_owned(), AttributeValue::Bool(new.enabled)),
                        (":agent".to_owned(), s(old.routing_agent_id.as_str())),
                        (":now".to_owned(), s(now.to_string())),
                    ]),
                )?,
            ),
        }
        items.add(
            "audit",
            self.audit_item(&AuditRecord::new(
                &old.establishment_id,
                actor,
                "phone_number.routing_changed",
                ("phone_number", old.id.as_str()),
                routing_json(old),
                routing_json(new),
            ))?,
        );
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Conditions(_)) => Err(RoutingError::AgentChanged),
            Err(TxError::Other(e)) => Err(RoutingError::Other(e)),
        }
    }

    /// Deletes a number, its id pointer and its place in the agent's number map.
    pub async fn delete_phone(&self, phone: &PhoneRecord, actor: &UserRecord) -> Result<()> {
        let agent = HashMap::from([(":agent".to_owned(), s(phone.routing_agent_id.as_str()))]);
        let items = Tx::new()
            .with(
                "phone",
                self.delete(
                    &keys::phone(&phone.e164),
                    "routing_agent_id = :agent",
                    HashMap::new(),
                    agent,
                )?,
            )
            .with(
                "phone_id",
                self.delete(
                    &keys::phone_id(&phone.id),
                    "attribute_exists(pk)",
                    HashMap::new(),
                    Item::new(),
                )?,
            )
            .with(
                "agent",
                self.detach_number(&phone.routing_agent_id, &phone.e164)?,
            )
            .with(
                "audit",
                self.audit_item(&AuditRecord::new(
                    &phone.establishment_id,
                    actor,
                    "phone_number.deleted",
                    ("phone_number", phone.id.as_str()),
                    routing_json(phone),
                    serde_json::Value::Null,
                ))?,
            );
        self.transact(items).await.map_err(|e| match e {
            TxError::Conditions(_) => {
                Error::Conflict("this number changed meanwhile; reload and retry".into())
            }
            TxError::Other(e) => e,
        })
    }

    /// Adds `phone` to `agent`'s number map, if the agent is still as read, active, of the
    /// number's establishment, and below the per-agent limit.
    fn attach_number(&self, agent: &AgentRecord, phone: &PhoneRecord) -> Result<TransactWriteItem> {
        self.update(
            &keys::agent(&agent.id),
            "SET numbers.#e164 = :pn ADD revision :one",
            Some(
                "revision = :rev AND #status = :active AND establishment_id = :est AND size(numbers) < :max",
            ),
            HashMap::from([
                ("#e164".to_owned(), phone.e164.to_string()),
                ("#status".to_owned(), "status".to_owned()),
            ]),
            HashMap::from([
                (":pn".to_owned(), s(phone.id.as_str())),
                (":one".to_owned(), n(1)),
                (":rev".to_owned(), n(agent.revision)),
                (":active".to_owned(), s(AgentStatus::Active.as_str())),
                (":est".to_owned(), s(phone.establishment_id.as_str())),
                (":max".to_owned(), n(super::agents::MAX_NUMBERS_PER_AGENT)),
            ]),
        )
    }

    /// Removes `e164` from `agent`'s number map.
    fn detach_number(&self, agent: &AgentId, e164: &E164) -> Result<TransactWriteItem> {
        self.update(
            &keys::agent(agent),
            "REMOVE numbers.#e164 ADD revision :one",
            None,
            HashMap::from([("#e164".to_owned(), e164.to_string())]),
            HashMap::from([(":one".to_owned(), n(1))]),
        )
    }
}

/// What the audit log keeps of a number's routing.
fn routing_json(p: &PhoneRecord) -> serde_json::Value {
    json!({
        "e164": p.e164,
        "routing_agent_id": p.routing_agent_id,
        "enabled": p.enabled,
    })
}
