//! The leads API (PRD §7.6): listing an establishment's leads (newest first, by status, by
//! campaign, by number or name prefix), one lead, editing one, deleting one. Viewers read,
//! operators and admins edit, admins delete. A lead whose number is on the do-not-call list
//! shows `do_not_call`; setting that status puts the number on the list (audited), and a
//! lead cannot leave it while its number is on the list.

use super::access::{Owned, member_of, require_member};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::{E164, Email, LeadStatus, Role, TimeZone, phone_zones};
use crate::error::{Error, Result};
use crate::http::ListParams;
use crate::ids::{EstablishmentId, ImportJobId, LeadId};
use crate::leads::rows::{MAX_COLUMNS, MAX_FIELD_BYTES};
use crate::store::records::{DoNotCallRecord, LeadRecord};
use crate::store::{LeadQuery, LeadSearch, Page};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Times a PATCH is applied again when the lead changed between its read and its write.
const PATCH_ATTEMPTS: usize = 3;

impl Owned for LeadRecord {
    const WHAT: &'static str = "lead";
    fn establishment(&self) -> &EstablishmentId {
        &self.establishment_id
    }
}

/// A lead as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeadView {
    pub id: LeadId,
    pub establishment_id: EstablishmentId,
    pub phone_e164: E164,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub name: Option<String>,
    pub email: Option<Email>,
    /// The zone set for this lead, if one was (CSV column or PATCH).
    pub timezone: Option<TimeZone>,
    /// Every zone the lead may be in (`timezone`, else the candidates for its number); the
    /// dialer calls only inside its window in all of them.
    pub timezones: Vec<TimeZone>,
    pub external_id: Option<String>,
    /// The import's other columns, by header name.
    pub attributes: BTreeMap<String, String>,
    pub status: LeadStatus,
    pub campaign_ids: Vec<String>,
    pub import_job_id: Option<ImportJobId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<LeadRecord> for LeadView {
    fn from(l: LeadRecord) -> Self {
        Self {
            id: l.id,
            establishment_id: l.establishment_id,
            phone_e164: l.phone_e164,
            first_name: l.first_name,
            last_name: l.last_name,
            name: l.name,
            email: l.email,
            timezone: l.timezone,
            timezones: l.timezones,
            external_id: l.external_id,
            attributes: l.attributes,
            status: l.status,
            campaign_ids: l.campaign_ids,
            import_job_id: l.import_job_id,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// `GET /leads` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadListParams {
    pub establishment_id: EstablishmentId,
    pub status: Option<LeadStatus>,
    /// Leads a campaign enrolled.
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub campaign_id: Option<String>,
    /// A phone-number prefix (`+1208`, or national digits read in the establishment's
    /// region) or a name prefix (case-insensitive).
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub q: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::blank_as_none")]
    pub cursor: Option<String>,
}

/// `PATCH /leads/{id}` body: each field given replaces the lead's; `null` clears it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<Email>)]
    pub email: Option<Option<Email>>,
    /// The lead's zone; `null` goes back to the candidates for its number.
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<TimeZone>)]
    pub timezone: Option<Option<TimeZone>>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    /// Merged into the lead's: a string sets the attribute, `null` removes it.
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, Option<String>>>,
    /// `do_not_call` also puts the number on the establishment's do-not-call list.
    #[serde(default)]
    pub status: Option<LeadStatus>,
}

/// A text field of a PATCH, trimmed; empty is the same as `null`.
fn text(field: &str, value: &Option<Option<String>>) -> Result<Option<Option<String>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
    if value.is_some_and(|v| v.len() > MAX_FIELD_BYTES) {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_FIELD_BYTES} bytes"),
        ));
    }
    Ok(Some(value.map(str::to_owned)))
}

impl LeadPatch {
    /// `lead` with the patch applied (checked), without its status.
    fn apply(&self, lead: &LeadRecord) -> Result<LeadRecord> {
        let mut next = lead.clone();
        if let Some(v) = text("first_name", &self.first_name)? {
            next.first_name = v;
        }
        if let Some(v) = text("last_name", &self.last_name)? {
            next.last_name = v;
        }
        if let Some(v) = text("name", &self.name)? {
            next.name = v;
        }
        if let Some(v) = text("external_id", &self.external_id)? {
            next.external_id = v;
        }
        if let Some(email) = &self.email {
            next.email.clone_from(email);
        }
        if let Some(zone) = &self.timezone {
            next.timezone.clone_from(zone);
            next.timezones = match zone {
                Some(zone) => vec![zone.clone()],
                None => phone_zones::candidates(&next.phone_e164),
            };
        }
        for (key, value) in self.attributes.iter().flatten() {
            if key.trim().is_empty() || key.len() > 200 {
                return Err(Error::invalid("attributes", "keys must be 1 to 200 bytes"));
            }
            match value {
                Some(v) if v.len() > MAX_FIELD_BYTES => {
                    return Err(Error::invalid(
                        format!("attributes.{key}"),
                        format!("must be at most {MAX_FIELD_BYTES} bytes"),
                    ));
                }
                Some(v) => {
                    next.attributes.insert(key.clone(), v.clone());
                }
                None => {
                    next.attributes.remove(key);
                }
            }
        }
        if next.attributes.len() > MAX_COLUMNS {
            return Err(Error::invalid(
                "attributes",
                format!("a lead has at most {MAX_COLUMNS} attributes"),
            ));
        }
        Ok(next)
    }
}

