//! The phone-number registry (PRD §8 phone_numbers, D.6): numbers are unique across tenants
//! and route to an agent of their own establishment. Viewers read; admins change.

use super::access::{member_of, require_member};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::{AgentStatus, E164, NumberProvider, Role};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, AgentVersionId, EstablishmentId, PhoneNumberId};
use crate::store::records::{AgentRecord, PhoneRecord};
use crate::store::{Page, RoutingError, keys};
use crate::telephony::NumberHooks;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// How many times a routing change that lost a race to an agent change is retried.
const RETRIES: usize = 5;

/// `POST /establishments/{id}/phone-numbers` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePhoneNumber {
    pub provider: NumberProvider,
    pub e164: E164,
    pub routing_agent_id: AgentId,
    /// Defaults to `true`.
    pub enabled: Option<bool>,
}

/// `PATCH /phone-numbers/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdatePhoneNumber {
    pub routing_agent_id: Option<AgentId>,
    pub enabled: Option<bool>,
}

/// A number as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhoneNumberView {
    pub id: PhoneNumberId,
    pub establishment_id: EstablishmentId,
    pub provider: NumberProvider,
    pub e164: E164,
    pub routing_agent_id: AgentId,
    /// The version inbound calls to this number get (the agent's active version).
    pub active_version_id: Option<AgentVersionId>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<PhoneRecord> for PhoneNumberView {
    fn from(p: PhoneRecord) -> Self {
        Self {
            id: p.id,
            establishment_id: p.establishment_id,
            provider: p.provider,
            e164: p.e164,
            routing_agent_id: p.routing_agent_id,
            active_version_id: p.active_version_id,
            enabled: p.enabled,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// The routing agent named by a request: it must exist in `est` (404 naming the field
/// otherwise, whoever owns it) and be active (409).
async fn routing_agent(app: &App, est: &EstablishmentId, id: &AgentId) -> Result<AgentRecord> {
    let agent = app
        .store
        .agent(id)
        .await?
        .filter(|a| &a.establishment_id == est)
        .ok_or_else(|| Error::NotFoundField {
            field: "routing_agent_id",
            message: format!("no agent {id} in this establishment"),
        })?;
    if agent.status == AgentStatus::Archived {
        return Err(Error::conflict_on(
            "routing_agent_id",
            format!("agent {id} is archived and takes no calls"),
        ));
    }
    Ok(agent)
}

fn retry_exhausted() -> Error {
    Error::Conflict("the routing agent kept changing; retry".into())
}

/// Registers a number routed to one of the establishment's agents (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn create(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    req: CreatePhoneNumber,
) -> Result<PhoneNumberView> {
    let user = require_member(app, principal, est, Role::Admin, "establishment").await?;
    // Only a number of our provider account can be registered, and registering it is what
    // sends its calls to us (422 `number_not_in_account` otherwise, and nothing is stored).
    // Pointing an already registered number at our webhooks again changes nothing there.
    claim(app, req.provider, &req.e164).await?;
    let id = PhoneNumberId::new();
    for _ in 0..RETRIES {
        let agent = routing_agent(app, est, &req.routing_agent_id).await?;
        let now = Timestamp::now();
        let phone = PhoneRecord {
            id: id.clone(),
            e164: req.e164.clone(),
            provider: req.provider,
            establishment_id: est.clone(),
            routing_agent_id: agent.id.clone(),
            active_version_id: agent.active_version_id.clone(),
            enabled: req.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
            gsi1pk: keys::phones_index(est),
            gsi1sk: req.e164.to_string(),
        };
        if agent.numbers.len() >= crate::store::MAX_NUMBERS_PER_AGENT {
            return Err(Error::conflict_on(
                "routing_agent_id",
                format!(
                    "an agent takes at most {} numbers",
                    crate::store::MAX_NUMBERS_PER_AGENT
                ),
            ));
        }
        match app.store.create_phone(&phone, &agent, &user).await {
            Ok(()) => return Ok(phone.into()),
            Err(RoutingError::AgentChanged) => continue,
            Err(RoutingError::Other(e)) => return Err(e),
        }
    }
    Err(retry_exhausted())
}

/// An establishment's numbers (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %est))]
pub async fn list(
    app: &App,
    principal: &Principal,
    est: &EstablishmentId,
    params: ListParams,
) -> Result<Page<PhoneNumberView>> {
    let limit = params.limit()?;
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    Ok(app
        .store
        .phones_of(est, limit, params.cursor.as_deref())
        .await?
        .map(PhoneNumberView::from))
}

/// The number `id` if the caller's role in its establishment allows `role` (404 otherwise).
async fn phone_access(
    app: &App,
    principal: &Principal,
    id: &PhoneNumberId,
    role: Role,
) -> Result<(crate::store::records::UserRecord, PhoneRecord)> {
    member_of(app, principal, app.store.phone(id).await?, role).await
}

/// One number (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, phone_number_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &PhoneNumberId) -> Result<PhoneNumberView> {
    Ok(phone_access(app, principal, id, Role::Viewer)
        .await?
        .1
        .into())
}

/// Re-routes, disables or enables a number (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, phone_number_id = %id))]
pub async fn update(
    app: &App,
    principal: &Principal,
    id: &PhoneNumberId,
    req: UpdatePhoneNumber,
) -> Result<PhoneNumberView> {
    if req.routing_agent_id.is_none() && req.enabled.is_none() {
        return Err(Error::invalid(
            "body",
            "give at least one of routing_agent_id, enabled",
        ));
    }
    let (user, mut old) = phone_access(app, principal, id, Role::Admin).await?;
    for attempt in 0..RETRIES {
        if attempt > 0 {
            old = app
                .store
                .phone(id)
                .await?
                .ok_or(Error::NotFound("phone number"))?;
        }
        let mut new = old.clone();
        new.updated_at = Timestamp::now();
        if let Some(enabled) = req.enabled {
            new.enabled = enabled;
        }
        let target = req
            .routing_agent_id
            .as_ref()
            .filter(|a| **a != old.routing_agent_id);
        let result = match target {
            Some(target) => {
                let to = routing_agent(app, &old.establishment_id, target).await?;
                let from = app
                    .store
                    .agent(&old.routing_agent_id)
                    .await?
                    .ok_or_else(|| Error::internal("number routed to a missing agent"))?;
                new.routing_agent_id = to.id.clone();
                new.active_version_id = to.active_version_id.clone();
                app.store
                    .update_phone(&old, &new, Some((&from, &to)), &user)
                    .await
            }
            None if new.enabled == old.enabled => return Ok(old.into()),
            None => app.store.update_phone(&old, &new, None, &user).await,
        };
        match result {
            Ok(()) => {
                // The stored number's version copy may have moved by a publish meanwhile; the
                // item is the truth.
                return Ok(app
                    .store
                    .phone(id)
                    .await?
                    .ok_or(Error::NotFound("phone number"))?
                    .into());
            }
            Err(RoutingError::AgentChanged) => continue,
            Err(RoutingError::Other(e)) => return Err(e),
        }
    }
    Err(retry_exhausted())
}

/// Deletes a number (admins): inbound calls to it are rejected from then on.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, phone_number_id = %id))]
pub async fn delete(app: &App, principal: &Principal, id: &PhoneNumberId) -> Result<()> {
    let (user, phone) = phone_access(app, principal, id, Role::Admin).await?;
    app.store.delete_phone(&phone, &user).await?;
    // The number is ours no more: stop its calls reaching us. The registration is already
    // gone, so a provider failure is logged, not answered (our webhook refuses its calls).
    if phone.provider == NumberProvider::Twilio {
        let telephony = app.telephony()?;
        if let Err(e) = telephony
            .twilio
            .release_number(&phone.e164, &hooks(telephony))
            .await
        {
            tracing::warn!(error = %e, e164 = %phone.e164, "could not clear the number's webhooks at Twilio");
        }
    }
    Ok(())
}

/// Our webhooks, as a number's voice URL and status callback.
fn hooks(telephony: &crate::app::Telephony) -> NumberHooks {
    NumberHooks {
        voice_url: telephony.callback("/webhooks/twilio/incoming-call"),
        status_callback: telephony.callback("/webhooks/twilio/call-status"),
    }
}

/// Checks that `e164` is a number of the provider account and points it at our webhooks.
async fn claim(app: &App, provider: NumberProvider, e164: &E164) -> Result<()> {
    if provider != NumberProvider::Twilio {
        return Ok(());
    }
    let telephony = app.telephony()?;
    telephony
        .twilio
        .claim_number(e164, &hooks(telephony))
        .await
        .map_err(Error::from)
}
