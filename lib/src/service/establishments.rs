//! Establishments and their telephony policy.

use super::EstablishmentView;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::{
    BusinessHours, E164, Locale, Name, NumberProvider, Role, TelephonyPolicy, TimeZone, nullable,
};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{AgentId, EstablishmentId, PhoneNumberId};
use crate::store::records::{EstablishmentRecord, PhoneRecord};
use crate::store::{EstablishmentPatch, Page};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `POST /establishments` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEstablishment {
    pub name: Name,
    pub timezone: TimeZone,
    pub locale: Locale,
}

/// `PATCH /establishments/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateEstablishment {
    pub name: Option<Name>,
    pub timezone: Option<TimeZone>,
    pub locale: Option<Locale>,
}

/// `PATCH /establishments/{id}/telephony` body (partial).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateTelephony {
    /// `null` removes the handoff number.
    #[serde(default, deserialize_with = "nullable")]
    pub handoff_e164: Option<Option<E164>>,
    pub max_call_duration_seconds: Option<u32>,
    pub business_hours: Option<Vec<BusinessHours>>,
    pub blacklist_e164: Option<Vec<E164>>,
    /// Most campaign calls in flight at once across the establishment's campaigns (1 to 100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent_calls: Option<u32>,
}

/// A list item of `GET /establishments` (Appendix A.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EstablishmentSummary {
    pub id: EstablishmentId,
    pub name: String,
    pub timezone: String,
    pub locale: String,
}

/// An inbound number routed to an agent (Appendix A.2, plus its id and enabled flag).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundNumber {
    pub id: PhoneNumberId,
    pub provider: NumberProvider,
    pub e164: E164,
    pub routing_agent_id: AgentId,
    pub enabled: bool,
}

/// `GET /establishments/{id}/telephony` (Appendix A.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TelephonyView {
    pub establishment_id: EstablishmentId,
    pub inbound_numbers: Vec<InboundNumber>,
    #[serde(flatten)]
    pub policy: TelephonyPolicy,
}

/// Establishments the caller belongs to.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn list(
    app: &App,
    principal: &Principal,
    params: ListParams,
) -> Result<Page<EstablishmentSummary>> {
    let limit = params.limit()?;
    app.store.session(principal, None).await?;
    let page = app
        .store
        .establishments_of(&principal.user_id, limit, params.cursor.as_deref())
        .await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|e| EstablishmentSummary {
                id: e.id,
                name: e.name.to_string(),
                timezone: e.timezone.as_str().to_owned(),
                locale: e.locale.as_str().to_owned(),
            })
            .collect(),
        cursor: page.cursor,
    })
}

/// Creates an establishment; the caller becomes its admin. Allowed to platform admins and to
/// admins of any establishment (an organisation opening another location); operators and
/// viewers get `403`.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn create(
    app: &App,
    principal: &Principal,
    req: CreateEstablishment,
) -> Result<EstablishmentView> {
    let session = app.store.session(principal, None).await?;
    if !session.user.platform_admin {
        let memberships = app.store.memberships(&principal.user_id).await?;
        if !memberships.iter().any(|m| m.role == Role::Admin) {
            return Err(Error::Forbidden(
                "creating an establishment needs the admin role".into(),
            ));
        }
    }
    let now = Timestamp::now();
    let record = EstablishmentRecord {
        id: EstablishmentId::new(),
        name: req.name,
        timezone: req.timezone,
        locale: req.locale,
        created_at: now,
        updated_at: now,
        admin_count: 1,
        telephony: TelephonyPolicy::default(),
    };
    app.store
        .create_establishment(&record, &session.user)
        .await?;
    Ok(EstablishmentView::from(&record))
}

/// One establishment (any member).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %id))]
pub async fn get(
    app: &App,
    principal: &Principal,
    id: &EstablishmentId,
) -> Result<EstablishmentView> {
    app.store
        .session(principal, Some(id))
        .await?
        .require(Role::Viewer)?;
    Ok(EstablishmentView::from(
        &app.store.establishment_required(id).await?,
    ))
}

/// Renames or re-localises an establishment (admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %id))]
pub async fn update(
    app: &App,
    principal: &Principal,
    id: &EstablishmentId,
    req: UpdateEstablishment,
) -> Result<EstablishmentView> {
    if req.name.is_none() && req.timezone.is_none() && req.locale.is_none() {
        return Err(Error::invalid(
            "body",
            "give at least one of name, timezone, locale",
        ));
    }
    app.store
        .session(principal, Some(id))
        .await?
        .require(Role::Admin)?;
    let patch = EstablishmentPatch {
        name: req.name,
        timezone: req.timezone,
        locale: req.locale,
        ..Default::default()
    };
    Ok(EstablishmentView::from(
        &app.store.update_establishment(id, patch).await?,
    ))
}

/// The telephony policy (any member).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %id))]
pub async fn telephony(
    app: &App,
    principal: &Principal,
    id: &EstablishmentId,
) -> Result<TelephonyView> {
    app.store
        .session(principal, Some(id))
        .await?
        .require(Role::Viewer)?;
    let est = app.store.establishment_required(id).await?;
    let numbers = app.store.all_phones_of(id).await?;
    Ok(telephony_view(est, numbers))
}

/// Changes the telephony policy (admins); only the fields given change.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %id))]
pub async fn update_telephony(
    app: &App,
    principal: &Principal,
    id: &EstablishmentId,
    req: UpdateTelephony,
) -> Result<TelephonyView> {
    if let Some(secs) = req.max_call_duration_seconds {
        TelephonyPolicy::check_duration(secs)
            .map_err(|e| Error::invalid("max_call_duration_seconds", e))?;
    }
    if let Some(calls) = req.max_concurrent_calls {
        TelephonyPolicy::check_concurrency(calls)
            .map_err(|e| Error::invalid("max_concurrent_calls", e))?;
    }
    if req
        .business_hours
        .as_ref()
        .is_some_and(|h| h.len() > TelephonyPolicy::MAX_RULES)
    {
        return Err(Error::invalid(
            "business_hours",
            format!("at most {} rules", TelephonyPolicy::MAX_RULES),
        ));
    }
    let blacklist = req.blacklist_e164.map(|mut list| {
        list.sort();
        list.dedup();
        list
    });
    if blacklist
        .as_ref()
        .is_some_and(|b| b.len() > TelephonyPolicy::MAX_BLACKLIST)
    {
        return Err(Error::invalid(
            "blacklist_e164",
            format!("at most {} numbers", TelephonyPolicy::MAX_BLACKLIST),
        ));
    }
    let patch = EstablishmentPatch {
        handoff_e164: req.handoff_e164,
        max_call_duration_seconds: req.max_call_duration_seconds,
        business_hours: req.business_hours,
        blacklist_e164: blacklist,
        max_concurrent_calls: req.max_concurrent_calls,
        ..Default::default()
    };
    app.store
        .session(principal, Some(id))
        .await?
        .require(Role::Admin)?;
    let est = app.store.update_establishment(id, patch).await?;
    let numbers = app.store.all_phones_of(id).await?;
    Ok(telephony_view(est, numbers))
}

fn telephony_view(est: EstablishmentRecord, numbers: Vec<PhoneRecord>) -> TelephonyView {
    TelephonyView {
        establishment_id: est.id,
        inbound_numbers: numbers
            .into_iter()
            .map(|p| InboundNumber {
                id: p.id,
                provider: p.provider,
                e164: p.e164,
                routing_agent_id: p.routing_agent_id,
                enabled: p.enabled,
            })
            .collect(),
        policy: est.telephony,
    }
}