/// What `q` searches: digits (with `+`, spaces, dashes, dots or brackets) are a number
/// prefix, read as E.164 when they start with `+` or the region's country code, else as a
/// national number of `region` (a leading trunk `0` dropped); anything else is a name prefix.
fn search_of(q: &str, region: Option<&str>) -> Result<LeadSearch> {
    let q = q.trim();
    if q.chars().count() > 100 {
        return Err(Error::invalid("q", "must be at most 100 characters"));
    }
    let phone_like = q
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
        && q.chars().any(|c| c.is_ascii_digit());
    if !phone_like {
        return Ok(LeadSearch::Name(crate::store::keys::search_name(q)));
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if q.starts_with('+') {
        return Ok(LeadSearch::Phone(format!("+{digits}")));
    }
    let code = region
        .and_then(|r| r.parse::<phonenumber::country::Id>().ok())
        .and_then(|id| phonenumber::metadata::DATABASE.by_id(id.as_ref()))
        .map(|meta| meta.country_code().to_string());
    Ok(LeadSearch::Phone(match code {
        Some(code) if !digits.starts_with(&code) => {
            format!("+{code}{}", digits.trim_start_matches('0'))
        }
        _ => format!("+{digits}"),
    }))
}

/// `GET /leads` (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, establishment_id = %params.establishment_id))]
pub async fn list(
    app: &App,
    principal: &Principal,
    params: LeadListParams,
) -> Result<Page<LeadView>> {
    let limit = ListParams {
        limit: params.limit,
        cursor: None,
    }
    .limit()?;
    let est = &params.establishment_id;
    if params.campaign_id.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(Error::invalid(
            "campaign_id",
            "must be at most 64 characters",
        ));
    }
    require_member(app, principal, est, Role::Viewer, "establishment").await?;
    let search = match params.q.as_deref() {
        None => None,
        Some(q) => {
            let establishment = app.store.establishment(est).await?;
            let region = establishment.as_ref().and_then(|e| e.locale.phone_region());
            Some(search_of(q, region)?)
        }
    };
    let query = LeadQuery {
        status: params.status,
        campaign_id: params.campaign_id,
        search,
    };
    Ok(app
        .store
        .leads_page(est, &query, limit, params.cursor.as_deref())
        .await?
        .map(LeadView::from))
}

/// `GET /leads/{id}` (viewers and up).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, lead_id = %id))]
pub async fn get(app: &App, principal: &Principal, id: &LeadId) -> Result<LeadView> {
    let found = app.store.lead(id).await?;
    let (_, lead) = member_of(app, principal, found, Role::Viewer).await?;
    Ok(lead.into())
}

/// `PATCH /leads/{id}` (operators and admins).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, lead_id = %id))]
pub async fn patch(
    app: &App,
    principal: &Principal,
    id: &LeadId,
    patch: LeadPatch,
) -> Result<LeadView> {
    let found = app.store.lead(id).await?;
    let (user, mut lead) = member_of(app, principal, found, Role::Operator).await?;
    // Checked before anything is written: a bad field must not leave the number on the list.
    let mut next = patch.apply(&lead)?;
    let est = lead.establishment_id.clone();
    match patch.status {
        Some(LeadStatus::DoNotCall) => {
            let entry = DoNotCallRecord {
                e164: lead.phone_e164.clone(),
                reason: Some("lead status set to do_not_call".into()),
                added_by: Some(user.id.clone()),
                added_at: Timestamp::now(),
                call_id: None,
            };
            app.store
                .add_do_not_call(&est, &entry, (&user).into())
                .await?;
        }
        Some(_)
            if app
                .store
                .on_do_not_call_list(&est, &lead.phone_e164)
                .await? =>
        {
            return Err(Error::Unprocessable {
                code: "do_not_call",
                message: "the number is on the establishment's do-not-call list; an admin must \
                          take it off the list before the lead can change status"
                    .into(),
                field: Some("status"),
            });
        }
        _ => {}
    }
    for _ in 0..PATCH_ATTEMPTS {
        if let Some(status) = patch.status {
            next.status = status;
        }
        if next == lead {
            return Ok(lead.into());
        }
        next.version = lead.version + 1;
        next.updated_at = Timestamp::now();
        if app.store.replace_lead(&next, lead.version).await? {
            return Ok(next.into());
        }
        lead = app.store.lead(id).await?.ok_or(Error::NotFound("lead"))?;
        next = patch.apply(&lead)?;
    }
    Err(Error::Conflict(
        "the lead is being changed by other requests; retry shortly".into(),
    ))
}

/// `DELETE /leads/{id}` (admins); audited.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id, lead_id = %id))]
pub async fn delete(app: &App, principal: &Principal, id: &LeadId) -> Result<()> {
    let found = app.store.lead(id).await?;
    let (user, lead) = member_of(app, principal, found, Role::Admin).await?;
    if app.store.delete_lead(&lead, &user).await? {
        Ok(())
    } else {
        Err(Error::Conflict(
            "the lead changed while it was being deleted; retry".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_a_number_prefix_in_e164_or_a_name_prefix() {
        // GIVEN searches as people type them, in a US and a UK establishment
        let phone = |q: &str, region: &str| match search_of(q, Some(region)).unwrap() {
            LeadSearch::Phone(p) => p,
            other => panic!("{q}: {other:?}"),
        };
        // THEN digits are E.164 prefixes: international as written, national in the region
        assert_eq!(phone("+1 (208) 55", "US"), "+120855");
        assert_eq!(phone("(201) 555", "US"), "+1201555");
        assert_eq!(phone("1201", "US"), "+1201");
        assert_eq!(phone("020 7946", "GB"), "+44207946");
        assert_eq!(phone("44 20", "GB"), "+4420");
        // AND anything else is a name prefix, as names are indexed
        assert_eq!(
            search_of("  Ana   MARIA ", Some("US")).unwrap(),
            LeadSearch::Name("ana maria".into())
        );
        assert!(search_of(&"9".repeat(101), None).is_err());
    }
}
